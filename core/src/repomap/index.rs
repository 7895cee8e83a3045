//! The filesystem edge of the repo map: [`load_or_build`] walks a workspace
//! (`walk.rs`), re-uses what it can from the tag cache
//! (`cache.rs`, whose format is documented there), parses the rest in
//! parallel and builds the [`RepoMap`]. Everything else in `repomap` is pure.
//!
//! A file is re-used without reading it when size and mtime match its cache
//! entry and the mtime is older than the cache itself by more than
//! [`RACY_WINDOW`] (the git index trick); otherwise it is read and hashed, and
//! re-used if the hash matches any cached entry (so renames and touches are
//! cheap). Deleted files are dropped; the cache is rewritten (atomically) only
//! when something changed.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;
use serde::Serialize;

use super::cache::{decode_tags, read_cache, write_cache, CacheEntry, CacheMeta, LoadedCache};
pub use super::cache::{default_cache_dir, CACHE_FORMAT_VERSION};
use super::extract::{self, Language};
use super::walk::{nanos_since_epoch, walk_with_stats, FileStat, WalkedFile};
pub use super::walk::{walk, WalkResult};
use super::{FxHashMap, FxHashSet, Note, NoteReason, RepoMap, MAX_FILE_BYTES};

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
    progress(Progress::Walked { files: walked_files.len() });

    let (cache, mut cache_warning) = match cache {
        Some(Ok(cache)) => (cache, None),
        Some(Err(warning)) => (None, Some(warning)),
        None => (None, None),
    };
    if cache.is_none() {
        compile_queries_in_background(&walked_files);
    }
    let lookup = CacheLookup::new(cache.as_ref());
    let outcomes = index_files(&walked_files, &lookup, progress);
    let merged = merge_outcomes(outcomes, &walked_files, lookup.entries(), cache.is_none());
    let mut stats = merged.stats;
    tracing::debug!(parsed = stats.parsed, cached = stats.cached, elapsed = ?started.elapsed(), "repo map: files indexed");

    if let (Some(cache_dir), true) = (options.cache_dir.as_deref(), merged.changed) {
        match write_cache(cache_dir, &merged.entries, cache.as_ref()) {
            Ok(()) => stats.cache_written = true,
            Err(warning) => cache_warning = Some(warning),
        }
    }
    // The old cache's bytes are no longer needed; free them before building.
    drop(lookup);
    drop(cache);

    let (map, notes) = build_map(merged.entries, walk_notes);
    tracing::debug!(elapsed = ?started.elapsed(), "repo map: in-memory index built");
    Ok(RepoIndex { root: root.to_path_buf(), map, notes, stats, cache_warning })
}

/// Indexes every walked file in parallel; outcomes come back in path order.
fn index_files(
    walked_files: &[WalkedFile],
    lookup: &CacheLookup<'_>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Vec<FileOutcome> {
    let total = walked_files.len();
    // Largest files first, so no big parse is left to run alone at the end
    // while the other cores idle. Results go back to path order below.
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(walked_files[index].stat.map_or(0, |stat| stat.size)));
    let done = AtomicUsize::new(0);
    let indexed: Vec<(usize, FileOutcome)> = order
        .par_iter()
        .map(|&index| {
            let file = &walked_files[index];
            let outcome = index_one(&file.relative, &file.absolute, file.stat, lookup);
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress(Progress::Indexed { done: finished, total });
            (index, outcome)
        })
        .collect();
    let mut in_path_order: Vec<Option<FileOutcome>> = (0..total).map(|_| None).collect();
    for (index, outcome) in indexed {
        in_path_order[index] = Some(outcome);
    }
    in_path_order.into_iter().flatten().collect()
}

/// The next cache's entries (in path order), the run's counters, and whether
/// anything differs from the old cache (then it is rewritten).
struct Merged {
    entries: Vec<CacheEntry>,
    stats: IndexStats,
    changed: bool,
}

/// Counts the outcomes against the old cache's `entries`: renames, refreshed
/// stats, parses and dropped (deleted) files all mean the cache changed.
fn merge_outcomes(
    outcomes: Vec<FileOutcome>,
    walked_files: &[WalkedFile],
    entries: &[CacheMeta],
    no_cache: bool,
) -> Merged {
    let mut stats = IndexStats { files: walked_files.len(), ..IndexStats::default() };
    let mut changed = no_cache;
    let mut reused = vec![false; entries.len()];
    let mut new_entries: Vec<CacheEntry> = Vec::with_capacity(outcomes.len());
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
    Merged { entries: new_entries, stats, changed }
}

/// The in-memory map of the entries' tags, and every note (walk and files)
/// sorted.
fn build_map(entries: Vec<CacheEntry>, walk_notes: Vec<Note>) -> (RepoMap, Vec<Note>) {
    let mut notes = walk_notes;
    let mut files = Vec::with_capacity(entries.len());
    for entry in entries {
        notes.extend(entry.note);
        if let Some(tags) = entry.tags {
            files.push((entry.path, tags, entry.name_counts));
        }
    }
    notes.sort();
    (RepoMap::from_shared_tags(files), notes)
}

/// The old cache and its indexes, shared by the indexing workers.
struct CacheLookup<'a> {
    cache: Option<&'a LoadedCache>,
    by_path: FxHashMap<&'a str, usize>,
    by_hash: FxHashMap<[u8; 32], usize>,
    trusted_before_ns: u128,
}

impl<'a> CacheLookup<'a> {
    fn new(cache: Option<&'a LoadedCache>) -> Self {
        let entries: &[CacheMeta] = cache.map(|cache| cache.entries.as_slice()).unwrap_or(&[]);
        let by_path = entries.iter().enumerate().map(|(index, entry)| (entry.path.as_str(), index)).collect();
        let by_hash = entries.iter().enumerate().map(|(index, entry)| (entry.hash, index)).collect();
        let trusted_before_ns =
            cache.map(|cache| cache.written_at_ns.saturating_sub(RACY_WINDOW.as_nanos())).unwrap_or(0);
        CacheLookup { cache, by_path, by_hash, trusted_before_ns }
    }

    fn entries(&self) -> &'a [CacheMeta] {
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

    /// The cached entry for `relative` when its stat is unchanged and old
    /// enough to trust without reading the file.
    fn reuse_by_stat(&self, relative: &str, size: u64, mtime_ns: u128) -> Option<FileOutcome> {
        let index = *self.by_path.get(relative)?;
        let entry = &self.entries()[index];
        let trusted =
            entry.size == size && entry.mtime_ns == mtime_ns && mtime_ns != 0 && mtime_ns < self.trusted_before_ns;
        if !trusted {
            return None;
        }
        let entry = self.reuse(index, relative, size, mtime_ns)?;
        Some(FileOutcome::Cached { entry, from: index })
    }

    /// The cached entry with the file's content `hash`: its own path's entry
    /// first, else any (a rename or copy).
    fn reuse_by_hash(&self, relative: &str, size: u64, mtime_ns: u128, hash: [u8; 32]) -> Option<FileOutcome> {
        let entries = self.entries();
        let index = *self
            .by_path
            .get(relative)
            .filter(|&&index| entries[index].hash == hash)
            .or_else(|| self.by_hash.get(&hash))?;
        let entry = &entries[index];
        let same_stat = entry.size == size && entry.mtime_ns == mtime_ns;
        let reused = self.reuse(index, relative, size, mtime_ns)?;
        Some(if same_stat {
            FileOutcome::Cached { entry: reused, from: index }
        } else {
            // Same content, new stat: refresh the stat so the next run is fast.
            FileOutcome::Refreshed(reused)
        })
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

/// A file with no tags and a note saying why (unreadable, too large).
fn skipped(relative: &str, size: u64, mtime_ns: u128, reason: NoteReason) -> FileOutcome {
    FileOutcome::Parsed(CacheEntry {
        path: Arc::from(relative),
        size,
        mtime_ns,
        hash: [0; 32],
        tags: None,
        name_counts: None,
        note: Some(Note { path: relative.to_string(), reason }),
        encoded: None,
    })
}

fn unreadable(relative: &str, error: std::io::Error) -> FileOutcome {
    skipped(relative, 0, 0, NoteReason::Unreadable { error: error.to_string() })
}

fn index_one(relative: &str, absolute: &Path, walked_stat: Option<FileStat>, lookup: &CacheLookup<'_>) -> FileOutcome {
    let FileStat { size, mtime_ns } = match walked_stat {
        Some(stat) => stat,
        None => match fs::metadata(absolute) {
            Ok(metadata) => {
                FileStat { size: metadata.len(), mtime_ns: metadata.modified().map(nanos_since_epoch).unwrap_or(0) }
            }
            Err(error) => return unreadable(relative, error),
        },
    };
    if let Some(outcome) = lookup.reuse_by_stat(relative, size, mtime_ns) {
        return outcome;
    }
    if size > MAX_FILE_BYTES as u64 {
        // Skipped by size alone: never read a huge file.
        return skipped(relative, size, mtime_ns, NoteReason::TooLarge { bytes: size });
    }
    let contents = match read_regular_file(absolute) {
        Ok(contents) => contents,
        Err(error) => return unreadable(relative, error),
    };
    let hash = *blake3::hash(&contents).as_bytes();
    if let Some(outcome) = lookup.reuse_by_hash(relative, size, mtime_ns, hash) {
        return outcome;
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
