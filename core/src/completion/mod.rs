//! Inline completion, provider-independent and pure: text (and optionally a
//! tree-sitter tree) in, data out.
//!
//! - [`hole`]: which shape the hole at the cursor has (one line, or a block
//!   with its indentation) and why.
//! - [`stopper`]: fed the completion as it streams in, says where the hole
//!   ends so generation stops there (end of the line, code the suffix already
//!   holds, end of the enclosing block) instead of running to max tokens.
//! - [`cleanup`]: the final clean-up of the kept text, including how the
//!   trailing newline is kept so the text is right as an editor inserts it.

pub mod cleanup;
pub mod hole;
pub mod stopper;

pub use cleanup::clean;
pub use hole::{decide, syntax_at_cursor, Hole, HoleKind, SyntaxAtCursor};
pub use stopper::{StopCause, Stopper};

/// Indentation width of a line in columns (a tab counts 4).
pub(crate) fn indentation(line: &str) -> usize {
    line.chars().take_while(|c| *c == ' ' || *c == '\t').map(|c| if c == '\t' { 4 } else { 1 }).sum()
}

/// Whether the first non-blank character closes a bracket.
pub(crate) fn starts_with_closer(line: &str) -> bool {
    matches!(line.trim_start().chars().next(), Some(')' | ']' | '}'))
}

/// Net number of brackets opened (and not closed) in `text`.
pub(crate) fn open_depth(text: &str) -> i64 {
    let mut depth = 0i64;
    for c in code_chars(text) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    depth
}

/// Characters of `text` outside string literals and line comments (a cheap,
/// language-agnostic approximation that is good enough for bracket counting).
pub(crate) fn code_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    let mut in_string: Option<char> = None;
    let mut escaped = false;
    let mut in_line_comment = false;
    let mut previous = '\0';
    text.chars().filter(move |&c| {
        let was_previous = previous;
        previous = c;
        if in_line_comment {
            if c == '\n' {
                in_line_comment = false;
            }
            return false;
        }
        if let Some(quote) = in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == quote || c == '\n' {
                in_string = None;
            }
            return false;
        }
        match c {
            '"' | '`' => {
                in_string = Some(c);
                false
            }
            '/' if was_previous == '/' => {
                in_line_comment = true;
                false
            }
            '#' => {
                in_line_comment = true;
                false
            }
            _ => true,
        }
    })
}
