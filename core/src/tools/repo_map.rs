//! `repo_map`: the ranked map of the repository's files and symbols.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{names, symbols, AgentTool, Plan, ToolOutput, Toolbox};

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct Args {
    focus: Option<Vec<String>>,
    mentions: Option<Vec<String>>,
    #[schemars(range(min = 64))]
    max_tokens: Option<usize>,
}

pub(super) struct RepoMap;

impl AgentTool for RepoMap {
    const NAME: &'static str = names::REPO_MAP;
    type Args = Args;

    fn description(_: &Toolbox) -> &'static str {
        "Show a ranked map of the repository's files and their important symbols. focus: files you are working on; mentions: identifiers of interest."
    }

    fn prepare(toolbox: &Toolbox, args: Args) -> Result<Plan, ToolOutput> {
        let max_tokens = args.max_tokens.unwrap_or(toolbox.limits.repo_map_tokens).clamp(64, 16_384);
        let action =
            Action { focus: args.focus.unwrap_or_default(), mentions: args.mentions.unwrap_or_default(), max_tokens };
        Ok(Plan {
            action: super::Action::RepoMap(action),
            needs_permission: None,
            summary: "repo map".into(),
            detail: String::new(),
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Action {
    focus: Vec<String>,
    mentions: Vec<String>,
    max_tokens: usize,
}

impl Action {
    pub(super) async fn execute(&self, toolbox: &Toolbox) -> ToolOutput {
        let cache = toolbox.limits.repo_map_cache;
        symbols::repo_map(&toolbox.workspace, &self.focus, &self.mentions, self.max_tokens, cache).await
    }
}
