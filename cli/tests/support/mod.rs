//! What the CLI end-to-end tests share: the built `sextant` started in a
//! hermetic environment (no user config, caches and data under the test's
//! temp dir, no keys from the caller's environment), pointed at a scripted
//! provider, and its output collected with a timeout.
//!
//! Each test file includes it with `mod support;`, so not every helper is
//! used by every file.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use scripted_provider::ScriptedServer;

/// A finished `sextant` run.
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// `sextant` in `workspace`, with everything it writes under `scratch` and the
/// OpenAI-compatible scripted provider as its model. Pipes for all three
/// streams; the caller adds arguments and extra variables.
pub fn sextant_command(scratch: &Path, workspace: &Path, server: &ScriptedServer) -> tokio::process::Command {
    let mut command = hermetic_command(scratch, workspace);
    command
        .env("SEXTANT_PROVIDER", "openai")
        .env("SEXTANT_BASE_URL", format!("{}/v1", server.url()))
        .env("SEXTANT_MODEL", "scripted")
        .env("SEXTANT_API_KEY", "test-key")
        .env("SEXTANT_MAX_RETRIES", "0");
    command
}

/// `sextant` in `workspace` with no provider settings at all: no user config,
/// no `SEXTANT_*` provider variables, no standard key variables.
pub fn hermetic_command(scratch: &Path, workspace: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sextant"));
    command
        .current_dir(workspace)
        .env("SEXTANT_CONFIG", scratch.join("no-user-config.toml"))
        .env("SEXTANT_DATA_DIR", scratch.join("data"))
        .env("XDG_CACHE_HOME", scratch.join("cache"))
        .env("XDG_CONFIG_HOME", scratch.join("config"))
        .env("XDG_DATA_HOME", scratch.join("data-home"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in [
        "SEXTANT_PROVIDER",
        "SEXTANT_MODEL",
        "SEXTANT_BASE_URL",
        "SEXTANT_API_KEY",
        "SEXTANT_LOG",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "OLLAMA_HOST",
    ] {
        command.env_remove(name);
    }
    command
}

/// Writes `stdin` (then closes it) and waits for the exit, at most `limit`.
pub async fn finish(mut child: tokio::process::Child, stdin: &str, limit: Duration) -> Output {
    if let Some(mut pipe) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        // A child that exits without reading closes the pipe; that is its business.
        let _ = pipe.write_all(stdin.as_bytes()).await;
    }
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("sextant did not finish within {limit:?}"))
        .expect("wait for sextant");
    Output {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The tool results the model got, in order (from the last request).
pub fn tool_results(server: &ScriptedServer) -> Vec<String> {
    server.requests().last().map(|request| tool_texts(&request.body)).unwrap_or_default()
}

/// The tool results in one request body, in order.
pub fn tool_texts(body: &serde_json::Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter(|m| m["role"] == "tool")
                .filter_map(|m| m["content"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Copies a fixture directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
