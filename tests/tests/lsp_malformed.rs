//! Garbage over stdio: the server must neither panic nor hang, and after
//! each batch of malformed input it must answer the next valid request.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::{json, Value};
use sextant_tests::{built_binary, lsp_frames};

const TIMEOUT: Duration = Duration::from_secs(60);

struct Server {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    stderr: std::thread::JoinHandle<String>,
}

fn start() -> Server {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut child = Command::new(built_binary("sextant-lsp"))
        .env("XDG_CACHE_HOME", dir.path())
        .env("SEXTANT_CONFIG", dir.path().join("none.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start sextant-lsp: {e}"));
    let stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut stderr_pipe = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    // Keep the temp dir for the life of the process.
    std::mem::forget(dir);
    Server { child, stdin, messages: lsp_frames(stdout), stderr }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

impl Server {
    fn send_raw(&mut self, bytes: &[u8]) {
        // A server that exited makes this fail; the caller's next wait reports it.
        let _ = self.stdin.write_all(bytes).and_then(|()| self.stdin.flush());
    }

    fn send(&mut self, message: Value) {
        self.send_raw(&frame(message.to_string().as_bytes()));
    }

    /// The response to request `id`, skipping notifications and other replies.
    fn response(&self, id: i64) -> Value {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.messages.recv_timeout(left) {
                Ok(message) if message.get("id") == Some(&json!(id)) && message.get("method").is_none() => {
                    return message
                }
                Ok(_) => continue,
                Err(error) => panic!("no response to request {id}: {error}"),
            }
        }
    }

    fn finish(mut self) -> (Option<i32>, String) {
        self.send(json!({"jsonrpc": "2.0", "id": 900, "method": "shutdown"}));
        let _ = self.response(900);
        self.send(json!({"jsonrpc": "2.0", "method": "exit"}));
        drop(self.stdin);
        let deadline = std::time::Instant::now() + TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status.code(),
                Ok(None) if std::time::Instant::now() > deadline => {
                    let _ = self.child.kill();
                    panic!("the server did not exit after shutdown/exit");
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(error) => panic!("wait failed: {error}"),
            }
        };
        (status, self.stderr.join().unwrap_or_default())
    }
}

fn initialize(server: &mut Server, id: i64) -> Value {
    server.send(json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {"processId": null, "rootUri": null, "capabilities": {}}
    }));
    server.response(id)
}

/// Deterministic pseudo-random bytes (no dependency needed).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        })
        .collect()
}

#[test]
fn lsp_survives_malformed_frames_and_bad_params() {
    let mut server = start();
    // Framed but broken bodies, then bad params for a real method.
    server.send_raw(&frame(b"{not json}"));
    server.send_raw(&frame(&[0xff, 0xfe, 0xfd, 0xfc]));
    server.send_raw(&frame(br#"{"foo": 1}"#));
    server.send_raw(&frame(br#"[1, 2, 3]"#));
    server.send(json!({"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": "nope"}));
    let bad_params = server.response(7);
    assert!(bad_params.get("error").is_some(), "bad initialize params must be an error: {bad_params}");

    let initialized = initialize(&mut server, 1);
    assert!(initialized["result"]["capabilities"]["inlineCompletionProvider"].is_object(), "{initialized}");
    server.send(json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));

    // Requests with wrong shapes, unknown methods, positions far out of range.
    server.send(json!({"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {"textDocument": 5}}));
    assert!(server.response(2).get("error").is_some());
    server.send(json!({"jsonrpc": "2.0", "id": 3, "method": "sextant/unknown", "params": {}}));
    assert_eq!(server.response(3)["error"]["code"], json!(-32601));
    server.send(json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": "file:///tmp/x.rs", "languageId": "rust", "version": 1, "text": "fn main() {}\n"}}}));
    server.send(json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": "file:///tmp/x.rs", "version": 2},
        "contentChanges": [{"range": {"start": {"line": 4000000000u32, "character": 4000000000u32},
                                       "end": {"line": 0, "character": 0}}, "text": "😀"}]}}));
    server.send(json!({"jsonrpc": "2.0", "id": 4, "method": "textDocument/inlineCompletion", "params": {
        "textDocument": {"uri": "file:///tmp/x.rs"}, "position": {"line": 4000000000u32, "character": 1}}}));
    let out_of_range = server.response(4);
    assert!(out_of_range["error"]["message"].as_str().is_some_and(|m| m.contains("past the end")), "{out_of_range}");
    server.send(
        json!({"jsonrpc": "2.0", "id": 5, "method": "textDocument/inlineCompletion", "params": {"nonsense": true}}),
    );
    assert!(server.response(5).get("error").is_some());
    server.send(json!({"jsonrpc": "2.0", "id": 6, "method": "workspace/executeCommand", "params": {
        "command": "sextant.chat", "arguments": [{"prompt": 42}]}}));
    assert!(server.response(6)["error"]["message"].as_str().is_some_and(|m| m.contains("bad arguments")));

    let (status, stderr) = server.finish();
    assert!(!stderr.contains("panicked"), "the server panicked:\n{stderr}");
    assert_eq!(status, Some(0), "stderr:\n{stderr}");
}

#[test]
fn lsp_survives_raw_noise() {
    let mut server = start();
    // Headerless noise, a bad Content-Length, a header block with no body.
    server.send_raw(&noise(4096, 7));
    server.send_raw(b"\r\n\r\nContent-Length: abc\r\n\r\n");
    server.send_raw(b"Content-Type: nothing\r\n\r\n");
    server.send(json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"processId": null, "rootUri": null, "capabilities": {}}
    }));
    // The server resynchronises on the next header and answers; if it ever
    // gives up on the stream instead, it must at least exit without a panic
    // (checked below before failing).
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut answered = false;
    while std::time::Instant::now() < deadline {
        match server.messages.recv_timeout(Duration::from_millis(200)) {
            Ok(message) if message.get("id") == Some(&json!(1)) => {
                answered = message["result"]["capabilities"].is_object();
                break;
            }
            Ok(_) => continue,
            Err(_) => {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
            }
        }
    }
    if answered {
        let (status, stderr) = server.finish();
        assert!(!stderr.contains("panicked"), "the server panicked:\n{stderr}");
        assert_eq!(status, Some(0), "stderr:\n{stderr}");
    } else {
        drop(server.stdin);
        let status = server.child.wait().unwrap_or_else(|e| panic!("wait: {e}"));
        let stderr = server.stderr.join().unwrap_or_default();
        assert!(!stderr.contains("panicked"), "the server panicked:\n{stderr}");
        assert!(status.code().is_some(), "killed by a signal: {status:?}\n{stderr}");
        panic!("the server did not answer after noise (exit {status:?}); stderr:\n{stderr}");
    }
}

/// The first message that is a response (no `method`) with this exact id.
fn response_with_id(server: &Server, id: &Value) -> Value {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match server.messages.recv_timeout(left) {
            Ok(message) if message.get("id") == Some(id) && message.get("method").is_none() => return message,
            Ok(_) => continue,
            Err(error) => panic!("no response with id {id}: {error}"),
        }
    }
}

/// JSON-RPC: a request the server cannot read still gets an error reply
/// (-32700 / -32600, with its id where it can be read), so no client waits
/// forever; a lone surrogate does not lose a whole didOpen; `shutdown` with
/// empty params (Emacs' eglot and lsp-mode) is a normal shutdown.
#[test]
fn lsp_answers_malformed_requests() {
    let mut server = start();
    initialize(&mut server, 1);
    server.send(json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));

    server.send_raw(&frame(b"{not json"));
    let parse_error = response_with_id(&server, &Value::Null);
    assert_eq!(parse_error["error"]["code"], json!(-32700), "{parse_error}");
    server.send_raw(&frame(br#"{"id": 11, "method": "textDocument/hover", "params": {}}"#));
    assert_eq!(response_with_id(&server, &json!(11))["error"]["code"], json!(-32600));
    server.send_raw(&frame(br#"{"jsonrpc": "2.0", "id": 602.0, "method": "textDocument/hover", "params": {}}"#));
    assert_eq!(response_with_id(&server, &json!(602.0))["error"]["code"], json!(-32600));

    // The document opens with U+FFFD in place of the lone surrogate, and
    // requests on it work (past its end is reported as such, not "unknown").
    server.send_raw(&frame(
        br#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///tmp/s.rs","languageId":"rust","version":1,"text":"fn a() {} // \ud800\n"}}}"#,
    ));
    server.send(json!({"jsonrpc": "2.0", "id": 12, "method": "textDocument/inlineCompletion", "params": {
        "textDocument": {"uri": "file:///tmp/s.rs"}, "position": {"line": 99, "character": 0}}}));
    let past_end = server.response(12);
    assert!(past_end["error"]["message"].as_str().is_some_and(|m| m.contains("past the end")), "{past_end}");

    let (status, stderr) = server.finish();
    assert!(!stderr.contains("panicked"), "the server panicked:\n{stderr}");
    assert_eq!(status, Some(0), "stderr:\n{stderr}");

    for params in [json!(null), json!({}), json!([])] {
        let mut server = start();
        initialize(&mut server, 1);
        server.send(json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": params}));
        let reply = server.response(2);
        assert!(reply.get("error").is_none(), "shutdown with params {params}: {reply}");
        let (status, stderr) = server.finish();
        assert_eq!(status, Some(0), "exit after shutdown with params {params}; stderr:\n{stderr}");
    }
}
