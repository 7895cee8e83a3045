//! `sextant ask` end to end: the real binary against the scripted provider.

use std::path::Path;
use std::time::Duration;

use scripted_provider::{Script, ScriptedServer, Turn};

mod support;

use support::Output;

const KEY: &str = "sk-e2e-secret";

/// Runs `sextant ask` in `repo` with a hermetic environment (no user config,
/// cache under the temp dir) plus `env`.
async fn run_ask(repo: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    // Caches and data in a hidden directory, which the repo map skips.
    let mut command = support::hermetic_command(&repo.join(".scratch"), repo);
    command.arg("ask").args(args).stdin(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    support::finish(command.spawn().expect("spawn sextant ask"), "", Duration::from_secs(60)).await
}

fn fixture_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join(".git")).expect("mkdir .git");
    std::fs::create_dir_all(dir.path().join("src")).expect("mkdir src");
    std::fs::write(
        dir.path().join("src/ledger.rs"),
        "pub struct Ledger { entries: Vec<u64> }\n\nimpl Ledger {\n    pub fn compute_total(&self) -> u64 {\n        self.entries.iter().sum()\n    }\n}\n",
    )
    .expect("write ledger.rs");
    std::fs::write(
        dir.path().join("src/main.rs"),
        "mod ledger;\nfn main() {\n    let total = ledger::Ledger { entries: vec![] }.compute_total();\n    println!(\"{total}\");\n}\n",
    )
    .expect("write main.rs");
    dir
}

#[tokio::test]
async fn ask_streams_the_answer_and_reports_usage() {
    let repo = fixture_repo();
    let server = ScriptedServer::start(Script::new(vec![Turn::text(["It sums ", "the entries."]).with_usage(321, 4)]))
        .await
        .expect("server");
    let env = [
        ("SEXTANT_PROVIDER", "openai".to_string()),
        ("SEXTANT_BASE_URL", format!("{}/v1", server.url())),
        ("SEXTANT_MODEL", "test-model".to_string()),
        ("OPENAI_API_KEY", KEY.to_string()),
    ];
    let output = run_ask(repo.path(), &["What does compute_total return?", "--file", "src/main.rs"], &env).await;
    let stdout = output.stdout.as_str();
    let stderr = output.stderr.as_str();
    assert_eq!(output.code, Some(0), "stderr: {stderr}");
    assert_eq!(stdout, "It sums the entries.\n");
    assert!(stderr.contains("tokens: 321 in, 4 out (openai test-model)"), "stderr: {stderr}");
    assert!(!stderr.contains(KEY) && !stdout.contains(KEY), "the API key leaked");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert!(requests[0].header("authorization") == Some(&format!("Bearer {KEY}")[..]), "key header missing");
    let prompt = requests[0].body["messages"][1]["content"].as_str().expect("user message text").to_string();
    assert!(prompt.contains("File `src/main.rs`:\n```\nmod ledger;"), "prompt: {prompt}");
    // The map leaves the focus file out and shows the definition the question names.
    assert!(prompt.contains("Repository map:") && prompt.contains("src/ledger.rs"), "prompt: {prompt}");
    assert!(prompt.contains("compute_total"), "prompt: {prompt}");
    assert!(prompt.ends_with("Question: What does compute_total return?"), "prompt: {prompt}");

    // The exchange and its usage went to the session history.
    let store =
        sextant_core::sessions::SessionStore::open(&repo.path().join(".scratch/data/sessions.db")).expect("store");
    let usage = store.usage_by_day().expect("usage rows");
    assert_eq!(usage.len(), 1);
    assert_eq!((usage[0].input_tokens, usage[0].output_tokens), (321, 4));
}

#[tokio::test]
async fn provider_errors_fail_with_a_clear_message() {
    let repo = fixture_repo();
    let server = ScriptedServer::start(Script::new(vec![Turn::status(401)])).await.expect("server");
    let env = [
        ("SEXTANT_PROVIDER", "openai".to_string()),
        ("SEXTANT_BASE_URL", format!("{}/v1", server.url())),
        ("OPENAI_API_KEY", KEY.to_string()),
    ];
    let output = run_ask(repo.path(), &["hi"], &env).await;
    let stderr = output.stderr.as_str();
    assert_ne!(output.code, Some(0));
    assert!(stderr.contains("authentication failed for openai"), "stderr: {stderr}");
    assert!(!stderr.contains(KEY), "the API key leaked");
}

#[tokio::test]
async fn missing_embedded_model_says_what_to_run() {
    let repo = fixture_repo();
    let env = [
        ("SEXTANT_PROVIDER", "embedded".to_string()),
        ("SEXTANT_MODEL_PATH", repo.path().join("absent.gguf").display().to_string()),
    ];
    let output = run_ask(repo.path(), &["hi"], &env).await;
    let stderr = output.stderr.as_str();
    assert_ne!(output.code, Some(0));
    assert!(stderr.contains("sextant models pull"), "stderr: {stderr}");
}

#[tokio::test]
async fn unreadable_file_argument_is_reported() {
    let repo = fixture_repo();
    let output = run_ask(repo.path(), &["hi", "--file", "src/nope.rs"], &[("SEXTANT_PROVIDER", "ollama".into())]).await;
    let stderr = output.stderr.as_str();
    assert_ne!(output.code, Some(0));
    assert!(stderr.contains("cannot read --file src/nope.rs"), "stderr: {stderr}");
}

#[tokio::test]
async fn missing_ollama_model_says_what_to_pull() {
    let repo = fixture_repo();
    let server = ScriptedServer::start(Script::new(vec![Turn::status(404)])).await.expect("server");
    let env = [("SEXTANT_PROVIDER", "ollama".to_string()), ("OLLAMA_HOST", server.url())];
    let output = run_ask(repo.path(), &["hi"], &env).await;
    let stderr = output.stderr.as_str();
    assert_ne!(output.code, Some(0));
    assert!(stderr.contains("Run `ollama pull qwen2.5-coder:1.5b`"), "stderr: {stderr}");
    assert_eq!(server.requests()[0].path, "/api/chat");
}

#[tokio::test]
async fn ask_max_tokens_flag_reaches_the_request() {
    let repo = fixture_repo();
    let server = ScriptedServer::start(Script::new(vec![Turn::text(["Short."])])).await.expect("server");
    let env = [
        ("SEXTANT_PROVIDER", "openai".to_string()),
        ("SEXTANT_BASE_URL", format!("{}/v1", server.url())),
        ("SEXTANT_MODEL", "test-model".to_string()),
        ("OPENAI_API_KEY", KEY.to_string()),
    ];
    let output = run_ask(repo.path(), &["What is a ledger?", "--max-tokens", "33"], &env).await;
    assert_eq!(output.code, Some(0), "stderr: {}", output.stderr);
    assert_eq!(server.requests()[0].body["max_tokens"], serde_json::json!(33));
}
