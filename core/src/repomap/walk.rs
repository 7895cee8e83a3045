//! Walking a workspace for the repo map: the `ignore` crate (`.gitignore`,
//! `.ignore` and git excludes are honoured even outside a git checkout;
//! hidden files and directories are skipped; symlinks are not followed); only
//! `.rs`, `.py` and `.pyi` files. The parallel walk records each file's size
//! and mtime (one stat per file) for the tag cache's freshness check.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::extract::Language;
use super::{Note, NoteReason};

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
pub(super) struct FileStat {
    pub(super) size: u64,
    pub(super) mtime_ns: u128,
}

pub(super) struct WalkedFile {
    pub(super) relative: String,
    pub(super) absolute: PathBuf,
    /// `None` if the walk could not stat the file (indexing retries).
    pub(super) stat: Option<FileStat>,
}

/// [`walk`] plus each file's stat, sorted by relative path.
pub(super) fn walk_with_stats(root: &Path) -> (Vec<WalkedFile>, Vec<Note>) {
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

pub(super) fn nanos_since_epoch(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH).map(|duration| duration.as_nanos()).unwrap_or(0)
}
