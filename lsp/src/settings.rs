//! Server settings. The client's JSON (`initializationOptions`, then every
//! `workspace/didChangeConfiguration`) is merged into the core
//! [`Config`](sextant_core::config::Config) on top of the user and project
//! files; the provider keys (`provider`, `model`, `baseUrl`, `completion`, ...)
//! are core's, and this server's own knobs are read from the tables core
//! passes through: `lsp`, `hover` and `agent` (camelCase from editors,
//! snake_case accepted too, as written in `.sextant.toml`).

use serde::{Deserialize, Serialize};
use serde_json::json;
use sextant_core::config::{Config, ProviderKind, Purpose};

use crate::prompt::PromptBudget;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CompletionSettings {
    pub enabled: bool,
    /// Wait this long for more keystrokes before asking the model.
    #[serde(alias = "debounce_ms")]
    pub debounce_ms: u64,
    #[serde(alias = "prefix_tokens")]
    pub prefix_tokens: usize,
    #[serde(alias = "suffix_tokens")]
    pub suffix_tokens: usize,
    /// Budget for repo-map context files.
    #[serde(alias = "context_tokens")]
    pub context_tokens: usize,
    #[serde(alias = "max_tokens")]
    pub max_tokens: u32,
    /// Give up on the model after this long (the client gets an error).
    #[serde(alias = "timeout_ms")]
    pub timeout_ms: u64,
    /// Entries in the completion LRU cache.
    #[serde(alias = "cache_size")]
    pub cache_size: usize,
}

impl Default for CompletionSettings {
    fn default() -> Self {
        let budget = PromptBudget::default();
        Self {
            enabled: true,
            debounce_ms: 75,
            prefix_tokens: budget.prefix_tokens,
            suffix_tokens: budget.suffix_tokens,
            context_tokens: budget.context_tokens,
            max_tokens: 128,
            timeout_ms: 30_000,
            cache_size: 256,
        }
    }
}

impl CompletionSettings {
    /// Defaults for completions served by `kind`. The embedded model reads
    /// prompts at tens of tokens per second on a CPU, so it gets a small
    /// window (about 0.7k prompt tokens) and short completions; remote
    /// providers get the full [`PromptBudget::default`].
    pub fn defaults_for(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::Embedded => {
                Self { prefix_tokens: 384, suffix_tokens: 128, context_tokens: 128, max_tokens: 48, ..Self::default() }
            }
            ProviderKind::OpenAi | ProviderKind::Anthropic | ProviderKind::Ollama => Self::default(),
        }
    }

    /// Replaces the budget fields the user left unset (absent from
    /// `explicit`, the `lsp.completion` table as written) with the defaults
    /// for `kind`. Explicit settings always win.
    fn apply_provider_defaults(&mut self, kind: ProviderKind, explicit: Option<&serde_json::Value>) {
        let defaults = Self::defaults_for(kind);
        let is_set = |camel: &str, snake: &str| {
            explicit.and_then(|v| v.as_object()).is_some_and(|o| o.contains_key(camel) || o.contains_key(snake))
        };
        if !is_set("prefixTokens", "prefix_tokens") {
            self.prefix_tokens = defaults.prefix_tokens;
        }
        if !is_set("suffixTokens", "suffix_tokens") {
            self.suffix_tokens = defaults.suffix_tokens;
        }
        if !is_set("contextTokens", "context_tokens") {
            self.context_tokens = defaults.context_tokens;
        }
        if !is_set("maxTokens", "max_tokens") {
            self.max_tokens = defaults.max_tokens;
        }
    }

    pub fn budget(&self) -> PromptBudget {
        PromptBudget {
            prefix_tokens: self.prefix_tokens,
            suffix_tokens: self.suffix_tokens,
            context_tokens: self.context_tokens,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HoverSettings {
    /// Add an AI explanation below the structural hover (costs a model call).
    pub ai: bool,
}

/// Where command results (chat, explain, agent, last prompt) are shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResultDisplay {
    /// A markdown file under `<workspace>/.sextant/`, opened with `window/showDocument`.
    #[default]
    Document,
    /// `window/showMessage`.
    Message,
    /// Only the command's response.
    None,
}

/// `sextant.agent`: what the agent may do without asking (an LSP server
/// cannot ask interactively, so anything not allowed is refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentSettings {
    #[serde(alias = "allow_edits")]
    pub allow_edits: bool,
    #[serde(alias = "allow_shell")]
    pub allow_shell: bool,
    #[serde(alias = "max_steps")]
    pub max_steps: usize,
    /// Run shell commands without a jail where none is available (user or
    /// editor settings only: a project file cannot set `dangerously_*`).
    #[serde(alias = "dangerously_allow_unjailed_shell")]
    pub dangerously_allow_unjailed_shell: bool,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self { allow_edits: false, allow_shell: false, max_steps: 25, dangerously_allow_unjailed_shell: false }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// `lsp.completion`.
    pub completion: CompletionSettings,
    /// `hover` table.
    pub hover: HoverSettings,
    /// `agent` table.
    pub agent: AgentSettings,
    /// `lsp.results`.
    pub results: ResultDisplay,
    /// `lsp.chatMaxTokens`: chat/explain/edit answer length limit.
    #[serde(alias = "chat_max_tokens")]
    pub chat_max_tokens: u32,
    /// `lsp.chatTimeoutMs`: chat/explain/edit requests give up after this long.
    #[serde(alias = "chat_timeout_ms")]
    pub chat_timeout_ms: u64,
    /// `lsp.reindexDebounceMs`: delay before re-indexing a changed document.
    #[serde(alias = "reindex_debounce_ms")]
    pub reindex_debounce_ms: u64,
    /// `lsp.reindexMaxWaitMs`: while typing continues, re-index at least this
    /// often (the debounce alone would wait for a pause).
    #[serde(alias = "reindex_max_wait_ms")]
    pub reindex_max_wait_ms: u64,
    /// `lsp.maxDocumentBytes`: larger documents are not completed.
    #[serde(alias = "max_document_bytes")]
    pub max_document_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            completion: CompletionSettings::default(),
            hover: HoverSettings::default(),
            agent: AgentSettings::default(),
            results: ResultDisplay::default(),
            chat_max_tokens: 1024,
            chat_timeout_ms: 120_000,
            reindex_debounce_ms: 300,
            reindex_max_wait_ms: 1000,
            max_document_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Settings {
    /// Reads this server's tables out of the merged core config.
    pub fn from_config(config: &Config) -> Result<Settings, String> {
        let mut value = config.section("lsp").cloned().unwrap_or_else(|| json!({}));
        if !value.is_object() {
            return Err(format!("the `lsp` settings must be a table/object, got {value}"));
        }
        for name in ["hover", "agent"] {
            if let (Some(section), Some(object)) = (config.section(name), value.as_object_mut()) {
                object.insert(name.to_string(), section.clone());
            }
        }
        let explicit_completion = value.get("completion").cloned();
        let mut settings: Settings =
            serde_json::from_value(value).map_err(|e| format!("invalid sextant settings: {e}"))?;
        let kind = config.resolve(Purpose::Completion).kind;
        settings.completion.apply_provider_defaults(kind, explicit_completion.as_ref());
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project file may only lower these (core's `SECTION_LIMIT_DEFAULTS`),
    /// so the ceilings there must be this server's own defaults.
    #[test]
    fn project_limit_ceilings_are_this_servers_defaults() {
        use sextant_core::config::project::SECTION_LIMIT_DEFAULTS;
        let defaults = Settings::default();
        let expected = [
            ("lsp", "chat_max_tokens", u64::from(defaults.chat_max_tokens)),
            ("lsp", "chat_timeout_ms", defaults.chat_timeout_ms),
            ("lsp", "max_document_bytes", defaults.max_document_bytes as u64),
            ("agent", "max_steps", defaults.agent.max_steps as u64),
        ];
        for entry in expected {
            assert!(SECTION_LIMIT_DEFAULTS.contains(&entry), "{entry:?} is not in SECTION_LIMIT_DEFAULTS");
        }
    }

    #[test]
    fn lsp_tables_are_read_from_the_core_config() {
        let mut config = Config::default();
        let patch = json!({
            "provider": "openai",
            "lsp": {"completion": {"debounceMs": 10}, "results": "message"},
            "hover": {"ai": true},
            "agent": {"allowEdits": true}
        });
        assert!(config.merge_json(&patch).is_ok());
        let settings = Settings::from_config(&config).unwrap_or_default();
        assert_eq!(settings.completion.debounce_ms, 10);
        assert_eq!(settings.completion.prefix_tokens, 4096);
        assert_eq!(settings.results, ResultDisplay::Message);
        assert!(settings.hover.ai && settings.agent.allow_edits);
        // Later patches merge into earlier ones.
        assert!(config.merge_json(&json!({"sextant": {"lsp": {"completion": {"cacheSize": 3}}}})).is_ok());
        let settings = Settings::from_config(&config).unwrap_or_default();
        assert_eq!((settings.completion.debounce_ms, settings.completion.cache_size), (10, 3));
        assert!(config.merge_json(&json!({"lsp": {"completion": {"debounceMs": "soon"}}})).is_ok());
        assert!(Settings::from_config(&config).is_err());
    }

    #[test]
    fn completion_budget_defaults_follow_the_completion_provider() {
        // The built-in default provider is the embedded model: small window.
        let config = Config::default();
        let settings = Settings::from_config(&config).unwrap_or_default();
        let c = &settings.completion;
        assert_eq!((c.prefix_tokens, c.suffix_tokens, c.context_tokens, c.max_tokens), (384, 128, 128, 48));
        assert_eq!(c.debounce_ms, CompletionSettings::default().debounce_ms);

        // A remote completion provider keeps the large defaults, even with an embedded chat provider.
        let mut config = Config::default();
        assert!(config.merge_json(&json!({"completion": {"provider": "ollama"}})).is_ok());
        assert_eq!(config.resolve(Purpose::Completion).kind, ProviderKind::Ollama);
        let settings = Settings::from_config(&config).unwrap_or_default();
        assert_eq!(settings.completion, CompletionSettings::default());

        // Explicit settings win over the embedded defaults, in either spelling.
        let mut config = Config::default();
        let patch = json!({"lsp": {"completion": {"prefixTokens": 2000, "max_tokens": 100}}});
        assert!(config.merge_json(&patch).is_ok());
        let c = Settings::from_config(&config).unwrap_or_default().completion;
        assert_eq!((c.prefix_tokens, c.suffix_tokens, c.context_tokens, c.max_tokens), (2000, 128, 128, 100));
    }
}
