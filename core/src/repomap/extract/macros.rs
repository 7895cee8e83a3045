//! Definitions written inside Rust macro invocations (`cfg_rt! { pub fn
//! spawn… }`, `thread_local! { static … }`, `lazy_static! { static ref … }`).
//!
//! tree-sitter keeps a macro's input as flat token trees, so an item there is
//! `keyword name`: its extent (modifiers through the `{ … }` body or the
//! `;`), signature and doc comment are read off the neighbouring tokens. One
//! pass over the tokens per invocation; nested trees (impl and mod bodies)
//! are visited too, function bodies not. Which invocations to read (outside
//! function bodies and `macro_rules!` templates) is decided by the caller.

use std::sync::Arc;

use tree_sitter::Node;

use super::{
    clip_header, clip_value_line, finish_doc, indent_before, is_keyword_like, node_text, outer_doc_above, priority,
    Found, NameInterner,
};
use crate::repomap::{Role, Tag, TagDetails, TagKind};

/// What [`collect_macro_items`] needs from the file being tagged.
pub(super) struct MacroItemContext<'c, 's> {
    pub(super) source: &'s str,
    pub(super) path: &'c Arc<str>,
}

/// Adds the definitions written among a macro call's tokens, such as
/// `cfg_rt! { pub fn spawn<F>(f: F) -> JoinHandle<F::Output> { … } }` or
/// `thread_local! { static CURRENT: … }` (see the module docs).
pub(super) fn collect_macro_items<'t, 's>(
    context: &MacroItemContext<'_, 's>,
    invocation: Node<'t>,
    scope: Option<&str>,
    names: &mut NameInterner<'s>,
    found: &mut Vec<Found>,
) {
    // An explicit stack: token trees nest as deep as the input does.
    let mut trees: Vec<Node<'t>> = Vec::new();
    let mut cursor = invocation.walk();
    trees.extend(invocation.children(&mut cursor).filter(|child| child.kind() == "token_tree"));
    let mut tokens: Vec<Node<'t>> = Vec::new();
    while let Some(tree) = trees.pop() {
        tokens.clear();
        tokens.extend(tree.children(&mut cursor));
        let mut index = 0;
        while index < tokens.len() {
            let token = tokens[index];
            if token.kind() == "token_tree" {
                trees.push(token);
                index += 1;
                continue;
            }
            match macro_item_at(context, &tokens, index, scope, names) {
                Some((item, end)) => {
                    let is_function = item.tag.kind == TagKind::Function;
                    found.push(Found {
                        match_order: found.len(),
                        name_start: item.name_start,
                        priority: priority(Role::Definition, item.tag.kind),
                        tag: item.tag,
                    });
                    // A function's body holds locals, not API: skip it. Other
                    // items' bodies (trait, mod) are visited as trees.
                    index = if is_function { end + 1 } else { index + 1 };
                }
                None => index += 1,
            }
        }
    }
}

struct MacroItem {
    tag: Tag,
    name_start: usize,
}

/// The item whose keyword is `tokens[at]`, if it is one, and the index of
/// its last token (the body or the `;`).
fn macro_item_at<'s>(
    context: &MacroItemContext<'_, 's>,
    tokens: &[Node],
    at: usize,
    scope: Option<&str>,
    names: &mut NameInterner<'s>,
) -> Option<(MacroItem, usize)> {
    let source = context.source;
    let kind = item_keyword_kind(tokens, at)?;
    let name_at = item_name_at(tokens, at, kind, source)?;
    let name = tokens[name_at];
    let name_text = node_text(name, source)?;
    let start = modifiers_start(tokens, at, source);
    let (end, header_end) = item_extent(tokens, name_at, source);
    let item_start = tokens[start].start_byte();
    let item_end = tokens[end].end_byte();
    let header = source.get(item_start..header_end.unwrap_or(item_end))?.trim_end();
    let has_body = header_end.is_some() && tokens[end].kind() == "token_tree";
    let header = if has_body || kind == TagKind::Function { clip_header(header) } else { clip_value_line(header) };
    let signature = format!("{}{header}", indent_before(source, item_start));
    let doc = outer_doc_above(&tokens[..start], source).and_then(finish_doc);
    let tag = Tag {
        path: context.path.clone(),
        name: names.intern(name_text),
        kind,
        role: Role::Definition,
        line: name.start_position().row as u32,
        byte_range: item_start..item_end,
        details: TagDetails::boxed(Some(signature), doc, scope.map(str::to_string)),
    };
    let item = MacroItem { tag, name_start: name.start_byte() };
    Some((item, end))
}

/// The kind of item `tokens[at]` starts, if it is an item keyword.
fn item_keyword_kind(tokens: &[Node], at: usize) -> Option<TagKind> {
    let kind = match tokens[at].kind() {
        "fn" => TagKind::Function,
        "struct" => TagKind::Struct,
        "enum" => TagKind::Enum,
        "union" => TagKind::Union,
        "trait" => TagKind::Trait,
        "type" => TagKind::TypeAlias,
        "mod" => TagKind::Module,
        "const" => TagKind::Const,
        "static" => TagKind::Static,
        _ => return None,
    };
    // Not items: the lifetime `'static` and the pointer type `*const T`.
    if at > 0 && matches!(tokens[at - 1].kind(), "'" | "*") {
        return None;
    }
    Some(kind)
}

/// The index of the item's name after its keyword at `at`: an identifier
/// that is not syntax (`self`, `_`, ...).
fn item_name_at(tokens: &[Node], at: usize, kind: TagKind, source: &str) -> Option<usize> {
    let mut name_at = at + 1;
    // `static ref NAME: T = …;` (lazy_static!).
    if kind == TagKind::Static && node_text(*tokens.get(name_at)?, source) == Some("ref") {
        name_at += 1;
    }
    let name = *tokens.get(name_at)?;
    if name.kind() != "identifier" || is_keyword_like(node_text(name, source)?) {
        return None;
    }
    Some(name_at)
}

/// The index of the first modifier before the keyword at `at` (`pub`,
/// `pub(crate)`, `const`, `async`, `extern "C"`, …), or `at` itself.
fn modifiers_start(tokens: &[Node], at: usize, source: &str) -> usize {
    let mut start = at;
    while start > 0 {
        let token = tokens[start - 1];
        let is_modifier = match token.kind() {
            "pub" | "async" | "const" | "unsafe" | "extern" | "default" | "string_literal" => true,
            "token_tree" => {
                start >= 2
                    && tokens[start - 2].kind() == "pub"
                    && node_text(token, source).is_some_and(|text| text.starts_with('('))
            }
            _ => false,
        };
        if !is_modifier {
            break;
        }
        start -= 1;
    }
    start
}

/// The item's last token index and where its header ends (the start of its
/// `{ … }` body or `;`; `None` when neither came): through the body or the
/// `;`, whichever comes first; the enclosing tree's closing delimiter ends it
/// too.
fn item_extent(tokens: &[Node], name_at: usize, source: &str) -> (usize, Option<usize>) {
    let mut end = name_at;
    for (index, token) in tokens.iter().enumerate().skip(name_at + 1) {
        match token.kind() {
            ";" => return (index, Some(token.start_byte())),
            "}" | ")" | "]" if index + 1 == tokens.len() => break,
            "token_tree" if node_text(*token, source).is_some_and(|text| text.starts_with('{')) => {
                return (index, Some(token.start_byte()));
            }
            _ => end = index,
        }
    }
    (end, None)
}
