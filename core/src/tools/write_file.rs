//! `write_file`: create a file or replace its whole content.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{fs_failure, names, safe_fs, unified_diff, AgentTool, PermissionKind, Plan, ToolOutput, Toolbox};

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct Args {
    /// Path relative to the workspace root
    path: String,
    content: String,
}

pub(super) struct WriteFile;

impl AgentTool for WriteFile {
    const NAME: &'static str = names::WRITE_FILE;
    type Args = Args;

    fn description(_: &Toolbox) -> &'static str {
        "Create a file or overwrite it completely with `content`."
    }

    fn prepare(toolbox: &Toolbox, args: Args) -> Result<Plan, ToolOutput> {
        let path = toolbox.sandbox(Self::NAME, &args.path)?;
        let display = toolbox.workspace.display(&path);
        let content = args.content;
        // The current content, read the way the write will see it
        // (directories, links, FIFOs and hard links are refused here).
        let current = match safe_fs::read_if_exists(toolbox.workspace.root(), &path, safe_fs::MAX_READ_BYTES) {
            Ok(current) => current,
            Err(err) => return Err(fs_failure(Self::NAME, err)),
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
        let summary = format!("{verb} {display}");
        let action = Action { path, display, content };
        Ok(Plan { action: super::Action::Write(action), needs_permission: Some(PermissionKind::Edit), summary, detail })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Action {
    path: PathBuf,
    pub(super) display: String,
    content: String,
}

impl Action {
    pub(super) fn execute(&self, toolbox: &mut Toolbox) -> ToolOutput {
        let (display, content) = (&self.display, &self.content);
        match toolbox.journal.write(toolbox.workspace.root(), &self.path, display, content.as_bytes()) {
            Ok(()) => ToolOutput::ok(format!(
                "{} {display} ({} bytes)",
                if toolbox.journal.entries().last().is_some_and(|e| e.before.is_some()) {
                    "overwrote"
                } else {
                    "created"
                },
                content.len()
            )),
            Err(err) => ToolOutput::error(format!("write_file: cannot write {display}: {err}")),
        }
    }
}
