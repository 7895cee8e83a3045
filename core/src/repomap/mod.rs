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
//! - [`index`]: the filesystem edge: [`load_or_build`] over `walk` (walking a
//!   workspace, gitignore-aware) and `cache` (the on-disk tag cache keyed by
//!   content hash; its format is documented there).
//!
//! Invariant: everything here is deterministic. The same files (in any order)
//! and the same [`MapRequest`] give byte-identical [`RenderedMap`]s: all maps
//! are ordered (`BTreeMap`) and every sort has a total tie-break.

mod cache;
pub mod extract;
pub mod index;
mod rank;
mod render;
mod walk;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use extract::Language;
pub use index::{
    default_cache_dir, load_or_build, walk, IndexError, IndexOptions, IndexStats, Progress, RepoIndex, WalkResult,
};

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
///
/// 64 bytes: a map holds one per identifier occurrence (hundreds of
/// thousands in a large repo), so the definition-only texts live behind one
/// pointer in [`TagDetails`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Workspace-relative path of the file (shared by all tags of a file).
    /// Not stored in the on-disk cache (the cache is keyed by path).
    pub path: Arc<str>,
    /// The identifier, e.g. `load_or_build`. Shared: the tags of one file
    /// that name the same identifier hold one allocation (and so does the
    /// map's identifier index).
    pub name: Arc<str>,
    pub kind: TagKind,
    pub role: Role,
    /// 0-based line of the identifier.
    pub line: u32,
    /// Definitions: the whole item including its body and doc comment-free
    /// header (so a caller can slice a snippet). References: the identifier.
    pub byte_range: Range<usize>,
    /// Signature, doc and scope; `None` when all three are absent (always
    /// for references). Build it with [`TagDetails::boxed`].
    pub details: Option<Box<TagDetails>>,
}

// Keep tags small (see above); a new field should not grow them unnoticed.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Tag>() == 64);

/// The texts only definitions have.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TagDetails {
    /// The item's header without its body, e.g.
    /// `pub fn load(path: &Path) -> Result<Self>` or `def area(self) -> float:`.
    pub signature: Option<String>,
    /// Doc comment (`///`, `/** */`, inner `//!` of a `mod`) or Python
    /// docstring, markers stripped and dedented.
    pub doc: Option<String>,
    /// Enclosing item: the impl type / trait for Rust methods, the class (or
    /// enclosing function) for Python, the module for items in a `mod` block.
    pub scope: Option<String>,
}

impl TagDetails {
    /// `None` when there is nothing to keep, so that equal tags are equal
    /// whether they come from a parse or from the cache.
    pub fn boxed(signature: Option<String>, doc: Option<String>, scope: Option<String>) -> Option<Box<TagDetails>> {
        if signature.is_none() && doc.is_none() && scope.is_none() {
            return None;
        }
        Some(Box::new(TagDetails { signature, doc, scope }))
    }
}

impl Tag {
    /// Definitions: the item's header without its body (see [`TagDetails`]).
    pub fn signature(&self) -> Option<&str> {
        self.details.as_ref()?.signature.as_deref()
    }

    /// Definitions: the doc comment or docstring (see [`TagDetails`]).
    pub fn doc(&self) -> Option<&str> {
        self.details.as_ref()?.doc.as_deref()
    }

    /// Definitions: the enclosing item (see [`TagDetails`]).
    pub fn scope(&self) -> Option<&str> {
        self.details.as_ref()?.scope.as_deref()
    }
}

/// JSON shape of a tag (`--format json`): flat, without the path (the
/// enclosing file says it).
impl Serialize for Tag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct TagJson<'a> {
            name: &'a str,
            kind: TagKind,
            role: Role,
            line: u32,
            byte_range: &'a Range<usize>,
            signature: Option<&'a str>,
            doc: Option<&'a str>,
            scope: Option<&'a str>,
        }
        TagJson {
            name: &self.name,
            kind: self.kind,
            role: self.role,
            line: self.line,
            byte_range: &self.byte_range,
            signature: self.signature(),
            doc: self.doc(),
            scope: self.scope(),
        }
        .serialize(serializer)
    }
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
    /// Stable id of this version of the file (keys the ident index).
    id: u32,
    tags: Vec<Tag>,
}

/// How often an identifier is defined / referenced, per file id. Unordered:
/// readers sort (see `rank::Graph::build`, `tags_named`).
#[derive(Debug, Clone, Default)]
struct IdentEntry {
    /// (file id, number of definitions of this ident in that file).
    definers: Vec<(u32, u32)>,
    /// (file id, number of references to this ident from that file).
    referencers: Vec<(u32, u32)>,
}

/// FxHash: a fast, fixed-seed hasher for the map's internal hash tables.
/// Never iterated for output (readers sort), so its order cannot leak.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }
    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }
    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }
    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }
    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxBuildHasher = std::hash::BuildHasherDefault<FxHasher>;
pub(crate) type FxHashMap<K, V> = HashMap<K, V, FxBuildHasher>;
pub(crate) type FxHashSet<K> = std::collections::HashSet<K, FxBuildHasher>;

/// The in-memory tag index of a workspace. Pure: no I/O.
///
/// Invariant: `idents` and `paths_by_id` are exactly the aggregation of
/// `files` (maintained by `insert_tags` / `remove_file`), and `graph` is
/// either empty or built from the current state.
#[derive(Debug, Clone, Default)]
pub struct RepoMap {
    files: BTreeMap<Arc<str>, FileEntry>,
    paths_by_id: FxHashMap<u32, Arc<str>>,
    /// Keyed by the tags' own shared names (no copy of the string).
    idents: FxHashMap<Arc<str>, IdentEntry>,
    next_file_id: u32,
    /// Request-independent ranking graph, built on first use; every mutation
    /// resets it.
    graph: OnceLock<rank::Graph>,
}

/// Distinct (name, role) pairs of one file's tags with their counts, any order.
pub(crate) type NameCounts = Vec<(Arc<str>, Role, u32)>;

/// Adds file `id`'s (name, role, count) triples to the identifier index.
fn record_name_counts<'n>(
    idents: &mut FxHashMap<Arc<str>, IdentEntry>,
    id: u32,
    counts: impl IntoIterator<Item = (&'n Arc<str>, Role, u32)>,
) {
    for (name, role, count) in counts {
        // Look up by `&str` first: cloning the key only for new names.
        let ident = match idents.get_mut(&**name) {
            Some(ident) => ident,
            None => idents.entry(name.clone()).or_default(),
        };
        match role {
            Role::Definition => ident.definers.push((id, count)),
            Role::Reference => ident.referencers.push((id, count)),
        }
    }
}

/// Distinct (name, role) pairs of a file's tags with their counts, in no
/// particular order (each pair touches its own ident entry once, so the
/// order cannot show in the index). Hashing beats sorting by name here.
fn name_counts(tags: &[Tag]) -> Vec<(&Arc<str>, Role, u32)> {
    let mut counts: FxHashMap<(&str, Role), (&Arc<str>, u32)> = FxHashMap::default();
    counts.reserve(tags.len() / 2);
    for tag in tags {
        counts.entry((&*tag.name, tag.role)).or_insert((&tag.name, 0)).1 += 1;
    }
    counts.into_iter().map(|((_, role), (name, count))| (name, role, count)).collect()
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
    /// A path given twice keeps its last tags (as repeated
    /// [`RepoMap::set_file_tags`] would).
    pub fn from_tags(files: impl IntoIterator<Item = (String, Vec<Tag>)>) -> RepoMap {
        Self::from_shared_tags(files.into_iter().map(|(path, tags)| (Arc::from(path), tags, None)))
    }

    /// [`RepoMap::from_tags`] with shared paths: tags already stamped with
    /// their path (as the cache decoder does) are left untouched, and name
    /// counts the caller already has (the decoder counts by name index) are
    /// used instead of counting again.
    pub(crate) fn from_shared_tags(
        files: impl IntoIterator<Item = (Arc<str>, Vec<Tag>, Option<NameCounts>)>,
    ) -> RepoMap {
        let by_path: BTreeMap<Arc<str>, (Vec<Tag>, Option<NameCounts>)> =
            files.into_iter().map(|(path, tags, counts)| (path, (tags, counts))).collect();
        type FileTags = (Arc<str>, Vec<Tag>);
        let (mut files, known_counts): (Vec<FileTags>, Vec<Option<NameCounts>>) =
            by_path.into_iter().map(|(path, (tags, counts))| ((path, tags), counts)).unzip();
        // Per-file work (stamping paths, counting names) runs in parallel;
        // only the merge into the shared ident index is sequential.
        files.par_iter_mut().for_each(|(path, tags)| {
            for tag in tags.iter_mut() {
                if !Arc::ptr_eq(&tag.path, path) && *tag.path != **path {
                    tag.path = path.clone();
                }
            }
        });
        let mut map = RepoMap::new();
        {
            let counts: Vec<Vec<(&Arc<str>, Role, u32)>> = files
                .par_iter()
                .zip(&known_counts)
                .map(|((_, tags), known)| match known {
                    Some(known) => known.iter().map(|(name, role, count)| (name, *role, *count)).collect(),
                    None => name_counts(tags),
                })
                .collect();
            // Most names recur across files; sizing for a third of the pairs
            // avoids most rehashing (which re-hashes every string key).
            map.idents.reserve(counts.iter().map(Vec::len).sum::<usize>() / 3);
            for (id, file_counts) in counts.iter().enumerate() {
                record_name_counts(&mut map.idents, id as u32, file_counts.iter().copied());
            }
        }
        map.next_file_id = files.len() as u32;
        map.paths_by_id = files.iter().enumerate().map(|(id, (path, _))| (id as u32, path.clone())).collect();
        map.files =
            files.into_iter().enumerate().map(|(id, (path, tags))| (path, FileEntry { id: id as u32, tags })).collect();
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
        self.insert_tags(path, tags);
    }

    /// Drops a file and all its tags. Unknown paths are ignored.
    pub fn remove_file(&mut self, path: &str) {
        let Some(entry) = self.files.remove(path) else {
            return;
        };
        self.graph = OnceLock::new();
        self.paths_by_id.remove(&entry.id);
        for (name, role, _) in name_counts(&entry.tags) {
            let Some(ident) = self.idents.get_mut(&**name) else {
                continue;
            };
            let per_file = match role {
                Role::Definition => &mut ident.definers,
                Role::Reference => &mut ident.referencers,
            };
            per_file.retain(|(id, _)| *id != entry.id);
            if ident.definers.is_empty() && ident.referencers.is_empty() {
                self.idents.remove(&**name);
            }
        }
    }

    fn insert_tags(&mut self, path: &str, mut tags: Vec<Tag>) {
        self.remove_file(path);
        self.graph = OnceLock::new();
        let key: Arc<str> = Arc::from(path);
        for tag in &mut tags {
            tag.path = key.clone();
        }
        let id = self.next_file_id;
        self.next_file_id = self.next_file_id.wrapping_add(1);
        // Touch the shared index once per distinct name, not once per tag.
        record_name_counts(&mut self.idents, id, name_counts(&tags));
        self.paths_by_id.insert(id, key.clone());
        self.files.insert(key, FileEntry { id, tags });
    }

    fn graph(&self) -> &rank::Graph {
        self.graph.get_or_init(|| {
            let started = std::time::Instant::now();
            let graph = rank::Graph::build(self);
            tracing::debug!(elapsed = ?started.elapsed(), "repo map: ranking graph built");
            graph
        })
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
        let Some(ident) = self.idents.get(name) else {
            return Vec::new();
        };
        let per_file = match role {
            Role::Definition => &ident.definers,
            Role::Reference => &ident.referencers,
        };
        let mut paths: Vec<&Arc<str>> = per_file.iter().filter_map(|(id, _)| self.paths_by_id.get(id)).collect();
        paths.sort();
        paths
            .into_iter()
            .filter_map(|path| self.files.get(path))
            .flat_map(|entry| entry.tags.iter().filter(|tag| tag.role == role && &*tag.name == name))
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
