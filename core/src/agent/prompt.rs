//! The system prompt: role, tools, permissions, AGENTS.md and a compact repo map.

use std::fmt::Write as _;

use crate::providers::ToolSpec;
use crate::tokens;
use crate::tools::Workspace;

use super::{Permission, Permissions};

/// File at the workspace root holding project instructions for agents.
pub const PROJECT_INSTRUCTIONS_FILE: &str = "AGENTS.md";

/// Reads AGENTS.md (through the sandbox: a symlink out is ignored), cut to
/// `max_tokens`. `None` when absent, unreadable or empty.
pub fn project_instructions(workspace: &Workspace, max_tokens: usize) -> Option<String> {
    let path = workspace.resolve(PROJECT_INSTRUCTIONS_FILE).ok()?;
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(truncate_to_tokens(text, max_tokens))
}

/// The longest prefix of whole lines within `max_tokens`, with a note when cut.
pub fn truncate_to_tokens(text: &str, max_tokens: usize) -> String {
    if tokens::count(text) <= max_tokens {
        return text.to_string();
    }
    let mut kept = String::new();
    for line in text.lines() {
        let candidate = if kept.is_empty() { line.to_string() } else { format!("{kept}\n{line}") };
        if tokens::count(&candidate) > max_tokens {
            break;
        }
        kept = candidate;
    }
    kept.push_str("\n[... truncated to fit the token budget ...]");
    kept
}

pub struct PromptParts<'a> {
    pub workspace: &'a Workspace,
    pub tools: &'a [ToolSpec],
    pub permissions: Permissions,
    pub instructions: Option<String>,
    pub repo_map: Option<String>,
    pub shell_sandboxed: bool,
}

pub fn system_prompt(parts: &PromptParts<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "You are Sextant, a careful coding agent working in the repository at {}.\n\
         Work step by step with the tools: inspect files before changing them, keep changes minimal and in the \
         project's style, and check your work (e.g. run the tests) when you may run commands.\n\
         Paths are relative to the repository root; you cannot access anything outside it.\n\
         edit_file needs the exact current text of the region you replace; read the file first.\n\
         When the task is done, reply with a short summary of what you changed, without calling tools.",
        parts.workspace.root().display()
    );
    let _ = writeln!(out, "\n# Tools");
    for tool in parts.tools {
        let _ = writeln!(out, "- {}: {}", tool.name, tool.description);
    }
    let describe = |permission: Permission, allowed: &str, flag: &str| match permission {
        Permission::Allow => format!("{allowed}: allowed"),
        Permission::Ask => format!("{allowed}: the user is asked to approve each one"),
        Permission::Deny => format!("{allowed}: not allowed in this run (the user can rerun with {flag})"),
    };
    let _ = writeln!(out, "\n# Permissions");
    let _ = writeln!(out, "- {}", describe(parts.permissions.edits, "file edits", "--allow-edits"));
    let _ = writeln!(out, "- {}", describe(parts.permissions.shell, "shell commands", "--allow-shell"));
    if !parts.shell_sandboxed {
        let _ = writeln!(out, "- shell commands are not sandboxed on this machine; avoid anything destructive");
    }
    if let Some(instructions) = &parts.instructions {
        let _ = writeln!(out, "\n# Project instructions ({PROJECT_INSTRUCTIONS_FILE})\n{instructions}");
    }
    if let Some(map) = parts.repo_map.as_deref().filter(|m| !m.trim().is_empty()) {
        let _ = writeln!(out, "\n# Repository map (most relevant files and symbols)\n{map}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_the_budget() {
        let text = (0..200).map(|i| format!("line number {i} with words")).collect::<Vec<_>>().join("\n");
        let cut = truncate_to_tokens(&text, 50);
        assert!(cut.ends_with("[... truncated to fit the token budget ...]"));
        let body = cut.trim_end_matches("\n[... truncated to fit the token budget ...]");
        assert!(tokens::count(body) <= 50);
        assert_eq!(truncate_to_tokens("short", 50), "short");
    }
}
