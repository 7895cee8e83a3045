//! Per-document tree-sitter trees, kept current incrementally.
//!
//! `didChange` edits the document's tree with one `InputEdit` per change
//! (cheap, done under the documents lock with the rope edit); the reparse,
//! which reuses the edited tree, runs on the blocking pool when a feature
//! needs the tree (code actions) or after the re-index debounce. Before, every
//! code-action listing parsed the whole document twice on the async threads
//! (200 ms per request on a 114 KB file, 44.6 s at 20 MB).
//!
//! Documents above [`MAX_SYNTAX_TREE_BYTES`] get no tree (and so no
//! tree-based code actions: only explain and refactor selection).
//!
//! Invariant: a [`SyntaxTree::Fresh`] tree is the parse of exactly its
//! document's text; parsing never runs on the async threads.
//!
//! Points are (line, byte column) with lines as ropey counts them (`\n`,
//! `\r\n`, lone `\r`); tree-sitter counts rows on `\n` only, so in a file with
//! lone `\r` line ends node rows can differ. Only byte offsets are used here.

use std::cell::RefCell;
use std::ops::Range;

use ropey::Rope;
use sextant_core::repomap::extract::{self, Language};
use tree_sitter::{InputEdit, Node, Parser, Point, Tree};

/// Documents larger than this (2 MiB) are not parsed: a fresh parse of that
/// much Rust takes ~0.1-0.2 s and its tree tens of MB.
pub const MAX_SYNTAX_TREE_BYTES: usize = 2 * 1024 * 1024;

/// A document's tree and whether it matches the current text.
#[derive(Debug, Clone, Default)]
pub enum SyntaxTree {
    /// Never parsed, replaced wholesale, too large, or not a parsed language.
    #[default]
    Absent,
    /// Edited to follow the text but not yet reparsed.
    Stale(Tree),
    /// The parse of the current text.
    Fresh(Tree),
}

impl SyntaxTree {
    /// Records an edit already made to the text.
    pub fn edit(&mut self, edit: &InputEdit) {
        *self = match std::mem::take(self) {
            SyntaxTree::Absent => SyntaxTree::Absent,
            SyntaxTree::Stale(mut tree) | SyntaxTree::Fresh(mut tree) => {
                tree.edit(edit);
                SyntaxTree::Stale(tree)
            }
        };
    }

    pub fn fresh(&self) -> Option<&Tree> {
        match self {
            SyntaxTree::Fresh(tree) => Some(tree),
            _ => None,
        }
    }

    /// The tree to reparse from (edited to the current text), if any.
    pub fn old_tree(&self) -> Option<&Tree> {
        match self {
            SyntaxTree::Absent => None,
            SyntaxTree::Stale(tree) | SyntaxTree::Fresh(tree) => Some(tree),
        }
    }
}

/// The byte offset and tree-sitter point of a char index.
pub fn point_at(rope: &Rope, char_index: usize) -> (usize, Point) {
    let char_index = char_index.min(rope.len_chars());
    let byte = rope.char_to_byte(char_index);
    let row = rope.char_to_line(char_index);
    (byte, Point::new(row, byte - rope.line_to_byte(row)))
}

/// The edit that replaced `old_chars` of `before` with `inserted_chars`
/// chars (already applied to `after`).
pub fn input_edit(before: &Rope, old_chars: Range<usize>, after: &Rope, inserted_chars: usize) -> InputEdit {
    let (start_byte, start_position) = point_at(before, old_chars.start);
    let (old_end_byte, old_end_position) = point_at(before, old_chars.end);
    let (new_end_byte, new_end_position) = point_at(after, old_chars.start + inserted_chars);
    InputEdit { start_byte, old_end_byte, new_end_byte, start_position, old_end_position, new_end_position }
}

thread_local! {
    /// One parser per language per blocking-pool thread.
    static PARSERS: RefCell<Vec<(Language, Parser)>> = const { RefCell::new(Vec::new()) };
}

/// Parses `text`, reusing `old` (edited to match `text`) where it can;
/// `None` above [`MAX_SYNTAX_TREE_BYTES`] or if the grammar fails to load.
/// Blocking: call it from the blocking pool.
pub fn parse(language: Language, text: &Rope, old: Option<&Tree>) -> Option<Tree> {
    if text.len_bytes() > MAX_SYNTAX_TREE_BYTES {
        return None;
    }
    PARSERS.with(|parsers| {
        let mut parsers = parsers.borrow_mut();
        let index = match parsers.iter().position(|(l, _)| *l == language) {
            Some(index) => index,
            None => {
                let parser = extract::new_parser(language).inspect_err(|e| tracing::error!("{e}")).ok()?;
                parsers.push((language, parser));
                parsers.len() - 1
            }
        };
        let parser = &mut parsers[index].1;
        // Read straight from the rope's chunks: no copy of the document.
        let mut read = |byte: usize, _: Point| -> &[u8] {
            if byte >= text.len_bytes() {
                return &[];
            }
            let (chunk, chunk_start, _, _) = text.chunk_at_byte(byte);
            &chunk.as_bytes()[byte - chunk_start..]
        };
        parser.parse_with_options(&mut read, old, None)
    })
}

/// The smallest definition (as the tag queries define them) containing
/// `byte`: its name and byte range.
pub fn enclosing_definition(
    tree: &Tree,
    language: Language,
    text: &Rope,
    byte: usize,
) -> Option<(String, Range<usize>)> {
    let byte = byte.min(text.len_bytes());
    let mut node = tree.root_node().descendant_for_byte_range(byte, byte)?;
    loop {
        if let Some(name) = definition_name(language, node, text) {
            return Some((name, node.byte_range()));
        }
        node = node.parent()?;
    }
}

fn node_text(node: Node, text: &Rope) -> String {
    let range = node.byte_range();
    let end = range.end.min(text.len_bytes());
    text.byte_slice(range.start.min(end)..end).to_string()
}

/// The defined name when `node` is a definition (mirrors `queries/*/tags.scm`).
fn definition_name(language: Language, node: Node, text: &Rope) -> Option<String> {
    fn field<'tree>(node: Node<'tree>, name: &str) -> Option<Node<'tree>> {
        node.child_by_field_name(name)
    }
    let name = match (language, node.kind()) {
        (
            Language::Rust,
            "function_item"
            | "function_signature_item"
            | "struct_item"
            | "enum_item"
            | "union_item"
            | "trait_item"
            | "const_item"
            | "static_item"
            | "type_item"
            | "macro_definition",
        ) => field(node, "name")?,
        (Language::Rust, "mod_item") => {
            field(node, "body")?;
            field(node, "name")?
        }
        (Language::Rust, "impl_item") => {
            let mut ty = field(node, "type")?;
            loop {
                match ty.kind() {
                    "generic_type" => ty = field(ty, "type")?,
                    "scoped_type_identifier" => ty = field(ty, "name")?,
                    _ => break ty,
                }
            }
        }
        (Language::Python, "class_definition" | "function_definition") => field(node, "name")?,
        (Language::Python, "type_alias_statement") => field(node, "left")?,
        (Language::Python, "expression_statement") if node.parent().is_some_and(|p| p.kind() == "module") => {
            let assignment = node.named_child(0).filter(|c| c.kind() == "assignment")?;
            field(assignment, "left").filter(|left| left.kind() == "identifier")?
        }
        _ => return None,
    };
    Some(node_text(name, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sexp_and_ranges(tree: &Tree) -> (String, Vec<(String, Range<usize>)>) {
        let mut ranges = Vec::new();
        let mut stack = vec![tree.root_node()];
        while let Some(node) = stack.pop() {
            ranges.push((node.kind().to_string(), node.byte_range()));
            for index in (0..node.child_count()).rev() {
                if let Some(child) = node.child(index) {
                    stack.push(child);
                }
            }
        }
        (tree.root_node().to_sexp(), ranges)
    }

    /// Applies `replacement` over `chars` to the rope and the tree, then reparses incrementally.
    fn edit(rope: &mut Rope, tree: &mut Tree, chars: Range<usize>, replacement: &str) {
        let before = rope.clone();
        rope.remove(chars.clone());
        rope.insert(chars.start, replacement);
        tree.edit(&input_edit(&before, chars, rope, replacement.chars().count()));
        *tree = parse(Language::Rust, rope, Some(tree)).expect("reparse");
    }

    #[test]
    fn incremental_reparse_equals_a_fresh_parse() {
        let mut rope = Rope::from_str("fn main() {\n    let x = 1;\n}\n\nstruct Point { x: f64 }\n");
        let mut tree = parse(Language::Rust, &rope, None).expect("parse");
        // Insert a function with a multi-byte character, break a brace, fix it, delete across lines.
        edit(&mut rope, &mut tree, 27..27, "\nfn é_helper(a: u8) -> u8 { a }\n");
        edit(&mut rope, &mut tree, 10..11, "");
        edit(&mut rope, &mut tree, 10..10, "{");
        edit(&mut rope, &mut tree, 3..7, "renamed");
        let end = rope.len_chars();
        edit(&mut rope, &mut tree, end - 24..end, "enum E { A }\r\n");
        let fresh = parse(Language::Rust, &rope, None).expect("fresh parse");
        assert_eq!(sexp_and_ranges(&tree), sexp_and_ranges(&fresh));
        assert!(tree.root_node().to_sexp().contains("enum_item"), "{}", tree.root_node().to_sexp());
        let text = rope.to_string();
        let helper = text.find("a }").expect("helper body");
        let (name, range) = enclosing_definition(&tree, Language::Rust, &rope, helper).expect("definition");
        assert_eq!(name, "é_helper");
        assert!(text[range].starts_with("fn é_helper"));
    }

    #[test]
    fn enclosing_definitions_follow_the_tag_queries() {
        let rust = Rope::from_str("impl<T> Wrapper<T> {\n    fn get(&self) -> T { self.0 }\n}\nmod tests;\n");
        let tree = parse(Language::Rust, &rust, None).expect("parse");
        let text = rust.to_string();
        let name_at =
            |tree: &Tree, rope: &Rope, language, byte| enclosing_definition(tree, language, rope, byte).map(|(n, _)| n);
        assert_eq!(name_at(&tree, &rust, Language::Rust, text.find("self.0").expect("body")).as_deref(), Some("get"));
        assert_eq!(name_at(&tree, &rust, Language::Rust, 2).as_deref(), Some("Wrapper"));
        // A module without a body is not a definition.
        assert_eq!(name_at(&tree, &rust, Language::Rust, text.find("tests").expect("mod")), None);
        let python = Rope::from_str("LIMIT = 3\n\nclass Shape:\n    def area(self):\n        return 0\n");
        let tree = parse(Language::Python, &python, None).expect("parse");
        let text = python.to_string();
        assert_eq!(name_at(&tree, &python, Language::Python, 1).as_deref(), Some("LIMIT"));
        assert_eq!(
            name_at(&tree, &python, Language::Python, text.find("return").expect("body")).as_deref(),
            Some("area")
        );
    }

    #[test]
    fn large_documents_are_not_parsed() {
        let rope = Rope::from_str(&"fn f() {}\n".repeat(MAX_SYNTAX_TREE_BYTES / 10 + 1));
        assert!(rope.len_bytes() > MAX_SYNTAX_TREE_BYTES);
        assert!(parse(Language::Rust, &rope, None).is_none());
    }
}
