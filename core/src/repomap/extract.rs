//! One file's bytes -> tags, with tree-sitter.
//!
//! The tag queries live in `queries/<lang>/tags.scm` and are compiled into the
//! binary (`include_str!`); each is compiled to a [`Query`] once per process
//! (`LazyLock`), and each rayon worker thread keeps its own [`Parser`]s.

use std::cell::RefCell;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Once};

use tree_sitter::{Node, Parser, Query, QueryCursor, QueryMatch, StreamingIterator, Tree};

use super::{FxHashMap, Note, NoteReason, Role, Tag, TagDetails, TagKind, MAX_FILE_BYTES};

mod macros;

use macros::{collect_macro_items, MacroItemContext};

/// Languages the repo map understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Rust,
    Python,
}

impl Language {
    /// The language of a path by extension (`.rs`, `.py`, `.pyi`).
    pub fn from_path(path: &str) -> Option<Language> {
        let extension = path.rsplit_once('.').map(|(_, ext)| ext)?;
        match extension {
            "rs" => Some(Language::Rust),
            "py" | "pyi" => Some(Language::Python),
            _ => None,
        }
    }

    /// The tree-sitter grammar. Every parser and query starts from here (or
    /// from [`new_parser`]), which is what makes the allocator switch safe.
    pub(crate) fn grammar(self) -> tree_sitter::Language {
        use_mimalloc_for_tree_sitter();
        match self {
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::Python => tree_sitter_python::LANGUAGE.into(),
        }
    }

    /// The tag query source shipped in the binary.
    pub fn query_source(self) -> &'static str {
        match self {
            Language::Rust => include_str!("../../../queries/rust/tags.scm"),
            Language::Python => include_str!("../../../queries/python/tags.scm"),
        }
    }

    /// The compiled tag query; `Err` holds the compile error (a bug in the
    /// shipped query, reported instead of panicking).
    pub fn query(self) -> Result<&'static CompiledQuery, &'static str> {
        static RUST: LazyLock<Result<CompiledQuery, String>> = LazyLock::new(|| CompiledQuery::new(Language::Rust));
        static PYTHON: LazyLock<Result<CompiledQuery, String>> = LazyLock::new(|| CompiledQuery::new(Language::Python));
        let compiled = match self {
            Language::Rust => &*RUST,
            Language::Python => &*PYTHON,
        };
        compiled.as_ref().map_err(|error| error.as_str())
    }
}

/// A compiled query plus what each capture index means.
pub struct CompiledQuery {
    query: Query,
    captures: Vec<CaptureMeaning>,
}

#[derive(Debug, Clone, Copy)]
enum CaptureMeaning {
    /// `@name.definition.<kind>` / `@name.reference.<kind>`.
    Name {
        role: Role,
        kind: QueryKind,
    },
    /// `@definition.<kind>`: the whole item.
    Item,
    /// `@reference.import`: a container whose identifiers are imports.
    ImportContainer,
    /// `@reference.macro_invocation`: a whole macro call, whose tokens may
    /// hold items (see [`macros::collect_macro_items`]).
    MacroInvocation,
    /// `@attribute`: an attribute, inside which names are not references
    /// (the token-tree call patterns would match `doc(cfg(…))`).
    Attribute,
    Ignored,
}

/// Kinds as written in the query; resolved to a [`TagKind`] with context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryKind {
    Exact(TagKind),
    /// A function that may really be a method (decided by its parent).
    Function,
    /// A path qualifier: type if capitalised, else module.
    Path,
}

impl CompiledQuery {
    fn new(language: Language) -> Result<CompiledQuery, String> {
        let query = Query::new(&language.grammar(), language.query_source())
            .map_err(|error| format!("{language:?} tag query does not compile: {error}"))?;
        let captures = query.capture_names().iter().map(|name| parse_capture_name(name)).collect();
        Ok(CompiledQuery { query, captures })
    }
}

fn parse_capture_name(name: &str) -> CaptureMeaning {
    if name == "reference.import" {
        return CaptureMeaning::ImportContainer;
    }
    if name == "reference.macro_invocation" {
        return CaptureMeaning::MacroInvocation;
    }
    if name == "attribute" {
        return CaptureMeaning::Attribute;
    }
    if name.starts_with("definition.") {
        return CaptureMeaning::Item;
    }
    let (role, kind) = if let Some(kind) = name.strip_prefix("name.definition.") {
        (Role::Definition, kind)
    } else if let Some(kind) = name.strip_prefix("name.reference.") {
        (Role::Reference, kind)
    } else {
        return CaptureMeaning::Ignored;
    };
    let kind = match kind {
        "function" => QueryKind::Function,
        "path" => QueryKind::Path,
        "struct" => QueryKind::Exact(TagKind::Struct),
        "enum" => QueryKind::Exact(TagKind::Enum),
        "union" => QueryKind::Exact(TagKind::Union),
        "trait" => QueryKind::Exact(TagKind::Trait),
        "impl" => QueryKind::Exact(TagKind::Impl),
        "module" => QueryKind::Exact(TagKind::Module),
        "const" => QueryKind::Exact(TagKind::Const),
        "static" => QueryKind::Exact(TagKind::Static),
        "class" => QueryKind::Exact(TagKind::Class),
        "type_alias" => QueryKind::Exact(TagKind::TypeAlias),
        "macro" => QueryKind::Exact(TagKind::Macro),
        "constant" => QueryKind::Exact(TagKind::Constant),
        "call" => QueryKind::Exact(TagKind::Call),
        "type_ref" => QueryKind::Exact(TagKind::TypeRef),
        "module_ref" => QueryKind::Exact(TagKind::ModuleRef),
        "import" => QueryKind::Exact(TagKind::Import),
        "macro_call" => QueryKind::Exact(TagKind::MacroCall),
        _ => return CaptureMeaning::Ignored,
    };
    CaptureMeaning::Name { role, kind }
}

/// The outcome for one file: tags (if it was indexed) and at most one note.
#[derive(Debug, Clone, Default)]
pub struct Extracted {
    pub tags: Option<Vec<Tag>>,
    pub note: Option<Note>,
}

/// Checks, parses and tags one file. Never panics on bad input.
pub fn extract_file(path: &str, contents: &[u8]) -> Extracted {
    let note = |reason| Some(Note { path: path.to_string(), reason });
    let Some(language) = Language::from_path(path) else {
        return Extracted { tags: None, note: note(NoteReason::UnsupportedLanguage) };
    };
    if contents.len() > MAX_FILE_BYTES {
        return Extracted { tags: None, note: note(NoteReason::TooLarge { bytes: contents.len() as u64 }) };
    }
    if contents.contains(&0) {
        return Extracted { tags: None, note: note(NoteReason::Binary) };
    }
    let Ok(source) = std::str::from_utf8(contents) else {
        return Extracted { tags: None, note: note(NoteReason::NotUtf8) };
    };
    match extract_tags(language, path, source) {
        Ok((tags, first_error_line)) => Extracted {
            tags: Some(tags),
            note: first_error_line.and_then(|line| note(NoteReason::SyntaxErrors { first_error_line: line })),
        },
        Err(error) => Extracted { tags: None, note: note(NoteReason::Unreadable { error }) },
    }
}

/// Routes tree-sitter's own allocations to mimalloc. A parse allocates and
/// frees hundreds of thousands of small nodes, and glibc's malloc made that
/// ~10% of a cold repo map (plus arena growth in the kernel); mimalloc halves
/// it. Whatever the binary's global allocator is, tree-sitter's blocks are
/// then allocated and freed by one allocator.
///
/// Invariant: runs before tree-sitter allocates anything in this process, so
/// no block is ever freed by an allocator other than the one that made it.
/// Hence all parsers come from [`new_parser`] and queries need
/// [`Language::grammar`], which both call this first.
fn use_mimalloc_for_tree_sitter() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: the four functions are one allocator's malloc, calloc,
        // realloc and free with C signatures, and (see the invariant above)
        // nothing tree-sitter allocated before this call exists.
        unsafe {
            tree_sitter::set_allocator(Some(tree_sitter::Allocator {
                malloc: libmimalloc_sys::mi_malloc,
                calloc: libmimalloc_sys::mi_calloc,
                realloc: libmimalloc_sys::mi_realloc,
                free: libmimalloc_sys::mi_free,
            }))
        }
    });
}

/// A parser for `language`; the only way a parser is created (the LSP server
/// keeps per-document trees with parsers from here too).
pub fn new_parser(language: Language) -> Result<Parser, String> {
    use_mimalloc_for_tree_sitter();
    let mut parser = Parser::new();
    parser
        .set_language(&language.grammar())
        .map_err(|error| format!("cannot load the {language:?} grammar: {error}"))?;
    Ok(parser)
}

thread_local! {
    /// One parser per language per thread: parsers are not `Sync` and cheap
    /// to keep, expensive enough not to create per file.
    static PARSERS: RefCell<Vec<(Language, Parser)>> = const { RefCell::new(Vec::new()) };
}

fn parse(language: Language, source: &str) -> Result<Tree, String> {
    PARSERS.with(|parsers| {
        let mut parsers = parsers.borrow_mut();
        let position = match parsers.iter().position(|(lang, _)| *lang == language) {
            Some(position) => position,
            None => {
                parsers.push((language, new_parser(language)?));
                parsers.len() - 1
            }
        };
        parsers[position].1.parse(source, None).ok_or_else(|| "the parser gave up".to_string())
    })
}

/// One shared allocation per distinct identifier of a file.
#[derive(Default)]
pub(crate) struct NameInterner<'s> {
    names: FxHashMap<&'s str, Arc<str>>,
}

impl<'s> NameInterner<'s> {
    pub(crate) fn intern(&mut self, name: &'s str) -> Arc<str> {
        self.names.entry(name).or_insert_with(|| Arc::from(name)).clone()
    }
}

/// A tag plus the position of its identifier, used to order and de-duplicate.
struct Found {
    name_start: usize,
    priority: u8,
    /// Position among the query's matches.
    match_order: usize,
    tag: Tag,
}

/// Bumped whenever the same bytes would now give other tags (the tag cache
/// hashes it, so cached tags from older rules are re-extracted).
/// 1: lone `\r` line ends.
pub const EXTRACTION_REVISION: u32 = 1;

/// tree-sitter counts rows on `\n` only, so in a file with old Mac line ends
/// (`\r` alone) every tag was on line 0 and all but one were dropped as
/// duplicates. A lone `\r` becomes `\n`: one byte for one byte, so byte
/// ranges stay valid, and rows then match LSP's line count (`\r` ends a line).
fn lone_carriage_returns_as_newlines(source: &str) -> Option<String> {
    let bytes = source.as_bytes();
    let lone = |i: usize| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
    if !source.contains('\r') || !(0..bytes.len()).any(lone) {
        return None;
    }
    let mut out = bytes.to_vec();
    for (i, byte) in out.iter_mut().enumerate() {
        if *byte == b'\r' && bytes.get(i + 1) != Some(&b'\n') {
            *byte = b'\n';
        }
    }
    // Only ASCII bytes changed, so the text is still UTF-8.
    String::from_utf8(out).ok()
}

/// Tags of one parsed source text, in source order, and the 0-based line of
/// the first syntax error if any. `Err` only if the grammar/query is broken.
pub fn extract_tags(language: Language, path: &str, source: &str) -> Result<(Vec<Tag>, Option<u32>), String> {
    let normalised;
    let source = match lone_carriage_returns_as_newlines(source) {
        Some(text) => {
            normalised = text;
            normalised.as_str()
        }
        None => source,
    };
    // Parse before taking the query: the first caller compiles it (tens of
    // ms), and meanwhile the other workers get their first parse done.
    let tree = parse(language, source)?;
    let compiled = language.query()?;
    let root = tree.root_node();
    let first_error_line = if root.has_error() { first_error_line(root) } else { None };

    let mut collector = TagCollector::new(language, source, Arc::from(path), root);
    let mut cursor = QueryCursor::new();
    let mut matches = cursor.matches(&compiled.query, root, source.as_bytes());
    while let Some(query_match) = matches.next() {
        collector.add_match(compiled, query_match);
    }
    collector.add_macro_items();
    Ok((collector.finish(), first_error_line))
}

/// The state of tagging one file: the tags found so far and what the query
/// marked for the passes after the matches (macro calls, attributes).
struct TagCollector<'t, 's> {
    language: Language,
    source: &'s str,
    path: Arc<str>,
    root: Node<'t>,
    found: Vec<Found>,
    names: NameInterner<'s>,
    /// Scratch: the current item's ancestors, root first.
    ancestors: Vec<Node<'t>>,
    siblings: Siblings<'t>,
    macro_invocations: Vec<Node<'t>>,
    /// Function bodies and `macro_rules!` templates: macro calls there hold
    /// no items of the file's API.
    no_item_ranges: Vec<Range<usize>>,
    /// Attributes: names there are not references.
    attribute_ranges: Vec<Range<usize>>,
}

impl<'t, 's> TagCollector<'t, 's> {
    fn new(language: Language, source: &'s str, path: Arc<str>, root: Node<'t>) -> Self {
        TagCollector {
            language,
            source,
            path,
            root,
            found: Vec::new(),
            names: NameInterner::default(),
            ancestors: Vec::new(),
            siblings: Siblings::default(),
            macro_invocations: Vec::new(),
            no_item_ranges: Vec::new(),
            attribute_ranges: Vec::new(),
        }
    }

    /// One query match: at most one tag (imports add theirs directly).
    fn add_match(&mut self, compiled: &CompiledQuery, query_match: &QueryMatch<'_, 't>) {
        let mut name: Option<(Node<'t>, Role, QueryKind)> = None;
        let mut item: Option<Node<'t>> = None;
        for capture in query_match.captures() {
            match compiled.captures.get(capture.index as usize) {
                Some(CaptureMeaning::Name { role, kind }) => name = Some((capture.node, *role, *kind)),
                Some(CaptureMeaning::Item) => item = Some(capture.node),
                Some(CaptureMeaning::ImportContainer) => {
                    collect_imports(capture.node, self.source, &self.path, &mut self.names, &mut self.found)
                }
                Some(CaptureMeaning::MacroInvocation) => self.macro_invocations.push(capture.node),
                Some(CaptureMeaning::Attribute) => self.attribute_ranges.push(capture.node.byte_range()),
                Some(CaptureMeaning::Ignored) | None => {}
            }
        }
        let Some((name_node, role, kind)) = name else {
            return;
        };
        let Some(text) = node_text(name_node, self.source) else {
            return;
        };
        if is_keyword_like(text) {
            return;
        }
        // The item's ancestors (root first), filled only when needed and at
        // most once per match: `Node::parent` descends from the root on every
        // call, so walking up node by node would cost O(depth²).
        let item_node = item.unwrap_or(name_node);
        // Function kinds fill `ancestors` (to tell methods apart).
        let ancestors_filled = kind == QueryKind::Function;
        let kind = self.resolve_kind(kind, text, item_node);
        let tag = match (role, item) {
            (Role::Definition, Some(item_node)) => {
                if matches!(kind, TagKind::Function | TagKind::Method | TagKind::Macro) {
                    self.no_item_ranges.push(item_node.byte_range());
                }
                if !ancestors_filled {
                    ancestors_of(self.root, item_node, &mut self.ancestors);
                }
                if inside_function_body(self.language, &self.ancestors) {
                    // Locals (nested functions, classes in functions) are not API.
                    return;
                }
                self.definition(text, kind, name_node, item_node)
            }
            _ => Tag {
                path: self.path.clone(),
                name: self.names.intern(text),
                kind,
                role,
                line: name_node.start_position().row as u32,
                byte_range: name_node.byte_range(),
                details: None,
            },
        };
        self.found.push(Found {
            match_order: self.found.len(),
            name_start: name_node.start_byte(),
            priority: priority(tag.role, tag.kind),
            tag,
        });
    }

    /// The tag kind of a match whose query kind depends on context: a path
    /// segment's case, a function's enclosing item.
    fn resolve_kind(&mut self, kind: QueryKind, text: &str, item_node: Node<'t>) -> TagKind {
        match kind {
            QueryKind::Exact(kind) => kind,
            QueryKind::Path => {
                if text.starts_with(|c: char| c.is_ascii_uppercase()) {
                    TagKind::TypeRef
                } else {
                    TagKind::ModuleRef
                }
            }
            QueryKind::Function => {
                ancestors_of(self.root, item_node, &mut self.ancestors);
                if is_method(self.language, &self.ancestors) {
                    TagKind::Method
                } else {
                    TagKind::Function
                }
            }
        }
    }

    /// A definition tag with its signature, doc and scope; `ancestors` hold
    /// the item's.
    fn definition(&mut self, text: &'s str, kind: TagKind, name_node: Node<'t>, item_node: Node<'t>) -> Tag {
        let (language, source) = (self.language, self.source);
        let doc = match language {
            Language::Rust => rust_doc(item_node, self.ancestors.last().copied(), &mut self.siblings, source),
            Language::Python => python_docstring(item_node, source),
        };
        Tag {
            path: self.path.clone(),
            name: self.names.intern(text),
            kind,
            role: Role::Definition,
            line: name_node.start_position().row as u32,
            byte_range: item_node.byte_range(),
            details: TagDetails::boxed(
                signature(language, kind, item_node, source),
                doc,
                scope(language, &self.ancestors, source),
            ),
        }
    }

    /// Items among the tokens of macro calls outside function bodies.
    fn add_macro_items(&mut self) {
        let no_item_ranges = merge_ranges(std::mem::take(&mut self.no_item_ranges));
        let context = MacroItemContext { source: self.source, path: &self.path };
        for &invocation in &self.macro_invocations {
            if within_any(&no_item_ranges, invocation.start_byte()) {
                continue;
            }
            ancestors_of(self.root, invocation, &mut self.ancestors);
            let scope = scope(self.language, &self.ancestors, self.source);
            collect_macro_items(&context, invocation, scope.as_deref(), &mut self.names, &mut self.found);
        }
    }

    /// The tags in source order: references inside attributes dropped, one
    /// tag per identifier position.
    fn finish(self) -> Vec<Tag> {
        let mut found = self.found;
        let attribute_ranges = merge_ranges(self.attribute_ranges);
        if !attribute_ranges.is_empty() {
            found
                .retain(|found| found.tag.role == Role::Definition || !within_any(&attribute_ranges, found.name_start));
        }
        // Order by identifier position; at one position keep the most specific
        // tag (definitions beat references; imports beat calls beat types...).
        // In place (a stable sort would allocate a scratch copy per file); the
        // match order breaks the remaining ties, as a stable sort would.
        found.sort_unstable_by(|a, b| {
            a.name_start
                .cmp(&b.name_start)
                .then(a.priority.cmp(&b.priority))
                .then_with(|| a.tag.name.cmp(&b.tag.name))
                .then(a.match_order.cmp(&b.match_order))
        });
        found.dedup_by(|later, earlier| later.name_start == earlier.name_start);
        found.into_iter().map(|found| found.tag).collect()
    }
}

fn priority(role: Role, kind: TagKind) -> u8 {
    match (role, kind) {
        (Role::Definition, _) => 0,
        (Role::Reference, TagKind::Import) => 1,
        (Role::Reference, TagKind::Call) => 2,
        (Role::Reference, TagKind::MacroCall) => 3,
        (Role::Reference, TagKind::TypeRef) => 4,
        (Role::Reference, _) => 5,
    }
}

/// Names that are syntax rather than user identifiers.
fn is_keyword_like(name: &str) -> bool {
    matches!(name, "self" | "Self" | "super" | "crate" | "cls" | "_") || name.is_empty()
}

fn node_text<'a>(node: Node, source: &'a str) -> Option<&'a str> {
    source.get(node.byte_range())
}

fn first_error_line(root: Node) -> Option<u32> {
    let mut first = None;
    crate::syntax::visit_error_nodes(root, |node| {
        first = Some(node.start_position().row as u32);
        false
    });
    // `has_error` without a visible ERROR/MISSING node: point at the start.
    first.or(Some(root.start_position().row as u32))
}

/// Adds one import reference per identifier inside a `use`/`import` node.
fn collect_imports<'s>(
    container: Node,
    source: &'s str,
    path: &Arc<str>,
    names: &mut NameInterner<'s>,
    found: &mut Vec<Found>,
) {
    let mut stack = vec![container];
    while let Some(node) = stack.pop() {
        let kind = node.kind();
        if kind == "identifier" || kind == "type_identifier" {
            if let Some(text) = node_text(node, source) {
                if !is_keyword_like(text) {
                    found.push(Found {
                        match_order: found.len(),
                        name_start: node.start_byte(),
                        priority: priority(Role::Reference, TagKind::Import),
                        tag: Tag {
                            path: path.clone(),
                            name: names.intern(text),
                            kind: TagKind::Import,
                            role: Role::Reference,
                            line: node.start_position().row as u32,
                            byte_range: node.byte_range(),
                            details: None,
                        },
                    });
                }
            }
            continue;
        }
        let mut cursor = node.walk();
        for (index, child) in node.children(&mut cursor).enumerate() {
            // `import x as y` / `use a as b`: the alias is a local name, not an import.
            let field = node.field_name_for_child(index as u32);
            if field == Some("alias") {
                continue;
            }
            stack.push(child);
        }
    }
}

/// Fills `ancestors` with the ancestors of `item`, root first, parent last
/// (empty for the root itself): the nodes `Node::parent` would visit, found
/// in one descent from the root instead of one descent per step.
fn ancestors_of<'t>(root: Node<'t>, item: Node<'t>, ancestors: &mut Vec<Node<'t>>) {
    ancestors.clear();
    if root.id() == item.id() {
        return;
    }
    let mut node = root;
    loop {
        ancestors.push(node);
        match node.child_with_descendant(item) {
            Some(next) if next.id() != item.id() => node = next,
            _ => break,
        }
    }
}

/// Whether a function item is a method; `ancestors` are the item's (root
/// first).
fn is_method(language: Language, ancestors: &[Node]) -> bool {
    let mut up = ancestors.iter().rev();
    match language {
        Language::Rust => {
            // function_item -> declaration_list -> impl_item / trait_item
            up.next()
                .filter(|parent| parent.kind() == "declaration_list")
                .and_then(|_| up.next())
                .is_some_and(|owner| matches!(owner.kind(), "impl_item" | "trait_item"))
        }
        Language::Python => {
            // function_definition [-> decorated_definition] -> block -> class_definition
            let mut parent = up.next();
            if parent.is_some_and(|p| p.kind() == "decorated_definition") {
                parent = up.next();
            }
            parent
                .filter(|p| p.kind() == "block")
                .and_then(|_| up.next())
                .is_some_and(|owner| owner.kind() == "class_definition")
        }
    }
}

fn inside_function_body(language: Language, ancestors: &[Node]) -> bool {
    let function_kind = match language {
        Language::Rust => "function_item",
        Language::Python => "function_definition",
    };
    ancestors.iter().any(|node| node.kind() == function_kind)
}

/// Most lines of a signature kept (long parameter lists are cut).
const MAX_SIGNATURE_LINES: usize = 8;
/// Most bytes of a one-line signature of a value item (const, assignment).
const MAX_VALUE_SIGNATURE_BYTES: usize = 160;

/// The whitespace before `start` on its line, or "" if code precedes it.
fn indent_before(source: &str, start: usize) -> &str {
    let line_start = source[..start].rfind('\n').map_or(0, |newline| newline + 1);
    let indent = &source[line_start..start];
    if indent.chars().all(|c| c == ' ' || c == '\t') {
        indent
    } else {
        ""
    }
}

/// An item header (the text before its body), cut to MAX_SIGNATURE_LINES.
fn clip_header(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() > MAX_SIGNATURE_LINES {
        let mut cut = lines[..MAX_SIGNATURE_LINES].join("\n");
        cut.push_str(" …");
        cut
    } else {
        text.to_string()
    }
}

/// A body-less item (`const X: T = value;`): its first line, capped.
fn clip_value_line(text: &str) -> String {
    let first_line = text.lines().next().unwrap_or("");
    let mut line = truncate_at_char_boundary(first_line, MAX_VALUE_SIGNATURE_BYTES).to_string();
    if line.len() < text.len() {
        line.push_str(" …");
    }
    line
}

/// The item's header without its body, with the original indentation of its
/// first line so rendered maps keep the nesting visible.
fn signature(language: Language, kind: TagKind, item: Node, source: &str) -> Option<String> {
    let start = item.start_byte();
    let indent = indent_before(source, start);

    let header = if kind == TagKind::Macro && language == Language::Rust {
        let name = item.child_by_field_name("name").and_then(|name| node_text(name, source))?;
        format!("macro_rules! {name}")
    } else if let Some(body) = item.child_by_field_name("body") {
        clip_header(source.get(start..body.start_byte())?.trim_end())
    } else {
        let text = node_text(item, source)?.trim_end();
        let multi_line_fn = matches!(kind, TagKind::Function | TagKind::Method) && text.contains('\n');
        if multi_line_fn {
            // A body-less fn signature (trait method) may wrap its parameters.
            text.lines().take(MAX_SIGNATURE_LINES).collect::<Vec<_>>().join("\n")
        } else {
            clip_value_line(text)
        }
    };
    Some(format!("{indent}{header}"))
}

/// The union of `ranges` as sorted, disjoint ranges.
fn merge_ranges(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_unstable_by_key(|range| range.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

/// Whether `at` lies in one of `ranges` (sorted and disjoint, as from
/// [`merge_ranges`]).
fn within_any(ranges: &[Range<usize>], at: usize) -> bool {
    let after = ranges.partition_point(|range| range.start <= at);
    after > 0 && at < ranges[after - 1].end
}

/// The outer doc comment (`///`, `/** */`) directly above an item, given
/// the item's preceding siblings. Attributes in between are skipped, parsed
/// ones (`attribute_item`) and those among macro tokens (`#` then `[…]`).
fn outer_doc_above(before: &[Node], source: &str) -> Option<Vec<String>> {
    // Comment blocks nearest first; put back in source order at the end.
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut index = before.len();
    while index > 0 {
        let node = before[index - 1];
        match node.kind() {
            "attribute_item" => index -= 1,
            "line_comment" | "block_comment" => {
                let Some(doc) = outer_doc_text(node_text(node, source)?.trim_end()) else {
                    break;
                };
                blocks.push(doc);
                index -= 1;
            }
            "token_tree"
                if index >= 2
                    && before[index - 2].kind() == "#"
                    && node_text(node, source).is_some_and(|text| text.starts_with('[')) =>
            {
                index -= 2;
            }
            _ => break,
        }
    }
    Some(blocks.into_iter().rev().flatten().collect())
}

fn truncate_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The children of each parent that asked, listed once: items of one
/// parent each need their preceding siblings, and `Node::prev_sibling` (or a
/// scan from the first child) per item costs O(siblings²) in a long module.
#[derive(Default)]
struct Siblings<'t> {
    children_of: FxHashMap<usize, Vec<Node<'t>>>,
}

impl<'t> Siblings<'t> {
    /// The children of `parent` that come before `item`, nearest last;
    /// empty if `item` is not a child of `parent`.
    fn before(&mut self, parent: Node<'t>, item: Node<'t>) -> &[Node<'t>] {
        let children = self.children_of.entry(parent.id()).or_insert_with(|| {
            let mut cursor = parent.walk();
            parent.children(&mut cursor).collect()
        });
        // Children are in source order and do not overlap.
        let start = item.start_byte();
        let position = children.partition_point(|child| child.start_byte() < start);
        match children[position..].iter().position(|child| child.id() == item.id()) {
            Some(offset) => &children[..position + offset],
            None => &[],
        }
    }
}

/// Outer doc comments (`///`, `/** */`) right above the item (attributes in
/// between are skipped), or inner `//!` docs at the top of a `mod { }` body.
fn rust_doc<'t>(item: Node<'t>, parent: Option<Node<'t>>, siblings: &mut Siblings<'t>, source: &str) -> Option<String> {
    let before = match parent {
        Some(parent) => siblings.before(parent, item),
        None => &[],
    };
    let mut lines = outer_doc_above(before, source)?;
    if lines.is_empty() && item.kind() == "mod_item" {
        if let Some(body) = item.child_by_field_name("body") {
            let mut cursor = body.walk();
            for child in body.named_children(&mut cursor) {
                if child.kind() != "line_comment" && child.kind() != "block_comment" {
                    break;
                }
                let text = node_text(child, source)?.trim_end();
                if let Some(rest) = text.strip_prefix("//!") {
                    lines.push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
                } else if let Some(rest) = text.strip_prefix("/*!").and_then(|r| r.strip_suffix("*/")) {
                    lines.extend(clean_block_doc(rest));
                }
            }
        }
    }
    finish_doc(lines)
}

/// The lines of an outer doc comment, or `None` if `text` is a plain comment.
fn outer_doc_text(text: &str) -> Option<Vec<String>> {
    if let Some(rest) = text.strip_prefix("///") {
        if rest.starts_with('/') {
            return None; // `////` is a plain comment
        }
        return Some(vec![rest.strip_prefix(' ').unwrap_or(rest).to_string()]);
    }
    if let Some(rest) = text.strip_prefix("/**") {
        if rest.starts_with('*') || rest == "/" {
            return None; // `/***` and `/**/` are plain comments
        }
        let rest = rest.strip_suffix("*/").unwrap_or(rest);
        return Some(clean_block_doc(rest));
    }
    None
}

fn clean_block_doc(body: &str) -> Vec<String> {
    body.lines()
        .map(|line| {
            let line = line.trim();
            let line = line.strip_prefix('*').unwrap_or(line);
            line.strip_prefix(' ').unwrap_or(line).to_string()
        })
        .collect()
}

fn finish_doc(lines: Vec<String>) -> Option<String> {
    let start = lines.iter().position(|line| !line.trim().is_empty())?;
    let end = lines.iter().rposition(|line| !line.trim().is_empty())?;
    Some(lines[start..=end].join("\n"))
}

/// The docstring of a Python class or function: the first statement of its
/// body if it is a string literal. Cleaned like `inspect.cleandoc`.
fn python_docstring(item: Node, source: &str) -> Option<String> {
    let body = item.child_by_field_name("body")?;
    let mut cursor = body.walk();
    let first = body.named_children(&mut cursor).find(|child| child.kind() != "comment")?;
    if first.kind() != "expression_statement" {
        return None;
    }
    let string = first.named_child(0).filter(|node| node.kind() == "string")?;
    let raw = node_text(string, source)?;
    let unprefixed = raw.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let inner = ["\"\"\"", "'''", "\"", "'"]
        .iter()
        .find_map(|quote| unprefixed.strip_prefix(quote).and_then(|rest| rest.strip_suffix(quote)))?;
    Some(clean_docstring(inner)).filter(|doc| !doc.is_empty())
}

fn clean_docstring(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = lines
        .iter()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    let cleaned: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            if index == 0 {
                line.trim().to_string()
            } else {
                line.get(indent..).unwrap_or(line.trim_start()).trim_end().to_string()
            }
        })
        .collect();
    finish_doc(cleaned).unwrap_or_default()
}

/// The nearest enclosing named item: impl type / trait / mod for Rust, class
/// or function for Python.
/// `ancestors` are the item's, root first.
fn scope(language: Language, ancestors: &[Node], source: &str) -> Option<String> {
    for current in ancestors.iter().rev() {
        let name = match (language, current.kind()) {
            (Language::Rust, "impl_item") => {
                current.child_by_field_name("type").and_then(|ty| base_type_name(ty, source))
            }
            (Language::Rust, "trait_item" | "mod_item") => {
                current.child_by_field_name("name").and_then(|name| node_text(name, source))
            }
            (Language::Python, "class_definition" | "function_definition") => {
                current.child_by_field_name("name").and_then(|name| node_text(name, source))
            }
            _ => None,
        };
        if let Some(name) = name {
            return Some(name.to_string());
        }
    }
    None
}

/// `Foo` for `Foo`, `Foo<T>`, `a::Foo`, `&Foo`.
fn base_type_name<'a>(ty: Node, source: &'a str) -> Option<&'a str> {
    match ty.kind() {
        "type_identifier" => node_text(ty, source),
        "generic_type" => ty.child_by_field_name("type").and_then(|inner| base_type_name(inner, source)),
        "scoped_type_identifier" => ty.child_by_field_name("name").and_then(|inner| node_text(inner, source)),
        "reference_type" => ty.child_by_field_name("type").and_then(|inner| base_type_name(inner, source)),
        _ => node_text(ty, source),
    }
}
