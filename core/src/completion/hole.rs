//! The shape of the hole at the cursor, decided from the syntax around it.
//!
//! - One line ([`HoleKind::Line`]): the cursor is in the middle of a line,
//!   ends a line of code that opens nothing, or the rest of its line holds
//!   code (then at the start of the line, one new line goes before it).
//! - A block ([`HoleKind::Block`]): an empty line inside a block body, or
//!   right after a block opener (`{`, `(`, `[`, `:`, `=>`, `do`, `then`),
//!   with the indentation the block's lines use.
//!
//! The tree-sitter tree, where the language has a grammar, says whether the
//! cursor sits in a string or comment and which column the enclosing body
//! uses ([`syntax_at_cursor`]); otherwise the text alone decides.

use tree_sitter::{Node, Tree};

use super::indentation;

/// One line or a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoleKind {
    Line,
    Block,
}

/// The hole the completion fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hole {
    pub kind: HoleKind,
    /// Columns of indentation the block's lines use (a block hole), or the
    /// cursor line's indentation (a line hole).
    pub indent: usize,
    /// Why this shape was chosen, for `showLastPrompt`.
    pub reason: String,
    /// The cursor's line up to the cursor.
    pub line_before: String,
    /// The cursor's line after the cursor.
    pub line_after: String,
    /// The suffix's next non-blank lines as whole lines (trailing whitespace
    /// trimmed): the cursor line itself first when the rest of it holds code.
    pub next_lines: Vec<String>,
}

impl Hole {
    /// Only indentation precedes the cursor on its line.
    pub fn at_line_start(&self) -> bool {
        self.line_before.trim().is_empty()
    }

    /// Nothing but whitespace follows the cursor on its line.
    pub fn rest_of_line_blank(&self) -> bool {
        self.line_after.trim().is_empty()
    }
}

/// What the syntax tree says about the cursor, as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyntaxAtCursor {
    /// The cursor is inside a string literal or a comment.
    pub in_string_or_comment: bool,
    /// The kind of the innermost block-like node around the cursor.
    pub block_kind: Option<String>,
    /// The column of that block's first statement on a line of its own.
    pub block_body_column: Option<usize>,
}

/// Node kinds that hold a sequence of statements or items.
fn is_block_kind(kind: &str) -> bool {
    matches!(
        kind,
        "block"
            | "declaration_list"
            | "field_declaration_list"
            | "enum_variant_list"
            | "match_block"
            | "statement_block"
            | "class_body"
            | "function_body"
    )
}

/// Reads the syntax at `cursor_byte` off a tree of the whole document.
pub fn syntax_at_cursor(tree: &Tree, cursor_byte: usize) -> SyntaxAtCursor {
    let root = tree.root_node();
    let Some(innermost) = root.descendant_for_byte_range(cursor_byte, cursor_byte) else {
        return SyntaxAtCursor::default();
    };
    let mut result = SyntaxAtCursor::default();
    // At the end of a line comment the node at the cursor is the one after it.
    if let Some(before) = root.descendant_for_byte_range(cursor_byte.saturating_sub(1), cursor_byte.saturating_sub(1)) {
        result.in_string_or_comment = before.kind().contains("comment") && before.end_byte() >= cursor_byte;
    }
    let mut node = Some(innermost);
    while let Some(current) = node {
        let kind = current.kind();
        // A line comment runs to the end of its line, so its end counts as inside.
        let inside = current.start_byte() < cursor_byte
            && (cursor_byte < current.end_byte() || (kind.contains("comment") && cursor_byte == current.end_byte()));
        if inside && (kind.contains("string") || kind.contains("comment")) {
            result.in_string_or_comment = true;
        }
        if is_block_kind(kind) && current.start_byte() <= cursor_byte && cursor_byte <= current.end_byte() {
            result.block_kind = Some(kind.to_string());
            result.block_body_column = body_column(current);
            break;
        }
        node = current.parent();
    }
    result
}

/// The column of the first named child that starts a line of its own below
/// the block's first line (Python blocks start at their first statement).
fn body_column(block: Node) -> Option<usize> {
    let mut cursor = block.walk();
    let first_row = block.start_position().row;
    let children: Vec<Node> = block.named_children(&mut cursor).collect();
    children
        .iter()
        .find(|child| child.start_position().row > first_row && !child.kind().contains("comment"))
        .or_else(|| children.first().filter(|_| block.kind() == "block" && block.start_position().column > 0))
        .map(|child| child.start_position().column)
}

/// Words and signs that open a block when they end a line.
fn ends_with_opener(line: &str) -> Option<&'static str> {
    let code = line.trim_end();
    for opener in ["{", "(", "[", ":", "=>"] {
        if code.ends_with(opener) {
            return Some(opener);
        }
    }
    ["do", "then", "else"]
        .into_iter()
        .find(|word| code.strip_suffix(word).is_some_and(|head| head.is_empty() || head.ends_with([' ', '\t', ')'])))
}

/// The indentation step the prefix uses (the smallest positive increase
/// from one non-blank line to the next), 4 when none is seen.
fn indent_unit(prefix: &str) -> usize {
    let mut previous: Option<usize> = None;
    let mut unit: Option<usize> = None;
    for line in prefix.lines().filter(|l| !l.trim().is_empty()) {
        let indent = indentation(line);
        if let Some(previous) = previous {
            if indent > previous {
                let step = indent - previous;
                unit = Some(unit.map_or(step, |u| u.min(step)));
            }
        }
        previous = Some(indent);
    }
    unit.unwrap_or(4)
}

/// Decides the hole's shape. `prefix` and `suffix` are the text before and
/// after the cursor (bounded windows are enough); `syntax` is what the tree
/// says, when the language has a grammar.
pub fn decide(prefix: &str, suffix: &str, syntax: Option<&SyntaxAtCursor>) -> Hole {
    let prefix = prefix.replace("\r\n", "\n");
    let suffix = suffix.replace("\r\n", "\n");
    let line_before = prefix.rsplit('\n').next().unwrap_or("").to_string();
    let line_after = suffix.split('\n').next().unwrap_or("").to_string();
    let mut next_lines: Vec<String> = Vec::new();
    if !line_after.trim().is_empty() {
        next_lines.push(format!("{line_before}{line_after}").trim_end().to_string());
    }
    next_lines
        .extend(suffix.split('\n').skip(1).filter(|l| !l.trim().is_empty()).take(4).map(|l| l.trim_end().to_string()));
    let cursor_column = indentation(&line_before);
    let previous_line = prefix.rsplit('\n').skip(1).find(|l| !l.trim().is_empty()).unwrap_or("");
    let unit = indent_unit(&prefix);
    let line = |reason: String| (HoleKind::Line, indentation(&line_before), reason);
    let (kind, indent, reason) = if !line_after.trim().is_empty() {
        if line_before.trim().is_empty() {
            line("the rest of the line holds code: one new line goes before it".into())
        } else {
            line("the cursor is in the middle of a line".into())
        }
    } else if !line_before.trim().is_empty() {
        match ends_with_opener(&line_before) {
            _ if syntax.is_some_and(|s| s.in_string_or_comment) => line("the cursor is in a string or comment".into()),
            Some(opener) => (
                HoleKind::Block,
                indentation(&line_before) + unit,
                format!("right after the block opener `{opener}` (body indented {})", indentation(&line_before) + unit),
            ),
            None => line("the cursor ends a line of code".into()),
        }
    } else if let Some(opener) = ends_with_opener(previous_line) {
        let indent = cursor_column.max(indentation(previous_line) + unit);
        (HoleKind::Block, indent, format!("an empty line right after the block opener `{opener}` (indent {indent})"))
    } else if let Some((kind, column)) =
        syntax.and_then(|s| Some((s.block_kind.as_deref()?, s.block_body_column?))).filter(|(_, c)| *c > 0)
    {
        (
            HoleKind::Block,
            column,
            format!("an empty line inside a `{kind}` body (indent {column}, from the syntax tree)"),
        )
    } else {
        let indent = if cursor_column > 0 { cursor_column } else { indentation(previous_line) };
        if indent == 0 {
            (HoleKind::Block, 0, "an empty line at the top level".to_string())
        } else {
            (HoleKind::Block, indent, format!("an empty line in a block indented {indent}"))
        }
    };
    Hole { kind, indent, reason, line_before, line_after, next_lines }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;
    use crate::repomap::extract::new_parser;
    use crate::repomap::Language;

    /// (name, language with a grammar, document with `‸` at the cursor).
    const CASES: &[(&str, Option<Language>, &str)] = &[
        ("py middle of a line", Some(Language::Python), "def f(x):\n    return x +‸ 1\n"),
        ("py end of a statement", Some(Language::Python), "def f(x):\n    y = x‸\n    return y\n"),
        ("py after def colon", Some(Language::Python), "def f(x):‸\n"),
        ("py empty line after def", Some(Language::Python), "def f(x):\n    ‸\n"),
        ("py empty line in body", Some(Language::Python), "def f(x):\n    a = 1\n    ‸\n    return a\n"),
        ("py humaneval hole", Some(Language::Python), "def f(x):\n    a = 1\n‸    return a\n"),
        ("py column 0 in body", Some(Language::Python), "def f(x):\n    a = 1\n‸\n    return a\n"),
        ("py in a string", Some(Language::Python), "s = \"abc:‸\"\n"),
        ("py in a comment", Some(Language::Python), "x = 1  # why:‸\n"),
        ("py top level", Some(Language::Python), "import os\n\n‸\n"),
        ("rs after brace", Some(Language::Rust), "fn f() {‸\n}\n"),
        ("rs empty body line", Some(Language::Rust), "fn f() {\n  let a = 1;\n  ‸\n}\n"),
        ("rs column 0 in body", Some(Language::Rust), "impl A {\n    fn f() {}\n‸\n}\n"),
        ("rs in call", Some(Language::Rust), "fn f() {\n    g(‸);\n}\n"),
        ("rs in comment", Some(Language::Rust), "// TODO: ‸\n"),
        ("js arrow", None, "const f = () =>‸\n"),
        ("js empty line in block", None, "function f() {\n\tconst a = 1;\n\t‸\n}\n"),
        ("ruby do", None, "items.each do‸\n"),
    ];

    #[test]
    fn hole_shapes() {
        let rendered: Vec<String> = CASES
            .iter()
            .map(|(name, language, document)| {
                let (prefix, suffix) = document.split_once('‸').unwrap_or((document, ""));
                let text = format!("{prefix}{suffix}");
                let syntax = language.and_then(|language| {
                    let tree = new_parser(language).ok()?.parse(&text, None)?;
                    Some(syntax_at_cursor(&tree, prefix.len()))
                });
                let hole = decide(prefix, suffix, syntax.as_ref());
                format!("{name}: {:?} indent {} next {:?} ({})", hole.kind, hole.indent, hole.next_lines, hole.reason)
            })
            .collect();
        expect![[r#"
            py middle of a line: Line indent 4 next ["    return x + 1"] (the cursor is in the middle of a line)
            py end of a statement: Line indent 4 next ["    return y"] (the cursor ends a line of code)
            py after def colon: Block indent 4 next [] (right after the block opener `:` (body indented 4))
            py empty line after def: Block indent 4 next [] (an empty line right after the block opener `:` (indent 4))
            py empty line in body: Block indent 4 next ["    return a"] (an empty line inside a `block` body (indent 4, from the syntax tree))
            py humaneval hole: Line indent 0 next ["    return a"] (the rest of the line holds code: one new line goes before it)
            py column 0 in body: Block indent 4 next ["    return a"] (an empty line inside a `block` body (indent 4, from the syntax tree))
            py in a string: Line indent 0 next ["s = \"abc:\""] (the cursor is in the middle of a line)
            py in a comment: Line indent 0 next [] (the cursor is in a string or comment)
            py top level: Block indent 0 next [] (an empty line at the top level)
            rs after brace: Block indent 4 next ["}"] (right after the block opener `{` (body indented 4))
            rs empty body line: Block indent 2 next ["}"] (an empty line inside a `block` body (indent 2, from the syntax tree))
            rs column 0 in body: Block indent 4 next ["}"] (an empty line inside a `declaration_list` body (indent 4, from the syntax tree))
            rs in call: Line indent 4 next ["    g();", "}"] (the cursor is in the middle of a line)
            rs in comment: Line indent 0 next [] (the cursor is in a string or comment)
            js arrow: Block indent 4 next [] (right after the block opener `=>` (body indented 4))
            js empty line in block: Block indent 4 next ["}"] (an empty line in a block indented 4)
            ruby do: Block indent 4 next [] (right after the block opener `do` (body indented 4))"#]].assert_eq(&rendered.join("\n"));
    }
}
