//! The agent's tools: JSON-schema specs for the model, argument checking,
//! and execution confined to a `Workspace`.
//!
//! A call goes through two steps so the agent can ask permission in between:
//! `Toolbox::prepare` parses arguments, applies the sandbox and the shell deny
//! list, and says which permission (if any) the call needs; `Toolbox::execute`
//! performs it. Failures at either step are `ToolOutput`s with `is_error`,
//! sent back to the model so it can correct itself.

pub mod deny;
mod edit;
mod fs;
mod preview;
pub mod safe_fs;
pub mod shell;
mod symbols;
mod workspace;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
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

#[derive(Debug, Clone)]
enum Action {
    ReadFile { path: PathBuf, display: String, start: Option<usize>, end: Option<usize> },
    ListDir { path: PathBuf, display: String },
    Glob { pattern: String, base: PathBuf },
    Grep { pattern: String, base: PathBuf, glob: Option<String>, case_insensitive: bool },
    RepoMap { focus: Vec<String>, mentions: Vec<String>, max_tokens: usize },
    FindSymbol { name: String },
    Edit { path: PathBuf, display: String, search: String, replace: String },
    Write { path: PathBuf, display: String, content: String },
    Shell { command: String, timeout: Duration },
    Undo { path: Option<(PathBuf, String)> },
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
        let spec = |name: &str, description: &str, parameters: Value| ToolSpec {
            name: name.to_string(),
            description: description.to_string(),
            parameters,
        };
        let path_prop = json!({"type": "string", "description": "Path relative to the workspace root"});
        vec![
            spec(
                names::READ_FILE,
                "Read a text file. Lines are numbered. Use start_line/end_line (1-based, inclusive) for large files.",
                json!({"type": "object", "properties": {
                    "path": path_prop,
                    "start_line": {"type": "integer", "minimum": 1},
                    "end_line": {"type": "integer", "minimum": 1}
                }, "required": ["path"]}),
            ),
            spec(
                names::LIST_DIR,
                "List a directory's entries (directories end with /).",
                json!({"type": "object", "properties": {"path": {"type": "string", "description": "Directory relative to the workspace root; default ."}}}),
            ),
            spec(
                names::GLOB,
                "Find files by glob pattern (e.g. **/*.rs, src/*.py). Respects .gitignore.",
                json!({"type": "object", "properties": {
                    "pattern": {"type": "string"},
                    "path": {"type": "string", "description": "Directory to search in; default ."}
                }, "required": ["pattern"]}),
            ),
            spec(
                names::GREP,
                "Search file contents with a regular expression. Respects .gitignore. Returns path:line: text.",
                json!({"type": "object", "properties": {
                    "pattern": {"type": "string", "description": "Rust regex syntax"},
                    "path": {"type": "string", "description": "File or directory to search; default ."},
                    "glob": {"type": "string", "description": "Only files matching this glob, e.g. *.rs"},
                    "case_insensitive": {"type": "boolean"}
                }, "required": ["pattern"]}),
            ),
            spec(
                names::REPO_MAP,
                "Show a ranked map of the repository's files and their important symbols. focus: files you are working on; mentions: identifiers of interest.",
                json!({"type": "object", "properties": {
                    "focus": {"type": "array", "items": {"type": "string"}},
                    "mentions": {"type": "array", "items": {"type": "string"}},
                    "max_tokens": {"type": "integer", "minimum": 64}
                }}),
            ),
            spec(
                names::FIND_SYMBOL,
                "Find where a symbol (function, type, ...) is defined and referenced.",
                json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
            ),
            spec(
                names::EDIT_FILE,
                "Replace one exact occurrence of `search` with `replace` in a file. `search` must match the current file exactly (whitespace included) and exactly once.",
                json!({"type": "object", "properties": {
                    "path": path_prop,
                    "search": {"type": "string"},
                    "replace": {"type": "string"}
                }, "required": ["path", "search", "replace"]}),
            ),
            spec(
                names::WRITE_FILE,
                "Create a file or overwrite it completely with `content`.",
                json!({"type": "object", "properties": {
                    "path": path_prop,
                    "content": {"type": "string"}
                }, "required": ["path", "content"]}),
            ),
            spec(
                names::RUN_SHELL,
                match self.shell_mode() {
                    ShellMode::Jailed { .. } => {
                        "Run a shell command (sh -c) in the workspace directory, in a jail: no network, only the \
                         workspace and /tmp writable, system directories and toolchains read-only. Returns exit \
                         code, stdout and stderr."
                    }
                    ShellMode::Unjailed => {
                        "Run a shell command (sh -c) in the workspace directory, WITHOUT a jail: it can change \
                         anything the user can and reach the network. Returns exit code, stdout and stderr."
                    }
                    ShellMode::Unavailable => {
                        "Run a shell command: unavailable on this machine (no jail), every call is refused."
                    }
                },
                json!({"type": "object", "properties": {
                    "command": {"type": "string"},
                    "timeout_secs": {"type": "integer", "minimum": 1}
                }, "required": ["command"]}),
            ),
            spec(
                names::UNDO,
                "Revert the edits you made in this session (all files, or only `path`).",
                json!({"type": "object", "properties": {"path": {"type": "string"}}}),
            ),
        ]
    }

    /// Parses and checks a call. An `Err` is the result to send to the model.
    pub fn prepare(&self, call: &ToolCall) -> Result<PreparedCall, ToolOutput> {
        let args = Args::new(&call.arguments).map_err(|e| ToolOutput::error(format!("{}: {e}", call.name)))?;
        let tool = call.name.as_str();
        let sandbox = |requested: &str| {
            self.workspace.resolve(requested).map_err(|err| ToolOutput::refusal(format!("{tool}: refused: {err}")))
        };
        let arg_err = |e: String| ToolOutput::error(format!("{tool}: {e}"));
        let (action, needs_permission, summary, detail) = match tool {
            names::READ_FILE => {
                let requested = args.string("path").map_err(arg_err)?;
                let path = sandbox(&requested)?;
                let display = self.workspace.display(&path);
                let start = args.opt_usize("start_line").map_err(arg_err)?;
                let end = args.opt_usize("end_line").map_err(arg_err)?;
                (Action::ReadFile { path, display: display.clone(), start, end }, None, display, String::new())
            }
            names::LIST_DIR => {
                let requested = args.opt_string("path").map_err(arg_err)?.unwrap_or_else(|| ".".into());
                let path = sandbox(&requested)?;
                let display = self.workspace.display(&path);
                (Action::ListDir { path, display: display.clone() }, None, display, String::new())
            }
            names::GLOB => {
                let pattern = args.string("pattern").map_err(arg_err)?;
                let base = sandbox(&args.opt_string("path").map_err(arg_err)?.unwrap_or_else(|| ".".into()))?;
                (Action::Glob { pattern: pattern.clone(), base }, None, pattern, String::new())
            }
            names::GREP => {
                let pattern = args.string("pattern").map_err(arg_err)?;
                let base = sandbox(&args.opt_string("path").map_err(arg_err)?.unwrap_or_else(|| ".".into()))?;
                let glob = args.opt_string("glob").map_err(arg_err)?;
                let case_insensitive = args.opt_bool("case_insensitive").map_err(arg_err)?.unwrap_or(false);
                (Action::Grep { pattern: pattern.clone(), base, glob, case_insensitive }, None, pattern, String::new())
            }
            names::REPO_MAP => {
                let focus = args.string_list("focus").map_err(arg_err)?;
                let mentions = args.string_list("mentions").map_err(arg_err)?;
                let max_tokens = args
                    .opt_usize("max_tokens")
                    .map_err(arg_err)?
                    .unwrap_or(self.limits.repo_map_tokens)
                    .clamp(64, 16_384);
                (Action::RepoMap { focus, mentions, max_tokens }, None, "repo map".into(), String::new())
            }
            names::FIND_SYMBOL => {
                let name = args.string("name").map_err(arg_err)?;
                (Action::FindSymbol { name: name.clone() }, None, name, String::new())
            }
            names::EDIT_FILE => {
                let requested = args.string("path").map_err(arg_err)?;
                let path = sandbox(&requested)?;
                let display = self.workspace.display(&path);
                let search = args.string("search").map_err(arg_err)?;
                let replace = args.string("replace").map_err(arg_err)?;
                // Check the match now so the user is never asked about an edit that cannot apply.
                let current = read_text(self.workspace.root(), &path, &display)?;
                let updated = apply_search_replace(&current, &search, &replace)
                    .map_err(|m| ToolOutput::error(m.render(&display)))?;
                let detail = unified_diff(&display, Some(&current), &updated);
                (
                    Action::Edit { path, display: display.clone(), search, replace },
                    Some(PermissionKind::Edit),
                    format!("edit {display}"),
                    detail,
                )
            }
            names::WRITE_FILE => {
                let requested = args.string("path").map_err(arg_err)?;
                let path = sandbox(&requested)?;
                let display = self.workspace.display(&path);
                let content = args.string("content").map_err(arg_err)?;
                // The current content, read the way the write will see it
                // (directories, links, FIFOs and hard links are refused here).
                let current = match safe_fs::read_if_exists(self.workspace.root(), &path, safe_fs::MAX_READ_BYTES) {
                    Ok(current) => current,
                    Err(err) => return Err(fs_failure("write_file", err)),
                };
                let verb = if current.is_some() { "overwrite" } else { "create" };
                let detail = match &current {
                    Some(bytes) => match std::str::from_utf8(bytes) {
                        Ok(text) => unified_diff(&display, Some(text), &content),
                        Err(_) => format!(
                            "(replaces a {}-byte binary file with this text)\n{}",
                            bytes.len(),
                            unified_diff(&display, None, &content)
                        ),
                    },
                    None => unified_diff(&display, None, &content),
                };
                (
                    Action::Write { path, display: display.clone(), content },
                    Some(PermissionKind::Edit),
                    format!("{verb} {display}"),
                    detail,
                )
            }
            names::RUN_SHELL => {
                let command = args.string("command").map_err(arg_err)?;
                if command.trim().is_empty() {
                    return Err(ToolOutput::error("run_shell: the command is empty"));
                }
                if let Some(rule) = denied_by(&command) {
                    return Err(ToolOutput::refusal(format!(
                        "run_shell: refused: the command matches the deny list ({}: {}); this applies even with --allow-shell",
                        rule.name, rule.why
                    )));
                }
                if self.isolation == Isolation::None && !self.unjailed_allowed {
                    return Err(ToolOutput::refusal(format!(
                        "run_shell: refused: no jail is available for shell commands ({}). To fix: {}. To run                          commands without a jail (with full access to this machine and its network), the user can                          rerun with {} or set dangerously_allow_unjailed_shell = true in the user configuration",
                        jail_problem().unwrap_or("the jail is disabled"),
                        shell::INSTALL_HINT,
                        shell::UNJAILED_FLAG
                    )));
                }
                let timeout = args
                    .opt_usize("timeout_secs")
                    .map_err(arg_err)?
                    .map(|secs| Duration::from_secs(secs as u64).min(self.limits.shell_max_timeout))
                    .unwrap_or(self.limits.shell.timeout);
                (
                    Action::Shell { command: command.clone(), timeout },
                    Some(PermissionKind::Shell),
                    command,
                    String::new(),
                )
            }
            names::UNDO => {
                let path = match args.opt_string("path").map_err(arg_err)? {
                    Some(requested) => {
                        let path = sandbox(&requested)?;
                        let display = self.workspace.display(&path);
                        Some((path, display))
                    }
                    None => None,
                };
                let summary = match &path {
                    Some((_, display)) => format!("undo edits to {display}"),
                    None => format!("undo {} edit(s)", self.journal.len()),
                };
                // The files the undo would touch, each once: restored, or deleted if the agent created it.
                let mut lines: Vec<String> = Vec::new();
                let mut seen: Vec<&str> = Vec::new();
                for entry in self.journal.entries() {
                    if path.as_ref().is_some_and(|(p, _)| *p != entry.path) || seen.contains(&entry.display.as_str()) {
                        continue;
                    }
                    seen.push(&entry.display);
                    let verb = if entry.before.is_some() { "restore" } else { "delete (the agent created it)" };
                    lines.push(format!("{verb}: {}", entry.display));
                }
                (Action::Undo { path }, Some(PermissionKind::Edit), summary, lines.join("\n"))
            }
            other => {
                let known: Vec<String> = self.specs().into_iter().map(|s| s.name).collect();
                return Err(ToolOutput::error(format!(
                    "unknown tool {other:?}; available tools: {}",
                    known.join(", ")
                )));
            }
        };
        let runs_later = match &action {
            Action::Edit { display, .. } | Action::Write { display, .. } => runs_automatically(display).map(|why| {
                format!("{display} is run or loaded automatically later ({why}), so writing it needs the shell permission too")
            }),
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
        let limits = self.limits;
        match &prepared.action {
            Action::ReadFile { path, display, start, end } => {
                fs::read_file(self.workspace.root(), path, display, *start, *end, &limits)
            }
            Action::ListDir { path, display } => fs::list_dir(&self.workspace, path, display, &limits),
            Action::Glob { pattern, base } => fs::glob(&self.workspace, base, pattern, &limits),
            Action::Grep { pattern, base, glob, case_insensitive } => {
                fs::grep(&self.workspace, base, pattern, glob.as_deref(), *case_insensitive, &limits)
            }
            Action::RepoMap { focus, mentions, max_tokens } => {
                symbols::repo_map(&self.workspace, focus, mentions, *max_tokens, limits.repo_map_cache).await
            }
            Action::FindSymbol { name } => symbols::find_symbol(&self.workspace, name, &limits).await,
            Action::Edit { path, display, search, replace } => {
                // Re-read: the file may have changed while permission was asked.
                let current = match read_text(self.workspace.root(), path, display) {
                    Ok(text) => text,
                    Err(output) => return output,
                };
                let updated = match apply_search_replace(&current, search, replace) {
                    Ok(updated) => updated,
                    Err(mismatch) => return ToolOutput::error(mismatch.render(display)),
                };
                match self.journal.write(self.workspace.root(), path, display, updated.as_bytes()) {
                    Ok(()) => ToolOutput::ok(format!("edited {display}")),
                    Err(err) => ToolOutput::error(format!("edit_file: cannot write {display}: {err}")),
                }
            }
            Action::Write { path, display, content } => {
                match self.journal.write(self.workspace.root(), path, display, content.as_bytes()) {
                    Ok(()) => ToolOutput::ok(format!(
                        "{} {display} ({} bytes)",
                        if self.journal.entries().last().is_some_and(|e| e.before.is_some()) {
                            "overwrote"
                        } else {
                            "created"
                        },
                        content.len()
                    )),
                    Err(err) => ToolOutput::error(format!("write_file: cannot write {display}: {err}")),
                }
            }
            Action::Shell { command, timeout } => {
                let shell_limits = ShellLimits { timeout: *timeout, ..limits.shell };
                match shell::run(self.workspace.root(), command, shell_limits, self.isolation, cancel).await {
                    Ok(output) => {
                        let failed = output.timed_out || output.cancelled || output.exit_code != Some(0);
                        ToolOutput { text: output.render(), is_error: failed, refused: false }
                    }
                    Err(err) => ToolOutput::error(format!("run_shell: cannot start the command: {err}")),
                }
            }
            Action::Undo { path } => {
                if self.journal.is_empty() {
                    return ToolOutput::ok("undo: there are no edits to revert");
                }
                match self.journal.undo(self.workspace.root(), path.as_ref().map(|(p, _)| p.as_path()), false) {
                    Ok(undone) if undone.is_empty() => ToolOutput::ok("undo: no edits to that path to revert"),
                    Ok(undone) => ToolOutput::ok(format!(
                        "undo: reverted {}",
                        undone
                            .iter()
                            .map(|u| if u.deleted { format!("{} (deleted)", u.path) } else { u.path.clone() })
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    Err(err) => ToolOutput::error(format!("undo failed: {err}")),
                }
            }
        }
    }
}

/// A workspace file's text, read through `safe_fs` (no links, FIFOs, hard
/// links; capped). A file refused for safety is a refusal, not an error.
fn read_text(root: &std::path::Path, path: &std::path::Path, display: &str) -> Result<String, ToolOutput> {
    let bytes = safe_fs::read(root, path, safe_fs::MAX_READ_BYTES).map_err(|err| fs_failure("edit_file", err))?;
    String::from_utf8(bytes).map_err(|_| ToolOutput::error(format!("edit_file: {display} is not UTF-8 text")))
}

fn fs_failure(tool: &str, err: SafeFsError) -> ToolOutput {
    if err.is_refusal() {
        ToolOutput::refusal(format!("{tool}: refused: {err}"))
    } else {
        ToolOutput::error(format!("{tool}: {err}"))
    }
}

/// Typed access to a call's JSON arguments, with messages the model can act on.
struct Args<'a> {
    map: std::borrow::Cow<'a, serde_json::Map<String, Value>>,
}

impl<'a> Args<'a> {
    fn new(value: &'a Value) -> Result<Self, String> {
        match value {
            Value::Object(map) => Ok(Args { map: std::borrow::Cow::Borrowed(map) }),
            Value::Null => Ok(Args { map: std::borrow::Cow::Owned(serde_json::Map::new()) }),
            // Some providers deliver the arguments as a JSON string.
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => Ok(Args { map: std::borrow::Cow::Owned(map) }),
                _ => Err(format!("arguments must be a JSON object, got the string {text:?}")),
            },
            other => Err(format!("arguments must be a JSON object, got {other}")),
        }
    }
    fn opt_string(&self, key: &str) -> Result<Option<String>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("argument `{key}` must be a string, got {other}")),
        }
    }
    fn string(&self, key: &str) -> Result<String, String> {
        self.opt_string(key)?.ok_or_else(|| format!("missing required argument `{key}`"))
    }
    fn opt_usize(&self, key: &str) -> Result<Option<usize>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|v| Some(v as usize))
                .ok_or_else(|| format!("argument `{key}` must be a non-negative integer")),
            Some(Value::String(s)) => {
                s.trim().parse().map(Some).map_err(|_| format!("argument `{key}` must be a non-negative integer"))
            }
            Some(other) => Err(format!("argument `{key}` must be an integer, got {other}")),
        }
    }
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(format!("argument `{key}` must be true or false, got {other}")),
        }
    }
    fn string_list(&self, key: &str) -> Result<Vec<String>, String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_string).ok_or_else(|| format!("`{key}` must be a list of strings"))
                })
                .collect(),
            Some(other) => Err(format!("argument `{key}` must be a list of strings, got {other}")),
        }
    }
}
