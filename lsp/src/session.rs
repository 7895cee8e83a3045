//! The server's state: open documents, the repo map, settings, the provider
//! handle and the caches. Handlers get `&Session` and stay short.
//!
//! Invariant: std locks here are held only for short, non-async sections
//! (never across an `.await`), so a slow model call can't block typing.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use lru::LruCache;
use sextant_core::config::Config;
use sextant_core::providers::Provider;
use sextant_core::repomap::RepoMap;
use tokio_util::sync::CancellationToken;
use tower_lsp::lsp_types::Url;
use tree_sitter::Tree;

use crate::completion_cache::CompletionCache;
use crate::document::{Document, PositionEncoding};
use crate::prompt::{rank_for_file, CompletionPrompt, RankedDefinitions};
use crate::settings::Settings;
use crate::syntax_tree::SyntaxTree;

/// What the client told us it can do (from `initialize`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientFlags {
    pub work_done_progress: bool,
    pub show_document: bool,
    pub code_action_resolve: bool,
    pub apply_edit: bool,
    pub watched_files_dynamic: bool,
    /// `hover.contentFormat` includes markdown.
    pub hover_markdown: bool,
    /// `completionItem.documentationFormat` includes markdown.
    pub completion_markdown: bool,
    /// `workspace.workspaceEdit.documentChanges`.
    pub document_changes: bool,
}

/// A cached ranking of the repo map for one file.
pub struct RankingCache {
    pub generation: u64,
    pub computed: Instant,
    pub ranked: Arc<RankedDefinitions>,
}

/// A ranking newer than this is reused even if the map changed since: ranks
/// move slowly, and re-ranking on every debounced re-index would cost a few
/// ms per keystroke pause on large maps.
const RANKING_MAX_STALENESS: Duration = Duration::from_secs(2);

/// Files whose ranking is kept: a ranking is ~100 tags and takes up to tens
/// of ms on a large map, and editors complete in several files at once.
const RANKING_CACHE_FILES: usize = 32;

/// A document's edits since its last re-index.
#[derive(Debug, Clone, Copy, Default)]
pub struct PendingReindex {
    /// Bumped by every edit; the task of the newest edit runs after the debounce.
    pub generation: u64,
    /// The first edit not yet re-indexed: by this plus the maximum wait the
    /// re-index runs even if typing continues.
    pub since: Option<Instant>,
}

/// What went into the last inline-completion prompt (`sextant.showLastPrompt`).
#[derive(Debug, Clone)]
pub struct PromptRecord {
    pub uri: Url,
    pub prompt: CompletionPrompt,
    pub provider: String,
    pub outcome: String,
    /// The exact text the model was given (`Completion::prompt`), when a model ran.
    pub model_prompt: Option<String>,
    /// The hole's shape and why it was chosen.
    pub hole: Option<String>,
    /// Why generation stopped.
    pub stop: Option<String>,
    /// What the model sent before the stopper and the clean-up.
    pub raw: Option<String>,
}

pub struct Session {
    pub root: RwLock<Option<PathBuf>>,
    pub encoding: RwLock<PositionEncoding>,
    pub client: RwLock<ClientFlags>,
    pub documents: RwLock<HashMap<Url, Document>>,
    pub map: RwLock<RepoMap>,
    /// Bumped on every change to `map` (invalidates `ranking`).
    pub map_generation: AtomicU64,
    /// Per-file repo-map rankings (LRU), reused across keystrokes.
    pub ranking: Mutex<LruCache<Option<String>, RankingCache>>,
    pub index_ready: AtomicBool,
    /// The merged core config (user file, project file, env, client JSON).
    pub config: RwLock<Config>,
    /// This server's knobs, derived from `config`.
    pub settings: RwLock<Settings>,
    /// Built on first use from the config; dropped when it changes.
    pub chat_provider: tokio::sync::Mutex<Option<Arc<dyn Provider>>>,
    pub completion_provider: tokio::sync::Mutex<Option<Arc<dyn Provider>>>,
    pub completions: Mutex<CompletionCache>,
    /// Newest inline-completion request per document; a newer one cancels it.
    pub inflight: Mutex<HashMap<Url, CancellationToken>>,
    /// Per-document edits not yet re-indexed, for debounced re-indexing.
    pub pending_reindex: Mutex<HashMap<Url, PendingReindex>>,
    pub last_prompt: Mutex<Option<PromptRecord>>,
    /// AI hover explanations keyed by (symbol, hash of the definition site's content).
    pub hover_cache: Mutex<LruCache<(String, u64), String>>,
    pub output_counter: AtomicU64,
}

impl Default for Session {
    fn default() -> Self {
        let settings = Settings::default();
        let cache_size = settings.completion.cache_size;
        Self {
            root: RwLock::new(None),
            encoding: RwLock::new(PositionEncoding::default()),
            client: RwLock::new(ClientFlags::default()),
            documents: RwLock::new(HashMap::new()),
            map: RwLock::new(RepoMap::new()),
            map_generation: AtomicU64::new(0),
            ranking: Mutex::new(LruCache::new(NonZeroUsize::new(RANKING_CACHE_FILES).unwrap_or(NonZeroUsize::MIN))),
            index_ready: AtomicBool::new(false),
            config: RwLock::new(Config::default()),
            settings: RwLock::new(settings),
            chat_provider: tokio::sync::Mutex::new(None),
            completion_provider: tokio::sync::Mutex::new(None),
            completions: Mutex::new(CompletionCache::new(cache_size)),
            inflight: Mutex::new(HashMap::new()),
            pending_reindex: Mutex::new(HashMap::new()),
            last_prompt: Mutex::new(None),
            hover_cache: Mutex::new(LruCache::new(std::num::NonZeroUsize::MIN.saturating_add(255))),
            output_counter: AtomicU64::new(0),
        }
    }
}

/// Reads through a poisoned lock: a panic elsewhere must not take the server down.
pub fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn lock<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Session {
    pub fn settings(&self) -> Settings {
        read(&self.settings).clone()
    }

    pub fn encoding(&self) -> PositionEncoding {
        *read(&self.encoding)
    }

    pub fn client_flags(&self) -> ClientFlags {
        *read(&self.client)
    }

    pub fn root(&self) -> Option<PathBuf> {
        read(&self.root).clone()
    }

    /// A cheap snapshot (ropes share their chunks) of an open document.
    pub fn document(&self, uri: &Url) -> Option<Document> {
        read(&self.documents).get(uri).cloned()
    }

    /// Workspace-relative path with `/` separators (what the repo map uses);
    /// falls back to the file name for files outside the workspace.
    pub fn relative_path(&self, uri: &Url) -> Option<String> {
        let path = uri.to_file_path().ok()?;
        Some(relative_to(self.root().as_deref(), &path))
    }

    /// Installs a new config: provider handles and caches built from the
    /// old one are dropped.
    pub async fn apply_config(&self, config: Config) -> Result<(), String> {
        let settings = Settings::from_config(&config)?;
        let cache_size = settings.completion.cache_size;
        *write(&self.config) = config;
        *write(&self.settings) = settings;
        *self.chat_provider.lock().await = None;
        *self.completion_provider.lock().await = None;
        *lock(&self.completions) = CompletionCache::new(cache_size);
        lock(&self.hover_cache).clear();
        Ok(())
    }

    /// Changes the repo map and invalidates rankings built from it.
    pub fn update_map(&self, change: impl FnOnce(&mut RepoMap)) {
        change(&mut write(&self.map));
        self.map_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The ranking for `path`, recomputed when the file changed or the map
    /// changed more than `RANKING_MAX_STALENESS` ago.
    /// Each file has its own entry (LRU of [`RANKING_CACHE_FILES`]): with one
    /// slot, two files alternating re-ranked on every request (59 ms vs 8 ms).
    pub fn ranking_for(&self, map: &RepoMap, path: Option<&str>) -> Arc<RankedDefinitions> {
        let generation = self.map_generation.load(Ordering::Acquire);
        let key = path.map(str::to_string);
        if let Some(cache) = lock(&self.ranking).get(&key) {
            if cache.generation == generation || cache.computed.elapsed() < RANKING_MAX_STALENESS {
                return cache.ranked.clone();
            }
        }
        let ranked = Arc::new(rank_for_file(map, path));
        let entry = RankingCache { generation, computed: Instant::now(), ranked: ranked.clone() };
        lock(&self.ranking).put(key, entry);
        ranked
    }

    /// The document and a tree parsed for exactly its text (`None` for the
    /// tree when the document is too large or not a parsed language).
    /// Blocking (it may parse): call it from the blocking pool. Concurrent
    /// calls for one document parse it once; the result is kept if the
    /// document did not change meanwhile.
    pub fn document_with_tree(&self, uri: &Url) -> Option<(Document, Option<Tree>)> {
        let parse_lock = self.document(uri)?.parse_lock;
        let _parsing = lock(&parse_lock);
        let document = self.document(uri)?;
        if let Some(tree) = document.syntax.fresh() {
            let tree = tree.clone();
            return Some((document, Some(tree)));
        }
        let Some(language) = document.language else { return Some((document, None)) };
        let tree = crate::syntax_tree::parse(language, &document.text, document.syntax.old_tree());
        if let Some(tree) = &tree {
            if let Some(current) = write(&self.documents).get_mut(uri).filter(|d| d.revision == document.revision) {
                current.syntax = SyntaxTree::Fresh(tree.clone());
            }
        }
        Some((document, tree))
    }

    pub fn config(&self) -> Config {
        read(&self.config).clone()
    }
}

pub fn relative_to(root: Option<&Path>, path: &Path) -> String {
    let relative = root.and_then(|root| path.strip_prefix(root).ok()).unwrap_or(path);
    let parts: Vec<String> =
        relative.components().filter_map(|c| c.as_os_str().to_str().map(str::to_string)).filter(|c| c != "/").collect();
    parts.join("/")
}
