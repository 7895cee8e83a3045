//! Turning a model reply into a document edit, and checking the edit. Pure.
//!
//! Invariant: an AI edit is only offered when the edited document has no
//! more tree-sitter syntax errors than the original (for languages we can
//! parse; others are offered unchecked and say so).

use sextant_core::repomap::Language;
use sextant_core::syntax::count_syntax_errors;

/// The contents of the first fenced code block (```lang ... ```) in `reply`,
/// or of an unterminated trailing one. `None` if the reply has no fence.
pub fn extract_fenced_block(reply: &str) -> Option<String> {
    let mut lines = reply.split_inclusive('\n');
    let mut fence: Option<String> = None;
    for line in lines.by_ref() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            let marker: String = trimmed.chars().take_while(|c| *c == '`' || *c == '~').collect();
            fence = Some(marker);
            break;
        }
    }
    let fence = fence?;
    let mut body = String::new();
    for line in lines {
        if line.trim_start().starts_with(fence.as_str()) && line.trim().chars().all(|c| c == '`' || c == '~') {
            return Some(body);
        }
        body.push_str(line);
    }
    // A reply cut off inside the block (max tokens): keep what came.
    Some(body)
}

/// Why an edit was not offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditCheck {
    /// Parsed before and after; the edit does not add errors.
    Valid { errors_before: usize, errors_after: usize },
    /// No grammar for this language: offered without a syntax check.
    Unchecked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditRejected {
    pub errors_before: usize,
    pub errors_after: usize,
}

impl std::fmt::Display for EditRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the suggested edit was not applied: it would raise the file's syntax errors from {} to {}",
            self.errors_before, self.errors_after
        )
    }
}

/// Checks that `after` has no more syntax errors than `before`.
pub fn check_edit(path: &str, before: &str, after: &str) -> Result<EditCheck, EditRejected> {
    let Some(language) = Language::from_path(path) else { return Ok(EditCheck::Unchecked) };
    let (Ok(errors_before), Ok(errors_after)) =
        (count_syntax_errors(language, before), count_syntax_errors(language, after))
    else {
        return Ok(EditCheck::Unchecked);
    };
    if errors_after > errors_before {
        Err(EditRejected { errors_before, errors_after })
    } else {
        Ok(EditCheck::Valid { errors_before, errors_after })
    }
}

/// Re-indents `code` so that its least-indented line starts at `indent`
/// (models often drop the surrounding indentation of a snippet).
pub fn reindent(code: &str, indent: &str) -> String {
    let min_indent = code
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in code.split_inclusive('\n') {
        if line.trim().is_empty() {
            out.push_str(if line.ends_with('\n') { "\n" } else { "" });
            continue;
        }
        let cut = min_indent.min(line.len() - line.trim_start().len());
        out.push_str(indent);
        out.push_str(&line[cut..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn fenced_blocks() {
        let cases = [
            "Here you go:\n```rust\nfn a() {}\n```\nDone.",
            "```\nx = 1\n```",
            "no fence at all",
            "```python\ndef f():\n    pass\n",
            "~~~\nfirst\n~~~\n```\nsecond\n```",
        ];
        let rendered: Vec<String> = cases.iter().map(|c| format!("{:?}", extract_fenced_block(c))).collect();
        expect![[r#"
            Some("fn a() {}\n")
            Some("x = 1\n")
            None
            Some("def f():\n    pass\n")
            Some("first\n")"#]]
        .assert_eq(&rendered.join("\n"));
    }

    #[test]
    fn edits_that_add_syntax_errors_are_rejected() {
        let before = "fn main() {\n    let x = 1;\n}\n";
        assert!(matches!(
            check_edit("src/a.rs", before, "fn main() {\n    let x = 2;\n}\n"),
            Ok(EditCheck::Valid { .. })
        ));
        assert!(check_edit("src/a.rs", before, "fn main() {\n    let x = ;\n").is_err());
        assert_eq!(check_edit("notes.txt", "a", "((("), Ok(EditCheck::Unchecked));
    }

    #[test]
    fn reindent_keeps_relative_indentation() {
        assert_eq!(reindent("fn a() {\n    b();\n}\n", "    "), "    fn a() {\n        b();\n    }\n");
    }
}
