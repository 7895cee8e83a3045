#[test]
fn dbg() {
    let p = sextant_core::providers::embedded::EmbeddedProvider::load(&sextant_core::providers::embedded::default_model_path()).unwrap();
    for t in ["<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
     "Alice has three apples. Bob has two apples. Together, Alice and Bob have a total of"] {
        eprintln!("{t:?}: {}", p.debug_continue(t, 12));
    }
}
