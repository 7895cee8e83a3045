//! Keeping the repo map current: a background build at startup (with
//! work-done progress), then per-file updates on didChange (debounced, with a
//! maximum wait so a definition typed during continuous typing reaches hover
//! within `reindexMaxWaitMs`), didSave and didChangeWatchedFiles.
//!
//! Invariant: tree-sitter parsing runs on the blocking pool, outside the map
//! lock; the write lock is held only to swap in the new tags.
//!
//! Invariant: a watched file is read only through `safe_fs::read` (inside the
//! workspace, no symlinks, regular with one link, opened `O_NONBLOCK`, size
//! checked on the descriptor before reading, at most `MAX_FILE_BYTES`), so an
//! event for a FIFO, a device or a huge file never blocks or reads it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sextant_core::repomap::{self, extract, IndexOptions, MAX_FILE_BYTES};
use sextant_core::tools::safe_fs;
use tower_lsp::lsp_types::{FileChangeType, FileEvent, Url};
use tower_lsp::Client;

use crate::progress::Progress;
use crate::session::{lock, Session};

/// Builds the map for the workspace root in the background.
pub async fn index_workspace(client: Client, session: Arc<Session>) {
    let Some(root) = session.root() else {
        session.index_ready.store(true, Ordering::Release);
        return;
    };
    let progress = Progress::begin(&client, &session, None, "Indexing repo map", false).await;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<repomap::Progress>();
    let build_root = root.clone();
    let build = tokio::task::spawn_blocking(move || {
        let options = IndexOptions { cache_dir: repomap::index::default_cache_dir(&build_root) };
        let report = move |event: repomap::Progress| {
            // The receiver going away only means nobody watches progress.
            let _ = sender.send(event);
        };
        repomap::load_or_build(&build_root, &options, &report)
    });
    let mut last_percent = None;
    while let Some(event) = receiver.recv().await {
        match event {
            repomap::Progress::Walked { files } => {
                progress.report(format!("{files} source files found"), Some(0)).await
            }
            repomap::Progress::Indexed { done, total } => {
                let percent = (done * 100).checked_div(total).unwrap_or(100) as u32;
                if last_percent != Some(percent) {
                    last_percent = Some(percent);
                    progress.report(format!("{done}/{total} files"), Some(percent)).await;
                }
            }
        }
    }
    let summary = match build.await {
        Ok(Ok(index)) => {
            let summary = format!("{} files, {} tags", index.map.file_count(), index.map.tag_count());
            if let Some(warning) = &index.cache_warning {
                tracing::warn!("repo map cache: {warning}");
            }
            let mut map = index.map;
            // Open documents may be newer than the disk.
            for (uri, text) in open_document_texts(&session) {
                if let Some(path) = session.relative_path(&uri) {
                    map.update_file(repomap::SourceFile::new(path, text.into_bytes()));
                }
            }
            session.update_map(|current| *current = map);
            summary
        }
        Ok(Err(error)) => {
            tracing::error!("repo map indexing failed: {error}");
            format!("indexing failed: {error}")
        }
        Err(error) => {
            tracing::error!("repo map indexing task failed: {error}");
            "indexing failed".to_string()
        }
    };
    session.index_ready.store(true, Ordering::Release);
    tracing::info!("repo map ready: {summary}");
    progress.end(summary).await;
}

fn open_document_texts(session: &Session) -> Vec<(Url, String)> {
    crate::session::read(&session.documents).iter().map(|(uri, doc)| (uri.clone(), doc.text.to_string())).collect()
}

/// Re-extracts one file's tags off the async threads and swaps them in.
pub async fn update_file(session: &Session, path: String, contents: Vec<u8>) {
    if contents.len() > MAX_FILE_BYTES || extract::Language::from_path(&path).is_none() {
        return;
    }
    let parse_path = path.clone();
    let extracted = tokio::task::spawn_blocking(move || extract::extract_file(&parse_path, &contents)).await;
    match extracted {
        Ok(extracted) => {
            session.update_map(|map| match extracted.tags {
                Some(tags) => map.set_file_tags(&path, tags),
                None => map.remove_file(&path),
            });
        }
        Err(error) => tracing::error!("re-indexing {path} failed: {error}"),
    }
}

/// Schedules a re-index of an open document after the debounce delay; a
/// newer edit to the same document supersedes it, except that the edits
/// pending for longer than the maximum wait are re-indexed anyway.
pub fn schedule_document_update(session: Arc<Session>, uri: Url) {
    let settings = session.settings();
    let debounce = Duration::from_millis(settings.reindex_debounce_ms);
    let max_wait = Duration::from_millis(settings.reindex_max_wait_ms.max(settings.reindex_debounce_ms));
    let now = Instant::now();
    let (generation, since) = {
        let mut pending = lock(&session.pending_reindex);
        let entry = pending.entry(uri.clone()).or_default();
        entry.generation += 1;
        (entry.generation, *entry.since.get_or_insert(now))
    };
    let deadline = (now + debounce).min(since + max_wait);
    tokio::spawn(async move {
        tokio::time::sleep_until(deadline.into()).await;
        {
            let mut pending = lock(&session.pending_reindex);
            let Some(entry) = pending.get_mut(&uri) else { return };
            let newest = entry.generation == generation;
            // The first task to reach the maximum wait runs for all edits since.
            let overdue = entry.since == Some(since) && Instant::now() >= since + max_wait;
            if !newest && !overdue {
                return;
            }
            entry.since = None;
        }
        update_open_document(&session, &uri).await;
        // Bring the syntax tree up to date while the editor is idle.
        let session = session.clone();
        let _ = tokio::task::spawn_blocking(move || session.document_with_tree(&uri)).await;
    });
}

pub async fn update_open_document(session: &Session, uri: &Url) {
    let Some(path) = session.relative_path(uri) else { return };
    let Some(document) = session.document(uri) else { return };
    update_file(session, path, document.text.to_string().into_bytes()).await;
}

/// Applies file-watcher events: open documents are the source of truth for
/// their own contents, everything else is read from disk.
pub async fn apply_file_events(session: &Session, events: Vec<FileEvent>) {
    for event in events {
        let Some(path) = session.relative_path(&event.uri) else { continue };
        if event.typ == FileChangeType::DELETED {
            session.update_map(|map| map.remove_file(&path));
            continue;
        }
        if session.document(&event.uri).is_some() {
            continue;
        }
        if extract::Language::from_path(&path).is_none() {
            continue;
        }
        let (Ok(file_path), Some(root)) = (event.uri.to_file_path(), session.root()) else { continue };
        // Metadata first, on the descriptor: never blocks, never reads a huge file.
        let read = tokio::task::spawn_blocking(move || safe_fs::read(&root, &file_path, MAX_FILE_BYTES as u64)).await;
        match read {
            Ok(Ok(contents)) => update_file(session, path, contents).await,
            Ok(Err(error)) => {
                tracing::warn!("not indexing {path}: {error}");
                session.update_map(|map| map.remove_file(&path));
            }
            Err(error) => tracing::error!("reading {path} failed: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Document;
    use crate::session::write;
    use tower_lsp::lsp_types::{Range, TextDocumentContentChangeEvent};

    fn session_at(root: &std::path::Path) -> Arc<Session> {
        let session = Arc::new(Session::default());
        *write(&session.root) = Some(root.to_path_buf());
        session
    }

    fn defines(session: &Session, name: &str) -> bool {
        !crate::session::read(&session.map).definitions(name).is_empty()
    }

    /// Bytes this process has read through read(2) and friends so far.
    fn bytes_read() -> u64 {
        let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
        io.lines().find_map(|line| line.strip_prefix("rchar: ")).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
    }

    #[tokio::test]
    async fn watched_file_events_never_read_fifos_devices_or_huge_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("ok.rs"), "fn visible_definition() {}\n").expect("write");
        let fifo = std::ffi::CString::new(root.join("fifo.rs").as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
        std::os::unix::fs::symlink("/dev/zero", root.join("zero.rs")).expect("symlink");
        // Sparse: 1 GiB that costs no disk, and a definition at its start.
        let huge = std::fs::File::create(root.join("huge.rs")).expect("create");
        std::io::Write::write_all(&mut &huge, b"fn huge_definition() {}\n").expect("write");
        huge.set_len(1 << 30).expect("set_len");
        let session = session_at(root);
        let events: Vec<FileEvent> = ["fifo.rs", "zero.rs", "huge.rs", "ok.rs"]
            .iter()
            .map(|name| FileEvent {
                uri: Url::from_file_path(root.join(name)).expect("url"),
                typ: FileChangeType::CHANGED,
            })
            .collect();
        let before = bytes_read();
        // Opening the FIFO by name blocked forever (no writer); /dev/zero read until memory ran out.
        tokio::time::timeout(Duration::from_secs(20), apply_file_events(&session, events))
            .await
            .expect("events applied");
        let read = bytes_read().saturating_sub(before);
        assert!(read < 64 << 20, "{read} bytes read");
        assert!(defines(&session, "visible_definition"), "the regular file is indexed");
        assert!(!defines(&session, "huge_definition"), "the huge file is not");
        let files: Vec<String> = crate::session::read(&session.map).files().map(str::to_string).collect();
        assert_eq!(files, vec!["ok.rs".to_string()]);
    }

    #[tokio::test]
    async fn a_definition_typed_during_continuous_typing_is_indexed_within_the_maximum_wait() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = session_at(dir.path());
        {
            let mut settings = write(&session.settings);
            settings.reindex_debounce_ms = 200;
            settings.reindex_max_wait_ms = 400;
        }
        let uri = Url::from_file_path(dir.path().join("main.rs")).expect("url");
        let document = Document::new("fn main() {}\n", 1, "rust".into(), Default::default());
        write(&session.documents).insert(uri.clone(), document);
        let type_text = |text: &str| {
            let mut documents = write(&session.documents);
            let document = documents.get_mut(&uri).expect("open");
            let end = document.position(document.text.len_chars());
            let change = TextDocumentContentChangeEvent {
                range: Some(Range::new(end, end)),
                range_length: None,
                text: text.into(),
            };
            document.apply_change(&change);
        };
        type_text("fn typed_while_typing() {}\n");
        schedule_document_update(session.clone(), uri.clone());
        // Keep typing every 50 ms (well inside the debounce) for 1.5 s.
        let start = Instant::now();
        let mut seen_while_typing = None;
        while start.elapsed() < Duration::from_millis(1500) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            type_text("// more\n");
            schedule_document_update(session.clone(), uri.clone());
            if seen_while_typing.is_none() && defines(&session, "typed_while_typing") {
                seen_while_typing = Some(start.elapsed());
            }
        }
        let seen = seen_while_typing.expect("the new definition reached the map before typing stopped");
        println!("definition indexed {} ms after it was typed, typing on", seen.as_millis());
    }
}
