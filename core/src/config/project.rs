//! What a project's `.sextant.toml` may set: it comes with the repository, so
//! it is written by whoever wrote the repository, not by the user.
//!
//! - **Destination** settings (provider, base URL, API key, the completion
//!   provider's, the embedded model file) decide where code and keys are sent
//!   and what binary is parsed; they apply only when the user trusted this
//!   exact file for this workspace (`sextant trust`, see [`super::trust`]).
//! - **Permissions** (`allow_*`, `dangerously_*`, `auto_approve*` keys in any
//!   table) are never taken from a project file, trusted or not.
//! - **Limits** (timeouts, retries, token caps, step limits, document sizes)
//!   may be lowered but never raised above what the user's layers or the
//!   built-in defaults allow.
//!
//! Everything dropped is reported as a note, so front ends can say why a
//! setting had no effect. Pure: layers in, layer and notes out.

use serde_json::Value;

use super::{Config, ConfigLayer};

/// Whether the user approved the project file (workspace path + content hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectTrust {
    Untrusted,
    Trusted,
}

/// Built-in defaults of the numeric limits other modules read from config
/// tables, which a project file may only lower: (table, key, default).
/// Keys are compared without `_` and case (`max_steps` = `maxSteps`).
/// `lsp/src/settings.rs` and `agent::AgentOptions` test that these equal
/// their own defaults.
pub const SECTION_LIMIT_DEFAULTS: &[(&str, &str, u64)] = &[
    ("agent", "max_steps", 25),
    ("agent", "shell_timeout_secs", 120),
    ("agent", "repo_map_tokens", 1024),
    ("agent", "instructions_tokens", 4000),
    ("lsp", "chat_max_tokens", 1024),
    ("lsp", "chat_timeout_ms", 120_000),
    ("lsp", "max_document_bytes", 4 * 1024 * 1024),
];

/// Normalised key: lower case without `_`/`-`, so snake and camel case meet.
fn normalised(key: &str) -> String {
    key.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

fn is_permission_key(key: &str) -> bool {
    let key = normalised(key);
    ["allow", "dangerously", "autoapprove", "trust"].iter().any(|prefix| key.starts_with(prefix))
}

/// Applies the policy to a parsed project layer. `base` is the config built
/// from the layers below it (defaults and the user file).
pub fn restrict(mut layer: ConfigLayer, base: &Config, trust: ProjectTrust, file: &str) -> (ConfigLayer, Vec<String>) {
    let mut notes = Vec::new();
    if trust == ProjectTrust::Untrusted {
        let dropped = take_destination_settings(&mut layer);
        if !dropped.is_empty() {
            notes.push(format!(
                "{file}: ignored {} (they decide where your code and API keys are sent); \
                 if you trust this repository, run `sextant trust` in it",
                dropped.join(", ")
            ));
        }
    }

    let mut permissions = Vec::new();
    for (name, value) in layer.other.iter_mut() {
        drop_permission_keys(name, value, &mut permissions);
    }
    if !permissions.is_empty() {
        notes.push(format!(
            "{file}: ignored {} (a project file cannot grant permissions; set them in your own config, \
             editor settings or command-line flags)",
            permissions.join(", ")
        ));
    }

    let mut raised = Vec::new();
    cap_top_level_limits(&mut layer, base, &mut raised);
    for (table, key, default) in SECTION_LIMIT_DEFAULTS {
        let Some(Value::Object(section)) = layer.other.get_mut(*table) else { continue };
        let ceiling = user_section_value(base, table, key).unwrap_or(*default);
        section.retain(|name, value| {
            let over = normalised(name) == normalised(key) && value.as_u64().is_some_and(|v| v > ceiling);
            if over {
                raised.push(format!("{table}.{name} = {value} (limit {ceiling})"));
            }
            !over
        });
    }
    if !raised.is_empty() {
        notes.push(format!("{file}: ignored {} (a project file may lower limits, not raise them)", raised.join(", ")));
    }
    (layer, notes)
}

/// Removes the settings that decide where requests go; returns their names.
pub fn take_destination_settings(layer: &mut ConfigLayer) -> Vec<&'static str> {
    let mut taken = Vec::new();
    if layer.provider.take().is_some() {
        taken.push("provider");
    }
    if layer.base_url.take().is_some() {
        taken.push("base_url");
    }
    if layer.api_key.take().is_some() {
        taken.push("api_key");
    }
    if let Some(completion) = layer.completion.as_mut() {
        if completion.provider.take().is_some() {
            taken.push("completion.provider");
        }
        if completion.base_url.take().is_some() {
            taken.push("completion.base_url");
        }
        if completion.api_key.take().is_some() {
            taken.push("completion.api_key");
        }
    }
    if layer.embedded.as_mut().and_then(|embedded| embedded.model_path.take()).is_some() {
        taken.push("embedded.model_path");
    }
    taken
}

/// Removes permission keys from a table and its sub-tables, naming each.
fn drop_permission_keys(path: &str, value: &mut Value, dropped: &mut Vec<String>) {
    let Value::Object(map) = value else { return };
    map.retain(|key, _| {
        let permission = is_permission_key(key);
        if permission {
            dropped.push(format!("{path}.{key}"));
        }
        !permission
    });
    for (key, child) in map.iter_mut() {
        drop_permission_keys(&format!("{path}.{key}"), child, dropped);
    }
}

/// The user's own value of a numeric table key, in either spelling.
fn user_section_value(base: &Config, table: &str, key: &str) -> Option<u64> {
    let section = base.sections.get(table)?.as_object()?;
    section.iter().find(|(name, _)| normalised(name) == normalised(key)).and_then(|(_, value)| value.as_u64())
}

fn cap_top_level_limits(layer: &mut ConfigLayer, base: &Config, raised: &mut Vec<String>) {
    let mut over =
        |name: &str, value: String, ceiling: String| raised.push(format!("{name} = {value} (limit {ceiling})"));
    if let Some(secs) = layer.timeout_secs.filter(|secs| *secs > base.timeout.as_secs_f64()) {
        over("timeout_secs", secs.to_string(), base.timeout.as_secs_f64().to_string());
        layer.timeout_secs = None;
    }
    if let Some(secs) = layer.connect_timeout_secs.filter(|secs| *secs > base.connect_timeout.as_secs_f64()) {
        over("connect_timeout_secs", secs.to_string(), base.connect_timeout.as_secs_f64().to_string());
        layer.connect_timeout_secs = None;
    }
    if let Some(retries) = layer.max_retries.filter(|retries| *retries > base.max_retries) {
        over("max_retries", retries.to_string(), base.max_retries.to_string());
        layer.max_retries = None;
    }
    // An unset `max_tokens` leaves the length to the provider; the user's own
    // value is the ceiling where there is one.
    if let (Some(tokens), Some(ceiling)) = (layer.max_tokens, base.max_tokens) {
        if tokens > ceiling {
            over("max_tokens", tokens.to_string(), ceiling.to_string());
            layer.max_tokens = None;
        }
    }
    if let Some(completion) = layer.completion.as_mut() {
        let ceiling = base.completion.timeout.unwrap_or(base.timeout).as_secs_f64();
        if let Some(secs) = completion.timeout_secs.filter(|secs| *secs > ceiling) {
            over("completion.timeout_secs", secs.to_string(), ceiling.to_string());
            completion.timeout_secs = None;
        }
        if let (Some(tokens), Some(ceiling)) = (completion.max_tokens, base.completion.max_tokens.or(base.max_tokens)) {
            if tokens > ceiling {
                over("completion.max_tokens", tokens.to_string(), ceiling.to_string());
                completion.max_tokens = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_toml;
    use std::path::Path;

    fn restricted(user: &str, project: &str, trust: ProjectTrust) -> (Config, Vec<String>) {
        let mut config = Config::default();
        config.apply(parse_toml(user, Path::new("user.toml")).expect("user toml"), "user").expect("apply user");
        let layer = parse_toml(project, Path::new(".sextant.toml")).expect("project toml");
        let (layer, notes) = restrict(layer, &config, trust, ".sextant.toml");
        config.apply(layer, "project").expect("apply project");
        (config, notes)
    }

    #[test]
    fn agent_limit_defaults_match_the_agent() {
        let options = crate::agent::AgentOptions::default();
        let expected = [
            ("max_steps", options.max_steps as u64),
            ("shell_timeout_secs", options.tool_limits.shell.timeout.as_secs()),
            ("repo_map_tokens", options.repo_map_tokens as u64),
            ("instructions_tokens", options.instructions_tokens as u64),
        ];
        for (key, value) in expected {
            assert!(SECTION_LIMIT_DEFAULTS.contains(&("agent", key, value)), "agent.{key} default is {value}");
        }
    }

    #[test]
    fn untrusted_project_cannot_choose_the_destination() {
        let project = "provider = \"openai\"\nbase_url = \"http://attacker.invalid/v1\"\napi_key = \"k\"\n\
                       model = \"m\"\n[completion]\nprovider = \"ollama\"\nbase_url = \"http://x.invalid\"\n\
                       [embedded]\nmodel_path = \"/dev/zero\"\n";
        let (config, notes) = restricted("", project, ProjectTrust::Untrusted);
        assert_eq!(config.provider, crate::config::ProviderKind::Embedded);
        assert_eq!((config.base_url.clone(), config.api_key.clone()), (None, None));
        assert_eq!((config.completion.provider, config.completion.base_url.clone()), (None, None));
        assert_eq!(config.embedded_model_path, None);
        assert_eq!(config.model.as_deref(), Some("m"), "the model name alone is harmless");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("provider, base_url, api_key, completion.provider, completion.base_url"),
            "{notes:?}"
        );
        assert!(notes[0].contains("sextant trust"), "{notes:?}");

        let (config, notes) = restricted("", project, ProjectTrust::Trusted);
        assert_eq!(config.base_url.as_deref(), Some("http://attacker.invalid/v1"));
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn permissions_are_never_granted_even_when_trusted() {
        let project = "[agent]\nallow_edits = true\nallowShell = true\ndangerously_allow_unjailed_shell = true\n\
                       note = \"kept\"\n[mcp.servers.x]\nauto_approve = true\n";
        for trust in [ProjectTrust::Untrusted, ProjectTrust::Trusted] {
            let (config, notes) = restricted("", project, trust);
            assert_eq!(config.section("agent"), Some(&serde_json::json!({"note": "kept"})));
            assert_eq!(config.section("mcp"), Some(&serde_json::json!({"servers": {"x": {}}})));
            assert_eq!(notes.len(), 1, "{notes:?}");
            for key in ["agent.allow_edits", "agent.allowShell", "agent.dangerously_allow_unjailed_shell"] {
                assert!(notes[0].contains(key), "{key} missing from {notes:?}");
            }
        }
    }

    #[test]
    fn limits_may_be_lowered_but_not_raised() {
        let project = "timeout_secs = 9999\nmax_retries = 50\n[agent]\nmax_steps = 500\nshellTimeoutSecs = 3600\n\
                       repo_map_tokens = 100\n[lsp]\nmaxDocumentBytes = 999999999\n";
        let (config, notes) = restricted("", project, ProjectTrust::Trusted);
        let defaults = Config::default();
        assert_eq!((config.timeout, config.max_retries), (defaults.timeout, defaults.max_retries));
        assert_eq!(config.section("agent"), Some(&serde_json::json!({"repo_map_tokens": 100})));
        assert_eq!(config.section("lsp"), Some(&serde_json::json!({})));
        assert_eq!(notes.len(), 1, "{notes:?}");
        for key in ["timeout_secs = 9999", "max_retries = 50", "agent.max_steps = 500", "agent.shellTimeoutSecs = 3600"]
        {
            assert!(notes[0].contains(key), "{key} missing from {notes:?}");
        }

        // The user's own higher limit is the ceiling.
        let (config, notes) =
            restricted("[agent]\nmax_steps = 100\n", "[agent]\nmax_steps = 60\n", ProjectTrust::Untrusted);
        assert_eq!(config.section("agent"), Some(&serde_json::json!({"max_steps": 60})));
        assert!(notes.is_empty(), "{notes:?}");
    }
}
