//! `undo`: revert the agent's edits of this session (all, or one path's).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{names, AgentTool, PermissionKind, Plan, ToolOutput, Toolbox};

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct Args {
    path: Option<String>,
}

pub(super) struct Undo;

impl AgentTool for Undo {
    const NAME: &'static str = names::UNDO;
    type Args = Args;

    fn description(_: &Toolbox) -> &'static str {
        "Revert the edits you made in this session (all files, or only `path`)."
    }

    fn prepare(toolbox: &Toolbox, args: Args) -> Result<Plan, ToolOutput> {
        let path = match args.path {
            Some(requested) => {
                let path = toolbox.sandbox(Self::NAME, &requested)?;
                let display = toolbox.workspace.display(&path);
                Some((path, display))
            }
            None => None,
        };
        let summary = match &path {
            Some((_, display)) => format!("undo edits to {display}"),
            None => format!("undo {} edit(s)", toolbox.journal.len()),
        };
        let detail = files_touched(toolbox, path.as_ref().map(|(path, _)| path));
        Ok(Plan {
            action: super::Action::Undo(Action { path }),
            needs_permission: Some(PermissionKind::Edit),
            summary,
            detail,
        })
    }
}

/// The files the undo would touch, each once: restored, or deleted if the
/// agent created it.
fn files_touched(toolbox: &Toolbox, only: Option<&PathBuf>) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for entry in toolbox.journal.entries() {
        if only.is_some_and(|path| *path != entry.path) || seen.contains(&entry.display.as_str()) {
            continue;
        }
        seen.push(&entry.display);
        let verb = if entry.before.is_some() { "restore" } else { "delete (the agent created it)" };
        lines.push(format!("{verb}: {}", entry.display));
    }
    lines.join("\n")
}

#[derive(Debug, Clone)]
pub(super) struct Action {
    path: Option<(PathBuf, String)>,
}

impl Action {
    pub(super) fn execute(&self, toolbox: &mut Toolbox) -> ToolOutput {
        if toolbox.journal.is_empty() {
            return ToolOutput::ok("undo: there are no edits to revert");
        }
        let only = self.path.as_ref().map(|(path, _)| path.as_path());
        match toolbox.journal.undo(toolbox.workspace.root(), only, false) {
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
