//! The filesystem edge of the repo map: walking a workspace and the on-disk
//! tag cache. Everything else in `repomap` is pure.
//!
//! Walk: the `ignore` crate (`.gitignore`, `.ignore` and git excludes are
//! honoured even outside a git checkout; hidden files and directories are
//! skipped; symlinks are not followed); only `.rs`, `.py` and `.pyi` files.
//!
//! Cache: one file, `<cache_dir>/tags-v<N>.postcard`: a magic, a postcard
//! header holding for every indexed path its size, mtime, blake3 content hash
//! and note, then each file's tags as a separate postcard blob (decoded in
//! parallel, only when re-used; copied as-is on a rewrite). A
//! file is re-used without reading it when size and mtime match and the mtime
//! is older than the cache itself by more than [`RACY_WINDOW`] (the git index
//! trick); otherwise it is read and hashed, and re-used if the hash matches
//! any cached entry (so renames and touches are cheap). Deleted files are
//! dropped; the cache is rewritten (atomically) only when something changed.
//! The cache also embeds a hash of the tag queries, so editing a query
//! invalidates it.
//!
//! Default cache location ([`default_cache_dir`]): the user's cache directory,
//! `<cache>/sextant/repomap/<blake3 of the canonical root path, 16 hex>/`, so
//! indexing never writes into the repository itself.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::extract::{self, Language};
use super::{
    FxHashMap, FxHashSet, NameCounts, Note, NoteReason, RepoMap, Role, Tag, TagDetails, TagKind, MAX_FILE_BYTES,
};

/// Bump when the cache layout or tag extraction semantics change.
/// v3: tag blobs in a hand-written layout with a per-file name table.
const CACHE_FORMAT_VERSION: u32 = 3;
/// Files modified this close to the cache write are always re-hashed.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Errors that stop indexing as a whole (per-file problems are [`Note`]s).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("workspace root {path} is not a readable directory: {source}")]
    Root { path: PathBuf, source: std::io::Error },
}

/// Progress reports for a UI (called from worker threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The walk found this many candidate source files.
    Walked { files: usize },
    /// `done` of `total` files read (and parsed if they were not cached).
    Indexed { done: usize, total: usize },
}

/// Options for [`load_or_build`].
#[derive(Debug, Clone, Default)]
pub struct IndexOptions {
    /// Where the tag cache lives; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// Counters describing one indexing run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IndexStats {
    /// Source files found by the walk.
    pub files: usize,
    /// Files whose tags came from the cache.
    pub cached: usize,
    /// Files parsed in this run.
    pub parsed: usize,
    /// Cache entries dropped because their file is gone.
    pub dropped: usize,
    /// Whether the cache file was (re)written.
    pub cache_written: bool,
}

/// A loaded workspace: the map, notes about skipped files, and stats.
#[derive(Debug, Clone)]
pub struct RepoIndex {
    pub root: PathBuf,
    pub map: RepoMap,
    /// Sorted by path.
    pub notes: Vec<Note>,
    pub stats: IndexStats,
    /// Set when the cache could not be read or written (indexing still worked).
    pub cache_warning: Option<String>,
}

/// Result of [`walk`]: candidate files and walk problems.
#[derive(Debug, Clone, Default)]
pub struct WalkResult {
    /// (workspace-relative `/`-separated path, absolute path), sorted.
    pub files: Vec<(String, PathBuf)>,
    /// Entries that could not be walked.
    pub notes: Vec<Note>,
}

/// Lists the `.rs`/`.py`/`.pyi` files under `root` (gitignore-aware, hidden
/// entries skipped), sorted by relative path.
pub fn walk(root: &Path) -> WalkResult {
    let (files, notes) = walk_with_stats(root);
    WalkResult { files: files.into_iter().map(|file| (file.relative, file.absolute)).collect(), notes }
}

/// Size and mtime of a walked file, taken by the (parallel) walk itself.
#[derive(Debug, Clone, Copy)]
struct FileStat {
    size: u64,
    mtime_ns: u128,
}

struct WalkedFile {
    relative: String,
    absolute: PathBuf,
    /// `None` if the walk could not stat the file (indexing retries).
    stat: Option<FileStat>,
}

/// Starts compiling the tag query of each language among `files` on the
/// rayon pool. Without a cache every file is parsed and the first one would
/// compile its query (tens of ms) while the other workers, done with their
/// first parse, wait for it; compiling up front overlaps it with parsing.
fn compile_queries_in_background(files: &[WalkedFile]) {
    let mut languages: Vec<Language> = files.iter().filter_map(|file| Language::from_path(&file.relative)).collect();
    languages.sort_unstable();
    languages.dedup();
    for language in languages {
        // A compile error is reported by the first file that needs the query.
        rayon::spawn(move || {
            let _ = language.query();
        });
    }
}

/// [`walk`] plus each file's stat, sorted by relative path.
fn walk_with_stats(root: &Path) -> (Vec<WalkedFile>, Vec<Note>) {
    let collected = std::sync::Mutex::new((Vec::<WalkedFile>::new(), Vec::<Note>::new()));
    // Parallel walk: directory reads and stats dominate on big trees.
    ignore::WalkBuilder::new(root)
        .hidden(true)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .require_git(false)
        .follow_links(false)
        .build_parallel()
        .run(|| {
            Box::new(|entry| {
                let found = match entry {
                    Ok(entry) => {
                        if !entry.file_type().is_some_and(|file_type| file_type.is_file()) {
                            return ignore::WalkState::Continue;
                        }
                        let relative = relative_path(root, entry.path());
                        if Language::from_path(&relative).is_none() {
                            return ignore::WalkState::Continue;
                        }
                        // Not a symlink (those are skipped above), so this
                        // lstat is the file's stat.
                        let stat = entry.metadata().ok().map(|metadata| FileStat {
                            size: metadata.len(),
                            mtime_ns: metadata.modified().map(nanos_since_epoch).unwrap_or(0),
                        });
                        Ok(WalkedFile { relative, absolute: entry.into_path(), stat })
                    }
                    Err(error) => {
                        let path = error_path(&error).map(|path| relative_path(root, &path)).unwrap_or_default();
                        Err(Note { path, reason: NoteReason::Unreadable { error: error.to_string() } })
                    }
                };
                if let Ok(mut result) = collected.lock() {
                    match found {
                        Ok(file) => result.0.push(file),
                        Err(note) => result.1.push(note),
                    }
                }
                ignore::WalkState::Continue
            })
        });
    let (mut files, mut notes) = collected.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Total order (lossy names of two non-UTF-8 paths may be equal).
    files.sort_unstable_by(|a, b| a.relative.cmp(&b.relative).then_with(|| a.absolute.cmp(&b.absolute)));
    notes.sort();
    (files, notes)
}

fn error_path(error: &ignore::Error) -> Option<PathBuf> {
    match error {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => error_path(err),
        _ => None,
    }
}

/// `root`-relative path with `/` separators (lossy for non-UTF-8 names).
fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> =
        relative.components().map(|part| part.as_os_str().to_string_lossy().into_owned()).collect();
    parts.join("/")
}

/// The default cache directory for a workspace root (see the module docs).
/// `None` when the platform has no user cache directory.
pub fn default_cache_dir(root: &Path) -> Option<PathBuf> {
    let canonical = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let digest = blake3::hash(canonical.to_string_lossy().as_bytes()).to_hex();
    Some(dirs::cache_dir()?.join("sextant").join("repomap").join(&digest.as_str()[..16]))
}

/// Opens every cache file, before the postcard header.
const CACHE_MAGIC: &[u8; 8] = b"SXTAGS\0\n";

/// Everything in a cache file but the tags: small, decoded up front. Each
/// entry's tags follow the header as their own postcard blob (in entry order,
/// lengths in [`CacheMeta::tags_bytes`]), so they are decoded in parallel, only
/// for entries that are re-used, and copied unchanged when the cache is
/// rewritten.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheHeader {
    format: u32,
    query_hash: [u8; 32],
    /// When this cache was written (ns since the epoch).
    written_at_ns: u128,
    entries: Vec<CacheMeta>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheMeta {
    path: String,
    size: u64,
    mtime_ns: u128,
    hash: [u8; 32],
    /// Length of the entry's tag blob ([`encode_tags`]); `None` for
    /// skipped files (binary, not UTF-8, too large).
    tags_bytes: Option<u64>,
    note: Option<Note>,
}

/// A cache file as read from disk: its header and where each tag blob lies.
struct LoadedCache {
    written_at_ns: u128,
    entries: Vec<CacheMeta>,
    bytes: Vec<u8>,
    /// Per entry: the byte range of its tag blob in `bytes`.
    blobs: Vec<Option<Range<usize>>>,
}

/// Every [`TagKind`] in the order of its one-byte code in the cache. Its
/// `Debug` text is part of [`query_hash`], so reordering it invalidates caches.
const KIND_CODES: [TagKind; 19] = [
    TagKind::Function,
    TagKind::Method,
    TagKind::Struct,
    TagKind::Enum,
    TagKind::Union,
    TagKind::Trait,
    TagKind::Impl,
    TagKind::Module,
    TagKind::Const,
    TagKind::Static,
    TagKind::Class,
    TagKind::TypeAlias,
    TagKind::Macro,
    TagKind::Constant,
    TagKind::Call,
    TagKind::TypeRef,
    TagKind::ModuleRef,
    TagKind::Import,
    TagKind::MacroCall,
];

const HAS_SIGNATURE: u8 = 1;
const HAS_DOC: u8 = 2;
const HAS_SCOPE: u8 = 4;
/// Set for [`Role::Reference`] tags (clear for definitions).
const IS_REFERENCE: u8 = 8;

/// One file's tags as a cache blob. A hand-written layout rather than serde:
/// decoding it is most of a warm start, and serde's per-field visitor costs
/// several times the work of reading a few varints.
///
/// Layout (all integers LEB128 varints, strings a varint length + UTF-8):
/// the number of distinct names, the names (in order of first use, so the
/// bytes are deterministic), the number of tags, then per tag: name index,
/// kind code ([`KIND_CODES`]), flags (`HAS_*`, `IS_REFERENCE`), line,
/// byte-range start and length, then signature, doc and scope when flagged.
fn encode_tags(tags: &[Tag]) -> Vec<u8> {
    let mut index_of: FxHashMap<&str, u64> = FxHashMap::default();
    let mut names: Vec<&str> = Vec::new();
    let mut body = Vec::with_capacity(tags.len() * 12);
    for tag in tags {
        let name = *index_of.entry(&*tag.name).or_insert_with(|| {
            names.push(&tag.name);
            names.len() as u64 - 1
        });
        put_varint(&mut body, name);
        let kind = KIND_CODES.iter().position(|kind| *kind == tag.kind).unwrap_or_default();
        body.push(kind as u8);
        let mut flags = 0;
        for (present, flag) in [
            (tag.signature().is_some(), HAS_SIGNATURE),
            (tag.doc().is_some(), HAS_DOC),
            (tag.scope().is_some(), HAS_SCOPE),
            (tag.role == Role::Reference, IS_REFERENCE),
        ] {
            if present {
                flags |= flag;
            }
        }
        body.push(flags);
        put_varint(&mut body, u64::from(tag.line));
        put_varint(&mut body, tag.byte_range.start as u64);
        put_varint(&mut body, tag.byte_range.end.saturating_sub(tag.byte_range.start) as u64);
        for text in [tag.signature(), tag.doc(), tag.scope()].into_iter().flatten() {
            put_str(&mut body, text);
        }
    }
    let mut bytes = Vec::with_capacity(body.len() + names.len() * 12 + 10);
    put_varint(&mut bytes, names.len() as u64);
    for name in &names {
        put_str(&mut bytes, name);
    }
    put_varint(&mut bytes, tags.len() as u64);
    bytes.extend_from_slice(&body);
    bytes
}

fn put_varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn put_str(bytes: &mut Vec<u8>, text: &str) {
    put_varint(bytes, text.len() as u64);
    bytes.extend_from_slice(text.as_bytes());
}

/// Reads a blob written by [`encode_tags`]; every read is bounds-checked.
struct BlobReader<'a> {
    bytes: &'a [u8],
}

impl<'a> BlobReader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    fn usize(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }

    fn str(&mut self) -> Option<&'a str> {
        let length = self.usize()?;
        if length > self.bytes.len() {
            return None;
        }
        let (text, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        std::str::from_utf8(text).ok()
    }
}

/// The tags of one cache blob, stamped with `path`, and their name counts
/// (counted by name index, cheaper than hashing every tag's name later);
/// `None` if the blob is damaged (then the file is parsed again).
fn decode_tags(bytes: &[u8], path: &Arc<str>) -> Option<(Vec<Tag>, NameCounts)> {
    let mut reader = BlobReader { bytes };
    let name_count = reader.usize()?;
    // Counts come from disk: never reserve more than the bytes could hold.
    let mut names: Vec<Arc<str>> = Vec::with_capacity(name_count.min(bytes.len()));
    for _ in 0..name_count {
        names.push(Arc::from(reader.str()?));
    }
    let tag_count = reader.usize()?;
    let mut tags = Vec::with_capacity(tag_count.min(bytes.len()));
    // Per name index: (definitions, references).
    let mut counts = vec![(0u32, 0u32); names.len()];
    for _ in 0..tag_count {
        let name_index = reader.usize()?;
        let name = names.get(name_index)?.clone();
        let kind = *KIND_CODES.get(usize::from(reader.byte()?))?;
        let flags = reader.byte()?;
        let line = u32::try_from(reader.varint()?).ok()?;
        let start = reader.usize()?;
        let end = start.checked_add(reader.usize()?)?;
        let mut text = |flag: u8| -> Option<Option<String>> {
            if flags & flag == 0 {
                Some(None)
            } else {
                reader.str().map(|text| Some(text.to_string()))
            }
        };
        let signature = text(HAS_SIGNATURE)?;
        let doc = text(HAS_DOC)?;
        let scope = text(HAS_SCOPE)?;
        let role = if flags & IS_REFERENCE == 0 {
            counts[name_index].0 += 1;
            Role::Definition
        } else {
            counts[name_index].1 += 1;
            Role::Reference
        };
        tags.push(Tag {
            path: path.clone(),
            name,
            kind,
            role,
            line,
            byte_range: start..end,
            details: TagDetails::boxed(signature, doc, scope),
        });
    }
    // Trailing bytes mean the blob is not what we wrote.
    if !reader.bytes.is_empty() {
        return None;
    }
    let mut name_counts = Vec::with_capacity(names.len());
    for (name, (definitions, references)) in names.into_iter().zip(counts) {
        if definitions > 0 {
            name_counts.push((name.clone(), Role::Definition, definitions));
        }
        if references > 0 {
            name_counts.push((name, Role::Reference, references));
        }
    }
    Some((tags, name_counts))
}

/// One file's record on its way into the map and the next cache file.
#[derive(Debug, Clone)]
struct CacheEntry {
    /// Shared with the entry's tags.
    path: Arc<str>,
    size: u64,
    mtime_ns: u128,
    hash: [u8; 32],
    /// `None` for skipped files (binary, not UTF-8, too large).
    tags: Option<Vec<Tag>>,
    /// The tags' name counts when the cache decoder produced them.
    name_counts: Option<NameCounts>,
    note: Option<Note>,
    /// The encoded `tags` in the old cache's bytes, when they came from there.
    encoded: Option<Range<usize>>,
}

fn query_hash() -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&CACHE_FORMAT_VERSION.to_le_bytes());
    hasher.update(&super::extract::EXTRACTION_REVISION.to_le_bytes());
    hasher.update(format!("{KIND_CODES:?}").as_bytes());
    hasher.update(Language::Rust.query_source().as_bytes());
    hasher.update(Language::Python.query_source().as_bytes());
    *hasher.finalize().as_bytes()
}

fn cache_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join(format!("tags-v{CACHE_FORMAT_VERSION}.postcard"))
}

fn read_cache(cache_dir: &Path) -> Result<Option<LoadedCache>, String> {
    let path = cache_path(cache_dir);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read the tag cache {}: {error}", path.display())),
    };
    let corrupt =
        |problem: &dyn std::fmt::Display| format!("ignoring a corrupt tag cache {}: {problem}", path.display());
    let Some(rest) = bytes.strip_prefix(CACHE_MAGIC.as_slice()) else {
        return Err(corrupt(&"not a sextant tag cache"));
    };
    let (header, blob_region) = postcard::take_from_bytes::<CacheHeader>(rest).map_err(|error| corrupt(&error))?;
    if header.format != CACHE_FORMAT_VERSION || header.query_hash != query_hash() {
        // Stale format or queries: start over silently.
        return Ok(None);
    }
    let mut offset = bytes.len() - blob_region.len();
    let mut blobs = Vec::with_capacity(header.entries.len());
    for entry in &header.entries {
        let Some(length) = entry.tags_bytes else {
            blobs.push(None);
            continue;
        };
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| offset.checked_add(length))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| corrupt(&"truncated"))?;
        blobs.push(Some(offset..end));
        offset = end;
    }
    if offset != bytes.len() {
        return Err(corrupt(&"trailing bytes"));
    }
    Ok(Some(LoadedCache { written_at_ns: header.written_at_ns, entries: header.entries, bytes, blobs }))
}

/// Writes the cache: tags re-used from `old` are copied as encoded there,
/// the others are encoded in parallel.
fn write_cache(cache_dir: &Path, entries: &[CacheEntry], old: Option<&LoadedCache>) -> Result<(), String> {
    let path = cache_path(cache_dir);
    let blobs: Vec<Option<std::borrow::Cow<'_, [u8]>>> = entries
        .par_iter()
        .map(|entry| {
            let tags = entry.tags.as_ref()?;
            let copied = entry.encoded.clone().and_then(|range| old.and_then(|old| old.bytes.get(range)));
            Some(match copied {
                Some(bytes) => std::borrow::Cow::Borrowed(bytes),
                None => encode_tags(tags).into(),
            })
        })
        .collect();
    let header = CacheHeader {
        format: CACHE_FORMAT_VERSION,
        query_hash: query_hash(),
        written_at_ns: nanos_since_epoch(SystemTime::now()),
        entries: entries
            .iter()
            .zip(&blobs)
            .map(|(entry, blob)| CacheMeta {
                path: entry.path.to_string(),
                size: entry.size,
                mtime_ns: entry.mtime_ns,
                hash: entry.hash,
                tags_bytes: blob.as_ref().map(|blob| blob.len() as u64),
                note: entry.note.clone(),
            })
            .collect(),
    };
    let header_bytes =
        postcard::to_allocvec(&header).map_err(|error| format!("cannot encode the tag cache: {error}"))?;
    let total = CACHE_MAGIC.len() + header_bytes.len() + blobs.iter().flatten().map(|blob| blob.len()).sum::<usize>();
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(CACHE_MAGIC);
    bytes.extend_from_slice(&header_bytes);
    for blob in blobs.iter().flatten() {
        bytes.extend_from_slice(blob);
    }
    fs::create_dir_all(cache_dir).map_err(|error| format!("cannot create {}: {error}", cache_dir.display()))?;
    // Write-then-rename so a concurrent reader never sees half a file.
    let temporary = cache_dir.join(format!("tags-v{CACHE_FORMAT_VERSION}.{}.tmp", std::process::id()));
    fs::write(&temporary, &bytes).map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
    fs::rename(&temporary, &path).map_err(|error| {
        let _ = fs::remove_file(&temporary);
        format!("cannot replace {}: {error}", path.display())
    })?;
    // Older formats are never read again: do not leave them behind.
    for version in 1..CACHE_FORMAT_VERSION {
        let _ = fs::remove_file(cache_dir.join(format!("tags-v{version}.postcard")));
    }
    Ok(())
}

fn nanos_since_epoch(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH).map(|duration| duration.as_nanos()).unwrap_or(0)
}

/// What indexing one file produced.
enum FileOutcome {
    /// Re-used from the cache entry at `from`, same stat (the path may differ:
    /// a rename or copy).
    Cached { entry: CacheEntry, from: usize },
    /// Cached tags under a new stat (content hash matched).
    Refreshed(CacheEntry),
    /// Read and parsed in this run (or skipped with a note).
    Parsed(CacheEntry),
}

/// Walks `root`, loads what it can from the tag cache, parses the rest in
/// parallel and returns the map. Per-file problems become notes; only an
/// unreadable root is an error. `progress` is called from worker threads.
pub fn load_or_build(
    root: &Path,
    options: &IndexOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<RepoIndex, IndexError> {
    fs::read_dir(root).map_err(|source| IndexError::Root { path: root.to_path_buf(), source })?;
    let started = std::time::Instant::now();
    // The walk and the cache read are independent: overlap them.
    let ((walked_files, walk_notes), cache) =
        rayon::join(|| walk_with_stats(root), || options.cache_dir.as_deref().map(read_cache));
    tracing::debug!(files = walked_files.len(), elapsed = ?started.elapsed(), "repo map: walked and cache read");
    let total = walked_files.len();
    progress(Progress::Walked { files: total });

    let mut cache_warning = None;
    let cache = match cache {
        Some(Ok(cache)) => cache,
        Some(Err(warning)) => {
            cache_warning = Some(warning);
            None
        }
        None => None,
    };
    if cache.is_none() {
        compile_queries_in_background(&walked_files);
    }
    let entries: &[CacheMeta] = cache.as_ref().map(|cache| cache.entries.as_slice()).unwrap_or(&[]);
    let by_path: FxHashMap<&str, usize> =
        entries.iter().enumerate().map(|(index, entry)| (entry.path.as_str(), index)).collect();
    let by_hash: FxHashMap<[u8; 32], usize> =
        entries.iter().enumerate().map(|(index, entry)| (entry.hash, index)).collect();
    let trusted_before_ns =
        cache.as_ref().map(|cache| cache.written_at_ns.saturating_sub(RACY_WINDOW.as_nanos())).unwrap_or(0);
    let lookup = CacheLookup { cache: cache.as_ref(), by_path, by_hash, trusted_before_ns };

    // Largest files first, so no big parse is left to run alone at the end
    // while the other cores idle. Results go back to path order below.
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(walked_files[index].stat.map_or(0, |stat| stat.size)));
    let done = AtomicUsize::new(0);
    let indexed: Vec<(usize, FileOutcome)> = order
        .par_iter()
        .map(|&index| {
            let file = &walked_files[index];
            let outcome = index_one(&file.relative, &file.absolute, file.stat, &lookup);
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(Progress::Indexed { done: finished, total });
            (index, outcome)
        })
        .collect();
    let mut in_path_order: Vec<Option<FileOutcome>> = (0..total).map(|_| None).collect();
    for (index, outcome) in indexed {
        in_path_order[index] = Some(outcome);
    }
    let outcomes = in_path_order.into_iter().flatten();

    let mut stats = IndexStats { files: total, ..IndexStats::default() };
    let mut changed = cache.is_none();
    let mut reused = vec![false; entries.len()];
    let mut new_entries: Vec<CacheEntry> = Vec::with_capacity(total);
    for outcome in outcomes {
        match outcome {
            FileOutcome::Cached { entry, from } => {
                stats.cached += 1;
                if *entries[from].path != *entry.path {
                    // Same content under a new name (rename or copy).
                    changed = true;
                }
                reused[from] = true;
                new_entries.push(entry);
            }
            FileOutcome::Refreshed(entry) => {
                stats.cached += 1;
                changed = true;
                new_entries.push(entry);
            }
            FileOutcome::Parsed(entry) => {
                stats.parsed += 1;
                changed = true;
                new_entries.push(entry);
            }
        }
    }
    let walked_paths: FxHashSet<&str> = walked_files.iter().map(|file| file.relative.as_str()).collect();
    stats.dropped = entries
        .iter()
        .zip(&reused)
        .filter(|(entry, reused)| !**reused && !walked_paths.contains(entry.path.as_str()))
        .count();
    if stats.dropped > 0 {
        changed = true;
    }
    tracing::debug!(parsed = stats.parsed, cached = stats.cached, elapsed = ?started.elapsed(), "repo map: files indexed");

    if let (Some(cache_dir), true) = (options.cache_dir.as_deref(), changed) {
        match write_cache(cache_dir, &new_entries, cache.as_ref()) {
            Ok(()) => stats.cache_written = true,
            Err(warning) => cache_warning = Some(warning),
        }
    }
    // The old cache's bytes are no longer needed; free them before building.
    drop(lookup);
    drop(cache);

    let mut notes = walk_notes;
    let mut files = Vec::with_capacity(new_entries.len());
    for entry in new_entries {
        notes.extend(entry.note);
        if let Some(tags) = entry.tags {
            files.push((entry.path, tags, entry.name_counts));
        }
    }
    notes.sort();
    let map = RepoMap::from_shared_tags(files);
    tracing::debug!(elapsed = ?started.elapsed(), "repo map: in-memory index built");
    Ok(RepoIndex { root: root.to_path_buf(), map, notes, stats, cache_warning })
}

/// The old cache and its indexes, shared by the indexing workers.
struct CacheLookup<'a> {
    cache: Option<&'a LoadedCache>,
    by_path: FxHashMap<&'a str, usize>,
    by_hash: FxHashMap<[u8; 32], usize>,
    trusted_before_ns: u128,
}

impl CacheLookup<'_> {
    fn entries(&self) -> &[CacheMeta] {
        self.cache.map(|cache| cache.entries.as_slice()).unwrap_or(&[])
    }

    /// Entry `index` re-used for the file at `relative` with this stat, its
    /// tags decoded; `None` if its tag blob does not decode (then the file is
    /// parsed again).
    fn reuse(&self, index: usize, relative: &str, size: u64, mtime_ns: u128) -> Option<CacheEntry> {
        let cache = self.cache?;
        let meta = cache.entries.get(index)?;
        let encoded = cache.blobs.get(index).cloned().flatten();
        let path: Arc<str> = Arc::from(relative);
        let (tags, name_counts) = match &encoded {
            Some(range) => match cache.bytes.get(range.clone()).map(|bytes| decode_tags(bytes, &path)) {
                Some(Some((tags, counts))) => (Some(tags), Some(counts)),
                Some(None) => {
                    tracing::debug!(path = relative, "repo map: undecodable cache entry");
                    return None;
                }
                None => return None,
            },
            None => (None, None),
        };
        let mut note = meta.note.clone();
        if let Some(note) = &mut note {
            note.path = relative.to_string();
        }
        Some(CacheEntry { path, size, mtime_ns, hash: meta.hash, tags, name_counts, note, encoded })
    }
}

/// Reads a source file without following a symlink swapped in since the
/// walk or blocking on a FIFO, and refuses a file with several hard links
/// (one may be a name for a file outside the repository): the map's
/// signatures go to the model like any tool result.
fn read_regular_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let mut file = fs::OpenOptions::new().read(true).custom_flags(flags.bits() as i32).open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if metadata.nlink() > 1 {
        return Err(std::io::Error::other(format!("{} hard links; not read", metadata.nlink())));
    }
    let mut contents = Vec::with_capacity(metadata.len() as usize);
    file.read_to_end(&mut contents)?;
    Ok(contents)
}

fn index_one(relative: &str, absolute: &Path, walked_stat: Option<FileStat>, lookup: &CacheLookup<'_>) -> FileOutcome {
    let unreadable = |error: std::io::Error| {
        FileOutcome::Parsed(CacheEntry {
            path: Arc::from(relative),
            size: 0,
            mtime_ns: 0,
            hash: [0; 32],
            tags: None,
            name_counts: None,
            note: Some(Note {
                path: relative.to_string(),
                reason: NoteReason::Unreadable { error: error.to_string() },
            }),
            encoded: None,
        })
    };
    let FileStat { size, mtime_ns } = match walked_stat {
        Some(stat) => stat,
        None => match fs::metadata(absolute) {
            Ok(metadata) => {
                FileStat { size: metadata.len(), mtime_ns: metadata.modified().map(nanos_since_epoch).unwrap_or(0) }
            }
            Err(error) => return unreadable(error),
        },
    };
    let entries = lookup.entries();
    if let Some(&index) = lookup.by_path.get(relative) {
        let entry = &entries[index];
        if entry.size == size && entry.mtime_ns == mtime_ns && mtime_ns != 0 && mtime_ns < lookup.trusted_before_ns {
            if let Some(entry) = lookup.reuse(index, relative, size, mtime_ns) {
                return FileOutcome::Cached { entry, from: index };
            }
        }
    }
    if size > MAX_FILE_BYTES as u64 {
        // Skipped by size alone: never read a huge file.
        return FileOutcome::Parsed(CacheEntry {
            path: Arc::from(relative),
            size,
            mtime_ns,
            hash: [0; 32],
            tags: None,
            name_counts: None,
            note: Some(Note { path: relative.to_string(), reason: NoteReason::TooLarge { bytes: size } }),
            encoded: None,
        });
    }
    let contents = match read_regular_file(absolute) {
        Ok(contents) => contents,
        Err(error) => return unreadable(error),
    };
    let hash = *blake3::hash(&contents).as_bytes();
    if let Some(&index) =
        lookup.by_path.get(relative).filter(|&&index| entries[index].hash == hash).or_else(|| lookup.by_hash.get(&hash))
    {
        let entry = &entries[index];
        let same_stat = entry.size == size && entry.mtime_ns == mtime_ns;
        if let Some(reused) = lookup.reuse(index, relative, size, mtime_ns) {
            return if same_stat {
                FileOutcome::Cached { entry: reused, from: index }
            } else {
                // Same content, new stat: refresh the stat so the next run
                // is fast.
                FileOutcome::Refreshed(reused)
            };
        }
    }
    let extracted = extract::extract_file(relative, &contents);
    FileOutcome::Parsed(CacheEntry {
        path: Arc::from(relative),
        size,
        mtime_ns,
        hash,
        tags: extracted.tags,
        name_counts: None,
        note: extracted.note,
        encoded: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_tags(path: &Arc<str>) -> Vec<Tag> {
        let tag = |name: &str, kind, role, line, range: Range<usize>| Tag {
            path: path.clone(),
            name: Arc::from(name),
            kind,
            role,
            line,
            byte_range: range,
            details: None,
        };
        let mut method = tag("open", TagKind::Method, Role::Definition, 3, 40..400);
        method.details = TagDetails::boxed(
            Some("    pub fn open(path: &Path) -> Result<Store>".to_string()),
            Some("Opens the store.\n\nÜnïcode too.".to_string()),
            Some("Store".to_string()),
        );
        let mut bare = tag("Store", TagKind::Struct, Role::Definition, 0, 0..30);
        bare.details = TagDetails::boxed(None, Some(String::new()), None);
        vec![
            bare,
            method,
            tag("open", TagKind::Call, Role::Reference, 9, 500..504),
            tag("Path", TagKind::TypeRef, Role::Reference, 3, 70..74),
            tag("x", TagKind::MacroCall, Role::Reference, u32::MAX, 1 << 30..(1 << 30) + 1),
        ]
    }

    #[test]
    fn tag_blobs_round_trip() {
        let path: Arc<str> = Arc::from("src/store.rs");
        let tags = sample_tags(&path);
        let encoded = encode_tags(&tags);
        let (decoded, mut counts) = decode_tags(&encoded, &path).expect("decodes");
        assert_eq!(decoded, tags);
        // The decoder's name counts are what counting the tags gives.
        let mut expected: Vec<(Arc<str>, Role, u32)> = crate::repomap::name_counts(&tags)
            .into_iter()
            .map(|(name, role, count)| (name.clone(), role, count))
            .collect();
        expected.sort();
        counts.sort();
        assert_eq!(counts, expected);
        assert_eq!(decode_tags(&encode_tags(&[]), &path), Some((Vec::new(), Vec::new())));
    }

    #[test]
    fn every_kind_has_a_code() {
        for kind in KIND_CODES {
            let path: Arc<str> = Arc::from("a.rs");
            let mut tags = sample_tags(&path);
            tags[0].kind = kind;
            let decoded = decode_tags(&encode_tags(&tags), &path).map(|(tags, _)| tags);
            assert_eq!(decoded, Some(tags));
        }
    }

    #[test]
    fn damaged_tag_blobs_are_rejected_without_panicking() {
        let path: Arc<str> = Arc::from("src/store.rs");
        let encoded = encode_tags(&sample_tags(&path));
        for length in 0..encoded.len() {
            assert_eq!(decode_tags(&encoded[..length], &path), None, "prefix {length}");
        }
        let mut trailing = encoded.clone();
        trailing.push(0);
        assert_eq!(decode_tags(&trailing, &path), None);
        // Flip every byte in turn: decoding may succeed or fail, never panic.
        for index in 0..encoded.len() {
            let mut damaged = encoded.clone();
            damaged[index] ^= 0xff;
            let _ = decode_tags(&damaged, &path);
        }
        // Absurd counts must not allocate absurdly.
        let mut huge = Vec::new();
        put_varint(&mut huge, u64::MAX >> 1);
        assert_eq!(decode_tags(&huge, &path), None);
    }
}
