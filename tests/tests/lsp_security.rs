//! The LSP server's result files (`<workspace>/.sextant/<name>-N.md`) as a
//! hostile repository would attack them: the checkout ships those names as
//! symlinks to a canary outside the workspace. `sextant.chat`,
//! `sextant.explain` and `sextant.agent` must leave the canary unchanged and
//! still show their result (as a message saying why no file was written);
//! a name that is not planted is still written and shown as a document.
//!
//! Drives the built `target/debug/sextant-lsp` over stdio against the
//! scripted provider on 127.0.0.1.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use scripted_provider::{Script, ScriptedServer, Turn};
use serde_json::{json, Value};
use sextant_tests::{built_binary, lsp_frames};

const TIMEOUT: Duration = Duration::from_secs(60);
const CANARY: &str = "top secret canary\n";

struct Lsp {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    /// Everything the server sent that was not a response: notifications and
    /// its requests to the client (answered as they arrive).
    received: Vec<Value>,
}

impl Lsp {
    fn start(home: &Path) -> Lsp {
        let mut child = Command::new(built_binary("sextant-lsp"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_DATA_HOME", home.join("data-home"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("SEXTANT_DATA_DIR", home.join("data"))
            .env("SEXTANT_CONFIG", home.join("none.toml"))
            .env_remove("SEXTANT_PROVIDER")
            .env_remove("SEXTANT_BASE_URL")
            .env_remove("OPENAI_API_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sextant-lsp: {e}"));
        let stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        Lsp { child, stdin, messages: lsp_frames(stdout), received: Vec::new() }
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        let frame = format!("Content-Length: {}\r\n\r\n{body}", body.len());
        self.stdin
            .write_all(frame.as_bytes())
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// The response to request `id`; server requests met on the way are answered.
    fn response(&mut self, id: i64) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message =
                self.messages.recv_timeout(left).unwrap_or_else(|e| panic!("no response to request {id}: {e}"));
            if message.get("method").is_none() {
                if message.get("id") == Some(&json!(id)) {
                    return message;
                }
                continue;
            }
            if let Some(request_id) = message.get("id").cloned() {
                let result = match message["method"].as_str() {
                    Some("window/showDocument") => json!({"success": true}),
                    _ => Value::Null,
                };
                self.send(json!({"jsonrpc": "2.0", "id": request_id, "result": result}));
            }
            self.received.push(message);
        }
    }

    fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let response = self.response(id);
        assert!(response.get("error").is_none(), "{method} failed: {response}");
        response
    }

    fn take_received(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.received)
    }

    /// Reads on (answering server requests) until a received message
    /// satisfies `done`; notifications may come after the response.
    fn wait_until(&mut self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + TIMEOUT;
        while !done(&self.received) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(message) if message.get("method").is_some() => {
                    if let Some(request_id) = message.get("id").cloned() {
                        let result = if message["method"] == "window/showDocument" {
                            json!({"success": true})
                        } else {
                            Value::Null
                        };
                        self.send(json!({"jsonrpc": "2.0", "id": request_id, "result": result}));
                    }
                    self.received.push(message);
                }
                Ok(_) => {}
                Err(_) => panic!("{what} never came; received {:?}", self.received),
            }
        }
        self.take_received()
    }

    fn finish(mut self) {
        self.request(900, "shutdown", Value::Null);
        self.send(json!({"jsonrpc": "2.0", "method": "exit"}));
        let deadline = Instant::now() + TIMEOUT;
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the server did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn messages_shown(received: &[Value]) -> Vec<String> {
    received
        .iter()
        .filter(|m| m["method"] == "window/showMessage")
        .filter_map(|m| m["params"]["message"].as_str().map(str::to_string))
        .collect()
}

fn documents_shown(received: &[Value]) -> Vec<String> {
    received
        .iter()
        .filter(|m| m["method"] == "window/showDocument")
        .filter_map(|m| m["params"]["uri"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn planted_result_file_links_are_refused_and_results_still_shown() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let provider = runtime
        .block_on(ScriptedServer::start(Script::new(vec![
            Turn::text(["The chat ", "answer."]),
            Turn::text(["The explain answer."]),
            Turn::text(["The agent answer."]),
        ])))
        .expect("scripted provider");

    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path().canonicalize().expect("canonical");
    let workspace = base.join("workspace");
    std::fs::create_dir_all(workspace.join("src")).expect("mkdir");
    std::fs::create_dir_all(workspace.join(".sextant")).expect("mkdir");
    let source = "/// Adds.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";
    std::fs::write(workspace.join("src/lib.rs"), source).expect("write");
    std::fs::create_dir_all(base.join("outside")).expect("mkdir");
    let canary = base.join("outside/secret.txt");
    std::fs::write(&canary, CANARY).expect("write");
    // Every name the three commands could use (the counter is shared with
    // progress tokens), as relative links the way a checkout would carry them.
    for slug in ["sextant-chat", "sextant-explain", "sextant-agent"] {
        for n in 0..64 {
            std::os::unix::fs::symlink("../../outside/secret.txt", workspace.join(format!(".sextant/{slug}-{n}.md")))
                .expect("symlink");
        }
    }

    let mut lsp = Lsp::start(&base);
    let root_uri = format!("file://{}", workspace.display());
    lsp.request(
        1,
        "initialize",
        json!({
            "processId": null,
            "rootUri": root_uri,
            "capabilities": {"window": {"showDocument": {"support": true}}},
            "initializationOptions": {
                "provider": "openai", "baseUrl": format!("{}/v1", provider.url()), "model": "scripted", "maxRetries": 0
            }
        }),
    );
    lsp.send(json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
    let uri = format!("{root_uri}/src/lib.rs");
    lsp.send(json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "rust", "version": 1, "text": source}}}));

    let range = json!({"start": {"line": 1, "character": 0}, "end": {"line": 3, "character": 1}});
    let commands = [
        ("sextant.chat", json!({"prompt": "what is this?"}), "The chat answer."),
        ("sextant.explain", json!({"uri": uri, "range": range}), "The explain answer."),
        ("sextant.agent", json!({"task": "say something"}), "The agent answer."),
    ];
    for (index, (command, argument, answer)) in commands.into_iter().enumerate() {
        let response = lsp.request(
            10 + index as i64,
            "workspace/executeCommand",
            json!({"command": command, "arguments": [argument]}),
        );
        assert!(response["result"].as_str().unwrap_or("").contains(answer), "{command}: {response}");
        let received = lsp.wait_until(&format!("{command}'s result message"), |received| {
            messages_shown(received).iter().any(|m| m.contains(answer)) || !documents_shown(received).is_empty()
        });
        assert!(documents_shown(&received).is_empty(), "{command} opened a document: {received:?}");
        let shown = messages_shown(&received);
        assert!(
            shown
                .iter()
                .any(|m| m.contains(answer) && m.contains("not written to a file") && m.contains("symbolic link")),
            "{command}: the result is shown with the reason: {shown:?}"
        );
        assert_eq!(std::fs::read_to_string(&canary).expect("canary"), CANARY, "{command} wrote through the link");
    }

    // A result name that was not planted is written inside .sextant/ and opened.
    lsp.request(20, "workspace/executeCommand", json!({"command": "sextant.showLastPrompt", "arguments": []}));
    let documents = documents_shown(&lsp.wait_until("the showDocument request", |r| !documents_shown(r).is_empty()));
    assert_eq!(documents.len(), 1, "{documents:?}");
    let written = documents[0].strip_prefix("file://").map(PathBuf::from).expect("file uri");
    assert!(written.starts_with(workspace.join(".sextant")), "{}", written.display());
    assert!(std::fs::read_to_string(&written).expect("result file").starts_with("# Last completion prompt"));
    assert!(std::fs::symlink_metadata(&written).expect("stat").file_type().is_file());

    lsp.finish();
    assert_eq!(std::fs::read_to_string(&canary).expect("canary"), CANARY);
    for request in provider.requests() {
        assert!(!request.body.to_string().contains("top secret canary"), "the canary's text reached the model");
    }
    // The links are still links; nothing replaced them with the results either.
    assert!(std::fs::symlink_metadata(workspace.join(".sextant/sextant-chat-0.md"))
        .expect("stat")
        .file_type()
        .is_symlink());
}
