#[test]
fn dbg() {
    let p = sextant_core::providers::embedded::EmbeddedProvider::load(&sextant_core::providers::embedded::default_model_path()).unwrap();
    for t in ["<|im_start|>system\nYou are a code completion engine. Continue the code exactly where it stops. Write only code, no explanations.<|im_end|>\n<|im_start|>user\nContinue the file math.py from where it stops. The code after the gap is:\n```\n\n\nprint(add(1, 2))\n\n```<|im_end|>\n<|im_start|>assistant\n```\ndef add(a, b):\n    return"] {
        eprintln!("{t:?}: {}", p.debug_continue(t, 16));
    }
}
