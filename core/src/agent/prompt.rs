//! The system prompt: role, tools, permissions, AGENTS.md and a compact repo map.

use std::fmt::Write as _;

use crate::providers::ToolSpec;
use crate::tokens;
use crate::tools::{names, ShellMode, Workspace};

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

/// How much the system prompt may say. The embedded model reads prompts at
/// tens of tokens per second on a CPU and has a small context, so it gets a
/// short role text, tool names only (its provider describes the tools
/// itself) and a small repo map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptStyle {
    Full,
    Compact,
}

/// Repo-map budget of the compact prompt.
pub const COMPACT_REPO_MAP_TOKENS: usize = 256;
/// AGENTS.md budget of the compact prompt.
pub const COMPACT_INSTRUCTIONS_TOKENS: usize = 256;

impl PromptStyle {
    /// `Compact` for the in-process embedded model (provider name `embedded`).
    pub fn for_provider(provider_name: &str) -> Self {
        if provider_name == "embedded" {
            PromptStyle::Compact
        } else {
            PromptStyle::Full
        }
    }

    /// The repo-map budget to use given the configured one. The compact
    /// style caps only the built-in default (`default_tokens`): a value the
    /// user chose explicitly is kept.
    pub fn repo_map_tokens(self, configured_tokens: usize, default_tokens: usize) -> usize {
        match self {
            PromptStyle::Compact if configured_tokens == default_tokens => {
                configured_tokens.min(COMPACT_REPO_MAP_TOKENS)
            }
            _ => configured_tokens,
        }
    }
}

/// The tools a small model is offered: reading, searching, editing and
/// running. Fewer signatures make a shorter prompt (the embedded model reads
/// ~40 tokens/s) and leave it fewer wrong choices; the other tools still
/// work if it calls them.
pub const COMPACT_TOOLS: &[&str] =
    &[names::READ_FILE, names::LIST_DIR, names::GREP, names::EDIT_FILE, names::WRITE_FILE, names::RUN_SHELL];

impl PromptStyle {
    /// The tool specs offered to the model in this style, in `specs` order.
    pub fn offered_tools(self, specs: Vec<ToolSpec>) -> Vec<ToolSpec> {
        match self {
            PromptStyle::Full => specs,
            // Only the first sentence of each description: the rest are
            // details a small model does not use, at ~40 tokens/s to read.
            PromptStyle::Compact => specs
                .into_iter()
                .filter(|spec| COMPACT_TOOLS.contains(&spec.name.as_str()))
                .map(|spec| ToolSpec { description: first_sentence(&spec.description).to_string(), ..spec })
                .collect(),
        }
    }
}

/// Up to and including the first ". " (or the whole text).
fn first_sentence(text: &str) -> &str {
    let text = text.trim();
    match text.find(". ") {
        Some(end) => &text[..=end],
        None => text,
    }
}

pub struct PromptParts<'a> {
    pub workspace: &'a Workspace,
    pub tools: &'a [ToolSpec],
    pub permissions: Permissions,
    pub instructions: Option<String>,
    pub repo_map: Option<String>,
    /// Whether and how `run_shell` is jailed; the prompt says so truthfully.
    pub shell: ShellMode,
    pub style: PromptStyle,
}

pub fn system_prompt(parts: &PromptParts<'_>) -> String {
    if parts.style == PromptStyle::Compact {
        return compact_system_prompt(parts);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "You are Sextant, a careful coding agent working in the repository at {}.\n\
         Work step by step with the tools: inspect files before changing them, keep changes minimal and in the \
         project's style, and check your work (e.g. run the tests) when you may run commands.\n\
         Paths are relative to the repository root; the file tools cannot access anything outside it.\n\
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
    let _ = writeln!(out, "- {}", shell_facts(&parts.shell));
    if let Some(instructions) = &parts.instructions {
        let _ = writeln!(out, "\n# Project instructions ({PROJECT_INSTRUCTIONS_FILE})\n{instructions}");
    }
    if let Some(map) = parts.repo_map.as_deref().filter(|m| !m.trim().is_empty()) {
        let _ = writeln!(out, "\n# Repository map (most relevant files and symbols)\n{map}");
    }
    out
}

/// What the shell can reach, in one line of the full prompt.
fn shell_facts(shell: &ShellMode) -> String {
    match shell {
        ShellMode::Jailed { read_only } => format!(
            "shell commands run in a jail: no network (loopback only), no access to the user's home, keys or \
             sockets; writable: the repository (its .git is read-only) and a private /tmp that is discarded; read-only: {}; everything a \
             command starts is killed when it ends, and processes, memory and file sizes are limited",
            read_only.join(", ")
        ),
        ShellMode::Unjailed => "shell commands are NOT jailed on this machine (the user allowed it): they run with the \
             user's full access to files and network; avoid anything destructive and stay inside the repository"
            .to_string(),
        ShellMode::Unavailable => "shell commands are unavailable on this machine (no jail is available, so run_shell \
             refuses every command); do not call run_shell"
            .to_string(),
    }
}

/// The [`PromptStyle::Compact`] prompt: the same facts in few tokens.
fn compact_system_prompt(parts: &PromptParts<'_>) -> String {
    // Measured with `sextant bench agent` on the 0.5B: with the old text
    // (no workflow, tool names repeated) it called functions of the
    // repository's code, e.g. `slugify`, as if they were tools.
    let mut out = String::from(
        "You are Sextant, a coding agent in a repository; paths are relative to its root.\n\
         Only the tools below can be called: functions in the repository's code are not tools.\n\
         - A question about the code: read the file, then reply with the answer.\n\
         - A change: read the file, then call edit_file with `search` copied exactly from the file and \
         `replace` the new text (or write_file with the whole new content).\n\
         When the task is done, reply with a short answer and no tool call.\n",
    );
    let state = |permission: Permission| match permission {
        Permission::Allow => "allowed",
        Permission::Ask => "ask the user",
        Permission::Deny => "not allowed",
    };
    let jail = match parts.shell {
        ShellMode::Jailed { .. } => " (jailed: no network, only the repository writable)",
        ShellMode::Unjailed => " (NOT jailed)",
        ShellMode::Unavailable => " (unavailable: no jail)",
    };
    let _ = writeln!(
        out,
        "File edits: {}. Shell commands: {}{jail}.",
        state(parts.permissions.edits),
        state(parts.permissions.shell),
    );
    if let Some(instructions) = &parts.instructions {
        let instructions = truncate_to_tokens(instructions, COMPACT_INSTRUCTIONS_TOKENS);
        let _ = writeln!(out, "\n# {PROJECT_INSTRUCTIONS_FILE}\n{instructions}");
    }
    if let Some(map) = parts.repo_map.as_deref().filter(|m| !m.trim().is_empty()) {
        let _ = writeln!(out, "\n# Repository map\n{map}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts_for<'a>(workspace: &'a Workspace, tools: &'a [ToolSpec], style: PromptStyle) -> PromptParts<'a> {
        PromptParts {
            workspace,
            tools,
            permissions: Permissions { edits: Permission::Allow, shell: Permission::Deny },
            instructions: Some((0..400).map(|i| format!("rule {i}: keep it tidy")).collect::<Vec<_>>().join("\n")),
            repo_map: Some("src/lib.rs:\n│pub fn run()".to_string()),
            shell: ShellMode::Unavailable,
            style,
        }
    }

    #[test]
    fn embedded_provider_gets_the_compact_prompt_and_a_small_default_map() {
        assert_eq!(PromptStyle::for_provider("embedded"), PromptStyle::Compact);
        assert_eq!(PromptStyle::for_provider("openai"), PromptStyle::Full);
        assert_eq!(PromptStyle::Compact.repo_map_tokens(1024, 1024), COMPACT_REPO_MAP_TOKENS);
        // An explicitly configured budget is kept.
        assert_eq!(PromptStyle::Compact.repo_map_tokens(600, 1024), 600);
        assert_eq!(PromptStyle::Compact.repo_map_tokens(100, 1024), 100);
        assert_eq!(PromptStyle::Full.repo_map_tokens(1024, 1024), 1024);
    }

    #[test]
    fn compact_prompt_keeps_the_facts_in_few_tokens() {
        let dir = std::env::temp_dir();
        let workspace = Workspace::new(&dir).expect("the temp dir is a valid workspace");
        let long_description = "Reads a file of the repository and returns its lines with numbers. ".repeat(8);
        let tools: Vec<ToolSpec> = ["read_file", "edit_file", "run_shell"]
            .iter()
            .map(|name| ToolSpec {
                name: name.to_string(),
                description: long_description.clone(),
                parameters: json!({"type": "object"}),
            })
            .collect();
        let compact = system_prompt(&parts_for(&workspace, &tools, PromptStyle::Compact));
        let full = system_prompt(&parts_for(&workspace, &tools, PromptStyle::Full));
        // The tool list is the provider's (Qwen's `<tools>` block): not repeated here.
        assert!(!compact.contains("read_file, edit_file"), "{compact}");
        assert!(compact.contains("functions in the repository's code are not tools"), "{compact}");
        assert!(
            compact.contains("File edits: allowed. Shell commands: not allowed (unavailable: no jail)."),
            "{compact}"
        );
        assert!(compact.contains("src/lib.rs:\n│pub fn run()"), "{compact}");
        assert!(compact.contains("[... truncated to fit the token budget ...]"), "{compact}");
        assert!(!compact.contains(&long_description), "{compact}");
        assert!(tokens::count(&compact) < 500, "{} tokens", tokens::count(&compact));
        assert!(full.contains(&long_description) && tokens::count(&full) > tokens::count(&compact));
    }

    #[test]
    fn small_models_are_offered_fewer_tools_with_short_descriptions() {
        let dir = std::env::temp_dir();
        let toolbox = crate::tools::Toolbox::new(Workspace::new(&dir).expect("the temp dir is a valid workspace"));
        let all = toolbox.specs();
        assert_eq!(PromptStyle::Full.offered_tools(all.clone()), all);
        let offered = PromptStyle::Compact.offered_tools(all.clone());
        let names: Vec<&str> = offered.iter().map(|spec| spec.name.as_str()).collect();
        assert_eq!(names, COMPACT_TOOLS);
        for spec in &offered {
            let original = all.iter().find(|s| s.name == spec.name).expect("an offered tool is a real tool");
            assert!(original.description.starts_with(&spec.description), "{}", spec.name);
            assert!(!spec.description.trim_end_matches('.').contains(". "), "{}: {}", spec.name, spec.description);
            assert_eq!(spec.parameters, original.parameters);
        }
        assert!(offered.len() < all.len());
    }

    #[test]
    fn both_styles_say_what_the_shell_can_reach() {
        let dir = std::env::temp_dir();
        let workspace = Workspace::new(&dir).expect("the temp dir is a valid workspace");
        let jailed = ShellMode::Jailed { read_only: vec!["/usr".into(), "/home/me/.cargo".into()] };
        for (mode, full_says, compact_says) in [
            (jailed, "read-only: /usr, /home/me/.cargo", "(jailed: no network"),
            (ShellMode::Unjailed, "NOT jailed", "(NOT jailed"),
            (ShellMode::Unavailable, "do not call run_shell", "(unavailable: no jail)"),
        ] {
            let mut parts = parts_for(&workspace, &[], PromptStyle::Full);
            parts.shell = mode.clone();
            let full = system_prompt(&parts);
            assert!(full.contains(full_says), "{mode:?}: {full}");
            assert!(!full.contains("you cannot access anything outside"), "{full}");
            parts.style = PromptStyle::Compact;
            let compact = system_prompt(&parts);
            assert!(compact.contains(compact_says), "{mode:?}: {compact}");
        }
    }

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
