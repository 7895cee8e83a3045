//! `glob`: files matching a glob pattern (gitignore-aware).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{fs, names, AgentTool, Plan, ToolOutput, Toolbox};

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct Args {
    pattern: String,
    /// Directory to search in; default .
    path: Option<String>,
}

pub(super) struct Glob;

impl AgentTool for Glob {
    const NAME: &'static str = names::GLOB;
    type Args = Args;

    fn description(_: &Toolbox) -> &'static str {
        "Find files by glob pattern (e.g. **/*.rs, src/*.py). Respects .gitignore."
    }

    fn prepare(toolbox: &Toolbox, args: Args) -> Result<Plan, ToolOutput> {
        let base = toolbox.sandbox(Self::NAME, args.path.as_deref().unwrap_or("."))?;
        let summary = args.pattern.clone();
        let action = Action { pattern: args.pattern, base };
        Ok(Plan { action: super::Action::Glob(action), needs_permission: None, summary, detail: String::new() })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Action {
    pattern: String,
    base: PathBuf,
}

impl Action {
    pub(super) fn execute(&self, toolbox: &Toolbox) -> ToolOutput {
        fs::glob(&toolbox.workspace, &self.base, &self.pattern, &toolbox.limits)
    }
}
