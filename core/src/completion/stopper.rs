//! Deciding, while the completion streams in, where the hole ends.
//!
//! The [`Stopper`] is fed the text piece by piece and judges each line once
//! it is complete (its newline arrived, or the stream ended):
//! - a line hole ends with its line (the newline is kept when the completion
//!   is a whole new line put before code on the cursor's line), unless
//!   brackets the completion opened are still open or the next line is a
//!   deeper-indented `.method()` / `?.` chain that continues the statement;
//! - any hole ends before a line that reproduces the suffix's next non-blank
//!   line (the model has reached code the document already holds);
//! - a block hole ends before a line dedented below the block (unless it
//!   closes a bracket the completion opened), and at the top level before a
//!   new unindented item that follows a blank line;
//! - the same non-blank line twice in a row is a loop and ends it too.
//!
//! Leading blank lines are not judged when the cursor is at the start of a
//! line: the clean-up drops them.

use super::hole::{Hole, HoleKind};
use super::{code_chars, indentation, starts_with_closer};

/// Why the stopper ended the completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// A line hole's line is complete.
    EndOfLine,
    /// The completion reproduced the suffix's next line.
    ReachedSuffix,
    /// A line left the enclosing block.
    BlockEnd,
    /// A new top-level item began after a blank line.
    ItemEnd,
    /// The same line came twice in a row.
    Repetition,
}

impl StopCause {
    pub fn describe(self) -> &'static str {
        match self {
            StopCause::EndOfLine => "the hole's line was complete",
            StopCause::ReachedSuffix => "the completion reached code the suffix already holds",
            StopCause::BlockEnd => "a line left the enclosing block",
            StopCause::ItemEnd => "a new top-level item began after a blank line",
            StopCause::Repetition => "the model repeated a line",
        }
    }
}

/// Streaming judge of one completion for one hole.
#[derive(Debug, Clone)]
pub struct Stopper<'h> {
    hole: &'h Hole,
    text: String,
    /// Byte offset where the next unjudged line starts.
    next_line_start: usize,
    line_index: usize,
    seen_code: bool,
    /// Byte offset of a blank line that followed code (top-level item end).
    blank_after_code: Option<usize>,
    previous_code_line: Option<String>,
    depth: i64,
    /// Leading blank lines skipped (the cursor is at the start of a line).
    skipped: usize,
    /// A line hole's line ended here (the cut, newline included when kept);
    /// the next line's first character says whether the statement goes on.
    line_end: Option<usize>,
    cut: Option<(usize, StopCause)>,
}

impl<'h> Stopper<'h> {
    pub fn new(hole: &'h Hole) -> Self {
        Stopper {
            hole,
            text: String::new(),
            next_line_start: 0,
            line_index: 0,
            seen_code: false,
            blank_after_code: None,
            previous_code_line: None,
            depth: 0,
            skipped: 0,
            line_end: None,
            cut: None,
        }
    }

    /// Adds a streamed piece. Returns false once the hole is filled: the
    /// caller should stop generating.
    pub fn push(&mut self, piece: &str) -> bool {
        if self.cut.is_some() {
            return false;
        }
        self.text.push_str(piece);
        while self.cut.is_none() {
            if let Some(line_end) = self.line_end {
                match self.continues_statement() {
                    None => break,
                    Some(true) => self.line_end = None,
                    Some(false) => {
                        self.stop(line_end, StopCause::EndOfLine);
                        break;
                    }
                }
            }
            let Some(newline) = self.text[self.next_line_start..].find('\n') else { break };
            let end = self.next_line_start + newline;
            self.judge_line(end, true);
        }
        self.cut.is_none()
    }

    /// The stream ended: judges the last, unterminated line.
    pub fn finish(&mut self) {
        if let (None, Some(line_end)) = (self.cut, self.line_end) {
            self.stop(line_end, StopCause::EndOfLine);
        }
        if self.cut.is_none() && self.next_line_start < self.text.len() {
            let end = self.text.len();
            self.judge_line(end, false);
        }
    }

    /// After a line hole's line ended: whether the next line continues the
    /// statement (a deeper-indented `.method()` or `?.` chain), `None` while
    /// its first character has not arrived.
    fn continues_statement(&self) -> Option<bool> {
        let next = &self.text[self.next_line_start.min(self.text.len())..];
        let first = next.find(|c: char| c != ' ' && c != '\t')?;
        let deeper = indentation(next) > indentation(&self.hole.line_before);
        Some(deeper && next[first..].starts_with(['.', '?']))
    }

    /// Everything received so far.
    pub fn received(&self) -> &str {
        &self.text
    }

    /// The text that fills the hole: what was received, up to the cut.
    pub fn kept(&self) -> &str {
        match self.cut {
            Some((cut, _)) => &self.text[..cut],
            None => &self.text,
        }
    }

    /// Why the completion was cut, if it was.
    pub fn cause(&self) -> Option<StopCause> {
        self.cut.map(|(_, cause)| cause)
    }

    fn stop(&mut self, at: usize, cause: StopCause) {
        self.cut = Some((at, cause));
    }

    /// Judges the line `next_line_start..end`; `terminated` = a newline follows.
    fn judge_line(&mut self, end: usize, terminated: bool) {
        let start = self.next_line_start;
        let index = self.line_index;
        self.next_line_start = end + 1;
        self.line_index += 1;
        let piece = self.text[start..end].trim_end_matches('\r').to_string();
        // After skipped leading blank lines the first code line lands on the
        // cursor's line (the clean-up drops the blanks and re-bases it).
        let on_cursor_line = index == 0 || (!self.seen_code && self.skipped == index);
        let piece = if index > 0 && on_cursor_line { rebase(&piece, &self.hole.line_before) } else { piece };
        let full = if on_cursor_line { format!("{}{piece}", self.hole.line_before) } else { piece.clone() };
        // A line the completion starts from scratch (not the rest of the cursor's line).
        let whole_line = index > 0 || self.hole.at_line_start();
        if piece.trim().is_empty() && (index > 0 || full.trim().is_empty()) {
            if !self.seen_code && self.hole.at_line_start() {
                self.skipped += 1;
                return;
            }
            if self.hole.kind == HoleKind::Line {
                self.stop(start.min(end), StopCause::EndOfLine);
                return;
            }
            if self.seen_code && self.blank_after_code.is_none() {
                self.blank_after_code = Some(start);
            }
            return;
        }
        if whole_line && self.hole.next_lines.first().is_some_and(|next| *next == full.trim_end()) {
            self.stop(start, StopCause::ReachedSuffix);
            return;
        }
        if self.seen_code && self.previous_code_line.as_deref().is_some_and(|p| p == full.trim()) {
            self.stop(start, StopCause::Repetition);
            return;
        }
        match self.hole.kind {
            HoleKind::Line => {
                self.note_code_line(&piece, &full);
                // Brackets the completion opened keep the statement going.
                if terminated && self.depth > 0 {
                    return;
                }
                let keep_newline = terminated && self.hole.at_line_start() && !self.hole.rest_of_line_blank();
                let line_end = if keep_newline { end + 1 } else { end };
                if terminated {
                    self.line_end = Some(line_end);
                } else {
                    self.stop(line_end, StopCause::EndOfLine);
                }
                return;
            }
            HoleKind::Block => {
                let indent = indentation(&full);
                if !on_cursor_line && indent < self.hole.indent && !(starts_with_closer(&full) && self.depth > 0) {
                    self.stop(start, StopCause::BlockEnd);
                    return;
                }
                if let Some(blank) = self.blank_after_code {
                    if self.hole.indent == 0 && indent == 0 {
                        self.stop(blank, StopCause::ItemEnd);
                        return;
                    }
                }
            }
        }
        self.note_code_line(&piece, &full);
    }

    fn note_code_line(&mut self, piece: &str, full: &str) {
        self.blank_after_code = None;
        self.seen_code = true;
        for c in code_chars(piece) {
            match c {
                '(' | '[' | '{' => self.depth += 1,
                ')' | ']' | '}' => self.depth -= 1,
                _ => {}
            }
        }
        self.previous_code_line = Some(full.trim().to_string());
    }
}

/// `line` moved onto the cursor's line: the indentation already before the
/// cursor (`line_before`, whitespace only) is taken off its own.
pub(crate) fn rebase(line: &str, line_before: &str) -> String {
    let mut rest = line;
    for _ in 0..line_before.chars().count() {
        match rest.strip_prefix([' ', '\t']) {
            Some(shorter) => rest = shorter,
            None => break,
        }
    }
    rest.to_string()
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::super::hole::decide;
    use super::*;

    /// (name, document with `‸` at the cursor, completion streamed in these pieces).
    const CASES: &[(&str, &str, &[&str])] = &[
        (
            "py humaneval line keeps newline",
            "def f(x):\n    a = 1\n‸    return a\n",
            &["    b = a", " * 2\n", "    return b\n"],
        ),
        ("py humaneval reproduces suffix", "def f(x):\n    a = 1\n‸    return a\n", &["    return a\n", "\n"]),
        ("py blank then code at cursor column", "def f(a):\n    ‸\n", &["\n", "\n", "return a\n", "def g():\n"]),
        ("py blank then indented code", "def f(a):\n    ‸\n", &["\n    return a\n", "    x = 1\n"]),
        ("py humaneval leading blank", "def f(x):\n    a = 1\n‸    return a\n", &["\n", "    b = 2\n    c = 3\n"]),
        ("py mid line ends at newline", "def f(x):\n    return x +‸\n", &[" 1\n", "\ndef g():\n"]),
        ("py block to dedent", "def f(x):\n    ‸\n", &["a = 1\n", "    return a\n", "def g():\n", "    pass\n"]),
        ("py block reaches suffix", "def f(x):\n    ‸\n    return a\n", &["a = 1\n    b = 2\n    return a\n    x"]),
        ("py block repeats", "def f(x):\n    ‸\n", &["log(1)\n    log(2)\n    log(2)\n    log(2)\n"]),
        ("py top level item", "import os\n‸\n", &["\nX = 1\n", "Y = 2\n\n", "def g():\n    pass\n"]),
        ("py top level def body blank", "import os\n‸\n", &["def g():\n    a = 1\n\n    return a\n\nclass C:\n"]),
        ("rs body stops at closer", "fn f() {\n    ‸\n}\n", &["let a = 1;\n    a\n}\n\nfn g() {}\n"]),
        ("rs own closer kept", "fn f() {\n    ‸\n}\n", &["if x {\n        y();\n    }\n    z();\n}\n"]),
        ("rs after opener", "fn f() {‸\n}\n", &["\n    let a = 1;\n", "}\n"]),
        ("rs in call", "fn f() {\n    g(‸);\n}\n", &["a, b", ");\n", "    h();\n"]),
        ("rs chain continues", "fn f() {\n    let n = ‸;\n}\n", &["points\n", "        .len()\n", "    h();\n"]),
        (
            "rs open bracket continues",
            "fn f() {\n    let v = ‸\n}\n",
            &["vec![\n", "        1,\n", "    ];\n", "    h();\n"],
        ),
        ("js block", "function f() {\n  ‸\n}\n", &["const a = 1;\n  return a;\n}\nfunction g() {}\n"]),
        ("nothing stops it", "def f(x):\n    ‸\n", &["a = 1\n", "    b = 2"]),
    ];

    #[test]
    fn stopper_cases() {
        let rendered: Vec<String> = CASES
            .iter()
            .map(|(name, document, pieces)| {
                let (prefix, suffix) = document.split_once('‸').unwrap_or((document, ""));
                let hole = decide(prefix, suffix, None);
                let mut stopper = Stopper::new(&hole);
                let mut consumed = 0;
                for piece in pieces.iter() {
                    consumed += 1;
                    if !stopper.push(piece) {
                        break;
                    }
                }
                stopper.finish();
                let cause = stopper.cause().map_or("none".to_string(), |c| format!("{c:?}"));
                format!("{name}: {:?} after {consumed}/{} pieces, {cause}", stopper.kept(), pieces.len())
            })
            .collect();
        expect![[r#"
            py humaneval line keeps newline: "    b = a * 2\n" after 3/3 pieces, EndOfLine
            py humaneval reproduces suffix: "" after 1/2 pieces, ReachedSuffix
            py blank then code at cursor column: "\n\nreturn a\n" after 4/4 pieces, BlockEnd
            py blank then indented code: "\n    return a\n    x = 1\n" after 2/2 pieces, none
            py humaneval leading blank: "\n    b = 2\n" after 2/2 pieces, EndOfLine
            py mid line ends at newline: " 1" after 2/2 pieces, EndOfLine
            py block to dedent: "a = 1\n    return a\n" after 3/4 pieces, BlockEnd
            py block reaches suffix: "a = 1\n    b = 2\n" after 1/1 pieces, ReachedSuffix
            py block repeats: "log(1)\n    log(2)\n" after 1/1 pieces, Repetition
            py top level item: "\nX = 1\nY = 2\n" after 3/3 pieces, ItemEnd
            py top level def body blank: "def g():\n    a = 1\n\n    return a\n" after 1/1 pieces, ItemEnd
            rs body stops at closer: "let a = 1;\n    a\n" after 1/1 pieces, ReachedSuffix
            rs own closer kept: "if x {\n        y();\n    }\n    z();\n" after 1/1 pieces, ReachedSuffix
            rs after opener: "\n    let a = 1;\n" after 2/2 pieces, ReachedSuffix
            rs in call: "a, b);" after 3/3 pieces, EndOfLine
            rs chain continues: "points\n        .len()" after 3/3 pieces, EndOfLine
            rs open bracket continues: "vec![\n        1,\n    ];" after 4/4 pieces, EndOfLine
            js block: "const a = 1;\n" after 1/1 pieces, BlockEnd
            nothing stops it: "a = 1\n    b = 2" after 2/2 pieces, none"#]]
        .assert_eq(&rendered.join("\n"));
    }
}
