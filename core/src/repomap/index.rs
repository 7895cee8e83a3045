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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::extract::{self, Language};
use super::{FxHashMap, Note, NoteReason, RepoMap, Tag, MAX_FILE_BYTES};

/// Bump when the cache layout or tag extraction semantics change.
const CACHE_FORMAT_VERSION: u32 = 2;
/// Files modified this close to the cache write are always re-hashed.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Errors that stop indexing as a whole (per-file problems are [`Note`]s).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("workspace root {path} is not a readable directory: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
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
    let collected = std::sync::Mutex::new(WalkResult::default());
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
                        if !entry
                            .file_type()
                            .is_some_and(|file_type| file_type.is_file())
                        {
                            return ignore::WalkState::Continue;
                        }
                        let relative = relative_path(root, entry.path());
                        if Language::from_path(&relative).is_none() {
                            return ignore::WalkState::Continue;
                        }
                        Ok((relative, entry.into_path()))
                    }
                    Err(error) => {
                        let path = error_path(&error)
                            .map(|path| relative_path(root, &path))
                            .unwrap_or_default();
                        Err(Note {
                            path,
                            reason: NoteReason::Unreadable {
                                error: error.to_string(),
                            },
                        })
                    }
                };
                if let Ok(mut result) = collected.lock() {
                    match found {
                        Ok(file) => result.files.push(file),
                        Err(note) => result.notes.push(note),
                    }
                }
                ignore::WalkState::Continue
            })
        });
    let mut result = collected
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    result.files.sort();
    result.notes.sort();
    result
}

fn error_path(error: &ignore::Error) -> Option<PathBuf> {
    match error {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}

/// `root`-relative path with `/` separators (lossy for non-UTF-8 names).
fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// The default cache directory for a workspace root (see the module docs).
/// `None` when the platform has no user cache directory.
pub fn default_cache_dir(root: &Path) -> Option<PathBuf> {
    let canonical = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let digest = blake3::hash(canonical.to_string_lossy().as_bytes()).to_hex();
    Some(
        dirs::cache_dir()?
            .join("sextant")
            .join("repomap")
            .join(&digest.as_str()[..16]),
    )
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
    /// Length of the entry's postcard `Vec<Tag>` blob; `None` for skipped
    /// files (binary, not UTF-8, too large).
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

/// One file's record on its way into the map and the next cache file.
#[derive(Debug, Clone)]
struct CacheEntry {
    path: String,
    size: u64,
    mtime_ns: u128,
    hash: [u8; 32],
    /// `None` for skipped files (binary, not UTF-8, too large).
    tags: Option<Vec<Tag>>,
    note: Option<Note>,
    /// The encoded `tags` in the old cache's bytes, when they came from there.
    encoded: Option<Range<usize>>,
}

fn query_hash() -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&CACHE_FORMAT_VERSION.to_le_bytes());
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
        Err(error) => {
            return Err(format!(
                "cannot read the tag cache {}: {error}",
                path.display()
            ))
        }
    };
    let corrupt = |problem: &dyn std::fmt::Display| {
        format!("ignoring a corrupt tag cache {}: {problem}", path.display())
    };
    let Some(rest) = bytes.strip_prefix(CACHE_MAGIC.as_slice()) else {
        return Err(corrupt(&"not a sextant tag cache"));
    };
    let (header, blob_region) =
        postcard::take_from_bytes::<CacheHeader>(rest).map_err(|error| corrupt(&error))?;
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
    Ok(Some(LoadedCache {
        written_at_ns: header.written_at_ns,
        entries: header.entries,
        bytes,
        blobs,
    }))
}

/// Writes the cache: tags re-used from `old` are copied as encoded there,
/// the others are encoded in parallel.
fn write_cache(
    cache_dir: &Path,
    entries: &[CacheEntry],
    old: Option<&LoadedCache>,
) -> Result<(), String> {
    let path = cache_path(cache_dir);
    let blobs: Vec<Option<std::borrow::Cow<'_, [u8]>>> = entries
        .par_iter()
        .map(|entry| {
            let Some(tags) = &entry.tags else {
                return Ok(None);
            };
            let copied = entry
                .encoded
                .clone()
                .and_then(|range| old.and_then(|old| old.bytes.get(range)));
            match copied {
                Some(bytes) => Ok(Some(std::borrow::Cow::Borrowed(bytes))),
                None => postcard::to_allocvec(tags).map(|bytes| Some(bytes.into())),
            }
        })
        .collect::<Result<_, postcard::Error>>()
        .map_err(|error| format!("cannot encode the tag cache: {error}"))?;
    let header = CacheHeader {
        format: CACHE_FORMAT_VERSION,
        query_hash: query_hash(),
        written_at_ns: nanos_since_epoch(SystemTime::now()),
        entries: entries
            .iter()
            .zip(&blobs)
            .map(|(entry, blob)| CacheMeta {
                path: entry.path.clone(),
                size: entry.size,
                mtime_ns: entry.mtime_ns,
                hash: entry.hash,
                tags_bytes: blob.as_ref().map(|blob| blob.len() as u64),
                note: entry.note.clone(),
            })
            .collect(),
    };
    let header_bytes = postcard::to_allocvec(&header)
        .map_err(|error| format!("cannot encode the tag cache: {error}"))?;
    let total = CACHE_MAGIC.len()
        + header_bytes.len()
        + blobs.iter().flatten().map(|blob| blob.len()).sum::<usize>();
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(CACHE_MAGIC);
    bytes.extend_from_slice(&header_bytes);
    for blob in blobs.iter().flatten() {
        bytes.extend_from_slice(blob);
    }
    fs::create_dir_all(cache_dir)
        .map_err(|error| format!("cannot create {}: {error}", cache_dir.display()))?;
    // Write-then-rename so a concurrent reader never sees half a file.
    let temporary = cache_dir.join(format!(
        "tags-v{CACHE_FORMAT_VERSION}.{}.tmp",
        std::process::id()
    ));
    fs::write(&temporary, &bytes)
        .map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
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
    time.duration_since(UNIX_EPOCH)
        .map(|duration| duration.as_nanos())
        .unwrap_or(0)
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
    fs::read_dir(root).map_err(|source| IndexError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let started = std::time::Instant::now();
    // The walk and the cache read are independent: overlap them.
    let (walked, cache) = rayon::join(
        || walk(root),
        || options.cache_dir.as_deref().map(read_cache),
    );
    tracing::debug!(files = walked.files.len(), elapsed = ?started.elapsed(), "repo map: walked and cache read");
    let total = walked.files.len();
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
    let entries: &[CacheMeta] = cache
        .as_ref()
        .map(|cache| cache.entries.as_slice())
        .unwrap_or(&[]);
    let by_path: FxHashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| (entry.path.as_str(), index))
        .collect();
    let by_hash: FxHashMap<[u8; 32], usize> = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| (entry.hash, index))
        .collect();
    let trusted_before_ns = cache
        .as_ref()
        .map(|cache| cache.written_at_ns.saturating_sub(RACY_WINDOW.as_nanos()))
        .unwrap_or(0);
    let lookup = CacheLookup {
        cache: cache.as_ref(),
        by_path,
        by_hash,
        trusted_before_ns,
    };

    let done = AtomicUsize::new(0);
    let outcomes: Vec<FileOutcome> = walked
        .files
        .par_iter()
        .map(|(relative, absolute)| {
            let outcome = index_one(relative, absolute, &lookup);
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(Progress::Indexed {
                done: finished,
                total,
            });
            outcome
        })
        .collect();

    let mut stats = IndexStats {
        files: total,
        ..IndexStats::default()
    };
    let mut changed = cache.is_none();
    let mut reused = vec![false; entries.len()];
    let mut new_entries: Vec<CacheEntry> = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        match outcome {
            FileOutcome::Cached { entry, from } => {
                stats.cached += 1;
                if entries[from].path != entry.path {
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
    let walked_paths: std::collections::HashSet<&str> =
        walked.files.iter().map(|(path, _)| path.as_str()).collect();
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

    let mut notes = walked.notes;
    let mut files = Vec::with_capacity(new_entries.len());
    for entry in new_entries {
        notes.extend(entry.note);
        if let Some(tags) = entry.tags {
            files.push((entry.path, tags));
        }
    }
    notes.sort();
    let map = RepoMap::from_tags(files);
    tracing::debug!(elapsed = ?started.elapsed(), "repo map: in-memory index built");
    Ok(RepoIndex {
        root: root.to_path_buf(),
        map,
        notes,
        stats,
        cache_warning,
    })
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
        self.cache
            .map(|cache| cache.entries.as_slice())
            .unwrap_or(&[])
    }

    /// Entry `index` re-used for the file at `relative` with this stat, its
    /// tags decoded; `None` if its tag blob does not decode (then the file is
    /// parsed again).
    fn reuse(&self, index: usize, relative: &str, size: u64, mtime_ns: u128) -> Option<CacheEntry> {
        let cache = self.cache?;
        let meta = cache.entries.get(index)?;
        let encoded = cache.blobs.get(index).cloned().flatten();
        let tags = match &encoded {
            Some(range) => match cache
                .bytes
                .get(range.clone())
                .map(postcard::from_bytes::<Vec<Tag>>)
            {
                Some(Ok(tags)) => Some(tags),
                Some(Err(error)) => {
                    tracing::debug!(path = relative, %error, "repo map: undecodable cache entry");
                    return None;
                }
                None => return None,
            },
            None => None,
        };
        let mut note = meta.note.clone();
        if let Some(note) = &mut note {
            note.path = relative.to_string();
        }
        Some(CacheEntry {
            path: relative.to_string(),
            size,
            mtime_ns,
            hash: meta.hash,
            tags,
            note,
            encoded,
        })
    }
}

fn index_one(relative: &str, absolute: &Path, lookup: &CacheLookup<'_>) -> FileOutcome {
    let unreadable = |error: std::io::Error| {
        FileOutcome::Parsed(CacheEntry {
            path: relative.to_string(),
            size: 0,
            mtime_ns: 0,
            hash: [0; 32],
            tags: None,
            note: Some(Note {
                path: relative.to_string(),
                reason: NoteReason::Unreadable {
                    error: error.to_string(),
                },
            }),
            encoded: None,
        })
    };
    let metadata = match fs::metadata(absolute) {
        Ok(metadata) => metadata,
        Err(error) => return unreadable(error),
    };
    let size = metadata.len();
    let mtime_ns = metadata.modified().map(nanos_since_epoch).unwrap_or(0);
    let entries = lookup.entries();
    if let Some(&index) = lookup.by_path.get(relative) {
        let entry = &entries[index];
        if entry.size == size
            && entry.mtime_ns == mtime_ns
            && mtime_ns != 0
            && mtime_ns < lookup.trusted_before_ns
        {
            if let Some(entry) = lookup.reuse(index, relative, size, mtime_ns) {
                return FileOutcome::Cached { entry, from: index };
            }
        }
    }
    if size > MAX_FILE_BYTES as u64 {
        // Skipped by size alone: never read a huge file.
        return FileOutcome::Parsed(CacheEntry {
            path: relative.to_string(),
            size,
            mtime_ns,
            hash: [0; 32],
            tags: None,
            note: Some(Note {
                path: relative.to_string(),
                reason: NoteReason::TooLarge { bytes: size },
            }),
            encoded: None,
        });
    }
    let contents = match fs::read(absolute) {
        Ok(contents) => contents,
        Err(error) => return unreadable(error),
    };
    let hash = *blake3::hash(&contents).as_bytes();
    if let Some(&index) = lookup
        .by_path
        .get(relative)
        .filter(|&&index| entries[index].hash == hash)
        .or_else(|| lookup.by_hash.get(&hash))
    {
        let entry = &entries[index];
        let same_stat = entry.size == size && entry.mtime_ns == mtime_ns;
        if let Some(reused) = lookup.reuse(index, relative, size, mtime_ns) {
            return if same_stat {
                FileOutcome::Cached {
                    entry: reused,
                    from: index,
                }
            } else {
                // Same content, new stat: refresh the stat so the next run
                // is fast.
                FileOutcome::Refreshed(reused)
            };
        }
    }
    let extracted = extract::extract_file(relative, &contents);
    FileOutcome::Parsed(CacheEntry {
        path: relative.to_string(),
        size,
        mtime_ns,
        hash,
        tags: extracted.tags,
        note: extracted.note,
        encoded: None,
    })
}
