//! Syntax-error counting with tree-sitter, used to validate AI edits before
//! they are offered (an edit must not make a file less parseable).

use tree_sitter::Parser;

use crate::repomap::Language;

#[derive(Debug, thiserror::Error)]
pub enum SyntaxError {
    #[error("cannot load the {0:?} grammar: {1}")]
    Grammar(Language, String),
    #[error("tree-sitter gave up parsing the {0:?} text")]
    ParseFailed(Language),
}

/// Number of ERROR and MISSING nodes tree-sitter produces for `text`.
pub fn count_syntax_errors(language: Language, text: &str) -> Result<usize, SyntaxError> {
    let grammar: tree_sitter::Language = match language {
        Language::Rust => tree_sitter_rust::LANGUAGE.into(),
        Language::Python => tree_sitter_python::LANGUAGE.into(),
    };
    let mut parser = Parser::new();
    parser.set_language(&grammar).map_err(|error| SyntaxError::Grammar(language, error.to_string()))?;
    let tree = parser.parse(text, None).ok_or(SyntaxError::ParseFailed(language))?;
    let root = tree.root_node();
    if !root.has_error() {
        return Ok(0);
    }
    let mut errors = 0;
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        if node.is_error() || node.is_missing() {
            errors += 1;
        }
        // Only subtrees that contain an error can hold more of them.
        if node.has_error() && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return Ok(errors);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_errors() {
        assert_eq!(count_syntax_errors(Language::Rust, "fn main() { let x = 1; }").ok(), Some(0));
        assert!(count_syntax_errors(Language::Rust, "fn main() { let x = ; }").unwrap_or(0) > 0);
        assert_eq!(count_syntax_errors(Language::Python, "def f():\n    return 1\n").ok(), Some(0));
        assert!(count_syntax_errors(Language::Python, "def f(:\n").unwrap_or(0) > 0);
    }
}
