//! Sextant's settings: which model provider to use and how to talk to it.
//!
//! Layers, later ones winning field by field:
//! 1. built-in defaults (provider = embedded);
//! 2. the user file `<config dir>/sextant/config.toml` (or `$SEXTANT_CONFIG`);
//! 3. the project file `.sextant.toml` at the workspace root (never a parent
//!    directory), restricted by [`project::restrict`]: it cannot choose the
//!    provider, URL or key unless the user trusted it ([`trust`]), never
//!    grants permissions and never raises limits;
//! 4. environment overrides (`SEXTANT_PROVIDER`, `SEXTANT_MODEL`,
//!    `SEXTANT_BASE_URL`, `SEXTANT_API_KEY`, `SEXTANT_COMPLETION_PROVIDER`,
//!    `SEXTANT_COMPLETION_MODEL`, `SEXTANT_COMPLETION_BASE_URL`,
//!    `SEXTANT_TIMEOUT_SECS`, `SEXTANT_MAX_RETRIES`);
//! 5. editor settings passed as JSON ([`Config::merge_json`]; the LSP applies
//!    `initializationOptions` / `didChangeConfiguration` last).
//!
//! `OPENAI_API_KEY`, `ANTHROPIC_API_KEY` and `OLLAMA_HOST` are fallbacks used
//! only when no layer sets a key / base URL for that provider.
//!
//! ```toml
//! provider = "openai"          # embedded | openai | anthropic | ollama
//! model = "gpt-4o-mini"
//! base_url = "http://127.0.0.1:8080/v1"
//! api_key = "…"                # prefer OPENAI_API_KEY / ANTHROPIC_API_KEY
//! timeout_secs = 60            # response headers, and each streamed piece
//! max_retries = 3              # on 429 / 5xx / connection failures
//! temperature = 0.2
//! max_tokens = 1024
//!
//! [completion]                 # inline completion; unset fields fall back to the above
//! provider = "ollama"
//! model = "qwen2.5-coder:1.5b"
//! fim = "auto"                 # auto | suffix | template | chat
//! fim_template = "qwen"        # starcoder | codellama | deepseek | qwen | codestral
//! timeout_secs = 5
//! max_tokens = 128
//!
//! [embedded]
//! model_path = "/path/to/model.gguf"
//! ```
//!
//! Other tables (`[agent]`, `[map]`, `[lsp]`, …) are kept as JSON in
//! [`Config::sections`] for the modules that own them.
//!
//! Pure parsing functions (text in, data out) plus a thin [`load`].
//!
//! Invariant: API keys live only in [`ApiKey`], whose `Debug` is redacted, so
//! no `{:?}` of a config (or anything holding one) can leak a key into logs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::providers::fim::{FimFamily, FimMode};
use crate::providers::http::HttpSettings;

pub mod project;
pub mod trust;

pub use project::ProjectTrust;

/// The project file looked up at the workspace root.
pub const PROJECT_FILE: &str = ".sextant.toml";
/// Points at a user config file other than the XDG default (tests use it).
pub const CONFIG_PATH_ENV: &str = "SEXTANT_CONFIG";

pub const DEFAULT_OPENAI_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_ANTHROPIC_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-3-5-haiku-latest";
pub const DEFAULT_OLLAMA_MODEL: &str = "qwen2.5-coder:1.5b";

/// Which backend answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The small model bundled with Sextant (runs on the CPU, no network).
    #[default]
    Embedded,
    /// Any OpenAI-compatible server.
    #[serde(rename = "openai", alias = "openai-compatible")]
    OpenAi,
    Anthropic,
    Ollama,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Embedded => "embedded",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Ollama => "ollama",
        }
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "embedded" => Ok(ProviderKind::Embedded),
            "openai" | "openai-compatible" => Ok(ProviderKind::OpenAi),
            "anthropic" => Ok(ProviderKind::Anthropic),
            "ollama" => Ok(ProviderKind::Ollama),
            other => Err(format!("unknown provider `{other}` (expected embedded, openai, anthropic or ollama)")),
        }
    }
}

/// An API key. `Debug` never shows it; use [`ApiKey::expose`] to send it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
    /// The secret itself: only for building request headers.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for ApiKey {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        String::deserialize(de).map(ApiKey)
    }
}

/// Configuration errors, naming where the bad value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("invalid config {}:{line}:{column}: {message}", path.display())]
    Syntax { path: PathBuf, line: usize, column: usize, message: String },
    #[error("invalid setting in {origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// One layer of settings as written (every field optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigLayer {
    pub provider: Option<ProviderKind>,
    pub model: Option<String>,
    #[serde(alias = "baseUrl")]
    pub base_url: Option<String>,
    #[serde(alias = "apiKey")]
    pub api_key: Option<ApiKey>,
    #[serde(alias = "timeoutSecs")]
    pub timeout_secs: Option<f64>,
    #[serde(alias = "connectTimeoutSecs")]
    pub connect_timeout_secs: Option<f64>,
    #[serde(alias = "maxRetries")]
    pub max_retries: Option<u32>,
    #[serde(alias = "retryBackoffMs")]
    pub retry_backoff_ms: Option<u64>,
    pub temperature: Option<f32>,
    #[serde(alias = "maxTokens")]
    pub max_tokens: Option<u32>,
    pub stream: Option<bool>,
    pub completion: Option<CompletionLayer>,
    pub embedded: Option<EmbeddedLayer>,
    /// Everything else: tables owned by other modules (and typos, rejected by
    /// [`ConfigLayer::check_unknown`] when they are not tables).
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `[completion]`: inline-completion overrides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionLayer {
    pub provider: Option<ProviderKind>,
    pub model: Option<String>,
    #[serde(alias = "baseUrl")]
    pub base_url: Option<String>,
    #[serde(alias = "apiKey")]
    pub api_key: Option<ApiKey>,
    pub fim: Option<FimMode>,
    #[serde(alias = "fimTemplate")]
    pub fim_template: Option<FimFamily>,
    #[serde(alias = "timeoutSecs")]
    pub timeout_secs: Option<f64>,
    #[serde(alias = "maxTokens")]
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

/// `[embedded]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedLayer {
    #[serde(alias = "modelPath")]
    pub model_path: Option<PathBuf>,
}

impl ConfigLayer {
    /// Rejects top-level keys that are neither known settings nor tables
    /// (most likely typos such as `modle = "…"`). Returns the bad key.
    fn unknown_scalar(&self) -> Option<&str> {
        self.other.iter().find(|(_, v)| !v.is_object()).map(|(k, _)| k.as_str())
    }
}

/// Parses the text of a TOML config file. `path` is only used in errors.
pub fn parse_toml(text: &str, path: &Path) -> Result<ConfigLayer, ConfigError> {
    let layer: ConfigLayer = toml::from_str(text).map_err(|err| {
        let (line, column) = err.span().map(|span| line_column(text, span.start)).unwrap_or((1, 1));
        ConfigError::Syntax { path: path.to_path_buf(), line, column, message: err.message().trim().to_string() }
    })?;
    if let Some(key) = layer.unknown_scalar() {
        let line = text
            .lines()
            .position(|l| l.trim_start().strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('=')))
            .map_or(1, |i| i + 1);
        return Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column: 1,
            message: format!("unknown setting `{key}`"),
        });
    }
    Ok(layer)
}

/// Parses editor settings: either the settings object itself or one wrapped
/// as `{"sextant": {…}}`. `null` and `""` fields count as unset (editors
/// send empty strings for settings the user left blank).
pub fn parse_json(value: &Value, origin: &str) -> Result<ConfigLayer, ConfigError> {
    let value = value.get("sextant").unwrap_or(value);
    let value = strip_nulls(value);
    let layer: ConfigLayer = serde_json::from_value(value)
        .map_err(|err| ConfigError::Invalid { origin: origin.to_string(), message: err.to_string() })?;
    if let Some(key) = layer.unknown_scalar() {
        return Err(ConfigError::Invalid { origin: origin.to_string(), message: format!("unknown setting `{key}`") });
    }
    Ok(layer)
}

fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let set = |v: &&Value| !(v.is_null() || v.as_str() == Some(""));
            Value::Object(map.iter().filter(|(_, v)| set(v)).map(|(k, v)| (k.clone(), strip_nulls(v))).collect())
        }
        other => other.clone(),
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Reads the `SEXTANT_*` overrides from an environment lookup.
pub fn parse_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ConfigLayer, ConfigError> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let invalid = |name: &str, message: String| ConfigError::Invalid { origin: format!("${name}"), message };
    let kind = |name: &str| -> Result<Option<ProviderKind>, ConfigError> {
        get(name).map(|v| v.parse::<ProviderKind>().map_err(|m| invalid(name, m))).transpose()
    };
    let mut layer = ConfigLayer {
        provider: kind("SEXTANT_PROVIDER")?,
        model: get("SEXTANT_MODEL"),
        base_url: get("SEXTANT_BASE_URL"),
        api_key: get("SEXTANT_API_KEY").map(ApiKey),
        ..ConfigLayer::default()
    };
    if let Some(text) = get("SEXTANT_TIMEOUT_SECS") {
        layer.timeout_secs = Some(
            text.trim().parse().map_err(|_| invalid("SEXTANT_TIMEOUT_SECS", format!("`{text}` is not a number")))?,
        );
    }
    if let Some(text) = get("SEXTANT_MAX_RETRIES") {
        layer.max_retries = Some(
            text.trim()
                .parse()
                .map_err(|_| invalid("SEXTANT_MAX_RETRIES", format!("`{text}` is not a whole number")))?,
        );
    }
    let completion = CompletionLayer {
        provider: kind("SEXTANT_COMPLETION_PROVIDER")?,
        model: get("SEXTANT_COMPLETION_MODEL"),
        base_url: get("SEXTANT_COMPLETION_BASE_URL"),
        ..CompletionLayer::default()
    };
    if completion.provider.is_some() || completion.model.is_some() || completion.base_url.is_some() {
        layer.completion = Some(completion);
    }
    Ok(layer)
}

/// Fallback credentials and hosts from the standard environment variables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvFallbacks {
    pub openai_api_key: Option<ApiKey>,
    pub anthropic_api_key: Option<ApiKey>,
    pub ollama_host: Option<String>,
}

impl EnvFallbacks {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        EnvFallbacks {
            openai_api_key: get("OPENAI_API_KEY").map(ApiKey),
            anthropic_api_key: get("ANTHROPIC_API_KEY").map(ApiKey),
            ollama_host: get("OLLAMA_HOST"),
        }
    }
}

/// Inline-completion settings; `None` falls back to the chat settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompletionConfig {
    pub provider: Option<ProviderKind>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<ApiKey>,
    pub fim: FimMode,
    pub fim_template: Option<FimFamily>,
    pub timeout: Option<Duration>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

/// The merged settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub provider: ProviderKind,
    pub model: Option<String>,
    pub base_url: Option<String>,
    pub api_key: Option<ApiKey>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_retries: u32,
    pub retry_backoff: Duration,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub stream: bool,
    pub completion: CompletionConfig,
    pub embedded_model_path: Option<PathBuf>,
    pub env: EnvFallbacks,
    /// Tables owned by other modules (`[agent]`, `[map]`, …), as JSON.
    pub sections: BTreeMap<String, Value>,
    /// The files that were read, in order.
    pub sources: Vec<PathBuf>,
    /// Settings of the project file that were ignored, and why; front ends
    /// show these to the user.
    pub notes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        let http = HttpSettings::default();
        Config {
            provider: ProviderKind::Embedded,
            model: None,
            base_url: None,
            api_key: None,
            timeout: http.timeout,
            connect_timeout: http.connect_timeout,
            max_retries: http.max_retries,
            retry_backoff: http.initial_backoff,
            temperature: None,
            max_tokens: None,
            stream: true,
            completion: CompletionConfig::default(),
            embedded_model_path: None,
            env: EnvFallbacks::default(),
            sections: BTreeMap::new(),
            sources: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// What a provider is used for: chat (ask, agent) or inline completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Chat,
    Completion,
}

/// Everything needed to build one provider, after defaults and fallbacks.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedProvider {
    pub kind: ProviderKind,
    /// Model name; empty for the embedded kind (its file is `embedded_model_path`).
    pub model: String,
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub stream: bool,
    pub fim_mode: FimMode,
    pub fim_template: Option<FimFamily>,
    pub http: HttpSettings,
    pub embedded_model_path: Option<PathBuf>,
}

fn duration_secs(value: f64, origin: &str, name: &str) -> Result<Duration, ConfigError> {
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(ConfigError::Invalid {
            origin: origin.to_string(),
            message: format!("`{name}` must be a number of seconds between 0 and 86400, not {value}"),
        })
    }
}

/// Deep-merges JSON objects (`overlay` wins on conflicts).
fn merge_value(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                merge_value(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, overlay) => *base = overlay,
    }
}

impl Config {
    /// Applies one layer on top of this config; `origin` names it in errors.
    pub fn apply(&mut self, layer: ConfigLayer, origin: &str) -> Result<(), ConfigError> {
        macro_rules! set {
            ($field:ident) => {
                if let Some(value) = layer.$field {
                    self.$field = value.into();
                }
            };
        }
        set!(provider);
        if layer.model.is_some() {
            self.model = layer.model;
        }
        if layer.base_url.is_some() {
            self.base_url = layer.base_url;
        }
        if layer.api_key.is_some() {
            self.api_key = layer.api_key;
        }
        if let Some(secs) = layer.timeout_secs {
            self.timeout = duration_secs(secs, origin, "timeout_secs")?;
        }
        if let Some(secs) = layer.connect_timeout_secs {
            self.connect_timeout = duration_secs(secs, origin, "connect_timeout_secs")?;
        }
        set!(max_retries);
        if let Some(ms) = layer.retry_backoff_ms {
            self.retry_backoff = Duration::from_millis(ms);
        }
        if layer.temperature.is_some() {
            self.temperature = layer.temperature;
        }
        if layer.max_tokens.is_some() {
            self.max_tokens = layer.max_tokens;
        }
        set!(stream);
        if let Some(completion) = layer.completion {
            let target = &mut self.completion;
            if completion.provider.is_some() {
                target.provider = completion.provider;
            }
            if completion.model.is_some() {
                target.model = completion.model;
            }
            if completion.base_url.is_some() {
                target.base_url = completion.base_url;
            }
            if completion.api_key.is_some() {
                target.api_key = completion.api_key;
            }
            if let Some(fim) = completion.fim {
                target.fim = fim;
            }
            if completion.fim_template.is_some() {
                target.fim_template = completion.fim_template;
            }
            if let Some(secs) = completion.timeout_secs {
                target.timeout = Some(duration_secs(secs, origin, "completion.timeout_secs")?);
            }
            if completion.max_tokens.is_some() {
                target.max_tokens = completion.max_tokens;
            }
            if completion.temperature.is_some() {
                target.temperature = completion.temperature;
            }
        }
        if let Some(path) = layer.embedded.and_then(|e| e.model_path) {
            self.embedded_model_path = Some(path);
        }
        for (name, value) in layer.other {
            merge_value(self.sections.entry(name).or_insert(Value::Null), value);
        }
        Ok(())
    }

    /// Applies editor settings (LSP `initializationOptions` or
    /// `workspace/didChangeConfiguration`).
    pub fn merge_json(&mut self, value: &Value) -> Result<(), ConfigError> {
        let layer = parse_json(value, "editor settings")?;
        self.apply(layer, "editor settings")
    }

    /// A table owned by another module, e.g. `config.section("agent")`.
    pub fn section(&self, name: &str) -> Option<&Value> {
        self.sections.get(name)
    }

    /// Resolves the provider to use for `purpose`: completion overrides,
    /// per-kind defaults, and environment fallbacks applied.
    pub fn resolve(&self, purpose: Purpose) -> ResolvedProvider {
        let completion = &self.completion;
        let for_completion = purpose == Purpose::Completion;
        let kind = if for_completion { completion.provider.unwrap_or(self.provider) } else { self.provider };
        // Chat settings carry over to completion only for the same provider
        // kind: a chat model name means nothing to another backend.
        let inherit = kind == self.provider;
        let pick = |own: &Option<String>, chat: &Option<String>| -> Option<String> {
            let own = if for_completion { own.clone() } else { None };
            own.or_else(|| if inherit { chat.clone() } else { None })
        };
        let model = pick(&completion.model, &self.model).unwrap_or_else(|| default_model(kind).to_string());
        let base_url = pick(&completion.base_url, &self.base_url).unwrap_or_else(|| self.default_base_url(kind));
        let explicit_key = if for_completion { completion.api_key.clone() } else { None };
        let api_key =
            explicit_key.or_else(|| if inherit { self.api_key.clone() } else { None }).or_else(|| match kind {
                ProviderKind::OpenAi => self.env.openai_api_key.clone(),
                ProviderKind::Anthropic => self.env.anthropic_api_key.clone(),
                ProviderKind::Ollama | ProviderKind::Embedded => None,
            });
        let timeout = if for_completion { completion.timeout.unwrap_or(self.timeout) } else { self.timeout };
        let (max_tokens, temperature) = if for_completion {
            (completion.max_tokens.or(self.max_tokens), completion.temperature.or(self.temperature))
        } else {
            (self.max_tokens, self.temperature)
        };
        ResolvedProvider {
            kind,
            model,
            base_url,
            api_key,
            temperature,
            max_tokens,
            stream: self.stream,
            fim_mode: completion.fim,
            fim_template: completion.fim_template,
            http: HttpSettings {
                timeout,
                connect_timeout: self.connect_timeout.min(timeout),
                max_retries: self.max_retries,
                initial_backoff: self.retry_backoff,
                ..HttpSettings::default()
            },
            embedded_model_path: self.embedded_model_path.clone(),
        }
    }

    fn default_base_url(&self, kind: ProviderKind) -> String {
        match kind {
            ProviderKind::OpenAi => DEFAULT_OPENAI_URL.to_string(),
            ProviderKind::Anthropic => DEFAULT_ANTHROPIC_URL.to_string(),
            ProviderKind::Ollama => match &self.env.ollama_host {
                Some(host) => crate::providers::ollama::base_url_from_ollama_host(host),
                None => crate::providers::ollama::DEFAULT_OLLAMA_URL.to_string(),
            },
            ProviderKind::Embedded => String::new(),
        }
    }
}

fn default_model(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => DEFAULT_OPENAI_MODEL,
        ProviderKind::Anthropic => DEFAULT_ANTHROPIC_MODEL,
        ProviderKind::Ollama => DEFAULT_OLLAMA_MODEL,
        ProviderKind::Embedded => "",
    }
}

/// The user config file: `$SEXTANT_CONFIG`, else `<config dir>/sextant/config.toml`.
pub fn user_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    match env(CONFIG_PATH_ENV).filter(|v| !v.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None => dirs::config_dir().map(|dir| dir.join("sextant").join("config.toml")),
    }
}

/// The project file of a workspace: `.sextant.toml` at its root only. A
/// parent directory is never searched (a `/tmp/.sextant.toml` planted by
/// someone else must not configure every checkout under /tmp), and a
/// symlink or non-regular file there is not read.
pub fn find_project_file(workspace_root: &Path) -> Option<PathBuf> {
    let candidate = workspace_root.join(PROJECT_FILE);
    let meta = std::fs::symlink_metadata(&candidate).ok()?;
    meta.file_type().is_file().then_some(candidate)
}

/// Builds a config from the given files (missing files are skipped) and an
/// environment lookup. The project file is restricted by
/// [`project::restrict`]; `project_trust` says whether the user approved its
/// bytes. Pure apart from reading the two files.
pub fn load_from(
    user_file: Option<&Path>,
    project_file: Option<&Path>,
    project_trust: &dyn Fn(&[u8]) -> ProjectTrust,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut config = Config { env: EnvFallbacks::from_env(env), ..Config::default() };
    let files = [(user_file, false), (project_file, true)];
    for (path, is_project) in files.into_iter().filter_map(|(path, project)| Some((path?, project))) {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ConfigError::Io { path: path.to_path_buf(), source }),
        };
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: "the file is not UTF-8 text".into(),
        })?;
        let mut layer = parse_toml(&text, path)?;
        if is_project {
            let (restricted, notes) =
                project::restrict(layer, &config, project_trust(text.as_bytes()), &path.display().to_string());
            layer = restricted;
            config.notes.extend(notes);
        }
        config.apply(layer, &path.display().to_string())?;
        config.sources.push(path.to_path_buf());
    }
    config.apply(parse_env(env)?, "the environment")?;
    Ok(config)
}

/// Loads the user file, the workspace's project file (trusted per the
/// user's [`trust::TrustStore`]) and the process environment.
pub fn load(workspace_root: Option<&Path>) -> Result<Config, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    let user = user_config_path(&env);
    let project = workspace_root.and_then(find_project_file);
    let store = trust::TrustStore::open_default();
    let trust_note = std::cell::RefCell::new(None);
    let project_trust = |bytes: &[u8]| {
        let (Some(root), Ok(store)) = (workspace_root, store.as_ref()) else { return ProjectTrust::Untrusted };
        match store.state(root, bytes) {
            Ok(trust::TrustState::Trusted) => ProjectTrust::Trusted,
            Ok(trust::TrustState::Changed) => {
                *trust_note.borrow_mut() = Some(format!(
                    "{PROJECT_FILE} changed since you trusted it; its provider settings are ignored until you run \
                     `sextant trust` again"
                ));
                ProjectTrust::Untrusted
            }
            Ok(trust::TrustState::Untrusted) => ProjectTrust::Untrusted,
            Err(err) => {
                *trust_note.borrow_mut() = Some(format!("trusted projects unknown: {err}"));
                ProjectTrust::Untrusted
            }
        }
    };
    let mut config = load_from(user.as_deref(), project.as_deref(), &project_trust, &env)?;
    // Only worth saying when the file wanted something trust would allow.
    if let Some(note) = trust_note.into_inner().filter(|_| !config.notes.is_empty()) {
        config.notes.insert(0, note);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("a\nbc\n", 0), (1, 1));
        assert_eq!(line_column("a\nbc\n", 3), (2, 2));
    }
}
