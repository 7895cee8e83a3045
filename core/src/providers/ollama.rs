//! Ollama's native API: `POST {base}/api/chat` (NDJSON streaming, tool calls
//! with object arguments) and `POST {base}/api/generate` (FIM through
//! `suffix`, which Ollama renders with the model's own template, or a raw
//! template prompt with `raw: true`).

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::fim::{self, FimMode};
use super::http::{
    cut_at_stops, join_url, prompt_text, usage_or_estimate, HttpTransport, NdjsonReader, RemoteOptions, StopScanner,
};
use super::openai::{complete_via_chat, complete_via_chat_streaming, reply_text};
use super::{
    ChatRequest, ChatResponse, Completion, EventSink, FimRequest, Message, Provider, ProviderError, Role, StopReason,
    StreamEvent, TextSink, ToolCall,
};

/// Where Ollama listens unless `OLLAMA_HOST` or the config says otherwise.
pub const DEFAULT_OLLAMA_URL: &str = "http://127.0.0.1:11434";

pub struct OllamaProvider {
    transport: HttpTransport,
    options: RemoteOptions,
}

impl OllamaProvider {
    pub fn new(options: RemoteOptions) -> Result<Self, ProviderError> {
        Ok(OllamaProvider {
            transport: HttpTransport::new("ollama", options.http.clone(), &options.base_url)?,
            options,
        })
    }

    fn generation_options(&self, max_tokens: Option<u32>, temperature: Option<f32>, stop: &[String]) -> Value {
        let mut options = Map::new();
        if let Some(temperature) = temperature.or(self.options.temperature) {
            options.insert("temperature".into(), json!(temperature));
        }
        if let Some(max_tokens) = max_tokens.or(self.options.max_tokens) {
            options.insert("num_predict".into(), json!(max_tokens));
        }
        if !stop.is_empty() {
            options.insert("stop".into(), json!(stop));
        }
        Value::Object(options)
    }

    /// The JSON body of an `/api/chat` request.
    pub fn chat_body(&self, request: &ChatRequest, stream: bool) -> Value {
        let mut body = json!({
            "model": self.options.model,
            "messages": wire_messages(&request.messages),
            "stream": stream,
        });
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
                .collect();
        }
        let options = self.generation_options(request.max_tokens, request.temperature, &request.stop);
        if options.as_object().is_some_and(|o| !o.is_empty()) {
            body["options"] = options;
        }
        body
    }

    async fn post(
        &self,
        path: &str,
        body: &Value,
        cancel: &CancellationToken,
    ) -> Result<reqwest::Response, ProviderError> {
        let authorization = self.options.api_key.as_ref().filter(|k| !k.is_empty()).map(|k| format!("Bearer {k}"));
        let headers: Vec<(&str, &str)> = authorization.iter().map(|v| ("authorization", v.as_str())).collect();
        self.transport.post_json(&join_url(&self.options.base_url, path), &headers, body, cancel).await
    }

    fn error_in_body(&self, value: &Value) -> Option<ProviderError> {
        value.get("error").map(|error| {
            let message = error.as_str().map(str::to_string).unwrap_or_else(|| error.to_string());
            self.transport.bad_response(message)
        })
    }

    /// Converts one reply object's `message.tool_calls` (complete calls).
    fn tool_calls_of(&self, message: &Value, first_index: usize) -> Vec<ToolCall> {
        let calls = message.get("tool_calls").and_then(Value::as_array).cloned().unwrap_or_default();
        calls
            .iter()
            .enumerate()
            .map(|(offset, call)| {
                let name = call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_string();
                let arguments = match call.pointer("/function/arguments") {
                    Some(Value::String(text)) => serde_json::from_str(text).unwrap_or_else(|_| json!({})),
                    Some(value) => value.clone(),
                    None => json!({}),
                };
                let id = call
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("call_{}", first_index + offset));
                ToolCall { id, name, arguments }
            })
            .collect()
    }

    async fn chat_impl(
        &self,
        request: &ChatRequest,
        on_event: EventSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, ProviderError> {
        let stream = self.options.stream;
        let response = self.post("api/chat", &self.chat_body(request, stream), cancel).await?;
        let mut text = String::new();
        let mut tool_calls: Vec<ToolCall> = Vec::new();
        let mut last: Option<Value> = None;
        // A non-streamed reply is one object with `done: true`: read it through
        // the same NDJSON reader, which accepts a final line without newline.
        let mut lines = NdjsonReader::new(&self.transport, response);
        while let Some(value) = lines.next_value(cancel).await? {
            if let Some(error) = self.error_in_body(&value) {
                return Err(error);
            }
            let message = value.get("message").cloned().unwrap_or(Value::Null);
            if let Some(piece) = message.get("content").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                text.push_str(piece);
                on_event(StreamEvent::TextDelta(piece.to_string()));
            }
            for call in self.tool_calls_of(&message, tool_calls.len()) {
                on_event(StreamEvent::ToolCallStarted { id: call.id.clone(), name: call.name.clone() });
                on_event(StreamEvent::ToolCall(call.clone()));
                tool_calls.push(call);
            }
            if value.get("done").and_then(Value::as_bool) == Some(true) {
                last = Some(value);
                break;
            }
        }
        let Some(last) = last else {
            return Err(self.transport.bad_response("the stream ended before `\"done\": true` (truncated reply)"));
        };
        let usage = usage_or_estimate(
            last.get("prompt_eval_count").and_then(Value::as_u64),
            last.get("eval_count").and_then(Value::as_u64),
            &prompt_text(request),
            &reply_text(&text, &tool_calls),
        );
        Ok(ChatResponse {
            stop_reason: stop_reason(last.get("done_reason").and_then(Value::as_str), !tool_calls.is_empty()),
            message: Message { role: Role::Assistant, content: text, tool_calls, tool_call_id: None },
            usage,
        })
    }

    /// `POST /api/generate`; streamed (NDJSON) when `on_text` is given,
    /// which can stop it early.
    async fn generate(
        &self,
        mut body: Value,
        stops: &[String],
        sent_prompt: &str,
        cancel: &CancellationToken,
        on_text: Option<TextSink<'_>>,
    ) -> Result<Completion, ProviderError> {
        body["stream"] = json!(on_text.is_some());
        let response = self.post("api/generate", &body, cancel).await?;
        let Some(on_text) = on_text else {
            let reply = self.transport.read_json(response, cancel).await?;
            if let Some(error) = self.error_in_body(&reply) {
                return Err(error);
            }
            let raw = reply
                .get("response")
                .and_then(Value::as_str)
                .ok_or_else(|| self.transport.bad_response("the generate reply has no `response`"))?;
            let text = cut_at_stops(raw, stops);
            let usage = usage_or_estimate(
                reply.get("prompt_eval_count").and_then(Value::as_u64),
                reply.get("eval_count").and_then(Value::as_u64),
                sent_prompt,
                &text,
            );
            return Ok(Completion {
                text,
                usage,
                stop_reason: stop_reason(reply.get("done_reason").and_then(Value::as_str), false),
                prompt: Some(sent_prompt.to_string()),
            });
        };
        let mut lines = NdjsonReader::new(&self.transport, response);
        let mut scanner = StopScanner::new(stops);
        let mut text = String::new();
        let mut last: Option<Value> = None;
        let mut caller_stopped = false;
        let mut hit_stop = false;
        while let Some(value) = lines.next_value(cancel).await? {
            if let Some(error) = self.error_in_body(&value) {
                return Err(error);
            }
            let piece = value.get("response").and_then(Value::as_str).unwrap_or_default();
            let (released, stop) = scanner.push(piece);
            hit_stop = stop;
            if !released.is_empty() {
                text.push_str(&released);
                if !on_text(&released) {
                    caller_stopped = true;
                    break;
                }
            }
            if value.get("done").and_then(Value::as_bool) == Some(true) {
                last = Some(value);
                break;
            }
            if hit_stop {
                break;
            }
        }
        // Dropping the reader closes the connection: Ollama stops generating.
        drop(lines);
        if !caller_stopped && !hit_stop {
            if last.is_none() {
                return Err(self.transport.bad_response("the stream ended before `\"done\": true` (truncated reply)"));
            }
            let rest = scanner.finish();
            if !rest.is_empty() {
                text.push_str(&rest);
                caller_stopped = !on_text(&rest);
            }
        }
        let count = |key: &str| last.as_ref().and_then(|l| l.get(key)).and_then(Value::as_u64);
        let usage = usage_or_estimate(count("prompt_eval_count"), count("eval_count"), sent_prompt, &text);
        let stop_reason = match (caller_stopped, hit_stop) {
            (true, _) => StopReason::StopSequence,
            (false, true) => StopReason::EndTurn,
            _ => stop_reason(last.as_ref().and_then(|l| l.get("done_reason")).and_then(Value::as_str), false),
        };
        Ok(Completion { text, usage, stop_reason, prompt: Some(sent_prompt.to_string()) })
    }

    async fn complete_with(
        &self,
        request: &FimRequest,
        cancel: &CancellationToken,
        on_text: Option<TextSink<'_>>,
    ) -> Result<Completion, ProviderError> {
        match self.options.fim_mode {
            FimMode::Auto | FimMode::Suffix => {
                let mut body = json!({
                    "model": self.options.model,
                    "prompt": request.prefix,
                    "suffix": request.suffix,
                });
                let options = self.generation_options(request.max_tokens, request.temperature, &request.stop);
                if options.as_object().is_some_and(|o| !o.is_empty()) {
                    body["options"] = options;
                }
                // Ollama applies the model's own template; this is what it was given.
                let sent = format!("{}\n--- suffix ---\n{}", request.prefix, request.suffix);
                self.generate(body, &request.stop, &sent, cancel, on_text).await
            }
            FimMode::Template => {
                let family = self.options.fim_family().ok_or_else(|| {
                    ProviderError::Config(format!(
                        "no FIM template is known for model `{}`: set `fim_template` or use `fim = \"suffix\"`",
                        self.options.model
                    ))
                })?;
                let (prompt, stops) = fim::build_prompt(family, request);
                let body = json!({
                    "model": self.options.model,
                    "prompt": prompt,
                    "raw": true,
                    "options": self.generation_options(request.max_tokens, request.temperature, &stops),
                });
                self.generate(body, &stops, &prompt, cancel, on_text).await
            }
            FimMode::Chat => match on_text {
                Some(on_text) => complete_via_chat_streaming(self, request, cancel, on_text).await,
                None => complete_via_chat(self, request, cancel).await,
            },
        }
    }
}

#[async_trait]
impl Provider for OllamaProvider {
    fn name(&self) -> &str {
        "ollama"
    }

    fn model(&self) -> &str {
        &self.options.model
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_event: EventSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, ProviderError> {
        self.chat_impl(request, on_event, cancel).await
    }

    async fn complete(&self, request: &FimRequest, cancel: &CancellationToken) -> Result<Completion, ProviderError> {
        self.complete_with(request, cancel, None).await
    }

    async fn complete_streaming(
        &self,
        request: &FimRequest,
        cancel: &CancellationToken,
        on_text: TextSink<'_>,
    ) -> Result<Completion, ProviderError> {
        self.complete_with(request, cancel, Some(on_text)).await
    }
}

/// Ollama's wire form of the messages. Tool results carry `tool_name`,
/// looked up from the assistant call they answer.
fn wire_messages(messages: &[Message]) -> Vec<Value> {
    let tool_name = |id: &str| {
        messages.iter().flat_map(|m| m.tool_calls.iter()).find(|call| call.id == id).map(|call| call.name.clone())
    };
    messages
        .iter()
        .map(|message| match message.role {
            Role::Tool => {
                let mut value = json!({"role": "tool", "content": message.content});
                if let Some(name) = message.tool_call_id.as_deref().and_then(tool_name) {
                    value["tool_name"] = json!(name);
                }
                value
            }
            Role::Assistant if !message.tool_calls.is_empty() => json!({
                "role": "assistant",
                "content": message.content,
                "tool_calls": message.tool_calls.iter()
                    .map(|call| json!({"function": {"name": call.name, "arguments": call.arguments}}))
                    .collect::<Vec<_>>(),
            }),
            role => json!({"role": role, "content": message.content}),
        })
        .collect()
}

fn stop_reason(done_reason: Option<&str>, has_tool_calls: bool) -> StopReason {
    match done_reason {
        _ if has_tool_calls => StopReason::ToolUse,
        Some("length") => StopReason::MaxTokens,
        _ => StopReason::EndTurn,
    }
}

/// Normalises an `OLLAMA_HOST` value (`host`, `host:port`, `:port`, or a URL)
/// into a base URL: scheme defaults to http, port to 11434, and the bind-all
/// address 0.0.0.0 becomes 127.0.0.1.
pub fn base_url_from_ollama_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    if host.is_empty() {
        return DEFAULT_OLLAMA_URL.to_string();
    }
    let (scheme, rest) = match host.split_once("://") {
        Some((scheme, rest)) => (scheme.to_string(), rest.to_string()),
        None => ("http".to_string(), host.to_string()),
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => (rest[..slash].to_string(), rest[slash..].to_string()),
        None => (rest, String::new()),
    };
    let (name, port) = match authority.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
            (name.to_string(), port.to_string())
        }
        _ => (authority.clone(), if scheme == "https" { "443".to_string() } else { "11434".to_string() }),
    };
    let name = match name.as_str() {
        "" | "0.0.0.0" => "127.0.0.1".to_string(),
        _ => name,
    };
    format!("{scheme}://{name}:{port}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_host_forms() {
        let cases = [
            ("", "http://127.0.0.1:11434"),
            ("0.0.0.0", "http://127.0.0.1:11434"),
            ("example.lan", "http://example.lan:11434"),
            ("127.0.0.1:9999", "http://127.0.0.1:9999"),
            (":8080", "http://127.0.0.1:8080"),
            ("http://10.1.2.3:11434/", "http://10.1.2.3:11434"),
            ("https://ollama.internal", "https://ollama.internal:443"),
        ];
        for (input, expected) in cases {
            assert_eq!(base_url_from_ollama_host(input), expected, "{input}");
        }
    }
}
