//! Open documents: a ropey rope plus the negotiated position encoding.
//!
//! Invariant: every LSP `Position` that enters the server goes through
//! [`Document::char_index`], which never panics: columns past the line end are
//! clamped (as the LSP spec demands), lines past the end of the document and
//! columns inside a surrogate pair / multi-byte character are either clamped
//! ([`Clamp::Lenient`], used for edits the client already made) or rejected with
//! a [`PositionError`] ([`Clamp::Strict`], used for requests).
//!
//! A document also carries its tree-sitter tree ([`crate::syntax_tree`]),
//! edited with every change and reparsed off the async threads.
//!
//! Invariant: no open document is larger than [`MAX_DOCUMENT_BYTES`]: a
//! larger `didOpen` is refused and a `didChange` that grows a document past it
//! closes it (the server says so with `window/showMessage`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ropey::Rope;
use sextant_core::repomap::extract::Language;
use tower_lsp::lsp_types::{Position, PositionEncodingKind, Range, TextDocumentContentChangeEvent};

use crate::syntax_tree::{input_edit, SyntaxTree, MAX_SYNTAX_TREE_BYTES};

/// Open documents above this (16 MiB) are refused: nothing a person edits is
/// that large, and each open copy costs memory for as long as it stays open.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// How columns in LSP positions are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PositionEncoding {
    Utf8,
    #[default]
    Utf16,
    Utf32,
}

impl PositionEncoding {
    /// Picks the encoding from the client's `general.positionEncodings`
    /// (preference order as the client sent it; UTF-16 when nothing usable).
    pub fn negotiate(offered: Option<&[PositionEncodingKind]>) -> Self {
        let Some(offered) = offered else { return Self::Utf16 };
        // UTF-8 first: byte columns are what the rest of the server uses.
        if offered.contains(&PositionEncodingKind::UTF8) {
            return Self::Utf8;
        }
        if offered.contains(&PositionEncodingKind::UTF16) || offered.is_empty() {
            return Self::Utf16;
        }
        if offered.contains(&PositionEncodingKind::UTF32) {
            return Self::Utf32;
        }
        Self::Utf16
    }

    pub fn kind(self) -> PositionEncodingKind {
        match self {
            Self::Utf8 => PositionEncodingKind::UTF8,
            Self::Utf16 => PositionEncodingKind::UTF16,
            Self::Utf32 => PositionEncodingKind::UTF32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PositionError {
    LineOutOfRange { line: u32, line_count: usize },
    InsideCharacter { line: u32, character: u32, encoding: PositionEncoding },
}

impl std::fmt::Display for PositionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LineOutOfRange { line, line_count } => {
                write!(f, "position line {line} is past the end of the document ({line_count} lines)")
            }
            Self::InsideCharacter { line, character, encoding } => write!(
                f,
                "position {line}:{character} falls inside a character (a surrogate pair or multi-byte sequence in {encoding:?})"
            ),
        }
    }
}

impl std::error::Error for PositionError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clamp {
    /// Reject positions past the end of the document or inside a character.
    Strict,
    /// Snap such positions to the nearest valid one.
    Lenient,
}

#[derive(Debug, Clone)]
pub struct Document {
    pub text: Rope,
    pub version: i32,
    pub language_id: String,
    pub encoding: PositionEncoding,
    /// Unique per text: new on open and on every applied change (clients'
    /// versions are not trusted to change, and a reopened document restarts them).
    pub revision: u64,
    /// The tree-sitter language, from the path or the language id.
    pub language: Option<Language>,
    pub syntax: SyntaxTree,
    /// Held while this document is parsed, so concurrent requests parse once.
    pub parse_lock: Arc<Mutex<()>>,
}

fn next_revision() -> u64 {
    static REVISION: AtomicU64 = AtomicU64::new(1);
    REVISION.fetch_add(1, Ordering::Relaxed)
}

impl Document {
    pub fn new(text: &str, version: i32, language_id: String, encoding: PositionEncoding) -> Self {
        let language = match language_id.as_str() {
            "rust" => Some(Language::Rust),
            "python" => Some(Language::Python),
            _ => None,
        };
        Self {
            text: Rope::from_str(text),
            version,
            language_id,
            encoding,
            revision: next_revision(),
            language,
            syntax: SyntaxTree::Absent,
            parse_lock: Arc::new(Mutex::new(())),
        }
    }

    /// Sets the tree-sitter language from the file's path when it has one.
    pub fn with_path_language(mut self, path: &str) -> Self {
        if let Some(language) = Language::from_path(path) {
            self.language = Some(language);
        }
        self
    }

    pub fn line_count(&self) -> usize {
        self.text.len_lines()
    }

    /// Char index of the end of `line`'s content (before its line break).
    fn line_content_end(&self, line: usize) -> usize {
        let start = self.text.line_to_char(line);
        let slice = self.text.line(line);
        let mut len = slice.len_chars();
        if len > 0 && slice.char(len - 1) == '\n' {
            len -= 1;
        }
        if len > 0 && slice.char(len - 1) == '\r' {
            len -= 1;
        }
        start + len
    }

    /// Converts an LSP position to a char index into the rope.
    pub fn char_index(&self, position: Position, clamp: Clamp) -> Result<usize, PositionError> {
        let line = position.line as usize;
        if line >= self.line_count() {
            return match clamp {
                Clamp::Strict => {
                    Err(PositionError::LineOutOfRange { line: position.line, line_count: self.line_count() })
                }
                Clamp::Lenient => Ok(self.text.len_chars()),
            };
        }
        let line_start = self.text.line_to_char(line);
        let line_end = self.line_content_end(line);
        let column = position.character as usize;
        let (start_units, end_units) = match self.encoding {
            PositionEncoding::Utf8 => (self.text.char_to_byte(line_start), self.text.char_to_byte(line_end)),
            PositionEncoding::Utf16 => (self.text.char_to_utf16_cu(line_start), self.text.char_to_utf16_cu(line_end)),
            PositionEncoding::Utf32 => (line_start, line_end),
        };
        // Past the line end: the spec says to default back to the line length.
        let target = start_units.saturating_add(column).min(end_units);
        let (index, exact) = match self.encoding {
            PositionEncoding::Utf8 => {
                let index = self.text.byte_to_char(target);
                (index, self.text.char_to_byte(index) == target)
            }
            PositionEncoding::Utf16 => {
                let index = self.text.utf16_cu_to_char(target);
                (index, self.text.char_to_utf16_cu(index) == target)
            }
            PositionEncoding::Utf32 => (target, true),
        };
        if !exact && clamp == Clamp::Strict {
            return Err(PositionError::InsideCharacter {
                line: position.line,
                character: position.character,
                encoding: self.encoding,
            });
        }
        Ok(index)
    }

    /// Converts a char index (clamped to the document) back to an LSP position.
    pub fn position(&self, char_index: usize) -> Position {
        let char_index = char_index.min(self.text.len_chars());
        let line = self.text.char_to_line(char_index);
        let line_start = self.text.line_to_char(line);
        let character = match self.encoding {
            PositionEncoding::Utf8 => self.text.char_to_byte(char_index) - self.text.char_to_byte(line_start),
            PositionEncoding::Utf16 => self.text.char_to_utf16_cu(char_index) - self.text.char_to_utf16_cu(line_start),
            PositionEncoding::Utf32 => char_index - line_start,
        };
        Position::new(line as u32, character as u32)
    }

    /// Char range for an LSP range; the end is never before the start.
    pub fn char_range(&self, range: Range, clamp: Clamp) -> Result<std::ops::Range<usize>, PositionError> {
        let start = self.char_index(range.start, clamp)?;
        let end = self.char_index(range.end, clamp)?;
        Ok(start.min(end)..start.max(end))
    }

    pub fn range(&self, chars: std::ops::Range<usize>) -> Range {
        Range::new(self.position(chars.start), self.position(chars.end))
    }

    /// Applies one `didChange` event. Ranges are clamped: the client already
    /// made this edit, so the best we can do with a bad range is stay close.
    /// The syntax tree follows the edit (`Tree::edit`) and is reparsed later.
    pub fn apply_change(&mut self, change: &TextDocumentContentChangeEvent) {
        self.revision = next_revision();
        match change.range {
            None => {
                self.text = Rope::from_str(&change.text);
                self.syntax = SyntaxTree::Absent;
            }
            Some(range) => {
                // Lenient never errors; fall back to "whole document" defensively.
                let chars = self.char_range(range, Clamp::Lenient).unwrap_or(0..self.text.len_chars());
                // A rope clone shares its chunks: cheap.
                let before = self.syntax.old_tree().is_some().then(|| self.text.clone());
                self.text.remove(chars.clone());
                self.text.insert(chars.start, &change.text);
                if let Some(before) = before {
                    self.syntax.edit(&input_edit(&before, chars, &self.text, change.text.chars().count()));
                }
            }
        }
        if self.text.len_bytes() > MAX_SYNTAX_TREE_BYTES {
            self.syntax = SyntaxTree::Absent;
        }
    }

    pub fn slice_to_string(&self, chars: std::ops::Range<usize>) -> String {
        let end = chars.end.min(self.text.len_chars());
        let start = chars.start.min(end);
        self.text.slice(start..end).to_string()
    }

    /// The identifier (letters, digits, `_`) touching `char_index`, with its char range.
    pub fn identifier_at(&self, char_index: usize) -> Option<(String, std::ops::Range<usize>)> {
        let len = self.text.len_chars();
        let is_ident = |c: char| c.is_alphanumeric() || c == '_';
        let mut start = char_index.min(len);
        while start > 0 && is_ident(self.text.char(start - 1)) {
            start -= 1;
        }
        let mut end = char_index.min(len);
        while end < len && is_ident(self.text.char(end)) {
            end += 1;
        }
        if start == end {
            return None;
        }
        let word = self.slice_to_string(start..end);
        // Identifiers don't start with a digit.
        if word.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            return None;
        }
        Some((word, start..end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str, encoding: PositionEncoding) -> Document {
        Document::new(text, 0, "rust".into(), encoding)
    }

    #[test]
    fn utf16_positions_count_surrogate_pairs_as_two_units() {
        let d = doc("a😀b\nx", PositionEncoding::Utf16);
        assert_eq!(d.char_index(Position::new(0, 3), Clamp::Strict), Ok(2));
        assert_eq!(d.position(2), Position::new(0, 3));
        assert!(matches!(d.char_index(Position::new(0, 2), Clamp::Strict), Err(PositionError::InsideCharacter { .. })));
        assert_eq!(d.char_index(Position::new(0, 2), Clamp::Lenient), Ok(1));
    }

    #[test]
    fn utf8_positions_count_bytes() {
        let d = doc("é=1\n", PositionEncoding::Utf8);
        assert_eq!(d.char_index(Position::new(0, 2), Clamp::Strict), Ok(1));
        assert!(d.char_index(Position::new(0, 1), Clamp::Strict).is_err());
        assert_eq!(d.position(2), Position::new(0, 3));
    }

    #[test]
    fn columns_past_line_end_clamp_and_lines_past_eof_are_rejected_strictly() {
        let d = doc("ab\r\ncd", PositionEncoding::Utf16);
        assert_eq!(d.char_index(Position::new(0, 99), Clamp::Strict), Ok(2));
        assert_eq!(d.char_index(Position::new(1, 99), Clamp::Strict), Ok(6));
        assert!(matches!(d.char_index(Position::new(7, 0), Clamp::Strict), Err(PositionError::LineOutOfRange { .. })));
        assert_eq!(d.char_index(Position::new(7, 0), Clamp::Lenient), Ok(6));
        assert_eq!(d.char_index(Position::new(u32::MAX, u32::MAX), Clamp::Lenient), Ok(6));
    }

    #[test]
    fn incremental_changes_apply_in_order() {
        let mut d = doc("fn main() {\n}\n", PositionEncoding::Utf16);
        let edit = |sl, sc, el, ec, text: &str| TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(sl, sc), Position::new(el, ec))),
            range_length: None,
            text: text.into(),
        };
        d.apply_change(&edit(0, 11, 0, 11, "\n    let 😀 = 1;"));
        d.apply_change(&edit(1, 8, 1, 10, "x"));
        assert_eq!(d.text.to_string(), "fn main() {\n    let x = 1;\n}\n");
        // Reversed and out-of-range ranges do not panic.
        d.apply_change(&edit(9, 9, 0, 0, ""));
        assert_eq!(d.text.to_string(), "");
    }

    #[test]
    fn the_syntax_tree_follows_changes_and_reparses_to_a_fresh_parse() {
        use crate::syntax_tree::{parse, SyntaxTree};
        let mut d = Document::new("fn a() {}\n\nfn b() {}\n", 0, "rust".into(), PositionEncoding::Utf16);
        let language = d.language.expect("rust");
        d.syntax = SyntaxTree::Fresh(parse(language, &d.text, None).expect("parse"));
        let edit = |sl, sc, el, ec, text: &str| TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(sl, sc), Position::new(el, ec))),
            range_length: None,
            text: text.into(),
        };
        d.apply_change(&edit(1, 0, 1, 0, "struct 😀Wide { x: u8 }\n"));
        d.apply_change(&edit(0, 3, 0, 4, "renamed"));
        d.apply_change(&edit(3, 0, 3, 9, "fn c(y: u8) -> u8 { y }"));
        assert!(d.syntax.fresh().is_none(), "edited, not yet reparsed");
        let incremental = parse(language, &d.text, d.syntax.old_tree()).expect("reparse");
        let fresh = parse(language, &d.text, None).expect("fresh parse");
        assert_eq!(incremental.root_node().to_sexp(), fresh.root_node().to_sexp());
        assert_eq!(incremental.root_node().byte_range(), fresh.root_node().byte_range());
        assert!(fresh.root_node().to_sexp().contains("struct_item"));
        // A whole-document replacement drops the tree rather than editing it.
        d.apply_change(&TextDocumentContentChangeEvent { range: None, range_length: None, text: "fn d() {}".into() });
        assert!(d.syntax.old_tree().is_none());
    }

    #[test]
    fn identifier_under_cursor() {
        let d = doc("let total_count = 3;", PositionEncoding::Utf16);
        assert_eq!(d.identifier_at(6).map(|(w, _)| w), Some("total_count".into()));
        // Numbers are not identifiers.
        assert_eq!(d.identifier_at(18), None);
    }
}
