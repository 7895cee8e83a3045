//! The tower-lsp `LanguageServer`: lifecycle, document sync and dispatch to
//! the feature modules. Handlers here stay one-liners where possible.

use std::sync::Arc;

use serde_json::Value;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::notification::Notification;
use tower_lsp::lsp_types::*;
use tower_lsp::{Client, LanguageServer};

use crate::document::{Document, PositionEncoding, MAX_DOCUMENT_BYTES};
use crate::inline_completion::{InlineCompletionList, InlineCompletionParams};
use crate::session::{write, ClientFlags, Session};
use crate::{code_actions, commands, completion, hover, indexing, inline_completion};

pub struct Backend {
    pub client: Client,
    pub session: Arc<Session>,
}

impl Backend {
    pub fn new(client: Client) -> Self {
        Self { client, session: Arc::new(Session::default()) }
    }

    /// `textDocument/inlineCompletion` (registered as a custom method).
    pub async fn inline_completion(&self, params: InlineCompletionParams) -> jsonrpc::Result<InlineCompletionList> {
        inline_completion::handle(self.session.clone(), params).await
    }

    /// Merges client JSON into the config; a bad patch is reported and ignored.
    async fn apply_settings_patch(&self, patch: &Value) {
        let mut config = self.session.config();
        let result = config.merge_json(patch).map_err(|e| e.to_string()).map(|()| config);
        let result = match result {
            Ok(config) => self.session.apply_config(config).await,
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            tracing::warn!("{error}");
            self.client.show_message(MessageType::ERROR, format!("Sextant: {error}")).await;
        }
    }
}

fn client_flags(capabilities: &ClientCapabilities) -> ClientFlags {
    let window = capabilities.window.as_ref();
    let code_action = capabilities.text_document.as_ref().and_then(|t| t.code_action.as_ref());
    let workspace = capabilities.workspace.as_ref();
    let text_document = capabilities.text_document.as_ref();
    ClientFlags {
        work_done_progress: window.and_then(|w| w.work_done_progress).unwrap_or(false),
        show_document: window.and_then(|w| w.show_document.as_ref()).is_some_and(|s| s.support),
        code_action_resolve: code_action
            .and_then(|c| c.resolve_support.as_ref())
            .is_some_and(|r| r.properties.iter().any(|p| p == "edit")),
        apply_edit: workspace.and_then(|w| w.apply_edit).unwrap_or(false),
        watched_files_dynamic: workspace
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false),
        // A client that says nothing about formats gets markdown, as before:
        // the spec's default is plaintext, but every client that omits the
        // field renders markdown (VS Code, Neovim, eglot). Otherwise the
        // first format listed is the one the client prefers: YouCompleteMe
        // lists plaintext first and shows markdown as it is, fences and all.
        hover_markdown: text_document
            .and_then(|t| t.hover.as_ref())
            .and_then(|h| h.content_format.as_ref())
            .and_then(|formats| formats.first())
            .is_none_or(|preferred| *preferred == MarkupKind::Markdown),
        completion_markdown: text_document
            .and_then(|t| t.completion.as_ref())
            .and_then(|c| c.completion_item.as_ref())
            .and_then(|i| i.documentation_format.as_ref())
            .and_then(|formats| formats.first())
            .is_none_or(|preferred| *preferred == MarkupKind::Markdown),
        document_changes: workspace
            .and_then(|w| w.workspace_edit.as_ref())
            .and_then(|e| e.document_changes)
            .unwrap_or(false),
    }
}

/// What the user is told when a document is over [`MAX_DOCUMENT_BYTES`].
fn too_large_message(uri: &Url, size: usize, what: &str) -> String {
    let name = uri.path_segments().and_then(|mut s| s.next_back()).filter(|n| !n.is_empty()).unwrap_or(uri.as_str());
    format!(
        "Sextant: {name} is {:.1} MB, over the {} MB limit for open documents; {what}: Sextant features are off for it",
        size as f64 / 1_048_576.0,
        MAX_DOCUMENT_BYTES / 1_048_576
    )
}

pub fn server_capabilities(encoding: PositionEncoding) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(encoding.kind()),
        text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(TextDocumentSyncKind::INCREMENTAL),
            save: Some(TextDocumentSyncSaveOptions::Supported(true)),
            ..TextDocumentSyncOptions::default()
        })),
        completion_provider: Some(CompletionOptions { resolve_provider: Some(false), ..CompletionOptions::default() }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![
                CodeActionKind::QUICKFIX,
                CodeActionKind::REFACTOR_REWRITE,
                CodeActionKind::new("refactor.sextant.explain"),
                CodeActionKind::new("refactor.sextant.tests"),
            ]),
            resolve_provider: Some(true),
            work_done_progress_options: WorkDoneProgressOptions::default(),
        })),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: commands::COMMANDS.iter().map(|c| c.to_string()).collect(),
            work_done_progress_options: WorkDoneProgressOptions { work_done_progress: Some(true) },
        }),
        ..ServerCapabilities::default()
    }
}

#[tower_lsp::async_trait]
impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> jsonrpc::Result<InitializeResult> {
        let encoding = PositionEncoding::negotiate(
            params.capabilities.general.as_ref().and_then(|g| g.position_encodings.as_deref()),
        );
        *write(&self.session.encoding) = encoding;
        *write(&self.session.client) = client_flags(&params.capabilities);
        #[allow(deprecated)]
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|folders| folders.first())
            .map(|folder| folder.uri.clone())
            .or(params.root_uri.clone())
            .and_then(|uri| uri.to_file_path().ok());
        // User file, project file and environment first; the client's JSON wins.
        match sextant_core::config::load(root.as_deref()) {
            Ok(config) => {
                for note in &config.notes {
                    tracing::warn!("{note}");
                    self.client.show_message(MessageType::WARNING, format!("Sextant: {note}")).await;
                }
                if let Err(error) = self.session.apply_config(config).await {
                    tracing::warn!("{error}");
                }
            }
            Err(error) => {
                tracing::warn!("config files ignored: {error}");
                self.client.show_message(MessageType::WARNING, format!("Sextant: config files ignored: {error}")).await;
            }
        }
        *write(&self.session.root) = root;
        if let Some(options) = &params.initialization_options {
            self.apply_settings_patch(options).await;
        }
        Ok(InitializeResult {
            capabilities: server_capabilities(encoding),
            server_info: Some(ServerInfo {
                name: "sextant-lsp".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        if self.session.client_flags().watched_files_dynamic {
            let options = DidChangeWatchedFilesRegistrationOptions {
                // One pattern per extension: kak-lsp 15 rejects brace globs.
                watchers: ["**/*.rs", "**/*.py", "**/*.pyi"]
                    .into_iter()
                    .map(|glob| FileSystemWatcher { glob_pattern: GlobPattern::String(glob.into()), kind: None })
                    .collect(),
            };
            let registration = Registration {
                id: "sextant-watched-files".into(),
                method: notification::DidChangeWatchedFiles::METHOD.into(),
                register_options: serde_json::to_value(options).ok(),
            };
            if let Err(error) = self.client.register_capability(vec![registration]).await {
                tracing::warn!("cannot register file watchers: {error}");
            }
        }
        tokio::spawn(indexing::index_workspace(self.client.clone(), self.session.clone()));
    }

    async fn shutdown(&self) -> jsonrpc::Result<()> {
        for token in crate::session::lock(&self.session.inflight).values() {
            token.cancel();
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let item = params.text_document;
        if item.text.len() > MAX_DOCUMENT_BYTES {
            let message = too_large_message(&item.uri, item.text.len(), "not opened");
            drop(item);
            tracing::warn!("{message}");
            self.client.show_message(MessageType::WARNING, message).await;
            return;
        }
        let path = self.session.relative_path(&item.uri).unwrap_or_default();
        let document = Document::new(&item.text, item.version, item.language_id, self.session.encoding())
            .with_path_language(&path);
        write(&self.session.documents).insert(item.uri.clone(), document);
        // Parse now, off the async threads, so the first code action finds a tree.
        let (session, uri) = (self.session.clone(), item.uri.clone());
        tokio::task::spawn_blocking(move || session.document_with_tree(&uri));
        if self.session.index_ready.load(std::sync::atomic::Ordering::Acquire) {
            indexing::schedule_document_update(self.session.clone(), item.uri);
        }
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        let too_large = {
            let mut documents = write(&self.session.documents);
            let Some(document) = documents.get_mut(&uri) else {
                tracing::warn!("didChange for {uri}, which is not open: ignored");
                return;
            };
            for change in &params.content_changes {
                document.apply_change(change);
            }
            document.version = params.text_document.version;
            let size = document.text.len_bytes();
            // Grown past the limit: closed, as if it had been opened that large.
            (size > MAX_DOCUMENT_BYTES).then(|| {
                documents.remove(&uri);
                size
            })
        };
        if let Some(size) = too_large {
            let message = too_large_message(&uri, size, "closed");
            tracing::warn!("{message}");
            self.client.show_message(MessageType::WARNING, message).await;
            return;
        }
        indexing::schedule_document_update(self.session.clone(), uri);
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        indexing::update_open_document(&self.session, &params.text_document.uri).await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        write(&self.session.documents).remove(&uri);
        if let Some(token) = crate::session::lock(&self.session.inflight).remove(&uri) {
            token.cancel();
        }
        // The disk is the truth again for a closed file.
        indexing::apply_file_events(&self.session, vec![FileEvent { uri, typ: FileChangeType::CHANGED }]).await;
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        indexing::apply_file_events(&self.session, params.changes).await;
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        self.apply_settings_patch(&params.settings).await;
    }

    async fn completion(&self, params: CompletionParams) -> jsonrpc::Result<Option<CompletionResponse>> {
        completion::handle(self.session.clone(), params).await
    }

    async fn hover(&self, params: HoverParams) -> jsonrpc::Result<Option<Hover>> {
        hover::handle(self.session.clone(), params).await
    }

    async fn code_action(&self, params: CodeActionParams) -> jsonrpc::Result<Option<CodeActionResponse>> {
        code_actions::list(self.session.clone(), params).await
    }

    async fn code_action_resolve(&self, action: CodeAction) -> jsonrpc::Result<CodeAction> {
        code_actions::resolve(self.session.clone(), action).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> jsonrpc::Result<Option<Value>> {
        commands::execute(self.client.clone(), self.session.clone(), params).await
    }
}
