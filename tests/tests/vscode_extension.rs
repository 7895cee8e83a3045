//! The VS Code extension without VS Code: its esbuild bundle runs in node
//! with a fake `vscode` module (editors/vscode/test/e2e/) against the real
//! sextant-lsp and a scripted provider. Also the contract between the editor
//! extensions and the server: every server command the VS Code extension or
//! the Neovim plugin sends is one sextant-lsp announces, and the manifest
//! matches the extension's code. (Type checking, unit tests and packaging are
//! the xtask `vscode_package` step.)

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use scripted_provider::{Script, ScriptedServer, Turn};
use serde_json::{json, Value};
use sextant_tests::{built_binary, copy_dir, repo_root, require_node_package, EDITOR_WORKSPACE};

const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bundling plus a server start and three model round trips, on a loaded CI box.
const EXTENSION_RUN_TIMEOUT: Duration = Duration::from_secs(180);

fn read_source(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Reads one LSP frame (`Content-Length` header, blank line, JSON body).
fn read_frame(reader: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("Content-Length:") {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// The `executeCommandProvider.commands` the built server announces.
fn server_commands() -> BTreeSet<String> {
    let binary = built_binary("sextant-lsp");
    let workspace = tempfile::tempdir().unwrap_or_else(|error| panic!("cannot create a temporary directory: {error}"));
    let mut child = Command::new(&binary)
        .current_dir(workspace.path())
        .env("HOME", workspace.path())
        .env("XDG_CONFIG_HOME", workspace.path().join("config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
    let (sender, receiver) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some(message) = read_frame(&mut reader) {
                if sender.send(message).is_err() {
                    break;
                }
            }
        });
    }
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "processId": null, "rootUri": null, "capabilities": {} },
    })
    .to_string();
    if let Some(stdin) = child.stdin.as_mut() {
        let frame = format!("Content-Length: {}\r\n\r\n{initialize}", initialize.len());
        stdin.write_all(frame.as_bytes()).unwrap_or_else(|error| panic!("cannot write to the server: {error}"));
        let _ = stdin.flush();
    }
    let deadline = std::time::Instant::now() + RESPONSE_TIMEOUT;
    let response = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match receiver.recv_timeout(left) {
            Ok(message) if message["id"] == json!(1) => break message,
            Ok(_) => continue,
            Err(_) => {
                let _ = child.kill();
                panic!("sextant-lsp did not answer `initialize` within {RESPONSE_TIMEOUT:?}");
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let commands = response["result"]["capabilities"]["executeCommandProvider"]["commands"]
        .as_array()
        .unwrap_or_else(|| panic!("no executeCommandProvider.commands in {response}"));
    commands.iter().filter_map(|c| c.as_str().map(str::to_string)).collect()
}

/// Every quoted `sextant.<name>` string in `text` (either quote style).
fn quoted_commands(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for quote in ['\'', '"'] {
        for piece in text.split(quote).skip(1).step_by(2) {
            let is_command = piece
                .strip_prefix("sextant.")
                .is_some_and(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()));
            if is_command {
                found.insert(piece.to_string());
            }
        }
    }
    found
}

#[test]
fn editors_only_send_commands_the_server_announces() {
    let announced = server_commands();
    // VS Code: the `ServerCommand` union lists what the extension sends.
    let settings_ts = read_source("editors/vscode/src/settings.ts");
    let union = settings_ts
        .lines()
        .find(|line| line.starts_with("export type ServerCommand"))
        .unwrap_or_else(|| panic!("editors/vscode/src/settings.ts lost its ServerCommand type"));
    let vscode = quoted_commands(union);
    assert_eq!(vscode.len(), 4, "chat, explain, agent and showLastPrompt: {vscode:?}");
    // Neovim: every sextant.* string in the commands module (module names aside) is sent to the server.
    let commands_lua = read_source("editors/nvim/lua/sextant/commands.lua");
    let without_requires: String =
        commands_lua.lines().filter(|line| !line.contains("require(")).collect::<Vec<_>>().join("\n");
    let nvim = quoted_commands(&without_requires);
    assert!(nvim.len() >= 4, "{nvim:?}");
    for command in vscode.iter().chain(&nvim) {
        assert!(announced.contains(command), "the editors send {command}, the server announces only {announced:?}");
    }
}

#[test]
fn vscode_manifest_matches_the_extension() {
    let manifest: Value = serde_json::from_str(&read_source("editors/vscode/package.json"))
        .unwrap_or_else(|error| panic!("editors/vscode/package.json is not JSON: {error}"));
    assert_eq!(manifest["main"], json!("./dist/extension.js"), "the esbuild bundle is the entry point");
    let vsce = manifest["devDependencies"]["@vscode/vsce"].as_str().unwrap_or("");
    assert!(vsce.starts_with("^3."), "vsce is pinned to major 3 (node 20): {vsce}");
    let client = manifest["dependencies"]["vscode-languageclient"].as_str().unwrap_or("");
    assert!(client.starts_with("^9."), "vscode-languageclient 9: {client}");

    let extension_ts = read_source("editors/vscode/src/extension.ts");
    let contributed: BTreeSet<String> = manifest["contributes"]["commands"]
        .as_array()
        .map(|commands| commands.iter().filter_map(|c| c["command"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let registered: BTreeSet<String> = extension_ts
        .split("registerCommand(")
        .skip(1)
        .filter_map(|rest| rest.split('\'').nth(1).map(str::to_string))
        .collect();
    assert_eq!(contributed, registered, "package.json commands vs registerCommand calls");
    let server_side = quoted_commands(&read_source("editors/vscode/src/settings.ts"));
    for command in &contributed {
        assert!(
            !server_side.contains(command),
            "{command} is also a server command; vscode-languageclient registers those itself"
        );
    }
}

/// Runs `program args` in `dir` to completion within the timeout; returns (success, stdout + stderr).
async fn run_to_end(program: &str, args: &[&str], dir: &Path, env: &[(&str, String)]) -> (bool, String) {
    let mut command = tokio::process::Command::new(program);
    command.args(args).current_dir(dir).stdin(Stdio::null()).kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = match tokio::time::timeout(EXTENSION_RUN_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => panic!("cannot run {program} (is Node.js installed?): {error}"),
        Err(_) => return (false, format!("{program} {args:?} did not finish within {EXTENSION_RUN_TIMEOUT:?}")),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// The model's reply at `let count = ‸`, which runs past the hole's line.
const INLINE_TEXT: &str = "points.len();\n    let _ = count;";
/// What the editor gets: a line hole ends with its line.
const INLINE_INSERTED: &str = "points.len();";
const CHAT_ANSWER: &str = "`midpoint` returns the point halfway between `a` and `b`.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_extension_talks_to_the_server() {
    let root = repo_root();
    let extension_dir = root.join("editors/vscode");
    require_node_package(&extension_dir, "vscode-languageclient");
    let server = built_binary("sextant-lsp");
    // Inline completion first, then the chat: the model sees them in this order.
    let script = Script::new(vec![Turn::text([INLINE_TEXT]), Turn::text([CHAT_ANSWER])]);
    let provider = ScriptedServer::start(script).await.unwrap_or_else(|error| panic!("scripted provider: {error:#}"));
    let temp = tempfile::tempdir().unwrap_or_else(|error| panic!("cannot create a temporary directory: {error}"));
    let workspace = temp.path().join("workspace");
    copy_dir(&root.join(EDITOR_WORKSPACE), &workspace)
        .unwrap_or_else(|error| panic!("cannot copy the fixture workspace: {error}"));
    let result_path = temp.path().join("result.json");
    let settings = json!({
        "provider": "openai",
        "model": "scripted",
        "baseUrl": format!("{}/v1", provider.url()),
        "apiKey": "test-key",
        "lsp": { "completion": { "debounceMs": 0 } },
    });

    let (bundled, bundle_output) = run_to_end("node", &["esbuild.mjs"], &extension_dir, &[]).await;
    assert!(bundled, "bundling the extension failed:\n{bundle_output}");
    let env = [
        ("SEXTANT_LSP", server.display().to_string()),
        ("SEXTANT_TEST_WORKSPACE", workspace.display().to_string()),
        ("SEXTANT_TEST_SETTINGS", settings.to_string()),
        ("SEXTANT_TEST_RESULT", result_path.display().to_string()),
        ("HOME", temp.path().display().to_string()),
        ("XDG_CONFIG_HOME", temp.path().join("config").display().to_string()),
    ];
    let (ran, output) = run_to_end("node", &["test/e2e/run.cjs"], &extension_dir, &env).await;
    let result: Value = std::fs::read_to_string(&result_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    assert!(
        ran && result["ok"] == json!(true),
        "the extension run failed\nresult: {result:#}\n--- node output\n{output}\n--- {} model request(s)",
        provider.requests().len()
    );

    assert_eq!(result["registeredInlineProviders"], json!(1));
    assert_eq!(result["inline"][0]["insertText"], json!(INLINE_INSERTED), "{result:#}");
    let chat = result["chatDocument"].as_str().unwrap_or("");
    assert!(chat.contains(CHAT_ANSWER), "chat document:\n{chat}");
    let last_prompt = result["lastPromptDocument"].as_str().unwrap_or("");
    assert!(last_prompt.contains("src/geometry.rs"), "last prompt document:\n{last_prompt}");
    let statuses: Vec<&str> =
        result["statusTexts"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    assert!(statuses.iter().any(|s| s.contains("Sextant chat")), "the status bar shows the chat: {statuses:?}");
    assert_eq!(result["errors"], json!([]), "no error messages");
    let requests = provider.requests();
    let chat_body = requests.get(1).map(|r| r.body.to_string()).unwrap_or_default();
    assert!(chat_body.contains("What does midpoint return?"), "the prompt reaches the model: {chat_body}");
}
