//! The agent loop: system prompt + task -> model -> tool calls -> results ->
//! model ... until the model answers without tools, the step limit is hit,
//! or the run is cancelled.
//!
//! Front ends (CLI `run`/`chat`, LSP `sextant.agent`) drive it the same way:
//!
//! ```no_run
//! # async fn demo(provider: std::sync::Arc<dyn sextant_core::providers::Provider>) -> Result<(), Box<dyn std::error::Error>> {
//! use sextant_core::agent::{Agent, AgentEvent, AgentObserver, Permissions, PermissionAnswer, PermissionRequest};
//! use sextant_core::tools::Workspace;
//!
//! struct Printer;
//! #[async_trait::async_trait]
//! impl AgentObserver for Printer {
//!     fn on_event(&mut self, event: AgentEvent) {
//!         if let AgentEvent::TextDelta { text } = event { print!("{text}"); }
//!     }
//!     async fn ask_permission(&mut self, _request: PermissionRequest) -> PermissionAnswer {
//!         PermissionAnswer::Deny
//!     }
//! }
//!
//! let workspace = Workspace::new(".")?;
//! let store = sextant_core::sessions::SessionStore::open_default().ok().map(std::sync::Arc::new);
//! let mut agent = Agent::new(provider, workspace, Permissions::headless(true, false), store);
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let summary = agent.run("add a doc comment to main", &mut Printer, &cancel).await?;
//! println!("\n{} edits, {} tokens in", summary.edits.len(), summary.usage.input_tokens);
//! # Ok(()) }
//! ```
//!
//! Invariant: the conversation history stays well-formed for every provider:
//! each assistant message with tool calls is followed by exactly one tool
//! result per call (cancelled or refused calls get an explanatory result).

pub mod prompt;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::providers::{ChatRequest, Message, Provider, ProviderError, Role, StreamEvent, ToolCall, Usage};
use crate::sessions::{SessionError, SessionStore};
use crate::tools::{
    EditJournal, FileEdit, PermissionKind, ToolError, ToolLimits, ToolOutput, Toolbox, UndoneEdit, Workspace,
};

/// How a kind of action is authorised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Always allowed (headless with `--allow-edits` / `--allow-shell`).
    Allow,
    /// The observer is asked each time (interactive front ends).
    Ask,
    /// Refused; the model is told how the user can allow it.
    Deny,
}

/// Authorisation for edits and shell commands. Reads are always allowed
/// (inside the workspace); the shell deny list applies regardless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Permissions {
    pub edits: Permission,
    pub shell: Permission,
}

impl Permissions {
    /// Headless runs: allowed only with the corresponding flag, never asked.
    pub fn headless(allow_edits: bool, allow_shell: bool) -> Self {
        let grant = |allowed| if allowed { Permission::Allow } else { Permission::Deny };
        Permissions { edits: grant(allow_edits), shell: grant(allow_shell) }
    }

    /// Interactive front ends: ask for each edit and command.
    pub fn interactive() -> Self {
        Permissions { edits: Permission::Ask, shell: Permission::Ask }
    }

    fn for_kind(&self, kind: PermissionKind) -> Permission {
        match kind {
            PermissionKind::Edit => self.edits,
            PermissionKind::Shell => self.shell,
        }
    }
}

/// A question to the user before an edit or command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermissionRequest {
    pub kind: PermissionKind,
    pub tool: String,
    /// The path or command, one line.
    pub summary: String,
    /// More detail, e.g. the lines to be replaced (`- `) and inserted (`+ `).
    pub detail: String,
}

/// The user's answer to a `PermissionRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionAnswer {
    Allow,
    /// Allow this kind (edits or shell) for the rest of this agent's life.
    AllowAlways,
    Deny,
}

/// Progress reported while a run goes on. Serialises as
/// `{"type": "text_delta", ...}` (used by `--output-format stream-json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    /// The run is stored under this session id.
    SessionStarted { session_id: String },
    /// A model request is about to be sent (1-based).
    StepStarted { step: usize },
    /// Streamed assistant text.
    TextDelta { text: String },
    /// A tool call is about to run (after permission checks passed or not).
    ToolCallStarted { id: String, name: String, arguments: serde_json::Value, summary: String },
    /// A tool call finished; `output` is what the model receives.
    ToolCallFinished { id: String, name: String, output: String, is_error: bool },
    /// An edit or command was refused (flag missing, user declined).
    PermissionDenied { tool: String, summary: String, reason: String },
    /// Token usage of one model request and the run total so far.
    Usage { step: Usage, total: Usage },
    /// Something went wrong that does not stop the run (e.g. the session store).
    Warning { message: String },
}

/// Receives a run's events and answers permission questions.
#[async_trait]
pub trait AgentObserver: Send {
    fn on_event(&mut self, event: AgentEvent);

    /// Called for edits/commands when the permission is `Ask`. Default: deny.
    async fn ask_permission(&mut self, request: PermissionRequest) -> PermissionAnswer {
        let _ = request;
        PermissionAnswer::Deny
    }
}

/// An observer that ignores events and denies every question.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullObserver;

impl AgentObserver for NullObserver {
    fn on_event(&mut self, _event: AgentEvent) {}
}

/// Tuning knobs of a run.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Model requests per `run` before giving up.
    pub max_steps: usize,
    /// Token budget of the repo map in the system prompt (0 = no map).
    pub repo_map_tokens: usize,
    /// Token budget for AGENTS.md in the system prompt.
    pub instructions_tokens: usize,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub tool_limits: ToolLimits,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            max_steps: 25,
            repo_map_tokens: 1024,
            instructions_tokens: 4000,
            max_tokens: None,
            temperature: None,
            tool_limits: ToolLimits::default(),
        }
    }
}

impl AgentOptions {
    /// Applies the `[agent]` config table: `max_steps`, `repo_map_tokens`,
    /// `instructions_tokens`, `shell_timeout_secs`. Other keys belong to the
    /// front ends (e.g. the LSP's `allow_edits`) and are ignored here.
    pub fn apply_config(&mut self, section: &serde_json::Value) -> Result<(), String> {
        let Some(table) = section.as_object() else {
            return Err("[agent] must be a table".to_string());
        };
        let number = |key: &str| -> Result<Option<u64>, String> {
            match table.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(value) => value
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| format!("[agent] {key} must be a non-negative integer, not {value}")),
            }
        };
        if let Some(steps) = number("max_steps")? {
            self.max_steps = (steps as usize).max(1);
        }
        if let Some(tokens) = number("repo_map_tokens")? {
            self.repo_map_tokens = tokens as usize;
        }
        if let Some(tokens) = number("instructions_tokens")? {
            self.instructions_tokens = tokens as usize;
        }
        if let Some(secs) = number("shell_timeout_secs")? {
            self.tool_limits.shell.timeout = std::time::Duration::from_secs(secs.clamp(1, 3600));
        }
        Ok(())
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The model answered without calling tools.
    Completed,
    /// `max_steps` model requests were made and it still wanted tools.
    MaxSteps,
    Cancelled,
    /// The provider failed (only in `AgentError::Provider`'s partial summary).
    Failed,
}

/// A call that was not allowed: an edit or command without permission, a
/// path outside the workspace, a deny-listed command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeniedAction {
    pub tool: String,
    pub summary: String,
    pub reason: String,
}

/// The result of one `Agent::run`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The model's last text (its answer, or what it said before stopping).
    pub final_text: String,
    pub outcome: RunOutcome,
    /// Model requests made in this run.
    pub steps: usize,
    /// Tokens used by this run.
    pub usage: Usage,
    /// Files changed by the agent in this session and not undone.
    pub edits: Vec<FileEdit>,
    pub tool_calls: usize,
    pub denied: Vec<DeniedAction>,
    pub session_id: Option<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The model request failed. `partial` says what the run did before
    /// (edits made, tokens used), with outcome `Failed`.
    #[error("{source}")]
    Provider { source: ProviderError, partial: Box<RunSummary> },
    #[error("the task is empty")]
    EmptyTask,
}

/// A conversation with the model about one workspace. Keeps its history
/// between `run` calls (chat), its edit journal (undo) and its session.
pub struct Agent {
    provider: Arc<dyn Provider>,
    toolbox: Toolbox,
    permissions: Permissions,
    always_allowed: HashSet<PermissionKind>,
    store: Option<Arc<SessionStore>>,
    options: AgentOptions,
    history: Vec<Message>,
    session_id: Option<String>,
    total_usage: Usage,
    /// Journal entries already mirrored into the session store.
    persisted_edits: usize,
}

impl Agent {
    /// `store`: where sessions are recorded (`None`: not recorded).
    pub fn new(
        provider: Arc<dyn Provider>,
        workspace: Workspace,
        permissions: Permissions,
        store: Option<Arc<SessionStore>>,
    ) -> Self {
        let options = AgentOptions::default();
        Agent {
            provider,
            toolbox: Toolbox::new(workspace).with_limits(options.tool_limits),
            permissions,
            always_allowed: HashSet::new(),
            store,
            options,
            history: Vec::new(),
            session_id: None,
            total_usage: Usage::default(),
            persisted_edits: 0,
        }
    }

    pub fn with_options(mut self, options: AgentOptions) -> Self {
        self.toolbox = self.toolbox.with_limits(options.tool_limits);
        self.options = options;
        self
    }

    /// Replaces the toolbox's shell isolation (e.g. force no jail in tests).
    pub fn with_shell_isolation(mut self, isolation: crate::tools::Isolation) -> Self {
        self.toolbox = self.toolbox.with_isolation(isolation);
        self
    }

    /// Lets `run_shell` run unjailed where no jail is available (the user's
    /// explicit `--dangerously-allow-unjailed-shell`); refused otherwise.
    pub fn allow_unjailed_shell(mut self, allowed: bool) -> Self {
        self.toolbox = self.toolbox.with_unjailed_shell(allowed);
        self
    }

    pub fn options(&self) -> &AgentOptions {
        &self.options
    }

    pub fn set_max_steps(&mut self, max_steps: usize) {
        self.options.max_steps = max_steps.max(1);
    }

    pub fn provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }

    /// Switches model/provider; the history is kept.
    pub fn set_provider(&mut self, provider: Arc<dyn Provider>) {
        self.provider = provider;
    }

    pub fn permissions(&self) -> Permissions {
        self.permissions
    }

    pub fn workspace(&self) -> &Workspace {
        self.toolbox.workspace()
    }

    pub fn toolbox(&self) -> &Toolbox {
        &self.toolbox
    }

    /// The conversation so far (system prompt first, once a run started).
    pub fn history(&self) -> &[Message] {
        &self.history
    }

    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// Tokens used by all runs of this agent.
    pub fn total_usage(&self) -> Usage {
        self.total_usage
    }

    /// Files changed and not undone.
    pub fn edits(&self) -> Vec<FileEdit> {
        self.toolbox.journal().edits()
    }

    /// Starts a fresh conversation (new session on the next run) with an
    /// empty edit journal; the old session's edits stay stored, so
    /// `sextant sessions undo` can still revert them.
    pub fn clear(&mut self) {
        self.history.clear();
        self.session_id = None;
        self.toolbox.set_journal(EditJournal::default());
        self.persisted_edits = 0;
    }

    /// Continues a stored session: a fresh system prompt, then the stored
    /// conversation; later runs append to that session. Returns its full id.
    pub async fn resume(&mut self, id_or_prefix: &str) -> Result<String, SessionError> {
        let store = self.store.clone().ok_or_else(|| SessionError::NotFound(id_or_prefix.to_string()))?;
        let session = store.find_session(id_or_prefix)?;
        let stored = store.messages(&session.id)?;
        let system = self.system_prompt().await;
        let messages = stored.into_iter().filter(|m| m.role != Role::System).map(|m| Message {
            role: m.role,
            content: m.content,
            tool_calls: m.tool_calls,
            tool_call_id: m.tool_call_id,
        });
        self.history = std::iter::once(Message::system(system)).chain(well_formed(messages.collect())).collect();
        // The stored edits become undoable again when the session belongs
        // to this workspace (entries outside it are never loaded).
        let mut journal = Vec::new();
        if Path::new(&session.workspace) == self.toolbox.workspace().root() {
            for entry in store.edits(&session.id)? {
                if self.toolbox.workspace().resolve(&entry.display).is_ok_and(|p| p == entry.path) {
                    journal.push(entry);
                }
            }
        }
        self.persisted_edits = journal.len();
        self.toolbox.set_journal(EditJournal::from_entries(journal));
        self.session_id = Some(session.id.clone());
        Ok(session.id)
    }

    /// Reverts the agent's edits of this session (all, or those to `path`),
    /// newest first. Without `force`, refuses when a file changed since the
    /// agent wrote it. The stored journal follows.
    pub fn undo(&mut self, path: Option<&str>, force: bool) -> Result<Vec<UndoneEdit>, ToolError> {
        let result = self.toolbox.undo(path, force);
        if let Err(err) = self.sync_journal() {
            tracing::warn!("session store: {err}");
        }
        result
    }

    /// Mirrors the edit journal into the session store: appends new entries,
    /// or rewrites the stored journal when entries were undone.
    fn sync_journal(&mut self) -> Result<(), SessionError> {
        let (Some(store), Some(session)) = (&self.store, &self.session_id) else { return Ok(()) };
        let entries = self.toolbox.journal().entries();
        if entries.len() > self.persisted_edits {
            store.append_edits(session, &entries[self.persisted_edits..])?;
        } else if entries.len() < self.persisted_edits {
            store.replace_edits(session, entries)?;
        }
        self.persisted_edits = entries.len();
        Ok(())
    }

    /// The system prompt a run would start with (AGENTS.md, repo map...).
    pub async fn system_prompt(&self) -> String {
        let workspace = self.toolbox.workspace().clone();
        let style = prompt::PromptStyle::for_provider(self.provider.name());
        let map_tokens = style.repo_map_tokens(self.options.repo_map_tokens, AgentOptions::default().repo_map_tokens);
        let cache = self.options.tool_limits.repo_map_cache;
        let repo_map = if map_tokens == 0 {
            None
        } else {
            tokio::task::spawn_blocking(move || crate::tools::render_repo_map(&workspace, &[], &[], map_tokens, cache))
                .await
                .ok()
        };
        let tools = style.offered_tools(self.toolbox.specs());
        prompt::system_prompt(&prompt::PromptParts {
            workspace: self.toolbox.workspace(),
            tools: &tools,
            permissions: self.permissions,
            instructions: prompt::project_instructions(self.toolbox.workspace(), self.options.instructions_tokens),
            repo_map,
            shell: self.toolbox.shell_mode(),
            style,
        })
    }

    /// Runs one task (or one chat turn) to completion.
    pub async fn run(
        &mut self,
        task: &str,
        observer: &mut dyn AgentObserver,
        cancel: &CancellationToken,
    ) -> Result<RunSummary, AgentError> {
        if task.trim().is_empty() {
            return Err(AgentError::EmptyTask);
        }
        let mut run = RunState::default();
        if self.history.is_empty() {
            let system = self.system_prompt().await;
            self.history.push(Message::system(system));
        }
        self.ensure_session(task, observer, &mut run);
        self.push_message(Message::user(task), observer, &mut run);

        let tools = prompt::PromptStyle::for_provider(self.provider.name()).offered_tools(self.toolbox.specs());
        let mut outcome = RunOutcome::MaxSteps;
        while run.steps < self.options.max_steps {
            if cancel.is_cancelled() {
                outcome = RunOutcome::Cancelled;
                break;
            }
            run.steps += 1;
            observer.on_event(AgentEvent::StepStarted { step: run.steps });
            let request = ChatRequest {
                messages: self.history.clone(),
                tools: tools.clone(),
                max_tokens: self.options.max_tokens,
                temperature: self.options.temperature,
                stop: Vec::new(),
            };
            let response = {
                let mut forward = |event: StreamEvent| {
                    if let StreamEvent::TextDelta(text) = event {
                        observer.on_event(AgentEvent::TextDelta { text });
                    }
                };
                self.provider.chat(&request, &mut forward, cancel).await
            };
            let response = match response {
                Ok(response) => response,
                Err(ProviderError::Cancelled) => {
                    outcome = RunOutcome::Cancelled;
                    break;
                }
                Err(source) => {
                    let partial = Box::new(self.summary(run, RunOutcome::Failed));
                    return Err(AgentError::Provider { source, partial });
                }
            };
            run.usage += response.usage;
            self.total_usage += response.usage;
            observer.on_event(AgentEvent::Usage { step: response.usage, total: run.usage });
            self.record_usage(response.usage, observer, &mut run);

            let mut message = response.message;
            message.role = Role::Assistant;
            let calls = message.tool_calls.clone();
            if !message.content.is_empty() || calls.is_empty() {
                run.final_text = message.content.clone();
            }
            self.push_message(message, observer, &mut run);
            if calls.is_empty() {
                outcome = RunOutcome::Completed;
                break;
            }
            let mut cancelled = false;
            for call in &calls {
                if cancelled || cancel.is_cancelled() {
                    cancelled = true;
                    let output = ToolOutput::error("not run: the run was cancelled");
                    self.finish_call(call, output, observer, &mut run);
                    continue;
                }
                let output = self.execute_call(call, observer, cancel, &mut run).await;
                self.finish_call(call, output, observer, &mut run);
            }
            if cancelled || cancel.is_cancelled() {
                outcome = RunOutcome::Cancelled;
                break;
            }
        }
        Ok(self.summary(run, outcome))
    }

    fn summary(&self, run: RunState, outcome: RunOutcome) -> RunSummary {
        RunSummary {
            final_text: run.final_text,
            outcome,
            steps: run.steps,
            usage: run.usage,
            edits: self.toolbox.journal().edits(),
            tool_calls: run.tool_calls,
            denied: run.denied,
            session_id: self.session_id.clone(),
            warnings: run.warnings,
        }
    }

    async fn execute_call(
        &mut self,
        call: &ToolCall,
        observer: &mut dyn AgentObserver,
        cancel: &CancellationToken,
        run: &mut RunState,
    ) -> ToolOutput {
        run.tool_calls += 1;
        let prepared = match self.toolbox.prepare(call) {
            Ok(prepared) => prepared,
            Err(output) => {
                observer.on_event(AgentEvent::ToolCallStarted {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                    summary: String::new(),
                });
                if output.refused {
                    let summary = call_summary(call);
                    observer.on_event(AgentEvent::PermissionDenied {
                        tool: call.name.clone(),
                        summary: summary.clone(),
                        reason: output.text.clone(),
                    });
                    run.denied.push(DeniedAction { tool: call.name.clone(), summary, reason: output.text.clone() });
                }
                return output;
            }
        };
        observer.on_event(AgentEvent::ToolCallStarted {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
            summary: prepared.summary.clone(),
        });
        let kinds = prepared.permissions();
        if let Some(&kind) = kinds.last() {
            let granted = |k: &PermissionKind| {
                self.permissions.for_kind(*k) == Permission::Allow || self.always_allowed.contains(k)
            };
            let missing: Vec<PermissionKind> = kinds.iter().copied().filter(|k| !granted(k)).collect();
            let denied = missing.iter().copied().find(|k| self.permissions.for_kind(*k) == Permission::Deny);
            let refusal = match (denied, &prepared.runs_later) {
                _ if missing.is_empty() => None,
                (Some(_), Some(why)) => {
                    Some(format!("permission denied: {why}; rerun with --allow-edits and --allow-shell to allow it"))
                }
                (Some(PermissionKind::Edit), None) => Some(
                    "permission denied: file edits are not allowed in this run; rerun with --allow-edits".to_string(),
                ),
                (Some(PermissionKind::Shell), None) => Some(
                    "permission denied: shell commands are not allowed in this run; rerun with --allow-shell"
                        .to_string(),
                ),
                (None, _) => {
                    // One question covers every permission the call needs; it
                    // is asked as the strongest (shell) when it needs both.
                    let request = PermissionRequest {
                        kind,
                        tool: call.name.clone(),
                        summary: prepared.summary.clone(),
                        detail: prepared.detail.clone(),
                    };
                    match observer.ask_permission(request).await {
                        PermissionAnswer::Allow => None,
                        // "Always" for a file that runs later would silently grant
                        // shell commands; it counts for this call only.
                        PermissionAnswer::AllowAlways if kinds.len() > 1 => None,
                        PermissionAnswer::AllowAlways => {
                            self.always_allowed.insert(kind);
                            None
                        }
                        PermissionAnswer::Deny => Some(format!(
                            "permission denied: the user declined `{}`. Do not retry it; choose another approach or explain.",
                            prepared.summary
                        )),
                    }
                }
            };
            if let Some(reason) = refusal {
                observer.on_event(AgentEvent::PermissionDenied {
                    tool: call.name.clone(),
                    summary: prepared.summary.clone(),
                    reason: reason.clone(),
                });
                run.denied.push(DeniedAction {
                    tool: call.name.clone(),
                    summary: prepared.summary,
                    reason: reason.clone(),
                });
                return ToolOutput::error(reason);
            }
        }
        let output = self.toolbox.execute(&prepared, cancel).await;
        if prepared.needs_permission == Some(PermissionKind::Edit) {
            if let Err(err) = self.sync_journal() {
                warn(observer, run, err);
            }
        }
        output
    }

    fn finish_call(
        &mut self,
        call: &ToolCall,
        output: ToolOutput,
        observer: &mut dyn AgentObserver,
        run: &mut RunState,
    ) {
        observer.on_event(AgentEvent::ToolCallFinished {
            id: call.id.clone(),
            name: call.name.clone(),
            output: output.text.clone(),
            is_error: output.is_error,
        });
        if let (Some(store), Some(session)) = (&self.store, &self.session_id) {
            if let Err(err) = store.record_tool_call(session, call, &output.text, output.is_error) {
                warn(observer, run, err);
            }
        }
        self.push_message(Message::tool_result(call.id.clone(), output.text), observer, run);
    }

    fn ensure_session(&mut self, task: &str, observer: &mut dyn AgentObserver, run: &mut RunState) {
        if self.session_id.is_some() {
            return;
        }
        let Some(store) = &self.store else { return };
        let title: String =
            task.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim().chars().take(100).collect();
        let workspace = self.toolbox.workspace().root().display().to_string();
        match store.create_session(&workspace, &title, self.provider.name(), self.provider.model()) {
            Ok(id) => {
                observer.on_event(AgentEvent::SessionStarted { session_id: id.clone() });
                self.session_id = Some(id);
            }
            Err(err) => warn(observer, run, err),
        }
    }

    fn push_message(&mut self, message: Message, observer: &mut dyn AgentObserver, run: &mut RunState) {
        if let (Some(store), Some(session)) = (&self.store, &self.session_id) {
            if let Err(err) = store.append_message(session, &message) {
                warn(observer, run, err);
            }
        }
        self.history.push(message);
    }

    fn record_usage(&mut self, usage: Usage, observer: &mut dyn AgentObserver, run: &mut RunState) {
        if let (Some(store), Some(session)) = (&self.store, &self.session_id) {
            if let Err(err) = store.record_usage(session, self.provider.name(), self.provider.model(), usage) {
                warn(observer, run, err);
            }
        }
    }
}

/// Restores the history invariant on a stored conversation (a process may
/// have died mid-step): every tool call gets exactly one result right after
/// its assistant message; stray results are dropped.
fn well_formed(messages: Vec<Message>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::with_capacity(messages.len());
    let mut pending: Vec<String> = Vec::new();
    let close = |out: &mut Vec<Message>, pending: &mut Vec<String>| {
        for id in pending.drain(..) {
            out.push(Message::tool_result(id, "not run: the session ended before this call finished"));
        }
    };
    for message in messages {
        if message.role == Role::Tool {
            let answers = message.tool_call_id.as_ref().and_then(|id| pending.iter().position(|p| p == id));
            if let Some(index) = answers {
                pending.remove(index);
                out.push(message);
            }
            continue;
        }
        close(&mut out, &mut pending);
        pending = message.tool_calls.iter().map(|c| c.id.clone()).collect();
        out.push(message);
    }
    close(&mut out, &mut pending);
    out
}

/// The path or command a call was about, for reports of refused calls.
fn call_summary(call: &ToolCall) -> String {
    ["command", "path", "pattern", "name"]
        .iter()
        .find_map(|key| call.arguments.get(key).and_then(|v| v.as_str()))
        .unwrap_or("")
        .to_string()
}

fn warn(observer: &mut dyn AgentObserver, run: &mut RunState, err: SessionError) {
    let message = format!("session store: {err}");
    tracing::warn!("{message}");
    // One warning per distinct message is enough for the summary.
    if !run.warnings.contains(&message) {
        run.warnings.push(message.clone());
        observer.on_event(AgentEvent::Warning { message });
    }
}

#[derive(Default)]
struct RunState {
    steps: usize,
    usage: Usage,
    tool_calls: usize,
    final_text: String,
    denied: Vec<DeniedAction>,
    warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> ToolCall {
        ToolCall { id: id.into(), name: "list_dir".into(), arguments: serde_json::json!({}) }
    }

    #[test]
    fn stored_histories_are_repaired() {
        let mut asks_two = Message::assistant("");
        asks_two.tool_calls = vec![call("a"), call("b")];
        let messages = vec![
            Message::user("task"),
            Message::tool_result("zzz", "stray"),
            asks_two,
            Message::tool_result("a", "ok"),
            Message::user("next"),
        ];
        let repaired = well_formed(messages);
        let shape: Vec<(Role, Option<&str>)> = repaired.iter().map(|m| (m.role, m.tool_call_id.as_deref())).collect();
        assert_eq!(
            shape,
            [
                (Role::User, None),
                (Role::Assistant, None),
                (Role::Tool, Some("a")),
                (Role::Tool, Some("b")),
                (Role::User, None)
            ]
        );
        assert!(repaired[3].content.starts_with("not run"));
    }
}
