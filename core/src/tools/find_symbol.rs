//! `find_symbol`: where a symbol is defined and referenced.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{names, symbols, AgentTool, Plan, ToolOutput, Toolbox};

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct Args {
    name: String,
}

pub(super) struct FindSymbol;

impl AgentTool for FindSymbol {
    const NAME: &'static str = names::FIND_SYMBOL;
    type Args = Args;

    fn description(_: &Toolbox) -> &'static str {
        "Find where a symbol (function, type, ...) is defined and referenced."
    }

    fn prepare(_: &Toolbox, args: Args) -> Result<Plan, ToolOutput> {
        let summary = args.name.clone();
        let action = Action { name: args.name };
        Ok(Plan { action: super::Action::FindSymbol(action), needs_permission: None, summary, detail: String::new() })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Action {
    name: String,
}

impl Action {
    pub(super) async fn execute(&self, toolbox: &Toolbox) -> ToolOutput {
        symbols::find_symbol(&toolbox.workspace, &self.name, &toolbox.limits).await
    }
}
