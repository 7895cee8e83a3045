//! The one token estimator used for every budget in Sextant.
//!
//! [`count`] approximates a cl100k-style BPE tokenizer without shipping a
//! vocabulary: it is deterministic, allocation-free, runs at memory speed and
//! is *conservative* (it should over-count real BPE tokens for code and prose,
//! rarely under-count), so a text that fits a budget here fits a real model's.
//!
//! Rules, applied left to right over the text:
//! - a run of ASCII letters is split at lower->upper case changes
//!   (`RepoMap` -> `Repo`,`Map`); each piece costs `ceil(len / 4)` tokens;
//! - a run of ASCII digits costs `ceil(len / 3)` (BPE groups at most 3 digits);
//! - every ASCII punctuation/symbol byte (incl. `_`) costs 1;
//! - a single space or tab is free (BPE glues it to the next word); a longer
//!   run of blanks costs `ceil((len - 1) / 4)`;
//! - a run of line breaks costs 1;
//! - every non-ASCII character costs `ceil(utf8_len / 2)` (Latin accents 1,
//!   CJK 2, emoji 2).
//!
//! Invariant: `count(a + "\n" + b) >= count(a) + count(b)` whenever `a` does
//! not end and `b` does not start with a line break, so appending lines never
//! lowers the count (the repo-map renderer relies on this to binary-search).

/// Estimated number of model tokens in `text` (see the module docs).
pub fn count(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut tokens = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte.is_ascii_alphabetic() {
            // One word piece: letters up to the next lower->upper change.
            let start = i;
            i += 1;
            while i < bytes.len()
                && bytes[i].is_ascii_alphabetic()
                && !(bytes[i].is_ascii_uppercase() && bytes[i - 1].is_ascii_lowercase())
            {
                i += 1;
            }
            tokens += (i - start).div_ceil(4);
        } else if byte.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            tokens += (i - start).div_ceil(3);
        } else if byte == b'\n' || byte == b'\r' {
            while i < bytes.len() && (bytes[i] == b'\n' || bytes[i] == b'\r') {
                i += 1;
            }
            tokens += 1;
        } else if byte == b' ' || byte == b'\t' {
            let start = i;
            while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            tokens += (i - start - 1).div_ceil(4);
        } else if byte.is_ascii() {
            tokens += 1;
            i += 1;
        } else {
            // Non-ASCII: measure the UTF-8 sequence length from its lead byte.
            let len = utf8_len(byte);
            tokens += len.div_ceil(2);
            i += len;
        }
    }
    tokens
}

fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_words_symbols_and_space() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("hello", 2),
            ("the", 1),
            ("the cat", 2),
            ("RepoMap", 2),
            ("load_or_build", 6),
            ("fn main() {}", 6),
            ("12345", 2),
            ("a\n\n\nb", 3),
            ("        x", 3),
            ("café", 2),
            ("日本", 4),
            ("│", 2),
        ];
        for (text, expected) in cases {
            assert_eq!(count(text), *expected, "count({text:?})");
        }
    }

    #[test]
    fn appending_lines_never_lowers_the_count() {
        let lines = ["pub fn open(path: &Path) -> Result<Self>", "    ", "│class Circle(Shape):", "⋮", "x", "12"];
        for a in lines {
            for b in lines {
                let joined = format!("{a}\n{b}");
                assert!(count(&joined) >= count(a) + count(b), "{joined:?}");
            }
        }
    }

    #[test]
    fn overestimates_typical_code() {
        // Roughly 4 bytes per token is the cl100k average for code; a
        // conservative estimate must not be far below bytes / 4.
        let code = "impl Store {\n    pub fn insert(&mut self, item: Item) -> Option<Item> {\n        self.items.insert(item.name.clone(), item)\n    }\n}\n";
        assert!(count(code) * 4 >= code.len(), "{} tokens for {} bytes", count(code), code.len());
    }
}
