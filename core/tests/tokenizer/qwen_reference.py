#!/usr/bin/env python3
"""Reference token ids for core/tests/tokenizer/qwen_corpus.json.

Builds Qwen2.5's tokenizer as its tokenizer.json describes it (NFC, Qwen2's
split regex, byte-level BPE, control tokens as special added tokens) with the
Python `tokenizers` package, from the vocabulary and merges stored in the
GGUF file, and writes the ids of every corpus text. Sextant's tokenizer is
checked against these ids by `cargo test -p sextant-core --test embedded
qwen_tokenizer_matches_reference`.

Regenerate (needs `pip install gguf tokenizers`):
    python3 core/tests/tokenizer/qwen_reference.py ~/.cache/sextant/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
"""
import json
import pathlib
import sys

from gguf import GGUFReader
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "fn main() {\n    let x: Vec<u32> = (0..10).collect();\n    println!(\"{x:?}\");\n}\n",
    "    if (i >= 100 && j != -1) { total += 3.14159; }  // 12345 tokens",
    "#include <stdio.h>\r\nint main(void) {\r\n\treturn 0;\r\n}\r\n",
    "日本語のテキストと中文文本，还有한국어도 있습니다。",
    "emoji: 🦀🐍 👩‍💻 ✨ and flags 🇫🇷",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n    return y<|fim_middle|>",
    "<|repo_name|>demo\n<|file_sep|>src/a.py\nimport os\n<|endoftext|>",
    "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.rs\"}}\n</tool_call>",
    "I'm sure they'll say it's what we've done; DON'T SHOUT.",
    "tabs\t\tand   spaces   \n\n\n  trailing  ",
    "café naïve e\u0301 (decomposed) Ångström",
]


def build(path: str) -> Tokenizer:
    reader = GGUFReader(path)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    kinds = reader.fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in reader.fields["tokenizer.ggml.merges"].contents()]
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    # GGUF token types: 3 = control (special), 4 = user-defined (e.g. <tool_call>).
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, k in zip(tokens, kinds) if k == 3])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t, k in zip(tokens, kinds) if k == 4])
    return tokenizer


def main() -> None:
    tokenizer = build(sys.argv[1])
    cases = [{"text": text, "ids": tokenizer.encode(text, add_special_tokens=False).ids} for text in CORPUS]
    out = pathlib.Path(__file__).with_name("qwen_corpus.json")
    lines = ",\n".join(json.dumps(case, ensure_ascii=False) for case in cases)
    out.write_text(f"[\n{lines}\n]\n", encoding="utf-8")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
