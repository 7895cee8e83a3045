//! End-to-end: the built `sextant` binary (`run`, `chat`, `sessions`, `usage`,
//! `doctor`) against the scripted OpenAI-compatible provider on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use scripted_provider::{Script, ScriptedServer, Turn};
use serde_json::{json, Value};

mod support;

use support::{copy_dir, Output};

struct Env {
    dir: tempfile::TempDir,
    server: ScriptedServer,
}

impl Env {
    async fn new(turns: Vec<Turn>) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/agent/basic"),
            &dir.path().join("workspace"),
        );
        std::fs::create_dir_all(dir.path().join("outside")).expect("mkdir");
        std::fs::write(dir.path().join("outside/secret.txt"), "top secret\n").expect("write");
        let server = ScriptedServer::start(Script::new(turns)).await.expect("server");
        Env { dir, server }
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.workspace().join(relative)).expect("read")
    }

    async fn sextant(&self, args: &[&str], stdin: &str) -> Output {
        let mut command = support::sextant_command(self.dir.path(), &self.workspace(), &self.server);
        command.args(args);
        support::finish(command.spawn().expect("spawn sextant"), stdin, Duration::from_secs(60)).await
    }
}

fn edit_turn(id: &str) -> Turn {
    Turn::tool_call(
        id,
        "edit_file",
        json!({"path": "src/lib.rs", "search": "    a + b\n", "replace": "    a.wrapping_add(b)\n"}),
    )
    .with_usage(120, 12)
}

#[tokio::test]
async fn run_text_mode_edits_with_allow_edits_and_reports_usage() {
    let env = Env::new(vec![edit_turn("c1"), Turn::text(["add ", "now wraps."]).with_usage(130, 13)]).await;
    let out = env.sextant(&["run", "-p", "make add wrap", "--allow-edits"], "").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout.trim(), "add now wraps.");
    assert!(env.read("src/lib.rs").contains("a.wrapping_add(b)"));
    assert!(out.stderr.contains("-> edit_file edit src/lib.rs"), "{}", out.stderr);
    assert!(out.stderr.contains("changed: src/lib.rs"), "{}", out.stderr);
    assert!(out.stderr.contains("tokens: 250 in, 25 out (2 steps, 1 tool calls), session "), "{}", out.stderr);
}

#[tokio::test]
async fn run_without_flags_is_denied_and_json_reports_it() {
    let env = Env::new(vec![
        edit_turn("c1"),
        Turn::tool_call("c2", "run_shell", json!({"command": "touch shell_was_here"})),
        Turn::text(["I could not change anything."]),
    ])
    .await;
    let before = env.read("src/lib.rs");
    let out = env.sextant(&["run", "-p", "make add wrap", "--output-format", "json"], "").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let summary: Value = serde_json::from_str(&out.stdout).expect("one JSON object on stdout");
    assert_eq!(summary["outcome"], "completed");
    assert_eq!(summary["final_text"], "I could not change anything.");
    let denied = summary["denied"].as_array().expect("denied list");
    assert_eq!(denied.len(), 2);
    assert!(denied[0]["reason"].as_str().unwrap_or("").contains("rerun with --allow-edits"));
    assert!(denied[1]["reason"].as_str().unwrap_or("").contains("rerun with --allow-shell"));
    assert_eq!(env.read("src/lib.rs"), before);
    assert!(!env.workspace().join("shell_was_here").exists());
    // The model was told why.
    let tool_texts = support::tool_texts(&env.server.requests()[2].body);
    assert!(tool_texts[0].starts_with("permission denied"), "{tool_texts:?}");
}

#[tokio::test]
async fn stream_json_lines_all_parse() {
    let env = Env::new(vec![
        Turn::tool_call("c1", "read_file", json!({"path": "README.md"})).with_usage(10, 1),
        Turn::text(["The ", "README ", "describes calc."]).with_usage(20, 2),
    ])
    .await;
    let out = env.sextant(&["run", "--output-format", "stream-json"], "summarise the readme\n").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let events: Vec<Value> =
        out.stdout.lines().map(|line| serde_json::from_str(line).expect("every line is JSON")).collect();
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"session_started"));
    assert_eq!(types.last(), Some(&"result"));
    for expected in ["step_started", "tool_call_started", "tool_call_finished", "text_delta", "usage"] {
        assert!(types.contains(&expected), "missing {expected} in {types:?}");
    }
    let text: String = events.iter().filter(|e| e["type"] == "text_delta").filter_map(|e| e["text"].as_str()).collect();
    assert_eq!(text, "The README describes calc.");
    let result = events.last().expect("result");
    assert_eq!(result["usage"]["input_tokens"], 30);
    // The prompt came from stdin.
    assert_eq!(env.server.requests()[0].body["messages"][1]["content"], "summarise the readme\n");
}

#[tokio::test]
async fn escapes_and_deny_listed_commands_are_refused() {
    let env = Env::new(vec![
        Turn::tool_call("c1", "write_file", json!({"path": "../outside/planted.txt", "content": "x"})),
        Turn::tool_call("c2", "read_file", json!({"path": "/etc/hostname"})),
        Turn::tool_call("c3", "run_shell", json!({"command": "rm -rf / --no-preserve-root"})),
        Turn::tool_call("c4", "run_shell", json!({"command": "git push --force origin main"})),
        Turn::text(["refused everywhere"]),
    ])
    .await;
    let out =
        env.sextant(&["run", "-p", "break out", "--allow-edits", "--allow-shell", "--output-format", "json"], "").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(!env.dir.path().join("outside/planted.txt").exists());
    assert_eq!(std::fs::read_to_string(env.dir.path().join("outside/secret.txt")).expect("secret"), "top secret\n");
    let tool_texts = support::tool_texts(&env.server.requests()[4].body);
    assert!(tool_texts[0].contains("escapes the workspace"), "{}", tool_texts[0]);
    assert!(tool_texts[1].contains("outside the workspace"), "{}", tool_texts[1]);
    assert!(tool_texts[2].contains("deny list"), "{}", tool_texts[2]);
    assert!(tool_texts[3].contains("deny list"), "{}", tool_texts[3]);
}

#[tokio::test]
async fn sessions_and_usage_commands_show_stored_runs() {
    let env = Env::new(vec![Turn::text(["Flamingo facts are stored."]).with_usage(40, 4)]).await;
    let out = env.sextant(&["run", "-p", "tell me about flamingos"], "").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);

    let list = env.sextant(&["sessions", "list", "--json"], "").await;
    let sessions: Value = serde_json::from_str(&list.stdout).expect("json list");
    let id = sessions[0]["id"].as_str().expect("id").to_string();
    assert_eq!(sessions[0]["title"], "tell me about flamingos");

    let search = env.sextant(&["sessions", "search", "flamingo", "--json"], "").await;
    let hits: Value = serde_json::from_str(&search.stdout).expect("json hits");
    assert_eq!(hits.as_array().map(|h| h.len()), Some(1), "{}", search.stdout);
    assert_eq!(hits[0]["session_id"], id.as_str());
    let none = env.sextant(&["sessions", "search", "pelican"], "").await;
    assert_eq!(none.stdout.trim(), "no matches");

    let markdown = env.sextant(&["sessions", "export", &id[..8]], "").await;
    assert_eq!(markdown.code, Some(0), "{}", markdown.stderr);
    assert!(markdown.stdout.contains("## User\n\ntell me about flamingos"), "{}", markdown.stdout);
    assert!(markdown.stdout.contains("Flamingo facts are stored."));
    let json_export = env.sextant(&["sessions", "export", &id, "--format", "json"], "").await;
    let export: Value = serde_json::from_str(&json_export.stdout).expect("json export");
    assert_eq!(export["messages"].as_array().map(|m| m.len()), Some(2));

    let show = env.sextant(&["sessions", "show", "does-not-exist"], "").await;
    assert_eq!(show.code, Some(1));
    assert!(show.stderr.contains("no session matches"), "{}", show.stderr);

    let usage = env.sextant(&["usage", "--json"], "").await;
    let rows: Value = serde_json::from_str(&usage.stdout).expect("json usage");
    assert_eq!(rows[0]["model"], "scripted");
    assert_eq!(rows[0]["input_tokens"], 40);
    assert_eq!(rows[0]["output_tokens"], 4);
}

#[tokio::test]
async fn chat_over_a_pipe_asks_permission_and_undoes() {
    let env = Env::new(vec![
        Turn::tool_call("c1", "write_file", json!({"path": "notes.txt", "content": "from chat\n"})).with_usage(5, 1),
        Turn::text(["Wrote notes.txt."]).with_usage(5, 1),
        Turn::tool_call("c2", "write_file", json!({"path": "other.txt", "content": "no\n"})).with_usage(5, 1),
        Turn::text(["Understood, skipped."]).with_usage(5, 1),
    ])
    .await;
    let input = "write notes\ny\n/usage\nwrite other\nn\n/undo\n/model\n/nonsense\n/exit\nnever sent\n";
    let out = env.sextant(&["chat"], input).await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.contains("Wrote notes.txt."), "{}", out.stdout);
    assert!(out.stdout.contains("tokens: 10 in, 2 out"), "{}", out.stdout);
    assert!(out.stdout.contains("Understood, skipped."), "{}", out.stdout);
    assert!(out.stdout.contains("reverted notes.txt (deleted)"), "{}", out.stdout);
    assert!(out.stdout.contains("model: scripted (openai)"), "{}", out.stdout);
    assert!(out.stdout.contains("unknown command /nonsense"), "{}", out.stdout);
    assert!(out.stderr.contains("allow edit: create notes.txt?"), "{}", out.stderr);
    assert!(!env.workspace().join("notes.txt").exists(), "undone");
    assert!(!env.workspace().join("other.txt").exists(), "declined");
    // The second turn carried the first one's history; "never sent" after /exit was not sent.
    let requests = env.server.requests();
    assert_eq!(requests.len(), 4);
    let second_turn = requests[2].body["messages"].as_array().expect("messages");
    assert!(second_turn.iter().any(|m| m["content"] == "Wrote notes.txt."));
}

#[tokio::test]
async fn doctor_reports_each_check() {
    let env = Env::new(vec![Turn::text(["OK"]).with_usage(3, 1)]).await;
    let out = env.sextant(&["doctor", "--json"], "").await;
    let checks: Value = serde_json::from_str(&out.stdout).expect("json checks");
    let status = |name: &str| {
        checks
            .as_array()
            .expect("array")
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["status"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(status("config").as_deref(), Some("warn"), "{}", out.stdout);
    assert_eq!(status("provider").as_deref(), Some("ok"), "{}", out.stdout);
    assert_eq!(status("model").as_deref(), Some("ok"), "{}", out.stdout);
    assert_eq!(status("sessions").as_deref(), Some("ok"), "{}", out.stdout);
    assert!(status("bwrap").is_some());
    assert_eq!(out.code, Some(0), "{}", out.stdout);

    // A provider that is not there fails the check and the exit code.
    drop(env.server);
    let env2 = Env {
        dir: env.dir,
        server: ScriptedServer::start(Script::new(vec![Turn::status(404)])).await.expect("server"),
    };
    let out = env2.sextant(&["doctor"], "").await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(out.stdout.contains("FAIL  model"), "{}", out.stdout);
}

#[tokio::test]
async fn agent_config_table_sets_the_step_limit() {
    let looping: Vec<Turn> = (0..5).map(|n| Turn::tool_call(&format!("c{n}"), "list_dir", json!({}))).collect();
    let env = Env::new(looping).await;
    std::fs::write(env.workspace().join(".sextant.toml"), "[agent]\nmax_steps = 2\nrepo_map_tokens = 0\n")
        .expect("write");
    let out = env.sextant(&["run", "-p", "loop forever"], "").await;
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("stopped: reached the step limit (2 steps)"), "{}", out.stderr);
    assert_eq!(env.server.requests().len(), 2);
    let system = env.server.requests()[0].body["messages"][0]["content"].as_str().unwrap_or("").to_string();
    assert!(!system.contains("# Repository map"), "repo_map_tokens = 0 leaves the map out");
    // The flag wins over the file.
    let out = env.sextant(&["run", "-p", "loop", "--max-steps", "1"], "").await;
    assert!(out.stderr.contains("(1 steps)"), "{}", out.stderr);

    std::fs::write(env.workspace().join(".sextant.toml"), "[agent]\nmax_steps = \"lots\"\n").expect("write");
    let out = env.sextant(&["run", "-p", "loop"], "").await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("max_steps must be a non-negative integer"), "{}", out.stderr);
}

#[tokio::test]
async fn chat_resumes_a_stored_session() {
    let env = Env::new(vec![
        Turn::text(["The secret word is marmalade."]).with_usage(5, 1),
        Turn::text(["You asked about marmalade."]).with_usage(5, 1),
    ])
    .await;
    let first = env.sextant(&["run", "-p", "remember a word", "--output-format", "json"], "").await;
    let summary: Value = serde_json::from_str(&first.stdout).expect("json");
    let id = summary["session_id"].as_str().expect("session id").to_string();
    let out = env.sextant(&["chat", "--resume", &id[..6]], "what did I ask?\n").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.contains(&format!("resumed session {id}")), "{}", out.stdout);
    assert!(out.stdout.contains("You asked about marmalade."), "{}", out.stdout);
    let sent = env.server.requests()[1].body["messages"].as_array().expect("messages").clone();
    assert!(sent.iter().any(|m| m["content"] == "The secret word is marmalade."));
    let export = env.sextant(&["sessions", "export", &id, "--format", "json"], "").await;
    let export: Value = serde_json::from_str(&export.stdout).expect("json");
    assert_eq!(export["messages"].as_array().map(|m| m.len()), Some(4));
}

/// `sextant run --allow-edits` in JSON mode; returns the session id.
async fn edit_run(env: &Env) -> String {
    let out = env.sextant(&["run", "-p", "edit", "--allow-edits", "--output-format", "json"], "").await;
    let summary: Value = serde_json::from_str(&out.stdout).expect("json summary");
    summary["session_id"].as_str().expect("session id").to_string()
}

#[tokio::test]
async fn stored_edits_are_undone_from_another_process() {
    let env = Env::new(vec![
        edit_turn("c1"),
        Turn::tool_call("c2", "write_file", json!({"path": "docs/new.md", "content": "new\n"})),
        Turn::text(["done"]),
        edit_turn("c3"),
        Turn::text(["done again"]),
    ])
    .await;
    let pristine = env.read("src/lib.rs");
    let id = edit_run(&env).await;
    assert!(env.read("src/lib.rs").contains("wrapping_add"));

    // Someone edits the file afterwards: undo refuses, then --force overrides.
    std::fs::write(env.workspace().join("src/lib.rs"), "// user rewrote this\n").expect("write");
    let refused = env.sextant(&["sessions", "undo", &id], "").await;
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("src/lib.rs changed since the agent's last edit"), "{}", refused.stderr);
    assert!(env.workspace().join("docs/new.md").exists(), "a refused undo touches nothing");
    let forced = env.sextant(&["sessions", "undo", &id, "--force"], "").await;
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);
    assert!(
        forced.stdout.contains("reverted src/lib.rs") && forced.stdout.contains("reverted docs/new.md (deleted)"),
        "{}",
        forced.stdout
    );
    assert_eq!(env.read("src/lib.rs"), pristine);
    assert!(!env.workspace().join("docs").exists());
    let again = env.sextant(&["sessions", "undo", &id], "").await;
    assert!(again.stdout.contains("has no edits to undo"), "{}", again.stdout);

    // A resumed chat can /undo the edits of the session it resumes.
    let second = edit_run(&env).await;
    assert!(env.read("src/lib.rs").contains("wrapping_add"));
    let out = env.sextant(&["chat", "--resume", &second], "/undo\n").await;
    assert!(out.stdout.contains("reverted src/lib.rs"), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(env.read("src/lib.rs"), pristine);
}

#[tokio::test]
async fn a_provider_failure_mid_run_still_reports_the_edits() {
    let env = Env::new(vec![edit_turn("c1"), Turn::status(500)]).await;
    let out = env.sextant(&["run", "-p", "edit then fail", "--allow-edits", "--output-format", "json"], "").await;
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    let summary: Value = serde_json::from_str(&out.stdout).expect("json summary despite the failure");
    assert_eq!(summary["outcome"], "failed");
    assert_eq!(summary["edits"][0]["path"], "src/lib.rs");
    assert!(summary["error"].as_str().unwrap_or("").contains("HTTP 500"), "{}", summary);
    assert!(out.stderr.contains("the model request failed"), "{}", out.stderr);

    let env = Env::new(vec![edit_turn("c1"), Turn::status(500)]).await;
    let out = env.sextant(&["run", "-p", "edit then fail", "--allow-edits"], "").await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("changed: src/lib.rs"), "{}", out.stderr);
    assert!(out.stderr.contains("stopped: the model request failed after 2 steps"), "{}", out.stderr);
}

#[tokio::test]
async fn max_tokens_flag_bounds_every_model_reply() {
    let env = Env::new(vec![
        Turn::text(["short."]).with_usage(5, 1),
        Turn::text(["also short."]).with_usage(5, 1),
        Turn::text(["unbounded."]).with_usage(5, 1),
    ])
    .await;
    let out = env.sextant(&["run", "-p", "be brief", "--max-tokens", "7", "--no-session"], "").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let out = env.sextant(&["chat", "--max-tokens", "9", "--no-session"], "hi\n").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let out = env.sextant(&["run", "-p", "no flag", "--no-session"], "").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let sent: Vec<Value> = env.server.requests().iter().map(|request| request.body["max_tokens"].clone()).collect();
    assert_eq!(sent, vec![json!(7), json!(9), Value::Null]);
    let out = env.sextant(&["run", "-p", "x", "--max-tokens", "0"], "").await;
    assert_eq!(out.code, Some(2), "a zero budget is a usage error: {}", out.stderr);
}

#[tokio::test]
async fn doctor_checks_the_embedded_model_id_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let workspace = dir.path().join("workspace");
    std::fs::create_dir_all(&workspace).expect("mkdir");
    let doctor = |model: &str| {
        let mut command = support::hermetic_command(dir.path(), &workspace);
        command.args(["doctor", "--offline"]).env("SEXTANT_PROVIDER", "embedded").env("SEXTANT_MODEL", model);
        support::finish(command.spawn().expect("spawn sextant doctor"), "", Duration::from_secs(60))
    };
    let out = doctor("qwen9-giant").await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains("FAIL  model") && out.stdout.contains("unknown embedded model `qwen9-giant`"),
        "{}",
        out.stdout
    );

    // Not installed: says what to run.
    let out = doctor("smollm2-135m").await;
    assert!(out.stdout.contains("sextant models pull smollm2-135m"), "{}", out.stdout);

    // A partial copy under the installed name fails the check instead of the first request.
    let models = dir.path().join("cache/sextant/models");
    std::fs::create_dir_all(&models).expect("mkdir");
    std::fs::write(models.join("SmolLM2-135M-Instruct.Q4_1.gguf"), b"GGUF\x03\0\0\0 only the start").expect("write");
    let out = doctor("smollm2-135m").await;
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains("expected 98362432")
            && out.stdout.contains("reinstall it with `sextant models pull smollm2-135m`"),
        "{}",
        out.stdout
    );
}
