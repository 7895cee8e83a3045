//! `read_file`: a text file's numbered lines, optionally a range of them.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{fs, names, AgentTool, Plan, ToolOutput, Toolbox};

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct Args {
    /// Path relative to the workspace root
    path: String,
    #[schemars(range(min = 1))]
    start_line: Option<usize>,
    #[schemars(range(min = 1))]
    end_line: Option<usize>,
}

pub(super) struct ReadFile;

impl AgentTool for ReadFile {
    const NAME: &'static str = names::READ_FILE;
    type Args = Args;

    fn description(_: &Toolbox) -> &'static str {
        "Read a text file. Lines are numbered. Use start_line/end_line (1-based, inclusive) for large files."
    }

    fn prepare(toolbox: &Toolbox, args: Args) -> Result<Plan, ToolOutput> {
        let path = toolbox.sandbox(Self::NAME, &args.path)?;
        let display = toolbox.workspace.display(&path);
        let action = Action { path, display: display.clone(), start: args.start_line, end: args.end_line };
        Ok(Plan {
            action: super::Action::ReadFile(action),
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
    start: Option<usize>,
    end: Option<usize>,
}

impl Action {
    pub(super) fn execute(&self, toolbox: &Toolbox) -> ToolOutput {
        fs::read_file(toolbox.workspace.root(), &self.path, &self.display, self.start, self.end, &toolbox.limits)
    }
}
