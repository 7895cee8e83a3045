//! `grep`: lines matching a regular expression (gitignore-aware).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{fs, names, AgentTool, Plan, ToolOutput, Toolbox};

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct Args {
    /// Rust regex syntax
    pattern: String,
    /// File or directory to search; default .
    path: Option<String>,
    /// Only files matching this glob, e.g. *.rs
    glob: Option<String>,
    case_insensitive: Option<bool>,
}

pub(super) struct Grep;

impl AgentTool for Grep {
    const NAME: &'static str = names::GREP;
    type Args = Args;

    fn description(_: &Toolbox) -> &'static str {
        "Search file contents with a regular expression. Respects .gitignore. Returns path:line: text."
    }

    fn prepare(toolbox: &Toolbox, args: Args) -> Result<Plan, ToolOutput> {
        let base = toolbox.sandbox(Self::NAME, args.path.as_deref().unwrap_or("."))?;
        let summary = args.pattern.clone();
        let action = Action {
            pattern: args.pattern,
            base,
            glob: args.glob,
            case_insensitive: args.case_insensitive.unwrap_or(false),
        };
        Ok(Plan { action: super::Action::Grep(action), needs_permission: None, summary, detail: String::new() })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Action {
    pattern: String,
    base: PathBuf,
    glob: Option<String>,
    case_insensitive: bool,
}

impl Action {
    pub(super) fn execute(&self, toolbox: &Toolbox) -> ToolOutput {
        fs::grep(
            &toolbox.workspace,
            &self.base,
            &self.pattern,
            self.glob.as_deref(),
            self.case_insensitive,
            &toolbox.limits,
        )
    }
}
