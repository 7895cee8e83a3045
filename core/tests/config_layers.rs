//! Config parsing, layering, env overrides, redaction, and the factory.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use sextant_core::config::{
    load_from, parse_toml, ApiKey, Config, ConfigError, ProjectTrust, ProviderKind, Purpose, DEFAULT_ANTHROPIC_URL,
};
use sextant_core::providers::fim::{FimFamily, FimMode};
use sextant_core::providers::{self, ProviderError};

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name: &str| map.get(name).cloned()
}

fn no_env() -> impl Fn(&str) -> Option<String> {
    env_of(&[])
}

fn untrusted(_: &[u8]) -> ProjectTrust {
    ProjectTrust::Untrusted
}

fn trusted(_: &[u8]) -> ProjectTrust {
    ProjectTrust::Trusted
}

#[test]
fn defaults_to_the_embedded_provider() {
    let config = load_from(None, None, &untrusted, &no_env()).expect("empty config loads");
    assert_eq!(config.provider, ProviderKind::Embedded);
    assert_eq!(config.resolve(Purpose::Completion).kind, ProviderKind::Embedded);
}

#[test]
fn project_file_overrides_user_file_field_by_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let user = dir.path().join("user.toml");
    let project = dir.path().join(".sextant.toml");
    std::fs::write(
        &user,
        "provider = \"openai\"\nmodel = \"gpt-4o-mini\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmax_retries = 5\n\
         [agent]\nmax_steps = 10\nshell = true\n",
    )
    .expect("write user");
    std::fs::write(
        &project,
        "model = \"qwen2.5-coder-7b\"\ntimeout_secs = 2.5\n[agent]\nmax_steps = 3\n\
         [completion]\nprovider = \"ollama\"\nfim = \"template\"\nfim_template = \"qwen\"\nmax_tokens = 64\n",
    )
    .expect("write project");
    // The project chooses its completion provider, so it must be trusted.
    let config = load_from(Some(&user), Some(&project), &trusted, &no_env()).expect("loads");
    assert_eq!(config.provider, ProviderKind::OpenAi);
    assert_eq!(config.model.as_deref(), Some("qwen2.5-coder-7b"));
    assert_eq!(config.base_url.as_deref(), Some("http://127.0.0.1:9/v1"));
    assert_eq!(config.max_retries, 5);
    assert_eq!(config.timeout, Duration::from_millis(2500));
    assert_eq!(config.section("agent"), Some(&json!({"max_steps": 3, "shell": true})));
    assert_eq!(config.sources, vec![user.clone(), project.clone()]);

    let chat = config.resolve(Purpose::Chat);
    assert_eq!((chat.kind, chat.model.as_str()), (ProviderKind::OpenAi, "qwen2.5-coder-7b"));
    // The completion provider differs, so it gets its own defaults, not the chat model or URL.
    let completion = config.resolve(Purpose::Completion);
    assert_eq!(completion.kind, ProviderKind::Ollama);
    assert_eq!(completion.model, "qwen2.5-coder:1.5b");
    assert_eq!(completion.base_url, "http://127.0.0.1:11434");
    assert_eq!(completion.fim_mode, FimMode::Template);
    assert_eq!(completion.fim_template, Some(FimFamily::Qwen));
    assert_eq!(completion.max_tokens, Some(64));
    assert_eq!(completion.http.timeout, Duration::from_millis(2500));
}

#[test]
fn env_overrides_beat_files_and_keys_fall_back_to_standard_variables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let user = dir.path().join("config.toml");
    std::fs::write(&user, "provider = \"anthropic\"\nmodel = \"claude-x\"\n").expect("write");
    let env = env_of(&[
        ("SEXTANT_MODEL", "claude-y"),
        ("SEXTANT_TIMEOUT_SECS", "7"),
        ("ANTHROPIC_API_KEY", "ak-123"),
        ("OLLAMA_HOST", "0.0.0.0:5555"),
        ("SEXTANT_COMPLETION_PROVIDER", "ollama"),
    ]);
    let config = load_from(Some(&user), None, &untrusted, &env).expect("loads");
    let chat = config.resolve(Purpose::Chat);
    assert_eq!(chat.kind, ProviderKind::Anthropic);
    assert_eq!(chat.model, "claude-y");
    assert_eq!(chat.base_url, DEFAULT_ANTHROPIC_URL);
    assert!(chat.api_key == Some(ApiKey::new("ak-123")), "ANTHROPIC_API_KEY fallback");
    assert_eq!(chat.http.timeout, Duration::from_secs(7));
    let completion = config.resolve(Purpose::Completion);
    assert_eq!(completion.base_url, "http://127.0.0.1:5555", "OLLAMA_HOST normalised");
    assert!(completion.api_key.is_none(), "the anthropic key must not go to ollama");

    let env = env_of(&[("SEXTANT_PROVIDER", "openai"), ("SEXTANT_BASE_URL", "http://127.0.0.1:1/v1")]);
    let config = load_from(Some(&user), None, &untrusted, &env).expect("loads");
    assert_eq!(config.resolve(Purpose::Chat).kind, ProviderKind::OpenAi);
    assert_eq!(config.resolve(Purpose::Chat).base_url, "http://127.0.0.1:1/v1");
}

#[test]
fn explicit_key_beats_environment_key() {
    let mut config = load_from(None, None, &untrusted, &env_of(&[("OPENAI_API_KEY", "env-key")])).expect("loads");
    config.merge_json(&json!({"provider": "openai", "apiKey": "file-key"})).expect("merges");
    assert!(config.resolve(Purpose::Chat).api_key == Some(ApiKey::new("file-key")));
}

#[test]
fn bad_env_values_name_the_variable() {
    let err = load_from(None, None, &untrusted, &env_of(&[("SEXTANT_PROVIDER", "gemini")])).expect_err("bad provider");
    assert_eq!(
        err.to_string(),
        "invalid setting in $SEXTANT_PROVIDER: unknown provider `gemini` (expected embedded, openai, anthropic or ollama)"
    );
    let err = load_from(None, None, &untrusted, &env_of(&[("SEXTANT_MAX_RETRIES", "many")])).expect_err("bad number");
    assert!(err.to_string().contains("SEXTANT_MAX_RETRIES"), "{err}");
}

#[test]
fn api_keys_are_redacted_in_debug_output() {
    let env = env_of(&[("OPENAI_API_KEY", "sk-env-secret"), ("ANTHROPIC_API_KEY", "ak-env-secret")]);
    let mut config = load_from(None, None, &untrusted, &env).expect("loads");
    config
        .merge_json(&json!({"apiKey": "sk-file-secret", "completion": {"apiKey": "sk-completion-secret"}}))
        .expect("merges");
    let printed = format!("{config:?} {:?} {:?}", config.resolve(Purpose::Chat), config.resolve(Purpose::Completion));
    for secret in ["sk-env-secret", "ak-env-secret", "sk-file-secret", "sk-completion-secret"] {
        assert!(!printed.contains(secret), "a key leaked into Debug output");
    }
    assert!(printed.contains("<redacted>"));
}

#[test]
fn bad_toml_names_file_line_and_column() {
    let path = Path::new("/home/u/.config/sextant/config.toml");
    let err = parse_toml("provider = \"openai\"\nmodel = \n", path).expect_err("syntax error");
    match &err {
        ConfigError::Syntax { line, .. } => assert_eq!(*line, 2),
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert!(err.to_string().starts_with("invalid config /home/u/.config/sextant/config.toml:2:"), "{err}");

    let err = parse_toml("provider = \"openai\"\n\nmax_retries = \"three\"\n", path).expect_err("type error");
    assert!(err.to_string().starts_with("invalid config /home/u/.config/sextant/config.toml:3:"), "{err}");

    let err = parse_toml("provider = \"gpt\"\n", path).expect_err("unknown provider");
    assert!(err.to_string().contains(":1:") && err.to_string().contains("gpt"), "{err}");

    let err = parse_toml("provider = \"openai\"\nmodle = \"x\"\n", path).expect_err("typo");
    assert_eq!(err.to_string(), "invalid config /home/u/.config/sextant/config.toml:2:1: unknown setting `modle`");

    let err = parse_toml("[completion]\nfim = \"auto\"\nmodell = \"x\"\n", path).expect_err("typo in table");
    assert!(err.to_string().contains(":3:") && err.to_string().contains("modell"), "{err}");
}

#[test]
fn unreadable_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A directory where a file is expected: exists but cannot be read as text.
    let err = load_from(Some(dir.path()), None, &untrusted, &no_env()).expect_err("directory is not a file");
    assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
}

#[test]
fn editor_settings_accept_wrapped_camel_case_and_nulls() {
    let mut config = Config::default();
    config
        .merge_json(&json!({"sextant": {
            "provider": "ollama",
            "baseUrl": "http://127.0.0.1:7777",
            "model": null,
            "apiKey": "",
            "maxTokens": 99,
            "completion": {"fim": "chat", "timeoutSecs": 1.5},
            "lsp": {"debounceMs": 50}
        }}))
        .expect("merges");
    let chat = config.resolve(Purpose::Chat);
    assert_eq!(chat.kind, ProviderKind::Ollama);
    assert_eq!(chat.base_url, "http://127.0.0.1:7777");
    assert_eq!(chat.model, "qwen2.5-coder:1.5b");
    assert_eq!(chat.max_tokens, Some(99));
    assert!(chat.api_key.is_none(), "an empty string means unset");
    let completion = config.resolve(Purpose::Completion);
    assert_eq!(completion.fim_mode, FimMode::Chat);
    assert_eq!(completion.http.timeout, Duration::from_millis(1500));
    assert_eq!(config.section("lsp"), Some(&json!({"debounceMs": 50})));

    let err = config.merge_json(&json!({"provider": "nope"})).expect_err("bad provider");
    assert!(err.to_string().starts_with("invalid setting in editor settings"), "{err}");
    let err = config.merge_json(&json!({"timeoutSecs": -1})).expect_err("negative timeout");
    assert!(err.to_string().contains("timeout_secs"), "{err}");
}

#[test]
fn project_file_is_read_at_the_workspace_root_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    let nested = repo.join("src").join("deep");
    std::fs::create_dir_all(&nested).expect("mkdir");
    std::fs::create_dir_all(repo.join(".git")).expect("mkdir .git");
    assert_eq!(sextant_core::config::find_project_file(&repo), None);
    std::fs::write(repo.join(".sextant.toml"), "provider = \"ollama\"\n").expect("write");
    assert_eq!(sextant_core::config::find_project_file(&repo), Some(repo.join(".sextant.toml")));
    // Neither a file in a parent (a planted /tmp/.sextant.toml) nor one above
    // a subdirectory used as the workspace is the workspace's.
    assert_eq!(sextant_core::config::find_project_file(&nested), None);
    std::fs::remove_file(repo.join(".sextant.toml")).expect("rm");
    std::fs::write(dir.path().join(".sextant.toml"), "provider = \"ollama\"\n").expect("write");
    assert_eq!(sextant_core::config::find_project_file(&repo), None);
    // A symlink is not followed to somebody else's file.
    std::os::unix::fs::symlink(dir.path().join(".sextant.toml"), repo.join(".sextant.toml")).expect("symlink");
    assert_eq!(sextant_core::config::find_project_file(&repo), None);
}

#[test]
fn an_untrusted_project_file_keeps_the_users_provider_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let user = dir.path().join("user.toml");
    let project = dir.path().join(".sextant.toml");
    std::fs::write(&user, "provider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n").expect("write user");
    std::fs::write(&project, "base_url = \"http://127.0.0.1:1/steal\"\n[agent]\nallow_shell = true\n").expect("write");
    let env = env_of(&[("OPENAI_API_KEY", "sk-user")]);
    let config = load_from(Some(&user), Some(&project), &untrusted, &env).expect("loads");
    let chat = config.resolve(Purpose::Chat);
    assert_eq!(chat.base_url, "http://127.0.0.1:9/v1");
    assert_eq!(config.section("agent"), Some(&json!({})));
    assert_eq!(config.notes.len(), 2, "{:?}", config.notes);
    assert!(config.notes[0].contains("ignored base_url") && config.notes[1].contains("agent.allow_shell"));
}

#[test]
fn factory_builds_each_kind_and_explains_missing_keys() {
    let mut config = Config::default();
    config.merge_json(&json!({"provider": "openai", "baseUrl": "http://127.0.0.1:1/v1", "model": "m"})).expect("ok");
    let provider = providers::build(&config, Purpose::Chat).expect("openai-compatible without key");
    assert_eq!((provider.name(), provider.model()), ("openai", "m"));

    config.merge_json(&json!({"baseUrl": "https://api.openai.com/v1"})).expect("ok");
    let err = providers::build(&config, Purpose::Chat).err().expect("OpenAI proper needs a key");
    assert!(matches!(err, ProviderError::Config(_)) && err.to_string().contains("OPENAI_API_KEY"), "{err}");

    let mut config = Config::default();
    config.merge_json(&json!({"provider": "anthropic"})).expect("ok");
    let err = providers::build(&config, Purpose::Chat).err().expect("anthropic needs a key");
    assert!(err.to_string().contains("ANTHROPIC_API_KEY"), "{err}");
    config.merge_json(&json!({"apiKey": "k"})).expect("ok");
    assert_eq!(providers::build(&config, Purpose::Chat).expect("builds").name(), "anthropic");

    let mut config = Config::default();
    config.merge_json(&json!({"completion": {"provider": "ollama", "model": "starcoder2:3b"}})).expect("ok");
    let completion = providers::build(&config, Purpose::Completion).expect("ollama");
    assert_eq!((completion.name(), completion.model()), ("ollama", "starcoder2:3b"));

    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("absent.gguf");
    config.merge_json(&json!({"embedded": {"modelPath": missing}})).expect("ok");
    let err = providers::build(&config, Purpose::Chat).err().expect("missing model");
    assert!(err.to_string().contains("sextant models pull"), "{err}");
}
