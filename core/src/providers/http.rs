//! Shared HTTP plumbing for the wire-protocol providers: POST with retries
//! (exponential backoff on 429/5xx, honouring `Retry-After`), timeouts,
//! cancellation, error mapping, and incremental SSE / NDJSON body parsing.
//!
//! Invariant: every await that can block on the network is raced against the
//! caller's `CancellationToken` and a timeout, so a request never hangs and a
//! cancel returns `ProviderError::Cancelled` promptly (dropping the response
//! closes the connection, which stops the server's generation).

use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{ProviderError, Usage};

/// Timeouts and retry policy of one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Longest wait for the response headers, and for each piece of a
    /// streamed body (an idle timeout, so long answers are not cut off).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after the first attempt for 429, 5xx and connection failures.
    pub max_retries: u32,
    /// First backoff delay; doubles each retry up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Cap on any wait between attempts, including a server's `Retry-After`.
    pub max_backoff: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// A reqwest client bound to one provider's name and policy.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    provider: String,
    settings: HttpSettings,
}

impl HttpTransport {
    /// `base_url` only decides proxying: a server on this machine is always
    /// reached directly, even when `HTTPS_PROXY` / `HTTP_PROXY` are set.
    pub fn new(provider: &str, settings: HttpSettings, base_url: &str) -> Result<Self, ProviderError> {
        let mut builder = reqwest::Client::builder().connect_timeout(settings.connect_timeout);
        if is_loopback_url(base_url) {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|err| ProviderError::Config(format!("cannot build an HTTP client for {provider}: {err}")))?;
        Ok(HttpTransport { client, provider: provider.to_string(), settings })
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    fn timeout_error(&self) -> ProviderError {
        ProviderError::Timeout { provider: self.provider.clone(), timeout: self.settings.timeout }
    }

    pub(crate) fn bad_response(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::BadResponse { provider: self.provider.clone(), message: message.into() }
    }

    /// POSTs `body` as JSON and returns a successful (2xx) response, retrying
    /// 429 / 5xx / connection failures up to `max_retries` times.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &Value,
        cancel: &CancellationToken,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let mut request = self.client.post(url).json(body);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let sent = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(ProviderError::Cancelled),
                sent = tokio::time::timeout(self.settings.timeout, request.send()) => sent,
            };
            let (retry_after, failure) = match sent {
                Err(_elapsed) => return Err(self.timeout_error()),
                Ok(Err(err)) if err.is_timeout() => return Err(self.timeout_error()),
                Ok(Err(err)) => {
                    let failure =
                        ProviderError::Connect { provider: self.provider.clone(), message: error_chain(&err) };
                    (None, failure)
                }
                Ok(Ok(response)) if response.status().is_success() => return Ok(response),
                Ok(Ok(response)) => {
                    let status = response.status().as_u16();
                    let retry_after = parse_retry_after(response.headers());
                    let text = self.read_text(response, cancel).await.unwrap_or_default();
                    let message = error_message(&text);
                    match status {
                        401 | 403 => return Err(ProviderError::Auth { provider: self.provider.clone(), message }),
                        429 => (
                            retry_after,
                            ProviderError::RateLimited { provider: self.provider.clone(), attempts: attempt, message },
                        ),
                        500..=599 => {
                            (retry_after, ProviderError::Http { provider: self.provider.clone(), status, message })
                        }
                        _ => return Err(ProviderError::Http { provider: self.provider.clone(), status, message }),
                    }
                }
            };
            if attempt > self.settings.max_retries {
                return Err(failure);
            }
            let wait =
                retry_after.unwrap_or_else(|| backoff_delay(&self.settings, attempt)).min(self.settings.max_backoff);
            tracing::debug!(provider = %self.provider, attempt, ?wait, "retrying after: {failure}");
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(ProviderError::Cancelled),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Reads a whole body as text (timeout + cancel aware).
    pub async fn read_text(
        &self,
        response: reqwest::Response,
        cancel: &CancellationToken,
    ) -> Result<String, ProviderError> {
        let mut body = BodyLines::new(self, response);
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next_chunk(cancel).await? {
            bytes.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Reads a whole body and parses it as JSON.
    pub async fn read_json(
        &self,
        response: reqwest::Response,
        cancel: &CancellationToken,
    ) -> Result<Value, ProviderError> {
        let text = self.read_text(response, cancel).await?;
        serde_json::from_str(&text)
            .map_err(|err| self.bad_response(format!("invalid JSON ({err}): {}", snippet(&text))))
    }
}

/// Whether the URL's host is this machine (127.0.0.0/8, ::1, localhost).
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The error and its sources, e.g. "error sending request: connection refused".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Exponential backoff: initial * 2^(attempt-1), capped, with up to 25% jitter
/// so parallel clients do not retry in lockstep.
pub fn backoff_delay(settings: &HttpSettings, attempt: u32) -> Duration {
    let base = settings.initial_backoff.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16));
    let base = base.min(settings.max_backoff);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let jitter = base.mul_f64(f64::from(nanos % 1000) / 4000.0);
    base + jitter
}

/// `Retry-After` in seconds (integer or decimal) or `retry-after-ms`.
/// HTTP-date values are ignored (the backoff applies instead).
pub fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return duration_from_secs(ms / 1000.0);
    }
    text("retry-after").and_then(|v| v.parse::<f64>().ok()).and_then(duration_from_secs)
}

fn duration_from_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// The human-readable part of an error body in any of the three protocols.
pub fn error_message(body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        let candidates = ["/error/message", "/error", "/message", "/detail"];
        for pointer in candidates {
            if let Some(text) = value.pointer(pointer).and_then(Value::as_str) {
                return text.to_string();
            }
        }
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        "(empty body)".to_string()
    } else {
        snippet(trimmed)
    }
}

/// At most 200 characters of `text`, for error messages.
pub fn snippet(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// Local token estimate used when the wire reports no usage.
pub fn estimate_tokens(text: &str) -> u64 {
    crate::tokens::count(text) as u64
}

/// Usage from the wire where present, else estimated from the texts.
pub fn usage_or_estimate(input: Option<u64>, output: Option<u64>, prompt_text: &str, reply_text: &str) -> Usage {
    Usage {
        input_tokens: input.unwrap_or_else(|| estimate_tokens(prompt_text)),
        output_tokens: output.unwrap_or_else(|| estimate_tokens(reply_text)),
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, reqwest::Error>> + Send>>;

/// A response body read piece by piece, split into lines, with an idle
/// timeout per piece and cancellation.
pub struct BodyLines {
    chunks: ChunkStream,
    buffer: Vec<u8>,
    finished: bool,
    provider: String,
    idle_timeout: Duration,
}

impl BodyLines {
    pub fn new(transport: &HttpTransport, response: reqwest::Response) -> Self {
        BodyLines {
            chunks: Box::pin(response.bytes_stream().map(|r| r.map(|b| b.to_vec()))),
            buffer: Vec::new(),
            finished: false,
            provider: transport.provider.clone(),
            idle_timeout: transport.settings.timeout,
        }
    }

    async fn next_chunk(&mut self, cancel: &CancellationToken) -> Result<Option<Vec<u8>>, ProviderError> {
        if self.finished {
            return Ok(None);
        }
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(ProviderError::Cancelled),
            next = tokio::time::timeout(self.idle_timeout, self.chunks.next()) => next,
        };
        match next {
            Err(_elapsed) => {
                Err(ProviderError::Timeout { provider: self.provider.clone(), timeout: self.idle_timeout })
            }
            Ok(None) => {
                self.finished = true;
                Ok(None)
            }
            Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
            Ok(Some(Err(err))) if err.is_timeout() => {
                Err(ProviderError::Timeout { provider: self.provider.clone(), timeout: self.idle_timeout })
            }
            Ok(Some(Err(err))) => Err(ProviderError::BadResponse {
                provider: self.provider.clone(),
                message: format!("the response stream broke off: {}", error_chain(&err)),
            }),
        }
    }

    /// The next line without its terminator; at the end of the body, the
    /// unterminated remainder (if any), then `None`.
    pub async fn next_line(&mut self, cancel: &CancellationToken) -> Result<Option<String>, ProviderError> {
        loop {
            if let Some(pos) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            match self.next_chunk(cancel).await? {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None if self.buffer.is_empty() => return Ok(None),
                None => {
                    let rest = std::mem::take(&mut self.buffer);
                    return Ok(Some(String::from_utf8_lossy(&rest).into_owned()));
                }
            }
        }
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field ("" when absent).
    pub event: String,
    /// The `data:` lines joined with "\n".
    pub data: String,
}

/// Incremental SSE parser (the subset LLM APIs use: `event:`, `data:`,
/// comments; `id:` / `retry:` are ignored). Feed it lines; it yields an event
/// at each blank line.
#[derive(Debug, Default)]
pub struct SseParser {
    event: String,
    data: Vec<String>,
}

impl SseParser {
    pub fn push_line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if self.data.is_empty() && self.event.is_empty() {
                return None;
            }
            let event = SseEvent { event: std::mem::take(&mut self.event), data: self.data.join("\n") };
            self.data.clear();
            return Some(event);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }
}

/// SSE events read from a response body. An event cut off by the end of the
/// body is dropped (per the SSE spec); protocols detect the missing
/// terminator themselves.
pub struct SseReader {
    lines: BodyLines,
    parser: SseParser,
}

impl SseReader {
    pub fn new(transport: &HttpTransport, response: reqwest::Response) -> Self {
        SseReader { lines: BodyLines::new(transport, response), parser: SseParser::default() }
    }

    pub async fn next_event(&mut self, cancel: &CancellationToken) -> Result<Option<SseEvent>, ProviderError> {
        while let Some(line) = self.lines.next_line(cancel).await? {
            if let Some(event) = self.parser.push_line(&line) {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }
}

/// Newline-delimited JSON values read from a response body.
pub struct NdjsonReader {
    lines: BodyLines,
}

impl NdjsonReader {
    pub fn new(transport: &HttpTransport, response: reqwest::Response) -> Self {
        NdjsonReader { lines: BodyLines::new(transport, response) }
    }

    pub async fn next_value(&mut self, cancel: &CancellationToken) -> Result<Option<Value>, ProviderError> {
        while let Some(line) = self.lines.next_line(cancel).await? {
            if line.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(&line).map(Some).map_err(|err| ProviderError::BadResponse {
                provider: self.lines.provider.clone(),
                message: format!("invalid JSON line ({err}): {}", snippet(&line)),
            });
        }
        Ok(None)
    }
}

/// Joins a base URL and a path without doubling or dropping the slash.
pub fn join_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_parser_handles_events_comments_and_multiline_data() {
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for line in
            [": keep-alive", "event: ping", "data: {}", "", "data: a", "data:b", "", "", "id: 3", "data: [DONE]", ""]
        {
            events.extend(parser.push_line(line));
        }
        assert_eq!(
            events,
            vec![
                SseEvent { event: "ping".into(), data: "{}".into() },
                SseEvent { event: "".into(), data: "a\nb".into() },
                SseEvent { event: "".into(), data: "[DONE]".into() },
            ]
        );
    }

    #[test]
    fn error_message_reads_each_protocol_shape() {
        assert_eq!(error_message(r#"{"error":{"message":"bad key","type":"x"}}"#), "bad key");
        assert_eq!(error_message(r#"{"type":"error","error":{"type":"x","message":"slow"}}"#), "slow");
        assert_eq!(error_message(r#"{"error":"model not found"}"#), "model not found");
        assert_eq!(error_message("<html>oops</html>"), "<html>oops</html>");
        assert_eq!(error_message(""), "(empty body)");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let settings = HttpSettings {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..HttpSettings::default()
        };
        let first = backoff_delay(&settings, 1);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(125));
        let second = backoff_delay(&settings, 2);
        assert!(second >= Duration::from_millis(200) && second <= Duration::from_millis(250));
        assert!(backoff_delay(&settings, 10) <= Duration::from_millis(375));
    }

    #[test]
    fn retry_after_parses_seconds_and_millis() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "2".parse().expect("static header"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "150".parse().expect("static header"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_millis(150)));
        let mut date = reqwest::header::HeaderMap::new();
        date.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("static header"));
        assert_eq!(parse_retry_after(&date), None);
    }

    #[test]
    fn loopback_urls_are_recognised() {
        for url in ["http://127.0.0.1:8080/v1", "http://localhost:11434", "http://[::1]:9/x", "http://127.1.2.3"] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in ["https://api.example.com/v1", "http://10.0.0.1:11434", "http://localhost.evil.com"] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }

    #[test]
    fn stop_scanner_holds_back_split_stops() {
        let mut scanner = StopScanner::new(&["<|endoftext|>".to_string(), "\n\n".to_string()]);
        let mut out = Vec::new();
        for piece in ["a = 1", "<|end", "of", "text|>b"] {
            out.push(scanner.push(piece));
        }
        assert_eq!(
            out,
            vec![("a = 1".to_string(), false), (String::new(), false), (String::new(), false), (String::new(), true)]
        );
        assert_eq!(scanner.finish(), "");
        let mut scanner = StopScanner::new(&["<|endoftext|>".to_string()]);
        assert_eq!(scanner.push("x <|en"), ("x ".to_string(), false));
        assert_eq!(scanner.push("d"), (String::new(), false));
        assert_eq!(scanner.push(" no"), ("<|end no".to_string(), false));
        assert_eq!(scanner.push("x<"), ("x".to_string(), false));
        assert_eq!(scanner.finish(), "<");
    }

    #[test]
    fn join_url_normalises_slashes() {
        assert_eq!(join_url("http://h/v1/", "/chat/completions"), "http://h/v1/chat/completions");
        assert_eq!(join_url("http://h", "api/chat"), "http://h/api/chat");
    }
}

/// Settings shared by the HTTP providers (built by the factory from `Config`).
#[derive(Clone, PartialEq)]
pub struct RemoteOptions {
    pub model: String,
    /// Root of the API, e.g. `…/v1` for OpenAI-compatible servers.
    pub base_url: String,
    /// Never logged: `Debug` prints only whether it is set.
    pub api_key: Option<String>,
    /// Defaults applied when a request does not set its own.
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Stream chat replies (SSE / NDJSON). Off = one JSON reply per request.
    pub stream: bool,
    pub fim_mode: super::fim::FimMode,
    /// FIM template family; `None` = detect from the model name.
    pub fim_family: Option<super::fim::FimFamily>,
    pub http: HttpSettings,
}

impl RemoteOptions {
    pub fn new(model: impl Into<String>, base_url: impl Into<String>) -> Self {
        RemoteOptions {
            model: model.into(),
            base_url: base_url.into(),
            api_key: None,
            temperature: None,
            max_tokens: None,
            stream: true,
            fim_mode: super::fim::FimMode::Auto,
            fim_family: None,
            http: HttpSettings::default(),
        }
    }

    /// The FIM family: configured, else detected from the model name.
    pub fn fim_family(&self) -> Option<super::fim::FimFamily> {
        self.fim_family.or_else(|| super::fim::FimFamily::detect(&self.model))
    }
}

impl std::fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .field("stream", &self.stream)
            .field("fim_mode", &self.fim_mode)
            .field("fim_family", &self.fim_family)
            .field("http", &self.http)
            .finish()
    }
}

/// Cuts `text` at the first occurrence of any stop sequence (servers usually
/// do this already; this guards against ones that do not).
pub fn cut_at_stops(text: &str, stops: &[String]) -> String {
    let end = stops.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min();
    match end {
        Some(end) => text[..end].to_string(),
        None => text.to_string(),
    }
}

/// Streamed completion text checked against stop sequences that may arrive
/// split across pieces: text that could still be the start of a stop is held
/// back until the next piece decides it.
#[derive(Debug, Default)]
pub struct StopScanner {
    stops: Vec<String>,
    raw: String,
    /// Bytes of `raw` already released.
    released: usize,
    stopped: bool,
}

impl StopScanner {
    pub fn new(stops: &[String]) -> Self {
        StopScanner { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), ..Self::default() }
    }

    /// Adds a piece; returns the text now safe to pass on and whether a stop
    /// sequence was reached (then nothing after it is ever released).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        if self.stopped {
            return (String::new(), true);
        }
        self.raw.push_str(piece);
        let search_from = self.released.saturating_sub(self.stops.iter().map(String::len).max().unwrap_or(0));
        let search_from = (0..=search_from).rev().find(|i| self.raw.is_char_boundary(*i)).unwrap_or(0);
        let hit = self.stops.iter().filter_map(|s| self.raw[search_from..].find(s.as_str())).min();
        if let Some(hit) = hit {
            self.stopped = true;
            let end = (search_from + hit).max(self.released);
            let out = self.raw[self.released..end].to_string();
            self.released = end;
            return (out, true);
        }
        // Hold back the longest tail that is a proper start of some stop.
        let mut safe_end = self.raw.len();
        for stop in &self.stops {
            for (len, _) in stop.char_indices().skip(1) {
                if self.raw.ends_with(&stop[..len]) {
                    safe_end = safe_end.min(self.raw.len() - len);
                }
            }
        }
        let safe_end = safe_end.max(self.released);
        let out = self.raw[self.released..safe_end].to_string();
        self.released = safe_end;
        (out, false)
    }

    /// The stream ended: whatever was held back (no stop followed it).
    pub fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        let out = self.raw[self.released..].to_string();
        self.released = self.raw.len();
        out
    }
}

/// The text a usage estimate counts for a chat prompt.
pub fn prompt_text(request: &super::ChatRequest) -> String {
    let mut text = String::new();
    for message in &request.messages {
        text.push_str(&message.content);
        text.push('\n');
        for call in &message.tool_calls {
            text.push_str(&call.name);
            text.push_str(&call.arguments.to_string());
        }
    }
    for tool in &request.tools {
        text.push_str(&tool.name);
        text.push_str(&tool.description);
        text.push_str(&tool.parameters.to_string());
    }
    text
}

/// Parses tool-call arguments that arrive as a JSON string (possibly empty).
pub fn parse_arguments(transport: &HttpTransport, name: &str, text: &str) -> Result<Value, ProviderError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(text).map_err(|err| {
        transport.bad_response(format!("tool call `{name}` has invalid JSON arguments ({err}): {}", snippet(text)))
    })
}
