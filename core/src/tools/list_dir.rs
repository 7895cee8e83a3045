//! `list_dir`: a directory's entries.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{fs, names, AgentTool, Plan, ToolOutput, Toolbox};

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct Args {
    /// Directory relative to the workspace root; default .
    path: Option<String>,
}

pub(super) struct ListDir;

impl AgentTool for ListDir {
    const NAME: &'static str = names::LIST_DIR;
    type Args = Args;

    fn description(_: &Toolbox) -> &'static str {
        "List a directory's entries (directories end with /)."
    }

    fn prepare(toolbox: &Toolbox, args: Args) -> Result<Plan, ToolOutput> {
        let path = toolbox.sandbox(Self::NAME, args.path.as_deref().unwrap_or("."))?;
        let display = toolbox.workspace.display(&path);
        let action = Action { path, display: display.clone() };
        Ok(Plan {
            action: super::Action::ListDir(action),
            needs_permission: None,
            summary: display,
            detail: String::new(),
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Action {
    path: PathBuf,
    display: String,
}

impl Action {
    pub(super) fn execute(&self, toolbox: &Toolbox) -> ToolOutput {
        fs::list_dir(&toolbox.workspace, &self.path, &self.display, &toolbox.limits)
    }
}
