//! Anthropic Messages API: `POST {base}/v1/messages` with `x-api-key` and
//! `anthropic-version` headers, the system prompt as a top-level field, tool
//! results sent back as `tool_result` blocks, and SSE streaming
//! (`message_start` … `message_stop`). Anthropic has no FIM endpoint, so
//! `complete` uses the chat "fill the hole" prompt.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::http::{
    join_url, parse_arguments, prompt_text, snippet, usage_or_estimate, HttpTransport, RemoteOptions, SseReader,
};
use super::openai::{complete_via_chat, complete_via_chat_streaming, reply_text};
use super::{
    ChatRequest, ChatResponse, Completion, EventSink, FimRequest, Message, Provider, ProviderError, Role, StopReason,
    StreamEvent, TextSink, ToolCall,
};

/// The API version this client speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` is mandatory in the Messages API; used when nothing else sets it.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

pub struct AnthropicProvider {
    transport: HttpTransport,
    options: RemoteOptions,
}

impl AnthropicProvider {
    pub fn new(options: RemoteOptions) -> Result<Self, ProviderError> {
        Ok(AnthropicProvider {
            transport: HttpTransport::new("anthropic", options.http.clone(), &options.base_url)?,
            options,
        })
    }

    /// The JSON body of a Messages request.
    pub fn messages_body(&self, request: &ChatRequest, stream: bool) -> Value {
        let system: Vec<&str> =
            request.messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
        let mut body = json!({
            "model": self.options.model,
            "max_tokens": request.max_tokens.or(self.options.max_tokens).unwrap_or(DEFAULT_MAX_TOKENS),
            "messages": wire_messages(&request.messages),
            "stream": stream,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
                .collect();
        }
        if let Some(temperature) = request.temperature.or(self.options.temperature) {
            body["temperature"] = json!(temperature);
        }
        if !request.stop.is_empty() {
            body["stop_sequences"] = json!(request.stop);
        }
        body
    }

    async fn post(&self, body: &Value, cancel: &CancellationToken) -> Result<reqwest::Response, ProviderError> {
        let mut headers: Vec<(&str, &str)> = vec![("anthropic-version", ANTHROPIC_VERSION)];
        if let Some(key) = self.options.api_key.as_deref().filter(|k| !k.is_empty()) {
            headers.push(("x-api-key", key));
        }
        self.transport.post_json(&join_url(&self.options.base_url, "v1/messages"), &headers, body, cancel).await
    }

    async fn chat_streaming(
        &self,
        request: &ChatRequest,
        on_event: EventSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, ProviderError> {
        let response = self.post(&self.messages_body(request, true), cancel).await?;
        let mut events = SseReader::new(&self.transport, response);
        let mut text = String::new();
        let mut blocks: BTreeMap<u64, Block> = BTreeMap::new();
        let mut tool_calls = Vec::new();
        let mut stop: Option<String> = None;
        let (mut input_tokens, mut output_tokens) = (None, None);
        let mut saw_stop = false;
        while let Some(event) = events.next_event(cancel).await? {
            let data: Value = serde_json::from_str(&event.data).map_err(|err| {
                self.transport.bad_response(format!(
                    "invalid `{}` event ({err}): {}",
                    event.event,
                    snippet(&event.data)
                ))
            })?;
            let kind = data.get("type").and_then(Value::as_str).unwrap_or(event.event.as_str());
            let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
            match kind {
                "message_start" => {
                    let usage = data.pointer("/message/usage");
                    input_tokens = usage.and_then(|u| u.get("input_tokens")).and_then(Value::as_u64).or(input_tokens);
                }
                "content_block_start" => {
                    let block = data.get("content_block").cloned().unwrap_or(Value::Null);
                    if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                        let id = block.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                        let name = block.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                        on_event(StreamEvent::ToolCallStarted { id: id.clone(), name: name.clone() });
                        blocks.insert(index, Block::ToolUse { id, name, json: String::new() });
                    } else {
                        blocks.insert(index, Block::Other);
                    }
                }
                "content_block_delta" => match data.pointer("/delta/type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(piece) = data.pointer("/delta/text").and_then(Value::as_str) {
                            text.push_str(piece);
                            on_event(StreamEvent::TextDelta(piece.to_string()));
                        }
                    }
                    Some("input_json_delta") => {
                        let piece = data.pointer("/delta/partial_json").and_then(Value::as_str).unwrap_or_default();
                        match blocks.get_mut(&index) {
                            Some(Block::ToolUse { json, .. }) => json.push_str(piece),
                            _ => {
                                return Err(self.transport.bad_response(format!(
                                    "input_json_delta for block {index}, which is not a tool_use"
                                )))
                            }
                        }
                    }
                    _ => {}
                },
                "content_block_stop" => {
                    if let Some(Block::ToolUse { id, name, json }) = blocks.remove(&index) {
                        let arguments = parse_arguments(&self.transport, &name, &json)?;
                        let call = ToolCall { id, name, arguments };
                        on_event(StreamEvent::ToolCall(call.clone()));
                        tool_calls.push(call);
                    }
                }
                "message_delta" => {
                    if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                        stop = Some(reason.to_string());
                    }
                    let usage = data.get("usage");
                    output_tokens =
                        usage.and_then(|u| u.get("output_tokens")).and_then(Value::as_u64).or(output_tokens);
                    input_tokens = usage.and_then(|u| u.get("input_tokens")).and_then(Value::as_u64).or(input_tokens);
                }
                "message_stop" => {
                    saw_stop = true;
                    break;
                }
                "error" => return Err(self.stream_error(&data)),
                _ => {} // ping and future event types
            }
        }
        if !saw_stop {
            return Err(self.transport.bad_response("the stream ended before `message_stop` (truncated reply)"));
        }
        if blocks.values().any(|b| matches!(b, Block::ToolUse { .. })) {
            return Err(self.transport.bad_response("a tool_use block was never closed"));
        }
        let usage =
            usage_or_estimate(input_tokens, output_tokens, &prompt_text(request), &reply_text(&text, &tool_calls));
        Ok(ChatResponse {
            stop_reason: stop_reason(stop.as_deref(), !tool_calls.is_empty()),
            message: Message { role: Role::Assistant, content: text, tool_calls, tool_call_id: None },
            usage,
        })
    }

    /// An `error` event inside a 200 stream (e.g. `overloaded_error`).
    fn stream_error(&self, data: &Value) -> ProviderError {
        let kind = data.pointer("/error/type").and_then(Value::as_str).unwrap_or("error");
        let message = data.pointer("/error/message").and_then(Value::as_str).unwrap_or("unknown error").to_string();
        let provider = self.transport.provider().to_string();
        match kind {
            "overloaded_error" => ProviderError::Http { provider, status: 529, message },
            "rate_limit_error" => ProviderError::RateLimited { provider, attempts: 1, message },
            "authentication_error" | "permission_error" => ProviderError::Auth { provider, message },
            _ => ProviderError::BadResponse { provider, message: format!("{kind}: {message}") },
        }
    }

    async fn chat_whole(
        &self,
        request: &ChatRequest,
        on_event: EventSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, ProviderError> {
        let response = self.post(&self.messages_body(request, false), cancel).await?;
        let body = self.transport.read_json(response, cancel).await?;
        if body.get("type").and_then(Value::as_str) == Some("error") {
            return Err(self.stream_error(&body));
        }
        let content = body
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| self.transport.bad_response("the reply has no `content` array"))?;
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for block in content {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default()),
                Some("tool_use") => tool_calls.push(ToolCall {
                    id: block.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                    name: block.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                    arguments: block.get("input").cloned().unwrap_or_else(|| json!({})),
                }),
                _ => {}
            }
        }
        if !text.is_empty() {
            on_event(StreamEvent::TextDelta(text.clone()));
        }
        for call in &tool_calls {
            on_event(StreamEvent::ToolCallStarted { id: call.id.clone(), name: call.name.clone() });
            on_event(StreamEvent::ToolCall(call.clone()));
        }
        let usage = usage_or_estimate(
            body.pointer("/usage/input_tokens").and_then(Value::as_u64),
            body.pointer("/usage/output_tokens").and_then(Value::as_u64),
            &prompt_text(request),
            &reply_text(&text, &tool_calls),
        );
        Ok(ChatResponse {
            stop_reason: stop_reason(body.get("stop_reason").and_then(Value::as_str), !tool_calls.is_empty()),
            message: Message { role: Role::Assistant, content: text, tool_calls, tool_call_id: None },
            usage,
        })
    }
}

enum Block {
    ToolUse { id: String, name: String, json: String },
    Other,
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &str {
        "anthropic"
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
        if self.options.stream {
            self.chat_streaming(request, on_event, cancel).await
        } else {
            self.chat_whole(request, on_event, cancel).await
        }
    }

    async fn complete(&self, request: &FimRequest, cancel: &CancellationToken) -> Result<Completion, ProviderError> {
        complete_via_chat(self, request, cancel).await
    }

    async fn complete_streaming(
        &self,
        request: &FimRequest,
        cancel: &CancellationToken,
        on_text: TextSink<'_>,
    ) -> Result<Completion, ProviderError> {
        complete_via_chat_streaming(self, request, cancel, on_text).await
    }
}

/// Anthropic's message list: no system messages (they go top-level), tool
/// results as `tool_result` blocks in a user turn, and consecutive messages
/// of the same role merged (the API requires alternating roles).
fn wire_messages(messages: &[Message]) -> Vec<Value> {
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message.role {
            Role::System => continue,
            Role::User => ("user", vec![json!({"type": "text", "text": message.content})]),
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id.clone().unwrap_or_default(),
                    "content": message.content,
                })],
            ),
            Role::Assistant => {
                let mut blocks = Vec::new();
                if !message.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": message.content}));
                }
                for call in &message.tool_calls {
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}));
                }
                ("assistant", blocks)
            }
        };
        match out.last_mut() {
            Some((last_role, last_blocks)) if last_role == role => last_blocks.extend(blocks),
            _ => out.push((role.to_string(), blocks)),
        }
    }
    out.into_iter()
        .map(|(role, blocks)| {
            // A lone text block is sent as a plain string, the most common form.
            if let [block] = blocks.as_slice() {
                if block.get("type").and_then(Value::as_str) == Some("text") {
                    return json!({"role": role, "content": block["text"]});
                }
            }
            json!({"role": role, "content": blocks})
        })
        .collect()
}

fn stop_reason(reason: Option<&str>, has_tool_calls: bool) -> StopReason {
    match reason {
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence,
        _ if has_tool_calls => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}
