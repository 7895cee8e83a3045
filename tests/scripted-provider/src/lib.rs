//! A real HTTP/1.1 server on 127.0.0.1 that answers like an LLM API with
//! scripted replies, so every layer of Sextant can be tested against the
//! actual wire protocols without a network or a model.
//!
//! It speaks:
//! - OpenAI: `POST …/chat/completions` (SSE when `"stream": true`, tool calls as
//!   `tool_calls` deltas with arguments split across chunks, usage chunk when
//!   `stream_options.include_usage`) and `POST …/completions` (legacy
//!   completions; `prompt` + optional `suffix`, answered with the scripted
//!   text, streamed as SSE `text_completion` chunks when `"stream": true`).
//!   `ScriptedServer::frames` says how many streamed frames each reply got
//!   written before the client hung up, so tests can prove a client stopped
//!   generation early.
//! - Anthropic: `POST …/v1/messages` (SSE events `message_start`,
//!   `content_block_start`, `content_block_delta` with `text_delta` or
//!   `input_json_delta`, `content_block_stop`, `message_delta` with usage,
//!   `message_stop`).
//! - Ollama: `POST /api/chat` and `POST /api/generate` (NDJSON when `stream`
//!   is true or absent, as Ollama defaults to streaming; tool calls with object
//!   arguments; `prompt_eval_count` / `eval_count`).
//! - `GET /api/tags` and `GET …/models` list one model named `scripted`.
//!
//! Every request is recorded (method, path, headers, JSON body) and can be read
//! back with [`ScriptedServer::requests`] (library) or from the JSON-lines file
//! given with `--requests-log` (binary).
//!
//! # Script format (JSON)
//!
//! A script is either an array of turns or an object
//! `{"turns": [...], "fallback": turn}`. Each POST to a model endpoint consumes
//! the next turn, whatever the protocol; when the queue is empty the `fallback`
//! turn answers (it is never consumed), and without one the server replies
//! HTTP 500 `script exhausted`. A turn (all fields optional):
//!
//! ```json
//! {
//!   "text": ["Hel", "lo"],          // text, one streamed chunk per element ("text": "Hello" = one chunk)
//!   "tool_calls": [{"id": "call_1", "name": "read_file",
//!                   "arguments": {"path": "src/lib.rs"},
//!                   "chunks": 3}],  // arguments are streamed split into this many pieces (default 2)
//!   "usage": {"input_tokens": 12, "output_tokens": 5},   // omitted = no usage on the wire
//!   "stop_reason": "max_tokens",    // default: "tool_use" with tool calls, else "end_turn"
//!   "delay_ms": 0,                  // wait before sending the response headers
//!   "chunk_delay_ms": 0,            // wait between streamed chunks
//!   "fault": null,                  // see below
//!   "match": {"path": "/api/generate", "body": "def add"}  // optional, see below
//! }
//! ```
//!
//! A turn with `match` is only used by a request whose path contains
//! `match.path` and whose raw body contains `match.body` (each optional); the
//! server takes the first queued turn that accepts the request, so e.g. inline
//! completions and chat requests arriving in any order each get their own
//! scripted answers.
//!
//! Faults:
//! - `{"status": 429, "retry_after": "1", "body": "slow down"}`: reply with that
//!   HTTP status (an error body in the protocol's shape, message = `body`), and
//!   a `Retry-After` header when given.
//! - `"truncate"`: stream the first half of the chunks, then end the body in the
//!   middle of an event without the protocol's terminator (`[DONE]`,
//!   `message_stop`, `"done": true`). For a non-streaming request, the JSON body
//!   is cut in half.
//! - `{"garbage": "<html>oops"}`: reply 200 with that text where the protocol's
//!   JSON should be (framed as an SSE `data:` line or an NDJSON line when
//!   streaming).
//! - `{"stream_error": "overloaded_error", "message": "busy"}`: stream the
//!   first half of the chunks, then an error in the protocol's in-stream form
//!   (Anthropic `event: error`, OpenAI `data: {"error": …}`, Ollama
//!   `{"error": …}`), then end the body. Non-streaming requests get it as the
//!   whole 200 body.
//!
//! Example: a 429 then a streamed answer:
//! `[{"fault": {"status": 429, "retry_after": "1"}}, {"text": ["Hi", "!"]}]`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A whole script: queued turns plus an optional never-consumed fallback.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "ScriptRepr")]
pub struct Script {
    pub turns: Vec<Turn>,
    pub fallback: Option<Turn>,
}

// Parsed once per script: the size difference between variants is irrelevant.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
#[serde(untagged)]
enum ScriptRepr {
    Turns(Vec<Turn>),
    Full {
        #[serde(default)]
        turns: Vec<Turn>,
        #[serde(default)]
        fallback: Option<Turn>,
    },
}

impl From<ScriptRepr> for Script {
    fn from(repr: ScriptRepr) -> Self {
        match repr {
            ScriptRepr::Turns(turns) => Script { turns, fallback: None },
            ScriptRepr::Full { turns, fallback } => Script { turns, fallback },
        }
    }
}

impl Script {
    pub fn new(turns: Vec<Turn>) -> Self {
        Script { turns, fallback: None }
    }
    pub fn with_fallback(mut self, turn: Turn) -> Self {
        self.fallback = Some(turn);
        self
    }
    /// Parses the JSON script format documented at the crate root.
    pub fn from_json(text: &str) -> anyhow::Result<Script> {
        Ok(serde_json::from_str(text)?)
    }
}

/// One scripted reply.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    #[serde(default, deserialize_with = "one_or_many")]
    pub text: Vec<String>,
    #[serde(default)]
    pub tool_calls: Vec<ScriptedToolCall>,
    #[serde(default)]
    pub usage: Option<ScriptedUsage>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub chunk_delay_ms: u64,
    #[serde(default)]
    pub fault: Option<Fault>,
    /// Only requests this matcher accepts consume the turn.
    #[serde(default, rename = "match")]
    pub matcher: Option<Matcher>,
}

/// Restricts a turn to some requests (substring tests, all must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
}

impl Matcher {
    fn accepts(&self, request: &RecordedRequest) -> bool {
        self.path.as_ref().is_none_or(|p| request.path.contains(p.as_str()))
            && self.body.as_ref().is_none_or(|b| request.raw_body.contains(b.as_str()))
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(de)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl Turn {
    /// A text reply streamed in the given chunks.
    pub fn text<S: Into<String>>(chunks: impl IntoIterator<Item = S>) -> Self {
        Turn { text: chunks.into_iter().map(Into::into).collect(), ..Turn::default() }
    }
    /// A reply that calls one tool.
    pub fn tool_call(id: &str, name: &str, arguments: Value) -> Self {
        Turn {
            tool_calls: vec![ScriptedToolCall { id: id.into(), name: name.into(), arguments, chunks: None }],
            ..Turn::default()
        }
    }
    /// An HTTP error reply.
    pub fn status(status: u16) -> Self {
        Turn { fault: Some(Fault::Status { status, retry_after: None, body: None }), ..Turn::default() }
    }
    /// An HTTP error reply with a `Retry-After` header.
    pub fn status_retry_after(status: u16, retry_after: &str) -> Self {
        Turn {
            fault: Some(Fault::Status { status, retry_after: Some(retry_after.into()), body: None }),
            ..Turn::default()
        }
    }
    /// A reply that breaks off with an in-stream error of this kind.
    pub fn stream_error(kind: &str, message: &str) -> Self {
        Turn {
            fault: Some(Fault::StreamError { stream_error: kind.into(), message: Some(message.into()) }),
            ..Turn::text(["partial ", "answer ", "that ", "breaks"])
        }
    }
    pub fn garbage(body: &str) -> Self {
        Turn { fault: Some(Fault::Garbage { garbage: body.into() }), ..Turn::default() }
    }
    pub fn truncated<S: Into<String>>(chunks: impl IntoIterator<Item = S>) -> Self {
        Turn { fault: Some(Fault::Truncate), ..Turn::text(chunks) }
    }
    pub fn with_usage(mut self, input_tokens: u64, output_tokens: u64) -> Self {
        self.usage = Some(ScriptedUsage { input_tokens, output_tokens });
        self
    }
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay_ms = delay.as_millis() as u64;
        self
    }
    pub fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay_ms = delay.as_millis() as u64;
        self
    }
    pub fn with_stop_reason(mut self, reason: &str) -> Self {
        self.stop_reason = Some(reason.into());
        self
    }
    /// Restricts the turn to requests whose path contains `path`.
    pub fn for_path(mut self, path: &str) -> Self {
        self.matcher.get_or_insert_with(Matcher::default).path = Some(path.into());
        self
    }
    /// Restricts the turn to requests whose body contains `text`.
    pub fn for_body(mut self, text: &str) -> Self {
        self.matcher.get_or_insert_with(Matcher::default).body = Some(text.into());
        self
    }
    fn accepts(&self, request: &RecordedRequest) -> bool {
        self.matcher.as_ref().is_none_or(|m| m.accepts(request))
    }

    fn full_text(&self) -> String {
        self.text.concat()
    }

    /// Anthropic-style stop reason; protocols map it to their own vocabulary.
    fn stop_reason(&self) -> &str {
        match &self.stop_reason {
            Some(reason) => reason,
            None if !self.tool_calls.is_empty() => "tool_use",
            None => "end_turn",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedToolCall {
    pub id: String,
    pub name: String,
    /// The arguments object (sent as a JSON string by OpenAI, as an object by
    /// Anthropic's final message and Ollama).
    pub arguments: Value,
    /// How many pieces the serialized arguments are split into when streamed.
    #[serde(default)]
    pub chunks: Option<usize>,
}

impl ScriptedToolCall {
    fn argument_pieces(&self) -> Vec<String> {
        split_evenly(&self.arguments.to_string(), self.chunks.unwrap_or(2).max(1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fault {
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<String>,
        #[serde(default)]
        body: Option<String>,
    },
    Garbage {
        garbage: String,
    },
    StreamError {
        stream_error: String,
        #[serde(default)]
        message: Option<String>,
    },
    Named(NamedFault),
}

#[allow(non_upper_case_globals)]
impl Fault {
    pub const Truncate: Fault = Fault::Named(NamedFault::Truncate);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamedFault {
    Truncate,
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, or `Value::Null` when it is not JSON.
    pub body: Value,
    /// The raw body text (lossy UTF-8).
    pub raw_body: String,
}

impl RecordedRequest {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    turns: VecDeque<Turn>,
    fallback: Option<Turn>,
    requests: Vec<RecordedRequest>,
    /// Per request (same index as `requests`): streamed frames written so far
    /// and how many the reply has in all.
    frames: Vec<FrameCount>,
    /// Where to append each request as a JSON line (binary's `--requests-log`).
    request_log: Option<std::path::PathBuf>,
}

/// How much of a streamed reply reached the client's socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCount {
    /// Frames written before the client hung up (or all of them).
    pub sent: usize,
    /// Frames the scripted reply has (0 for a reply that was not streamed).
    pub total: usize,
}

/// A running scripted server. It stops when dropped.
pub struct ScriptedServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl ScriptedServer {
    /// Binds 127.0.0.1 on a free port and serves the script.
    pub async fn start(script: Script) -> anyhow::Result<ScriptedServer> {
        Self::start_on(script, 0, None).await
    }

    /// Binds 127.0.0.1:`port` (0 = any free port); appends each request as a
    /// JSON line to `request_log` when given.
    pub async fn start_on(
        script: Script,
        port: u16,
        request_log: Option<std::path::PathBuf>,
    ) -> anyhow::Result<ScriptedServer> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            turns: script.turns.into(),
            fallback: script.fallback,
            requests: Vec::new(),
            frames: Vec::new(),
            request_log,
        }));
        let accept_state = state.clone();
        let accept_task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = accept_state.clone();
                tokio::spawn(async move {
                    // A client hanging up mid-reply is expected (cancellation tests).
                    let _ = serve_connection(stream, state).await;
                });
            }
        });
        Ok(ScriptedServer { addr, state, accept_task })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Per request, in arrival order: how many streamed frames were written
    /// before the client closed the connection, out of how many. A client
    /// that stops a stream early (it has what it needs) shows `sent < total`.
    pub fn frames(&self) -> Vec<FrameCount> {
        lock(&self.state).frames.clone()
    }

    /// Appends turns to the queue.
    pub fn push(&self, turns: impl IntoIterator<Item = Turn>) {
        lock(&self.state).turns.extend(turns);
    }

    /// Turns not yet consumed.
    pub fn remaining_turns(&self) -> usize {
        lock(&self.state).turns.len()
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave State inconsistent (plain pushes/pops).
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// HTTP/1.1 plumbing (one request per connection, `Connection: close`).

const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

struct RawRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn read_request(stream: &mut TcpStream) -> anyhow::Result<RawRequest> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        anyhow::ensure!(buf.len() < MAX_HEAD_BYTES, "request head too large");
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed before the request head ended");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let body = if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        read_chunked_body(stream, rest).await?
    } else {
        let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        anyhow::ensure!(length <= MAX_BODY_BYTES, "request body too large");
        while rest.len() < length {
            let mut chunk = vec![0u8; (length - rest.len()).min(64 * 1024)];
            let n = stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "connection closed inside the request body");
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(length);
        rest
    };
    Ok(RawRequest { method, path, headers, body })
}

async fn read_chunked_body(stream: &mut TcpStream, mut buf: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(pos) = find(&buf, b"\r\n") {
                break pos;
            }
            read_more(stream, &mut buf).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)?;
        buf.drain(..line_end + 2);
        if size == 0 {
            return Ok(body);
        }
        anyhow::ensure!(body.len() + size <= MAX_BODY_BYTES, "request body too large");
        while buf.len() < size + 2 {
            read_more(stream, &mut buf).await?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    anyhow::ensure!(n > 0, "connection closed inside a chunked body");
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// Writes a complete response with a Content-Length.
async fn write_full(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    extra_headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n",
        reason_phrase(status),
        body.len()
    );
    for (name, value) in extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

/// A chunked (streaming) response body.
struct ChunkedWriter<'a> {
    stream: &'a mut TcpStream,
    chunk_delay: Duration,
    first: bool,
    /// Where frames written are counted: the state and the request's index.
    counter: Option<(Arc<Mutex<State>>, usize)>,
}

impl<'a> ChunkedWriter<'a> {
    async fn begin(stream: &'a mut TcpStream, content_type: &str, chunk_delay: Duration) -> std::io::Result<Self> {
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await?;
        stream.flush().await?;
        Ok(ChunkedWriter { stream, chunk_delay, first: true, counter: None })
    }

    async fn send(&mut self, data: &str) -> std::io::Result<()> {
        if !self.first && !self.chunk_delay.is_zero() {
            tokio::time::sleep(self.chunk_delay).await;
        }
        self.first = false;
        if data.is_empty() {
            return Ok(());
        }
        let frame = format!("{:x}\r\n{data}\r\n", data.len());
        self.stream.write_all(frame.as_bytes()).await?;
        self.stream.flush().await?;
        if let Some((state, index)) = &self.counter {
            if let Some(count) = lock(state).frames.get_mut(*index) {
                count.sent += 1;
            }
        }
        Ok(())
    }

    async fn finish(self) -> std::io::Result<()> {
        self.stream.write_all(b"0\r\n\r\n").await?;
        self.stream.flush().await
    }
}

// ---------------------------------------------------------------------------
// Protocol dispatch.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    OpenAiChat,
    OpenAiCompletions,
    AnthropicMessages,
    OllamaChat,
    OllamaGenerate,
}

impl Endpoint {
    fn from_path(path: &str) -> Option<Endpoint> {
        let path = path.split('?').next().unwrap_or_default().trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            Some(Endpoint::OpenAiChat)
        } else if path.ends_with("/completions") {
            Some(Endpoint::OpenAiCompletions)
        } else if path.ends_with("/messages") {
            Some(Endpoint::AnthropicMessages)
        } else if path.ends_with("/api/chat") {
            Some(Endpoint::OllamaChat)
        } else if path.ends_with("/api/generate") {
            Some(Endpoint::OllamaGenerate)
        } else {
            None
        }
    }

    fn is_ollama(self) -> bool {
        matches!(self, Endpoint::OllamaChat | Endpoint::OllamaGenerate)
    }

    /// Whether the client asked for a streamed reply. Ollama streams unless told not to.
    fn streaming(self, body: &Value) -> bool {
        match body.get("stream").and_then(Value::as_bool) {
            Some(stream) => stream,
            None => self.is_ollama(),
        }
    }

    /// An error body in the protocol's own shape.
    fn error_body(self, status: u16, message: &str) -> Value {
        match self {
            Endpoint::OpenAiChat | Endpoint::OpenAiCompletions => json!({
                "error": {"message": message, "type": openai_error_type(status), "code": status}
            }),
            Endpoint::AnthropicMessages => json!({
                "type": "error",
                "error": {"type": anthropic_error_type(status), "message": message}
            }),
            Endpoint::OllamaChat | Endpoint::OllamaGenerate => json!({"error": message}),
        }
    }
}

fn openai_error_type(status: u16) -> &'static str {
    match status {
        401 | 403 => "invalid_request_error",
        429 => "rate_limit_exceeded",
        _ => "server_error",
    }
}

fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

async fn serve_connection(mut stream: TcpStream, state: Arc<Mutex<State>>) -> anyhow::Result<()> {
    let raw = read_request(&mut stream).await?;
    let body_text = String::from_utf8_lossy(&raw.body).into_owned();
    let recorded = RecordedRequest {
        method: raw.method.clone(),
        path: raw.path.clone(),
        headers: raw.headers.clone(),
        body: serde_json::from_str(&body_text).unwrap_or(Value::Null),
        raw_body: body_text,
    };
    let endpoint = Endpoint::from_path(&raw.path);
    let (turn, request_index) = {
        let mut state = lock(&state);
        let request_index = state.requests.len();
        if let Some(log) = &state.request_log {
            append_request_log(log, &recorded);
        }
        state.requests.push(recorded.clone());
        state.frames.push(FrameCount::default());
        if raw.method == "POST" && endpoint.is_some() {
            let position = state.turns.iter().position(|turn| turn.accepts(&recorded));
            let queued = position.and_then(|index| state.turns.remove(index));
            (Some(queued.or_else(|| state.fallback.clone())), request_index)
        } else {
            (None, request_index)
        }
    };

    if raw.method == "GET" {
        return serve_listing(&mut stream, &raw.path).await;
    }
    let (Some(endpoint), Some(turn)) = (endpoint, turn) else {
        let body = json!({"error": format!("scripted-provider: no endpoint {} {}", raw.method, raw.path)});
        write_full(&mut stream, 404, "application/json", &[], body.to_string().as_bytes()).await?;
        return Ok(());
    };
    let Some(turn) = turn else {
        let body = endpoint.error_body(500, "scripted-provider: script exhausted");
        write_full(&mut stream, 500, "application/json", &[], body.to_string().as_bytes()).await?;
        return Ok(());
    };
    if turn.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(turn.delay_ms)).await;
    }
    let model = recorded.body.get("model").and_then(Value::as_str).unwrap_or("scripted").to_string();
    let streaming = endpoint.streaming(&recorded.body);

    match &turn.fault {
        Some(Fault::Status { status, retry_after, body }) => {
            let message = body.clone().unwrap_or_else(|| format!("scripted HTTP {status}"));
            let headers: Vec<(String, String)> =
                retry_after.iter().map(|v| ("retry-after".to_string(), v.clone())).collect();
            let body = endpoint.error_body(*status, &message);
            write_full(&mut stream, *status, "application/json", &headers, body.to_string().as_bytes()).await?;
            return Ok(());
        }
        Some(Fault::Garbage { garbage }) if !streaming => {
            write_full(&mut stream, 200, "application/json", &[], garbage.as_bytes()).await?;
            return Ok(());
        }
        Some(Fault::StreamError { stream_error, message }) if !streaming => {
            let body = in_stream_error(endpoint, stream_error, message.as_deref());
            write_full(&mut stream, 200, "application/json", &[], body.to_string().as_bytes()).await?;
            return Ok(());
        }
        _ => {}
    }

    if streaming {
        let frames = stream_frames(endpoint, &turn, &model, &recorded.body);
        let content_type = if endpoint.is_ollama() { "application/x-ndjson" } else { "text/event-stream" };
        if let Some(count) = lock(&state).frames.get_mut(request_index) {
            count.total = frames.len();
        }
        let mut writer =
            ChunkedWriter::begin(&mut stream, content_type, Duration::from_millis(turn.chunk_delay_ms)).await?;
        writer.counter = Some((state.clone(), request_index));
        match &turn.fault {
            Some(Fault::Garbage { garbage }) => {
                let frame = if endpoint.is_ollama() { format!("{garbage}\n") } else { format!("data: {garbage}\n\n") };
                writer.send(&frame).await?;
            }
            Some(Fault::StreamError { stream_error, message }) => {
                let keep = (frames.len() / 2).max(1).min(frames.len().saturating_sub(1));
                for frame in &frames[..keep] {
                    writer.send(frame).await?;
                }
                let error = in_stream_error(endpoint, stream_error, message.as_deref());
                let frame = match endpoint {
                    Endpoint::AnthropicMessages => format!("event: error\ndata: {error}\n\n"),
                    Endpoint::OpenAiChat | Endpoint::OpenAiCompletions => format!("data: {error}\n\n"),
                    Endpoint::OllamaChat | Endpoint::OllamaGenerate => format!("{error}\n"),
                };
                writer.send(&frame).await?;
            }
            Some(Fault::Named(NamedFault::Truncate)) => {
                // Keep the first half of the frames (never the terminator), then
                // half of the next frame: the client sees a stream cut mid-event.
                let keep = (frames.len() / 2).max(1).min(frames.len().saturating_sub(1));
                for frame in &frames[..keep] {
                    writer.send(frame).await?;
                }
                if let Some(next) = frames.get(keep) {
                    let cut: String = next.chars().take(next.chars().count() / 2).collect();
                    writer.send(&cut).await?;
                }
            }
            _ => {
                for frame in &frames {
                    writer.send(frame).await?;
                }
            }
        }
        writer.finish().await?;
    } else {
        let body = full_body(endpoint, &turn, &model).to_string();
        if matches!(turn.fault, Some(Fault::Named(NamedFault::Truncate))) {
            let cut: String = body.chars().take(body.chars().count() / 2).collect();
            write_full(&mut stream, 200, "application/json", &[], cut.as_bytes()).await?;
        } else {
            write_full(&mut stream, 200, "application/json", &[], body.as_bytes()).await?;
        }
    }
    Ok(())
}

/// An error reported inside a 200 reply, in the protocol's own shape.
fn in_stream_error(endpoint: Endpoint, kind: &str, message: Option<&str>) -> Value {
    let message = message.unwrap_or("scripted in-stream error");
    match endpoint {
        Endpoint::AnthropicMessages => json!({"type": "error", "error": {"type": kind, "message": message}}),
        Endpoint::OpenAiChat | Endpoint::OpenAiCompletions => json!({"error": {"type": kind, "message": message}}),
        Endpoint::OllamaChat | Endpoint::OllamaGenerate => json!({"error": message}),
    }
}

fn append_request_log(path: &std::path::Path, request: &RecordedRequest) {
    use std::io::Write;
    let Ok(line) = serde_json::to_string(request) else { return };
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(file, "{line}");
    }
}

async fn serve_listing(stream: &mut TcpStream, path: &str) -> anyhow::Result<()> {
    let path = path.split('?').next().unwrap_or_default().trim_end_matches('/');
    let (status, body) = if path.ends_with("/api/tags") {
        (200, json!({"models": [{"name": "scripted", "model": "scripted", "size": 0}]}))
    } else if path.ends_with("/models") {
        (200, json!({"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "scripted"}]}))
    } else if path.is_empty() || path == "/" {
        (200, json!({"status": "scripted-provider is running"}))
    } else {
        (404, json!({"error": format!("scripted-provider: no endpoint GET {path}")}))
    };
    write_full(stream, status, "application/json", &[], body.to_string().as_bytes()).await?;
    Ok(())
}

/// Splits text into `parts` pieces of roughly equal length (on char boundaries).
fn split_evenly(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    let parts = parts.min(chars.len());
    let size = chars.len().div_ceil(parts);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn openai_finish_reason(turn: &Turn) -> &'static str {
    match turn.stop_reason() {
        "tool_use" => "tool_calls",
        "max_tokens" => "length",
        _ => "stop",
    }
}

fn ollama_done_reason(turn: &Turn) -> &'static str {
    match turn.stop_reason() {
        "max_tokens" => "length",
        _ => "stop",
    }
}

const CREATED_AT: &str = "2024-01-01T00:00:00Z";

/// The frames (already framed: SSE events or NDJSON lines) of a streamed reply.
fn stream_frames(endpoint: Endpoint, turn: &Turn, model: &str, request: &Value) -> Vec<String> {
    let sse = |value: Value| format!("data: {value}\n\n");
    let sse_event = |value: Value| {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("message").to_string();
        format!("event: {kind}\ndata: {value}\n\n")
    };
    let ndjson = |value: Value| format!("{value}\n");
    let mut frames = Vec::new();
    match endpoint {
        Endpoint::OpenAiChat => {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            };
            frames.push(sse(chunk(json!({"role": "assistant", "content": ""}), Value::Null)));
            for piece in &turn.text {
                frames.push(sse(chunk(json!({"content": piece}), Value::Null)));
            }
            for (index, call) in turn.tool_calls.iter().enumerate() {
                frames.push(sse(chunk(
                    json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                           "function": {"name": call.name, "arguments": ""}}]}),
                    Value::Null,
                )));
                for piece in call.argument_pieces() {
                    frames.push(sse(chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                        Value::Null,
                    )));
                }
            }
            frames.push(sse(chunk(json!({}), json!(openai_finish_reason(turn)))));
            let wants_usage = request.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
            if let (Some(usage), true) = (turn.usage, wants_usage) {
                frames.push(sse(json!({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0,
                                       "model": model, "choices": [], "usage": openai_usage(usage)})));
            }
            frames.push("data: [DONE]\n\n".to_string());
        }
        Endpoint::OpenAiCompletions => {
            for piece in &turn.text {
                frames.push(sse(
                    json!({"id": "cmpl-scripted", "object": "text_completion", "created": 0, "model": model,
                                       "choices": [{"index": 0, "text": piece, "finish_reason": null}]}),
                ));
            }
            let mut last = json!({"id": "cmpl-scripted", "object": "text_completion", "created": 0, "model": model,
                                  "choices": [{"index": 0, "text": "", "finish_reason": openai_finish_reason(turn)}]});
            if let Some(usage) = turn.usage {
                last["usage"] = openai_usage(usage);
            }
            frames.push(sse(last));
            frames.push("data: [DONE]\n\n".to_string());
        }
        Endpoint::AnthropicMessages => {
            let usage = turn.usage.unwrap_or(ScriptedUsage { input_tokens: 0, output_tokens: 0 });
            let mut start_usage = json!({"output_tokens": 1});
            if turn.usage.is_some() {
                start_usage["input_tokens"] = json!(usage.input_tokens);
            }
            frames.push(sse_event(json!({"type": "message_start", "message": {
                "id": "msg_scripted", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage}})));
            let mut index = 0;
            if !turn.text.is_empty() {
                frames.push(sse_event(json!({"type": "content_block_start", "index": index,
                                             "content_block": {"type": "text", "text": ""}})));
                frames.push(sse_event(json!({"type": "ping"})));
                for piece in &turn.text {
                    frames.push(sse_event(json!({"type": "content_block_delta", "index": index,
                                                 "delta": {"type": "text_delta", "text": piece}})));
                }
                frames.push(sse_event(json!({"type": "content_block_stop", "index": index})));
                index += 1;
            }
            for call in &turn.tool_calls {
                frames.push(sse_event(json!({"type": "content_block_start", "index": index,
                    "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}})));
                for piece in call.argument_pieces() {
                    frames.push(sse_event(json!({"type": "content_block_delta", "index": index,
                                                 "delta": {"type": "input_json_delta", "partial_json": piece}})));
                }
                frames.push(sse_event(json!({"type": "content_block_stop", "index": index})));
                index += 1;
            }
            let mut delta = json!({"type": "message_delta",
                                   "delta": {"stop_reason": turn.stop_reason(), "stop_sequence": null}});
            if turn.usage.is_some() {
                delta["usage"] = json!({"output_tokens": usage.output_tokens});
            }
            frames.push(sse_event(delta));
            frames.push(sse_event(json!({"type": "message_stop"})));
        }
        Endpoint::OllamaChat => {
            for piece in &turn.text {
                frames.push(ndjson(json!({"model": model, "created_at": CREATED_AT,
                    "message": {"role": "assistant", "content": piece}, "done": false})));
            }
            if !turn.tool_calls.is_empty() {
                frames.push(ndjson(json!({"model": model, "created_at": CREATED_AT,
                    "message": {"role": "assistant", "content": "", "tool_calls": ollama_tool_calls(turn)},
                    "done": false})));
            }
            frames.push(ndjson(ollama_final(turn, model, json!({"message": {"role": "assistant", "content": ""}}))));
        }
        Endpoint::OllamaGenerate => {
            for piece in &turn.text {
                frames
                    .push(ndjson(json!({"model": model, "created_at": CREATED_AT, "response": piece, "done": false})));
            }
            frames.push(ndjson(ollama_final(turn, model, json!({"response": ""}))));
        }
    }
    frames
}

fn openai_usage(usage: ScriptedUsage) -> Value {
    json!({"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
           "total_tokens": usage.input_tokens + usage.output_tokens})
}

fn ollama_tool_calls(turn: &Turn) -> Value {
    turn.tool_calls
        .iter()
        .enumerate()
        .map(|(index, call)| json!({"function": {"index": index, "name": call.name, "arguments": call.arguments}}))
        .collect()
}

/// Ollama's closing object: `done: true` plus counters, merged with `extra`.
fn ollama_final(turn: &Turn, model: &str, extra: Value) -> Value {
    let mut value = json!({"model": model, "created_at": CREATED_AT, "done": true,
                           "done_reason": ollama_done_reason(turn), "total_duration": 1000});
    if let Some(usage) = turn.usage {
        value["prompt_eval_count"] = json!(usage.input_tokens);
        value["eval_count"] = json!(usage.output_tokens);
    }
    if let (Value::Object(target), Value::Object(extra)) = (&mut value, extra) {
        target.extend(extra);
    }
    value
}

/// The complete JSON body of a non-streamed reply.
fn full_body(endpoint: Endpoint, turn: &Turn, model: &str) -> Value {
    let text = turn.full_text();
    match endpoint {
        Endpoint::OpenAiChat => {
            let mut message = json!({"role": "assistant", "content": if text.is_empty() && !turn.tool_calls.is_empty() { Value::Null } else { json!(text) }});
            if !turn.tool_calls.is_empty() {
                message["tool_calls"] = turn
                    .tool_calls
                    .iter()
                    .map(|call| {
                        json!({"id": call.id, "type": "function",
                                       "function": {"name": call.name, "arguments": call.arguments.to_string()}})
                    })
                    .collect();
            }
            let mut body = json!({"id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": model,
                                  "choices": [{"index": 0, "message": message, "finish_reason": openai_finish_reason(turn)}]});
            if let Some(usage) = turn.usage {
                body["usage"] = openai_usage(usage);
            }
            body
        }
        Endpoint::OpenAiCompletions => {
            let mut body = json!({"id": "cmpl-scripted", "object": "text_completion", "created": 0, "model": model,
                                  "choices": [{"index": 0, "text": text, "finish_reason": openai_finish_reason(turn)}]});
            if let Some(usage) = turn.usage {
                body["usage"] = openai_usage(usage);
            }
            body
        }
        Endpoint::AnthropicMessages => {
            let mut content = Vec::new();
            if !text.is_empty() {
                content.push(json!({"type": "text", "text": text}));
            }
            for call in &turn.tool_calls {
                content.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}));
            }
            let mut body = json!({"id": "msg_scripted", "type": "message", "role": "assistant", "model": model,
                                  "content": content, "stop_reason": turn.stop_reason(), "stop_sequence": null});
            if let Some(usage) = turn.usage {
                body["usage"] = json!({"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens});
            }
            body
        }
        Endpoint::OllamaChat => {
            let mut message = json!({"role": "assistant", "content": text});
            if !turn.tool_calls.is_empty() {
                message["tool_calls"] = ollama_tool_calls(turn);
            }
            ollama_final(turn, model, json!({"message": message}))
        }
        Endpoint::OllamaGenerate => ollama_final(turn, model, json!({"response": text})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_formats_parse() {
        let script = Script::from_json(
            r#"{"turns": [{"text": "hi"}, {"fault": "truncate", "text": ["a","b"]},
                          {"fault": {"status": 429, "retry_after": "1"}}, {"fault": {"garbage": "<html>"}},
                          {"tool_calls": [{"id": "c1", "name": "f", "arguments": {"x": 1}, "chunks": 3}],
                           "usage": {"input_tokens": 1, "output_tokens": 2}}],
                "fallback": {"text": "x"}}"#,
        )
        .expect("valid script");
        assert_eq!(script.turns.len(), 5);
        assert_eq!(script.turns[0].text, vec!["hi"]);
        assert_eq!(script.turns[1].fault, Some(Fault::Truncate));
        assert_eq!(
            script.turns[2].fault,
            Some(Fault::Status { status: 429, retry_after: Some("1".into()), body: None })
        );
        assert_eq!(script.turns[3].fault, Some(Fault::Garbage { garbage: "<html>".into() }));
        assert!(script.fallback.is_some());
        let matched = Script::from_json(r#"[{"text": "x", "match": {"path": "/api/generate"}}]"#).expect("match");
        assert_eq!(matched.turns[0].matcher.as_ref().and_then(|m| m.path.as_deref()), Some("/api/generate"));
        let bare = Script::from_json(r#"[{"text": ["a"]}]"#).expect("bare array");
        assert_eq!(bare.turns.len(), 1);
        assert!(Script::from_json(r#"[{"txet": "typo"}]"#).is_err());
    }

    #[test]
    fn arguments_split_into_requested_pieces() {
        let call =
            ScriptedToolCall { id: "c".into(), name: "f".into(), arguments: json!({"path": "a.rs"}), chunks: Some(3) };
        let pieces = call.argument_pieces();
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), r#"{"path":"a.rs"}"#);
    }
}
