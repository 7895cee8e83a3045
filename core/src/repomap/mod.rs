//! Tree-sitter repo map: tags (definitions and references) for Rust and
//! Python files, ranked with personalised PageRank and rendered within a strict
//! token budget.
//!
//! Layers (pure core first, I/O at the edge):
//! - [`extract`]: one file's bytes -> [`Tag`]s (tree-sitter, queries from
//!   `queries/<lang>/tags.scm` compiled once per language).
//! - [`RepoMap`]: the in-memory index (pure, no I/O). [`RepoMap::build`] parses
//!   in parallel with rayon; [`RepoMap::update_file`] / [`RepoMap::remove_file`]
//!   keep it current one file at a time.
//! - `rank` / `render`: personalised PageRank over the file graph and the
//!   token-budgeted text rendering ([`RepoMap::render`]).
//! - [`index`]: the filesystem edge: walking a workspace (gitignore-aware) and
//!   the on-disk tag cache keyed by content hash.
//!
//! Invariant: everything here is deterministic. The same files (in any order)
//! and the same [`MapRequest`] give byte-identical [`RenderedMap`]s: all maps
//! are ordered (`BTreeMap`) and every sort has a total tie-break.

pub mod extract;
pub mod index;
mod rank;
mod render;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use extract::Language;
pub use index::{default_cache_dir, load_or_build, walk, IndexError, IndexOptions, IndexStats, Progress, RepoIndex, WalkResult};

/// Files larger than this are not parsed (a [`NoteReason::TooLarge`] note is
/// emitted instead): generated or vendored blobs that would only add noise.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// One source file handed to the repo map. No I/O happens in the map itself;
/// the caller (CLI walker, LSP document store) supplies the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Workspace-relative path with `/` separators, e.g. `src/lib.rs`.
    pub path: String,
    /// Raw file contents (may be invalid UTF-8 or binary: that yields a note).
    pub contents: Arc<[u8]>,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, contents: impl Into<Arc<[u8]>>) -> Self {
        SourceFile { path: path.into(), contents: contents.into() }
    }
}

/// Whether a tag defines a name or uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Definition,
    Reference,
}

/// What kind of item a tag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagKind {
    // Definitions.
    /// Free function (Rust `fn` outside impl/trait, Python `def` outside class).
    Function,
    /// Function inside a Rust `impl`/`trait` or a Python `class`.
    Method,
    Struct,
    Enum,
    Union,
    Trait,
    /// A Rust `impl` block; its name is the implementing type.
    Impl,
    /// Rust `mod` item.
    Module,
    /// Rust `const` item.
    Const,
    /// Rust `static` item.
    Static,
    /// Python class.
    Class,
    /// Rust `type X = ...;`, Python `type X = ...`.
    TypeAlias,
    /// Rust `macro_rules!` definition.
    Macro,
    /// Python module-level assignment (`NAME = ...`).
    Constant,
    // References.
    /// Function or method call, including the last segment of a scoped call
    /// (`new` in `Type::new()`).
    Call,
    /// A type used in a signature, expression, impl header or superclass list.
    TypeRef,
    /// A path qualifier that is not a type (`fs` in `fs::read()`).
    ModuleRef,
    /// A name brought in by `use`, `import` or `from .. import`.
    Import,
    /// A macro invocation (`vec!`, `my_macro!`).
    MacroCall,
}

impl TagKind {
    /// Short lower-case label (same as the JSON spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            TagKind::Function => "function",
            TagKind::Method => "method",
            TagKind::Struct => "struct",
            TagKind::Enum => "enum",
            TagKind::Union => "union",
            TagKind::Trait => "trait",
            TagKind::Impl => "impl",
            TagKind::Module => "module",
            TagKind::Const => "const",
            TagKind::Static => "static",
            TagKind::Class => "class",
            TagKind::TypeAlias => "type_alias",
            TagKind::Macro => "macro",
            TagKind::Constant => "constant",
            TagKind::Call => "call",
            TagKind::TypeRef => "type_ref",
            TagKind::ModuleRef => "module_ref",
            TagKind::Import => "import",
            TagKind::MacroCall => "macro_call",
        }
    }
}

/// One definition or reference found in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// Workspace-relative path of the file (shared by all tags of a file).
    /// Not stored in the on-disk cache (the cache is keyed by path).
    #[serde(skip)]
    pub path: Arc<str>,
    /// The identifier, e.g. `load_or_build`.
    pub name: String,
    pub kind: TagKind,
    pub role: Role,
    /// 0-based line of the identifier.
    pub line: u32,
    /// Definitions: the whole item including its body and doc comment-free
    /// header (so a caller can slice a snippet). References: the identifier.
    pub byte_range: Range<usize>,
    /// Definitions: the item's header without its body, e.g.
    /// `pub fn load(path: &Path) -> Result<Self>` or `def area(self) -> float:`.
    pub signature: Option<String>,
    /// Definitions: doc comment (`///`, `/** */`, inner `//!` of a `mod`) or
    /// Python docstring, markers stripped and dedented.
    pub doc: Option<String>,
    /// Enclosing item: the impl type / trait for Rust methods, the class (or
    /// enclosing function) for Python, the module for items in a `mod` block.
    pub scope: Option<String>,
}

/// A file the map skipped or only partly understood.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Note {
    pub path: String,
    pub reason: NoteReason,
}

/// Why a [`Note`] was emitted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteReason {
    /// Contains NUL bytes: not indexed.
    Binary,
    /// Not valid UTF-8: not indexed.
    NotUtf8,
    /// Larger than [`MAX_FILE_BYTES`]: not indexed.
    TooLarge { bytes: u64 },
    /// Could not be read (permissions, vanished): not indexed.
    Unreadable { error: String },
    /// Parsed with syntax errors; still indexed (tree-sitter recovers), the
    /// tags around the error may be missing.
    SyntaxErrors { first_error_line: u32 },
    /// Not a supported language (only `.rs` and `.py` are indexed).
    UnsupportedLanguage,
}

impl std::fmt::Display for NoteReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoteReason::Binary => write!(f, "binary file, skipped"),
            NoteReason::NotUtf8 => write!(f, "not UTF-8, skipped"),
            NoteReason::TooLarge { bytes } => {
                write!(f, "too large ({bytes} bytes > {MAX_FILE_BYTES}), skipped")
            }
            NoteReason::Unreadable { error } => write!(f, "unreadable ({error}), skipped"),
            NoteReason::SyntaxErrors { first_error_line } => {
                write!(f, "syntax errors from line {}, indexed what parsed", first_error_line + 1)
            }
            NoteReason::UnsupportedLanguage => write!(f, "unsupported language, skipped"),
        }
    }
}

/// What to rank and how much to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapRequest {
    /// Files the user is working on (e.g. open in the editor / in the chat).
    /// They personalise the ranking and, unless `include_focus_files`, are
    /// left out of the rendered map (the caller already has their text).
    pub focus_files: Vec<String>,
    /// Identifiers mentioned by the user; their definitions rank higher.
    pub mentioned_idents: Vec<String>,
    /// Hard limit on [`crate::tokens::count`] of the rendered text.
    pub token_budget: usize,
    /// Show definitions from focus files too (default: leave them out).
    pub include_focus_files: bool,
}

/// One file's share of a rendered map.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedFile {
    pub path: String,
    /// The file's personalised PageRank (sums to 1 over all files).
    pub rank: f64,
    /// The definitions shown for this file, in line order, with their scores.
    pub tags: Vec<RankedTag>,
}

/// A shown definition and the score it was chosen by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedTag {
    pub tag: Tag,
    pub score: f64,
}

/// A rendered map: the text and what went into it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedMap {
    /// aider-style text: `path:` headers, `⋮` gaps, `│`-prefixed signatures.
    pub text: String,
    /// `tokens::count(&text)`; never above the request's budget.
    pub tokens: usize,
    /// Files in the order shown (highest-ranked first).
    pub files: Vec<RankedFile>,
}

/// Per-file state kept by the map.
#[derive(Debug, Clone, Default)]
struct FileEntry {
    tags: Vec<Tag>,
}

/// How often an identifier is defined / referenced, per file.
#[derive(Debug, Clone, Default)]
struct IdentEntry {
    /// path -> number of definitions of this ident in that file.
    definers: BTreeMap<Arc<str>, u32>,
    /// path -> number of references to this ident from that file.
    referencers: BTreeMap<Arc<str>, u32>,
}

/// The in-memory tag index of a workspace. Pure: no I/O.
///
/// Invariant: `idents` is exactly the aggregation of all `files[*].tags`
/// (maintained by `insert_tags` / `remove_file`).
#[derive(Debug, Clone, Default)]
pub struct RepoMap {
    files: BTreeMap<Arc<str>, FileEntry>,
    idents: BTreeMap<String, IdentEntry>,
}

impl RepoMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses all files in parallel (rayon) and indexes their tags.
    ///
    /// Files of unsupported languages, binary, non-UTF-8 or too-large files
    /// are skipped with a [`Note`]; files with syntax errors are indexed and
    /// noted. Never panics on bad input. The order of `files` does not matter.
    pub fn build(files: Vec<SourceFile>) -> (RepoMap, Vec<Note>) {
        let extracted: Vec<(String, extract::Extracted)> = files
            .into_par_iter()
            .map(|file| {
                let result = extract::extract_file(&file.path, &file.contents);
                (file.path, result)
            })
            .collect();
        let mut map = RepoMap::new();
        let mut notes = Vec::new();
        for (path, result) in extracted {
            notes.extend(result.note);
            if let Some(tags) = result.tags {
                map.insert_tags(&path, tags);
            }
        }
        notes.sort();
        (map, notes)
    }

    /// Builds a map from tags extracted earlier (e.g. from the on-disk cache).
    /// `tags` need not have `path` filled in: it is set from the key.
    pub fn from_tags(files: impl IntoIterator<Item = (String, Vec<Tag>)>) -> RepoMap {
        let mut map = RepoMap::new();
        for (path, tags) in files {
            map.insert_tags(&path, tags);
        }
        map
    }

    /// Re-parses one file and replaces its tags (incremental update). A file
    /// that is now skipped (binary, too large...) is removed from the map.
    pub fn update_file(&mut self, file: SourceFile) -> Vec<Note> {
        let result = extract::extract_file(&file.path, &file.contents);
        self.remove_file(&file.path);
        if let Some(tags) = result.tags {
            self.insert_tags(&file.path, tags);
        }
        result.note.into_iter().collect()
    }

    /// Replaces one file's tags with already-extracted ones.
    pub fn set_file_tags(&mut self, path: &str, tags: Vec<Tag>) {
        self.remove_file(path);
        self.insert_tags(path, tags);
    }

    /// Drops a file and all its tags. Unknown paths are ignored.
    pub fn remove_file(&mut self, path: &str) {
        let Some((key, entry)) = self.files.remove_entry(path) else { return };
        for tag in &entry.tags {
            let Some(ident) = self.idents.get_mut(tag.name.as_str()) else { continue };
            let per_file = match tag.role {
                Role::Definition => &mut ident.definers,
                Role::Reference => &mut ident.referencers,
            };
            per_file.remove(&key);
            if ident.definers.is_empty() && ident.referencers.is_empty() {
                self.idents.remove(tag.name.as_str());
            }
        }
    }

    fn insert_tags(&mut self, path: &str, mut tags: Vec<Tag>) {
        self.remove_file(path);
        let key: Arc<str> = Arc::from(path);
        for tag in &mut tags {
            tag.path = key.clone();
        }
        // Count per (name, role) first so the shared index is touched once
        // per distinct name, not once per tag (a big win on warm loads).
        let mut counts: Vec<(&str, Role)> = tags.iter().map(|tag| (tag.name.as_str(), tag.role)).collect();
        counts.sort_unstable();
        let mut position = 0;
        while position < counts.len() {
            let (name, role) = counts[position];
            let run = counts[position..].iter().take_while(|entry| **entry == (name, role)).count();
            position += run;
            let ident = match self.idents.get_mut(name) {
                Some(ident) => ident,
                None => self.idents.entry(name.to_string()).or_default(),
            };
            let per_file = match role {
                Role::Definition => &mut ident.definers,
                Role::Reference => &mut ident.referencers,
            };
            per_file.insert(key.clone(), run as u32);
        }
        self.files.insert(key, FileEntry { tags });
    }

    /// All indexed paths, sorted.
    pub fn files(&self) -> impl Iterator<Item = &str> + '_ {
        self.files.keys().map(|path| &**path)
    }

    /// Number of indexed files.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Total number of tags (definitions and references).
    pub fn tag_count(&self) -> usize {
        self.files.values().map(|entry| entry.tags.len()).sum()
    }

    /// The tags of one file in source order (empty for unknown paths).
    pub fn file_tags(&self, path: &str) -> &[Tag] {
        self.files.get(path).map(|entry| entry.tags.as_slice()).unwrap_or(&[])
    }

    /// All definitions named `name`, ordered by path then line.
    pub fn definitions(&self, name: &str) -> Vec<&Tag> {
        self.tags_named(name, Role::Definition)
    }

    /// All references to `name`, ordered by path then line.
    pub fn references(&self, name: &str) -> Vec<&Tag> {
        self.tags_named(name, Role::Reference)
    }

    fn tags_named(&self, name: &str, role: Role) -> Vec<&Tag> {
        let Some(ident) = self.idents.get(name) else { return Vec::new() };
        let per_file = match role {
            Role::Definition => &ident.definers,
            Role::Reference => &ident.referencers,
        };
        per_file
            .keys()
            .filter_map(|path| self.files.get(path))
            .flat_map(|entry| entry.tags.iter().filter(|tag| tag.role == role && tag.name == name))
            .collect()
    }

    /// Every definition with its score for this request, best first (ties by
    /// path, then line). Focus files are included here regardless of
    /// `include_focus_files` (the caller decides); `token_budget` is ignored.
    pub fn ranked_definitions(&self, request: &MapRequest) -> Vec<(&Tag, f64)> {
        let mut definitions = rank::rank(self, request).definitions;
        definitions.sort_unstable_by(rank::compare_ranked);
        definitions
    }

    /// Personalised PageRank of every file for this request, best first.
    pub fn ranked_files(&self, request: &MapRequest) -> Vec<(&str, f64)> {
        let ranking = rank::rank(self, request);
        let mut files: Vec<(&str, f64)> = ranking.file_ranks;
        files.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        files
    }

    /// Renders the map for `request`, never exceeding its token budget.
    pub fn render(&self, request: &MapRequest) -> RenderedMap {
        render::render(self, request)
    }
}
