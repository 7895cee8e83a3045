//! `run_shell`: a shell command in the workspace, jailed (see `shell.rs`),
//! after the deny list.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{
    denied_by, jail_problem, names, shell, AgentTool, Isolation, PermissionKind, Plan, ShellLimits, ShellMode,
    ToolOutput, Toolbox,
};

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct Args {
    command: String,
    #[schemars(range(min = 1))]
    timeout_secs: Option<u64>,
}

pub(super) struct RunShell;

impl AgentTool for RunShell {
    const NAME: &'static str = names::RUN_SHELL;
    type Args = Args;

    fn description(toolbox: &Toolbox) -> &'static str {
        match toolbox.shell_mode() {
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
        }
    }

    fn prepare(toolbox: &Toolbox, args: Args) -> Result<Plan, ToolOutput> {
        let command = args.command;
        if command.trim().is_empty() {
            return Err(ToolOutput::error("run_shell: the command is empty"));
        }
        if let Some(rule) = denied_by(&command) {
            return Err(ToolOutput::refusal(format!(
                "run_shell: refused: the command matches the deny list ({}: {}); this applies even with --allow-shell",
                rule.name, rule.why
            )));
        }
        if toolbox.isolation == Isolation::None && !toolbox.unjailed_allowed {
            return Err(ToolOutput::refusal(format!(
                "run_shell: refused: no jail is available for shell commands ({}). To fix: {}. To run \
                 commands without a jail (with full access to this machine and its network), the user can \
                 rerun with {} or set dangerously_allow_unjailed_shell = true in the user configuration",
                jail_problem().unwrap_or("the jail is disabled"),
                shell::INSTALL_HINT,
                shell::UNJAILED_FLAG
            )));
        }
        let limits = &toolbox.limits;
        let timeout = args
            .timeout_secs
            .map(|secs| Duration::from_secs(secs).min(limits.shell_max_timeout))
            .unwrap_or(limits.shell.timeout);
        let summary = command.clone();
        let action = Action { command, timeout };
        Ok(Plan {
            action: super::Action::Shell(action),
            needs_permission: Some(PermissionKind::Shell),
            summary,
            detail: String::new(),
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Action {
    command: String,
    timeout: Duration,
}

impl Action {
    pub(super) async fn execute(&self, toolbox: &Toolbox, cancel: &CancellationToken) -> ToolOutput {
        let shell_limits = ShellLimits { timeout: self.timeout, ..toolbox.limits.shell };
        match shell::run(toolbox.workspace.root(), &self.command, shell_limits, toolbox.isolation, cancel).await {
            Ok(output) => {
                let failed = output.timed_out || output.cancelled || output.exit_code != Some(0);
                ToolOutput { text: output.render(), is_error: failed, refused: false }
            }
            Err(err) => ToolOutput::error(format!("run_shell: cannot start the command: {err}")),
        }
    }
}
