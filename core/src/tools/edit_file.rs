//! `edit_file`: replace one exact occurrence of a search text.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use super::{
    apply_search_replace, fs_failure, names, safe_fs, unified_diff, AgentTool, PermissionKind, Plan, ToolOutput,
    Toolbox,
};

#[derive(Debug, Deserialize, JsonSchema)]
pub(super) struct Args {
    /// Path relative to the workspace root
    path: String,
    search: String,
    replace: String,
}

pub(super) struct EditFile;

impl AgentTool for EditFile {
    const NAME: &'static str = names::EDIT_FILE;
    type Args = Args;

    fn description(_: &Toolbox) -> &'static str {
        "Replace one exact occurrence of `search` with `replace` in a file. `search` must match the current file exactly (whitespace included) and exactly once."
    }

    fn prepare(toolbox: &Toolbox, args: Args) -> Result<Plan, ToolOutput> {
        let path = toolbox.sandbox(Self::NAME, &args.path)?;
        let display = toolbox.workspace.display(&path);
        // Check the match now so the user is never asked about an edit that cannot apply.
        let current = read_text(toolbox.workspace.root(), &path, &display)?;
        let updated = apply_search_replace(&current, &args.search, &args.replace)
            .map_err(|m| ToolOutput::error(m.render(&display)))?;
        let detail = unified_diff(&display, Some(&current), &updated);
        let summary = format!("edit {display}");
        let action = Action { path, display, search: args.search, replace: args.replace };
        Ok(Plan { action: super::Action::Edit(action), needs_permission: Some(PermissionKind::Edit), summary, detail })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Action {
    path: PathBuf,
    pub(super) display: String,
    search: String,
    replace: String,
}

impl Action {
    pub(super) fn execute(&self, toolbox: &mut Toolbox) -> ToolOutput {
        let display = &self.display;
        // Re-read: the file may have changed while permission was asked.
        let current = match read_text(toolbox.workspace.root(), &self.path, display) {
            Ok(text) => text,
            Err(output) => return output,
        };
        let updated = match apply_search_replace(&current, &self.search, &self.replace) {
            Ok(updated) => updated,
            Err(mismatch) => return ToolOutput::error(mismatch.render(display)),
        };
        match toolbox.journal.write(toolbox.workspace.root(), &self.path, display, updated.as_bytes()) {
            Ok(()) => ToolOutput::ok(format!("edited {display}")),
            Err(err) => ToolOutput::error(format!("edit_file: cannot write {display}: {err}")),
        }
    }
}

/// A workspace file's text, read through `safe_fs` (no links, FIFOs, hard
/// links; capped). A file refused for safety is a refusal, not an error.
fn read_text(root: &Path, path: &Path, display: &str) -> Result<String, ToolOutput> {
    let bytes = safe_fs::read(root, path, safe_fs::MAX_READ_BYTES).map_err(|err| fs_failure("edit_file", err))?;
    String::from_utf8(bytes).map_err(|_| ToolOutput::error(format!("edit_file: {display} is not UTF-8 text")))
}
