//! Inline completion through the built `sextant-lsp` over stdio, against the
//! scripted provider on 127.0.0.1 (a Qwen2.5-Coder model name, so the server
//! sends the Qwen FIM template to the streamed legacy `/completions`
//! endpoint): the hole's shape decides where the completion ends, the server
//! stops the stream there (the scripted reply has 20 chunks; the assertions
//! count the frames written before the server hung up, not time), and the
//! text is what an editor should insert.

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use scripted_provider::{FrameCount, Script, ScriptedServer, Turn};
use serde_json::{json, Value};
use sextant_tests::{built_binary, lsp_frames};

const TIMEOUT: Duration = Duration::from_secs(60);

struct Lsp {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
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
            .env_remove("SEXTANT_MODEL")
            .env_remove("OPENAI_API_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sextant-lsp: {e}"));
        let stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        Lsp { child, stdin, messages: lsp_frames(stdout) }
    }

    fn send(&mut self, message: Value) {
        let body = message.to_string();
        let frame = format!("Content-Length: {}\r\n\r\n{body}", body.len());
        self.stdin
            .write_all(frame.as_bytes())
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// The response to request `id`; server requests met on the way get a null result.
    fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self.messages.recv_timeout(left).unwrap_or_else(|e| panic!("no response to {method}: {e}"));
            match (message.get("method"), message.get("id")) {
                (None, Some(got)) if *got == json!(id) => {
                    assert!(message.get("error").is_none(), "{method} failed: {message}");
                    return message;
                }
                (Some(_), Some(request_id)) => {
                    let request_id = request_id.clone();
                    self.send(json!({"jsonrpc": "2.0", "id": request_id, "result": null}));
                }
                _ => {}
            }
        }
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

/// What one completion request produced.
struct Outcome {
    items: Vec<String>,
    frames: FrameCount,
    /// `sextant.showLastPrompt`'s markdown after the request.
    last_prompt: String,
    /// The prompt the scripted server received.
    sent_prompt: String,
}

/// Opens `file` with `text`, asks for an inline completion at (line,
/// character) while the provider streams `pieces` 40 ms apart.
fn complete(file: &str, language: &str, text: &str, line: u32, character: u32, pieces: Vec<String>) -> Outcome {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let turn = Turn::text(pieces).with_chunk_delay(Duration::from_millis(40));
    let provider = runtime.block_on(ScriptedServer::start(Script::new(vec![turn]))).expect("scripted provider");
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().canonicalize().expect("canonical");
    let workspace = home.join("workspace");
    std::fs::create_dir_all(&workspace).expect("mkdir");
    std::fs::write(workspace.join(file), text).expect("write");

    let mut lsp = Lsp::start(&home);
    let root_uri = format!("file://{}", workspace.display());
    lsp.request(
        1,
        "initialize",
        json!({
            "processId": null,
            "rootUri": root_uri,
            "capabilities": {},
            "initializationOptions": {
                "provider": "openai", "baseUrl": format!("{}/v1", provider.url()), "model": "qwen2.5-coder-0.5b",
                "maxRetries": 0, "lsp": {"completion": {"debounceMs": 0, "maxTokens": 256}}
            }
        }),
    );
    lsp.send(json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
    let uri = format!("{root_uri}/{file}");
    lsp.send(json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": language, "version": 1, "text": text}}}));
    let response = lsp.request(
        2,
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character},
               "context": {"triggerKind": 1}}),
    );
    let items: Vec<String> = response["result"]["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|item| item["insertText"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let shown =
        lsp.request(3, "workspace/executeCommand", json!({"command": "sextant.showLastPrompt", "arguments": []}));
    let last_prompt = shown["result"].as_str().unwrap_or_default().to_string();
    lsp.finish();
    // The server hung up on the stream; give the provider its next writes to notice.
    std::thread::sleep(Duration::from_millis(400));
    let requests = provider.requests();
    let completions: Vec<usize> =
        requests.iter().enumerate().filter(|(_, r)| r.path.ends_with("/completions")).map(|(i, _)| i).collect();
    assert_eq!(
        completions.len(),
        1,
        "one completion request: {:?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let index = completions[0];
    assert_eq!(requests[index].body["stream"], json!(true), "the completion is streamed");
    let frames = provider.frames()[index];
    let sent_prompt = requests[index].body["prompt"].as_str().unwrap_or_default().to_string();
    drop(runtime);
    Outcome { items, frames, last_prompt, sent_prompt }
}

fn noise(lines: std::ops::Range<usize>, indent: &str) -> Vec<String> {
    lines.map(|i| format!("{indent}noise_{i} = {i}\n")).collect()
}

#[test]
fn single_line_hole_stops_at_the_end_of_the_line_and_keeps_its_newline() {
    // A HumanEval-like hole: the cursor at the start of `    return b`; the
    // completion is a whole new line before it, so it must end with "\n"
    // (accepted without it, it would be glued to `    return b`).
    let text = "def f(a):\n    return b\n";
    let mut pieces = vec!["    b = a".to_string(), " * 2\n".to_string()];
    pieces.extend(noise(0..18, "    "));
    let outcome = complete("f.py", "python", text, 1, 0, pieces);
    assert_eq!(outcome.items, vec!["    b = a * 2\n".to_string()]);
    assert_eq!(outcome.frames.total, 22, "20 text chunks, the final chunk and [DONE]");
    assert!(
        outcome.frames.sent <= 7,
        "generation stopped after the hole's line: {} of {} frames were written",
        outcome.frames.sent,
        outcome.frames.total
    );
    // showLastPrompt shows the exact text the model saw, the hole and the stop.
    assert_eq!(outcome.sent_prompt, "<|fim_prefix|>def f(a):\n<|fim_suffix|>    return b\n<|fim_middle|>");
    assert!(outcome.last_prompt.contains(&outcome.sent_prompt), "{}", outcome.last_prompt);
    assert!(outcome.last_prompt.contains("**Hole:** Line"), "{}", outcome.last_prompt);
    assert!(outcome.last_prompt.contains("the hole's line was complete"), "{}", outcome.last_prompt);
}

#[test]
fn completion_that_runs_into_the_suffix_is_cut() {
    // An empty line in a Rust body: the model writes one statement, then the
    // code the suffix already holds (`    done();`, `}`) and more.
    let text = "fn f() {\n    \n    done();\n}\n";
    let mut pieces = vec!["let a = 1;\n".to_string(), "    done();\n".to_string(), "}\n".to_string()];
    pieces.extend(noise(0..17, ""));
    let outcome = complete("src_f.rs", "rust", text, 1, 4, pieces);
    assert_eq!(outcome.items, vec!["let a = 1;".to_string()], "no second `done();`, no newline before the blank rest");
    assert!(
        outcome.frames.sent <= 8,
        "stopped at the suffix: {} of {} frames",
        outcome.frames.sent,
        outcome.frames.total
    );
    assert!(outcome.last_prompt.contains("**Hole:** Block"), "{}", outcome.last_prompt);
    assert!(outcome.last_prompt.contains("reached code the suffix already holds"), "{}", outcome.last_prompt);
}

#[test]
fn blank_line_then_code_reaches_the_user_as_code() {
    // SmolLM2-style answer on a blank line in a Python body: blank lines
    // first, then the statement, then a new top-level definition.
    let text = "def f(a):\n    \n";
    let pieces = vec!["\n".to_string(), "\n".to_string(), "return a\n".to_string(), "def g():\n".to_string()]
        .into_iter()
        .chain(noise(0..16, "    "))
        .collect();
    let outcome = complete("g.py", "python", text, 1, 4, pieces);
    assert_eq!(outcome.items, vec!["return a".to_string()]);
    assert!(
        outcome.frames.sent <= 9,
        "stopped at the block's end: {} of {}",
        outcome.frames.sent,
        outcome.frames.total
    );
    assert!(outcome.last_prompt.contains("a line left the enclosing block"), "{}", outcome.last_prompt);
}
