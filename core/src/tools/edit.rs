//! Edits with a pre-image journal so every change the agent makes can be
//! undone, including deleting files it created.
//!
//! Invariant: every byte the agent writes goes through `EditJournal::write`,
//! which records the file's previous content (or its absence) first; the
//! journal reads and writes only through `safe_fs`, undo included.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::safe_fs::{self, SafeFsError, MAX_READ_BYTES};

/// One recorded write: enough to restore the file and to notice when
/// someone changed it afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Absolute (sandbox-checked) path.
    pub path: PathBuf,
    /// Path relative to the workspace root, for messages.
    pub display: String,
    /// Content before the edit; `None` when the edit created the file.
    pub before: Option<Vec<u8>>,
    /// blake3 of the content the agent wrote.
    pub after_hash: [u8; 32],
    /// Directories the edit created (outermost first), removed again on undo if empty.
    pub created_dirs: Vec<PathBuf>,
}

/// Why undo did not run.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("refusing to undo: {} changed since the agent's last edit (undo with force to overwrite)", .0.join(", "))]
    Changed(Vec<String>),
    #[error("refusing to undo {0}: {1}")]
    Unsafe(String, SafeFsError),
}

/// A file changed by the agent, as reported in the run summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEdit {
    /// Path relative to the workspace root.
    pub path: String,
    pub created: bool,
}

/// A file restored by undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UndoneEdit {
    pub path: String,
    /// True when the file was created by the agent and has been deleted.
    pub deleted: bool,
}

/// Pre-images of everything written, oldest first.
#[derive(Debug, Default, Clone)]
pub struct EditJournal {
    entries: Vec<JournalEntry>,
}

impl EditJournal {
    /// Writes `content` to `path` (already sandbox-checked, under `root`)
    /// through `safe_fs`, recording the previous state first.
    pub fn write(&mut self, root: &Path, path: &Path, display: &str, content: &[u8]) -> Result<(), SafeFsError> {
        let before = safe_fs::read_if_exists(root, path, MAX_READ_BYTES)?;
        let written = safe_fs::write(root, path, content)?;
        self.entries.push(JournalEntry {
            path: path.to_path_buf(),
            display: display.to_string(),
            before,
            after_hash: *blake3::hash(content).as_bytes(),
            created_dirs: written.created_dirs,
        });
        Ok(())
    }

    /// A journal of entries loaded from the session store.
    pub fn from_entries(entries: Vec<JournalEntry>) -> Self {
        EditJournal { entries }
    }

    /// All recorded writes, oldest first.
    pub fn entries(&self) -> &[JournalEntry] {
        &self.entries
    }

    /// Files changed so far, each once, in first-change order.
    pub fn edits(&self) -> Vec<FileEdit> {
        let mut seen: Vec<FileEdit> = Vec::new();
        for entry in &self.entries {
            if !seen.iter().any(|e| e.path == entry.display) {
                seen.push(FileEdit { path: entry.display.clone(), created: entry.before.is_none() });
            }
        }
        seen
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of recorded writes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Reverts recorded writes newest first: all of them, or only those to
    /// `only` (a resolved path). Restored entries leave the journal. Unless
    /// `force`, nothing is touched when a file to restore no longer holds
    /// what the agent last wrote (someone edited it since).
    pub fn undo(&mut self, root: &Path, only: Option<&Path>, force: bool) -> Result<Vec<UndoneEdit>, UndoError> {
        let selected = |entry: &JournalEntry| only.is_none_or(|p| p == entry.path);
        // Every file is re-opened through safe_fs: one swapped for a symlink
        // (or a hard link, FIFO, ...) since the agent wrote it is refused
        // here, forced or not, before anything is restored.
        let mut changed: Vec<String> = Vec::new();
        let mut checked: Vec<&Path> = Vec::new();
        for entry in self.entries.iter().rev().filter(|e| selected(e)) {
            if checked.contains(&entry.path.as_path()) {
                continue;
            }
            checked.push(&entry.path);
            let current = match safe_fs::read_if_exists(root, &entry.path, MAX_READ_BYTES) {
                Ok(current) => current,
                Err(SafeFsError::TooLarge(..)) if force => continue,
                Err(err) => return Err(UndoError::Unsafe(entry.display.clone(), err)),
            };
            if current.map(|bytes| *blake3::hash(&bytes).as_bytes()) != Some(entry.after_hash) {
                changed.push(entry.display.clone());
            }
        }
        if !changed.is_empty() && !force {
            return Err(UndoError::Changed(changed));
        }
        let mut undone: Vec<UndoneEdit> = Vec::new();
        let mut index = self.entries.len();
        while index > 0 {
            index -= 1;
            if !selected(&self.entries[index]) {
                continue;
            }
            let entry = &self.entries[index];
            let restored = match &entry.before {
                Some(bytes) => safe_fs::write(root, &entry.path, bytes).map(|_| ()),
                None => safe_fs::remove_file(root, &entry.path).map(|_| ()),
            };
            // A failed restore keeps its entry (and the older ones) for another try.
            restored.map_err(|err| UndoError::Unsafe(entry.display.clone(), err))?;
            for dir in entry.created_dirs.iter().rev() {
                // Only empty directories go; anything else stays.
                let _ = safe_fs::remove_empty_dir(root, dir);
            }
            let entry = self.entries.remove(index);
            undone.retain(|u| u.path != entry.display);
            undone.push(UndoneEdit { path: entry.display.clone(), deleted: entry.before.is_none() });
        }
        undone.reverse();
        Ok(undone)
    }
}

/// Why an exact search/replace could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditMismatch {
    NotFound { closest: Option<ClosestRegion> },
    Ambiguous { lines: Vec<usize> },
    EmptySearch,
}

/// The part of the file most similar to a search text that did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosestRegion {
    /// 1-based line numbers, inclusive.
    pub start_line: usize,
    pub end_line: usize,
    pub text: String,
}

impl EditMismatch {
    pub fn render(&self, path: &str) -> String {
        match self {
            EditMismatch::EmptySearch => {
                "edit_file: `search` is empty; to create or overwrite a whole file use write_file".to_string()
            }
            EditMismatch::Ambiguous { lines } => format!(
                "edit_file: the search text matches {} times in {path} (starting at lines {}); nothing was written. \
                 Include more surrounding lines so it matches exactly once.",
                lines.len(),
                lines.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ")
            ),
            EditMismatch::NotFound { closest: None } => {
                format!("edit_file: the search text was not found in {path} (the file has no similar region); nothing was written.")
            }
            EditMismatch::NotFound { closest: Some(region) } => format!(
                "edit_file: the search text was not found in {path}; nothing was written. \
                 The closest region is lines {}-{}:\n{}\nCopy the search text exactly from the current file (read_file shows it).",
                region.start_line, region.end_line, region.text
            ),
        }
    }
}

/// Replaces the single exact occurrence of `search` in `content`.
pub fn apply_search_replace(content: &str, search: &str, replace: &str) -> Result<String, EditMismatch> {
    if search.is_empty() {
        return Err(EditMismatch::EmptySearch);
    }
    let starts: Vec<usize> = content.match_indices(search).map(|(i, _)| i).collect();
    match starts.as_slice() {
        [start] => {
            let mut out = String::with_capacity(content.len() + replace.len());
            out.push_str(&content[..*start]);
            out.push_str(replace);
            out.push_str(&content[start + search.len()..]);
            Ok(out)
        }
        [] => Err(EditMismatch::NotFound { closest: closest_region(content, search) }),
        many => Err(EditMismatch::Ambiguous {
            lines: many.iter().map(|&i| content[..i].matches('\n').count() + 1).collect(),
        }),
    }
}

/// Finds the window of lines most similar to `search` (same line count),
/// scoring each line pair by the Dice coefficient of character bigrams.
pub fn closest_region(content: &str, search: &str) -> Option<ClosestRegion> {
    let file_lines: Vec<&str> = content.lines().collect();
    let search_lines: Vec<&str> = search.lines().collect();
    if file_lines.is_empty() || search_lines.is_empty() {
        return None;
    }
    let window = search_lines.len().min(file_lines.len());
    let file_grams: Vec<Vec<u64>> = file_lines.iter().map(|l| bigrams(l)).collect();
    let search_grams: Vec<Vec<u64>> = search_lines.iter().map(|l| bigrams(l)).collect();
    // Bound the work on huge files: compare at most this many line pairs.
    const BUDGET: usize = 4_000_000;
    let starts = file_lines.len() - window + 1;
    let stride = ((starts * window) / BUDGET).max(1);
    let mut best: Option<(f64, usize)> = None;
    let mut start = 0;
    while start < starts {
        let score: f64 =
            (0..window).map(|k| dice(&file_grams[start + k], &search_grams[k])).sum::<f64>() / window as f64;
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, start));
        }
        start += stride;
    }
    let (score, start) = best?;
    if score < 0.2 {
        return None;
    }
    let end = start + window;
    let text = file_lines[start..end]
        .iter()
        .enumerate()
        .map(|(i, line)| format!("{:>5} | {line}", start + i + 1))
        .collect::<Vec<_>>()
        .join("\n");
    Some(ClosestRegion { start_line: start + 1, end_line: end, text })
}

fn bigrams(line: &str) -> Vec<u64> {
    let chars: Vec<char> = line.trim().chars().collect();
    let mut grams: Vec<u64> = chars.windows(2).map(|w| ((w[0] as u64) << 32) | w[1] as u64).collect();
    if grams.is_empty() {
        grams = chars.iter().map(|&c| c as u64).collect();
    }
    grams.sort_unstable();
    grams
}

fn dice(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
        }
    }
    2.0 * common as f64 / (a.len() + b.len()) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str =
        "fn alpha() {\n    let total = 1;\n    total + 1\n}\n\nfn beta() {\n    println!(\"beta\");\n}\n";

    #[test]
    fn unique_match_is_replaced() {
        let out = apply_search_replace(FILE, "total + 1", "total + 2").expect("applies");
        assert!(out.contains("total + 2"));
        assert_eq!(out.len(), FILE.len());
    }

    #[test]
    fn mismatch_reports_the_closest_region() {
        let err = apply_search_replace(FILE, "fn beta() {\n    println!(\"gamma\");\n}", "x").expect_err("no match");
        let EditMismatch::NotFound { closest: Some(region) } = &err else {
            panic!("expected a closest region: {err:?}")
        };
        assert_eq!((region.start_line, region.end_line), (6, 8));
        expect_test::expect![[r#"
            edit_file: the search text was not found in src/lib.rs; nothing was written. The closest region is lines 6-8:
                6 | fn beta() {
                7 |     println!("beta");
                8 | }
            Copy the search text exactly from the current file (read_file shows it)."#]]
        .assert_eq(&err.render("src/lib.rs"));
    }

    #[test]
    fn ambiguous_match_lists_lines() {
        let err = apply_search_replace("a\nb\na\n", "a", "c").expect_err("two matches");
        assert_eq!(err, EditMismatch::Ambiguous { lines: vec![1, 3] });
        assert_eq!(apply_search_replace("a", "", "c"), Err(EditMismatch::EmptySearch));
    }

    #[test]
    fn journal_undo_restores_and_deletes_created_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let existing = root.join("a.txt");
        std::fs::write(&existing, "original").expect("write");
        let created = root.join("new/dir/b.txt");
        let mut journal = EditJournal::default();
        journal.write(&root, &existing, "a.txt", b"first").expect("write");
        journal.write(&root, &existing, "a.txt", b"second").expect("write");
        journal.write(&root, &created, "new/dir/b.txt", b"fresh").expect("write");
        assert_eq!(
            journal.edits(),
            vec![
                FileEdit { path: "a.txt".into(), created: false },
                FileEdit { path: "new/dir/b.txt".into(), created: true }
            ]
        );
        std::fs::write(&existing, "changed by the user").expect("write");
        assert!(matches!(journal.undo(&root, None, false), Err(UndoError::Changed(files)) if files == ["a.txt"]));
        assert_eq!(std::fs::read_to_string(&created).expect("untouched"), "fresh");
        std::fs::write(&existing, "second").expect("write");
        let undone = journal.undo(&root, None, false).expect("undo");
        assert_eq!(undone.len(), 2);
        assert_eq!(std::fs::read_to_string(&existing).expect("read"), "original");
        assert!(!created.exists());
        assert!(!root.join("new").exists());
        assert!(journal.is_empty());
    }

    #[test]
    fn undo_refuses_a_file_swapped_for_a_symlink_even_when_forced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().canonicalize().expect("canonical");
        let root = base.join("ws");
        std::fs::create_dir_all(&root).expect("mkdir");
        let canary = base.join("secret.txt");
        std::fs::write(&canary, "canary").expect("write");
        let path = root.join("a.txt");
        std::fs::write(&path, "original").expect("write");
        let mut journal = EditJournal::default();
        journal.write(&root, &path, "a.txt", b"agent").expect("write");
        std::fs::remove_file(&path).expect("rm");
        std::os::unix::fs::symlink(&canary, &path).expect("symlink");
        for force in [false, true] {
            let err = journal.undo(&root, None, force).expect_err("refused");
            assert!(
                matches!(&err, UndoError::Unsafe(display, SafeFsError::Symlink { .. }) if display == "a.txt"),
                "{err}"
            );
        }
        assert_eq!(std::fs::read_to_string(&canary).expect("read"), "canary");
        assert_eq!(journal.len(), 1, "the entry stays for a later undo");
    }
}
