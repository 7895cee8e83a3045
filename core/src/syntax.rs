//! Syntax-error counting with tree-sitter, used to validate AI edits before
//! they are offered (an edit must not make a file less parseable).

use tree_sitter::Node;

use crate::repomap::extract::new_parser;
use crate::repomap::Language;

#[derive(Debug, thiserror::Error)]
pub enum SyntaxError {
    /// The text says which grammar failed and why.
    #[error("{1}")]
    Grammar(Language, String),
    #[error("tree-sitter gave up parsing the {0:?} text")]
    ParseFailed(Language),
}

/// Number of ERROR and MISSING nodes tree-sitter produces for `text`.
pub fn count_syntax_errors(language: Language, text: &str) -> Result<usize, SyntaxError> {
    let mut parser = new_parser(language).map_err(|error| SyntaxError::Grammar(language, error))?;
    let tree = parser.parse(text, None).ok_or(SyntaxError::ParseFailed(language))?;
    let mut errors = 0;
    visit_error_nodes(tree.root_node(), |_| {
        errors += 1;
        true
    });
    Ok(errors)
}

/// Calls `visit` on every ERROR or MISSING node in document order, until it
/// returns false. Only subtrees that contain an error are entered.
pub(crate) fn visit_error_nodes(root: Node, mut visit: impl FnMut(Node) -> bool) {
    if !root.has_error() {
        return;
    }
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        if (node.is_error() || node.is_missing()) && !visit(node) {
            return;
        }
        if node.has_error() && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return;
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
