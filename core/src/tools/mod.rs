//! The agent's tools: JSON-schema specs for the model, argument checking,
//! and execution confined to a `Workspace`.
//!
//! Each tool is one file (`read_file.rs`, `run_shell.rs`, ...): its typed
//! `Args` (serde + schemars: the schema the model sees is generated from the
//! struct that parses its calls, see `args.rs`), its `prepare` step and the
//! `Action` it executes. `TOOLS` lists them.
//!
//! A call goes through two steps so the agent can ask permission in between:
//! `Toolbox::prepare` parses arguments, applies the sandbox and the shell deny
//! list, and says which permission (if any) the call needs; `Toolbox::execute`
//! performs it. Failures at either step are `ToolOutput`s with `is_error`,
//! sent back to the model so it can correct itself.

mod args;
pub mod deny;
mod edit;
mod edit_file;
mod find_symbol;
mod fs;
mod glob;
mod grep;
mod list_dir;
mod preview;
mod read_file;
mod repo_map;
mod run_shell;
pub mod safe_fs;
pub mod shell;
mod symbols;
#[cfg(test)]
mod tests;
mod undo;
mod workspace;
mod write_file;

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::providers::{ToolCall, ToolSpec};

pub use deny::{denied_by, DenyRule};
pub use edit::{
    apply_search_replace, closest_region, ClosestRegion, EditJournal, EditMismatch, FileEdit, JournalEntry, UndoError,
    UndoneEdit,
};
pub use preview::{escape_controls, has_controls, unified_diff};
pub use safe_fs::SafeFsError;
pub use shell::{detect_isolation, jail_problem, Isolation, ShellLimits, ShellMode, ShellOutput};
pub use symbols::render_map as render_repo_map;
pub use workspace::{runs_automatically, SandboxError, Workspace};

/// Tool names as the model sees them.
pub mod names {
    pub const READ_FILE: &str = "read_file";
    pub const LIST_DIR: &str = "list_dir";
    pub const GLOB: &str = "glob";
    pub const GREP: &str = "grep";
    pub const REPO_MAP: &str = "repo_map";
    pub const FIND_SYMBOL: &str = "find_symbol";
    pub const EDIT_FILE: &str = "edit_file";
    pub const WRITE_FILE: &str = "write_file";
    pub const RUN_SHELL: &str = "run_shell";
    pub const UNDO: &str = "undo";
}

/// Errors of the toolbox API used directly by front ends (e.g. `/undo`).
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Undo(#[from] UndoError),
}

/// What a tool call needs the user's consent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionKind {
    /// Writing files (edit_file, write_file, undo).
    Edit,
    /// Running a shell command.
    Shell,
}

/// The text returned to the model for one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolOutput {
    pub text: String,
    pub is_error: bool,
    /// The call was refused by policy (sandbox escape, shell deny list),
    /// as opposed to failing; front ends report refusals.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
}

impl ToolOutput {
    pub fn ok(text: impl Into<String>) -> Self {
        ToolOutput { text: text.into(), is_error: false, refused: false }
    }
    pub fn error(text: impl Into<String>) -> Self {
        ToolOutput { text: text.into(), is_error: true, refused: false }
    }
    pub fn refusal(text: impl Into<String>) -> Self {
        ToolOutput { text: text.into(), is_error: true, refused: true }
    }
}

/// Output limits; the defaults keep one tool result within a few thousand tokens.
#[derive(Debug, Clone, Copy)]
pub struct ToolLimits {
    pub read_max_lines: usize,
    pub max_output_chars: usize,
    pub grep_max_matches: usize,
    pub list_max_entries: usize,
    pub shell: ShellLimits,
    /// Upper bound for a `timeout_secs` the model asks for.
    pub shell_max_timeout: Duration,
    pub repo_map_tokens: usize,
    /// Keep the repo map's tag cache in the user cache directory.
    pub repo_map_cache: bool,
}

impl Default for ToolLimits {
    fn default() -> Self {
        ToolLimits {
            read_max_lines: 1000,
            max_output_chars: 40_000,
            grep_max_matches: 200,
            list_max_entries: 500,
            shell: ShellLimits::default(),
            shell_max_timeout: Duration::from_secs(600),
            repo_map_tokens: 2048,
            repo_map_cache: true,
        }
    }
}

/// A validated call, ready to execute once permitted.
#[derive(Debug, Clone)]
pub struct PreparedCall {
    pub call: ToolCall,
    /// `Some` when the user (or a CLI flag) must allow this call.
    pub needs_permission: Option<PermissionKind>,
    /// One line for a permission prompt or a log: the path or the command.
    pub summary: String,
    /// Longer detail for a permission prompt: for edits and writes the full
    /// unified diff, never shortened (front ends page it, not cut it).
    pub detail: String,
    /// Set when the call writes a file that some tool runs or loads
    /// automatically later (`.git/hooks/*`, `.vscode/tasks.json`, ...; see
    /// `runs_automatically`): the reason. Such a call needs the shell
    /// permission as well as the edit permission.
    pub runs_later: Option<String>,
    action: Action,
}

impl PreparedCall {
    /// Every permission the call needs (empty for reads).
    pub fn permissions(&self) -> Vec<PermissionKind> {
        let mut kinds: Vec<PermissionKind> = self.needs_permission.into_iter().collect();
        if self.runs_later.is_some() && !kinds.contains(&PermissionKind::Shell) {
            kinds.push(PermissionKind::Shell);
        }
        kinds
    }
}

/// What a prepared call will do: one variant per tool, each tool's own
/// `Action` (defined in its file).
#[derive(Debug, Clone)]
enum Action {
    ReadFile(read_file::Action),
    ListDir(list_dir::Action),
    Glob(glob::Action),
    Grep(grep::Action),
    RepoMap(repo_map::Action),
    FindSymbol(find_symbol::Action),
    Edit(edit_file::Action),
    Write(write_file::Action),
    Shell(run_shell::Action),
    Undo(undo::Action),
}

/// What a tool's `prepare` decided: the action, and what the permission
/// prompt needs (see [`PreparedCall`]).
struct Plan {
    action: Action,
    needs_permission: Option<PermissionKind>,
    summary: String,
    detail: String,
}

/// One agent tool: its name, description, typed arguments (the schema the
/// model is shown is generated from them) and its check step.
trait AgentTool {
    const NAME: &'static str;
    type Args: JsonSchema + DeserializeOwned;
    fn description(toolbox: &Toolbox) -> &'static str;
    /// Applies the sandbox and the tool's own checks to parsed arguments.
    /// An `Err` is the result to send to the model.
    fn prepare(toolbox: &Toolbox, args: Self::Args) -> Result<Plan, ToolOutput>;
}

/// A tool in the table: its spec and its prepare step behind its name.
struct RegisteredTool {
    name: &'static str,
    spec: fn(&Toolbox) -> ToolSpec,
    prepare: fn(&Toolbox, &Value) -> Result<Plan, ToolOutput>,
}

const fn register<T: AgentTool>() -> RegisteredTool {
    RegisteredTool { name: T::NAME, spec: spec_of::<T>, prepare: parse_and_prepare::<T> }
}

/// Every tool, in the order the model is shown them.
const TOOLS: [RegisteredTool; 10] = [
    register::<read_file::ReadFile>(),
    register::<list_dir::ListDir>(),
    register::<glob::Glob>(),
    register::<grep::Grep>(),
    register::<repo_map::RepoMap>(),
    register::<find_symbol::FindSymbol>(),
    register::<edit_file::EditFile>(),
    register::<write_file::WriteFile>(),
    register::<run_shell::RunShell>(),
    register::<undo::Undo>(),
];

fn spec_of<T: AgentTool>(toolbox: &Toolbox) -> ToolSpec {
    ToolSpec {
        name: T::NAME.to_string(),
        description: T::description(toolbox).to_string(),
        parameters: args::schema_of::<T::Args>(),
    }
}

fn parse_and_prepare<T: AgentTool>(toolbox: &Toolbox, raw: &Value) -> Result<Plan, ToolOutput> {
    let parsed = args::parse::<T::Args>(raw).map_err(|err| ToolOutput::error(format!("{}: {err}", T::NAME)))?;
    T::prepare(toolbox, parsed)
}

/// The tool set bound to one workspace, with the journal of its edits.
#[derive(Debug, Clone)]
pub struct Toolbox {
    workspace: Workspace,
    journal: EditJournal,
    limits: ToolLimits,
    isolation: Isolation,
    /// The user explicitly allowed commands to run without a jail
    /// (`--dangerously-allow-unjailed-shell`); without it, `run_shell`
    /// refuses when no jail is available.
    unjailed_allowed: bool,
}

impl Toolbox {
    pub fn new(workspace: Workspace) -> Self {
        Toolbox {
            workspace,
            journal: EditJournal::default(),
            limits: ToolLimits::default(),
            isolation: detect_isolation(),
            unjailed_allowed: false,
        }
    }

    pub fn with_limits(mut self, limits: ToolLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Overrides the detected shell isolation (tests; or to force no jail).
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// Lets `run_shell` run commands unjailed when no jail is available.
    pub fn with_unjailed_shell(mut self, allowed: bool) -> Self {
        self.unjailed_allowed = allowed;
        self
    }

    /// What `run_shell` does here (for the system prompt).
    pub fn shell_mode(&self) -> ShellMode {
        match (self.isolation, self.unjailed_allowed) {
            (Isolation::Bwrap, _) => ShellMode::Jailed { read_only: shell::jail_layout().read_only_summary() },
            (Isolation::None, true) => ShellMode::Unjailed,
            (Isolation::None, false) => ShellMode::Unavailable,
        }
    }

    pub fn journal(&self) -> &EditJournal {
        &self.journal
    }

    /// Reverts the agent's edits (all, or those to one path), newest first.
    /// Without `force`, refuses when a file changed since the agent wrote it.
    pub fn undo(&mut self, path: Option<&str>, force: bool) -> Result<Vec<UndoneEdit>, ToolError> {
        let resolved = match path {
            Some(p) => Some(self.workspace.resolve(p)?),
            None => None,
        };
        Ok(self.journal.undo(self.workspace.root(), resolved.as_deref(), force)?)
    }

    /// Replaces the journal (a resumed session's stored edits).
    pub fn set_journal(&mut self, journal: EditJournal) {
        self.journal = journal;
    }

    /// The JSON-schema specs of every tool, for `ChatRequest::tools`.
    pub fn specs(&self) -> Vec<ToolSpec> {
        TOOLS.iter().map(|tool| (tool.spec)(self)).collect()
    }

    /// `requested` resolved inside the workspace, or the refusal for `tool`.
    fn sandbox(&self, tool: &str, requested: &str) -> Result<PathBuf, ToolOutput> {
        self.workspace.resolve(requested).map_err(|err| ToolOutput::refusal(format!("{tool}: refused: {err}")))
    }

    /// Parses and checks a call. An `Err` is the result to send to the model.
    pub fn prepare(&self, call: &ToolCall) -> Result<PreparedCall, ToolOutput> {
        let Some(tool) = TOOLS.iter().find(|tool| tool.name == call.name) else {
            let known: Vec<&str> = TOOLS.iter().map(|tool| tool.name).collect();
            return Err(ToolOutput::error(format!(
                "unknown tool {:?}; available tools: {}",
                call.name,
                known.join(", ")
            )));
        };
        let Plan { action, needs_permission, summary, detail } = (tool.prepare)(self, &call.arguments)?;
        let runs_later = match &action {
            Action::Edit(edit_file::Action { display, .. }) | Action::Write(write_file::Action { display, .. }) => {
                runs_automatically(display).map(|why| {
                    format!("{display} is run or loaded automatically later ({why}), so writing it needs the shell permission too")
                })
            }
            _ => None,
        };
        let detail = match &runs_later {
            Some(why) => format!("warning: {why}\n{detail}"),
            None => detail,
        };
        Ok(PreparedCall { call: call.clone(), needs_permission, summary, detail, runs_later, action })
    }

    /// Performs a prepared call. Permission must have been granted by the caller.
    pub async fn execute(&mut self, prepared: &PreparedCall, cancel: &CancellationToken) -> ToolOutput {
        match &prepared.action {
            Action::ReadFile(action) => action.execute(self),
            Action::ListDir(action) => action.execute(self),
            Action::Glob(action) => action.execute(self),
            Action::Grep(action) => action.execute(self),
            Action::RepoMap(action) => action.execute(self).await,
            Action::FindSymbol(action) => action.execute(self).await,
            Action::Edit(action) => action.execute(self),
            Action::Write(action) => action.execute(self),
            Action::Shell(action) => action.execute(self, cancel).await,
            Action::Undo(action) => action.execute(self),
        }
    }
}

fn fs_failure(tool: &str, err: SafeFsError) -> ToolOutput {
    if err.is_refusal() {
        ToolOutput::refusal(format!("{tool}: refused: {err}"))
    } else {
        ToolOutput::error(format!("{tool}: {err}"))
    }
}
