//! OpenAI-compatible provider: `POST {base}/chat/completions` (SSE streaming,
//! tool calls) and `POST {base}/completions` (raw FIM prompts or `suffix`).
//! Works with OpenAI and with local servers that mimic it (llama.cpp, vLLM,
//! LM Studio, …).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::fim::{self, FimMode};
use super::http::{
    cut_at_stops, join_url, parse_arguments, prompt_text, usage_or_estimate, HttpTransport, RemoteOptions, SseReader,
    StopScanner,
};
use super::{
    ChatRequest, ChatResponse, Completion, EventSink, FimRequest, Message, Provider, ProviderError, Role, StopReason,
    StreamEvent, TextSink, ToolCall,
};

pub struct OpenAiProvider {
    transport: HttpTransport,
    options: RemoteOptions,
}

impl OpenAiProvider {
    pub fn new(options: RemoteOptions) -> Result<Self, ProviderError> {
        Ok(OpenAiProvider {
            transport: HttpTransport::new("openai", options.http.clone(), &options.base_url)?,
            options,
        })
    }

    pub fn options(&self) -> &RemoteOptions {
        &self.options
    }

    fn authorization(&self) -> Option<String> {
        self.options.api_key.as_ref().filter(|k| !k.is_empty()).map(|key| format!("Bearer {key}"))
    }

    async fn post(
        &self,
        path: &str,
        body: &Value,
        cancel: &CancellationToken,
    ) -> Result<reqwest::Response, ProviderError> {
        let authorization = self.authorization();
        let headers: Vec<(&str, &str)> = authorization.iter().map(|v| ("authorization", v.as_str())).collect();
        self.transport.post_json(&join_url(&self.options.base_url, path), &headers, body, cancel).await
    }

    /// An `{"error": …}` object sent with HTTP 200 (in a stream or a body).
    fn check_error(&self, value: &Value) -> Result<(), ProviderError> {
        if value.get("error").is_some_and(|e| !e.is_null()) {
            let message = super::http::error_message(&value.to_string());
            return Err(self.transport.bad_response(format!("the server reported an error: {message}")));
        }
        Ok(())
    }

    /// The JSON body of a chat request.
    pub fn chat_body(&self, request: &ChatRequest, stream: bool) -> Value {
        let mut body = json!({
            "model": self.options.model,
            "messages": request.messages.iter().map(wire_message).collect::<Vec<_>>(),
            "stream": stream,
        });
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
                .collect();
        }
        if let Some(max_tokens) = request.max_tokens.or(self.options.max_tokens) {
            body["max_tokens"] = json!(max_tokens);
        }
        if let Some(temperature) = request.temperature.or(self.options.temperature) {
            body["temperature"] = json!(temperature);
        }
        if !request.stop.is_empty() {
            body["stop"] = json!(request.stop);
        }
        body
    }

    async fn chat_streaming(
        &self,
        request: &ChatRequest,
        on_event: EventSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, ProviderError> {
        let response = self.post("chat/completions", &self.chat_body(request, true), cancel).await?;
        let mut events = SseReader::new(&self.transport, response);
        let mut text = String::new();
        let mut calls = ToolCallAssembler::default();
        let mut finish_reason: Option<String> = None;
        let (mut input_tokens, mut output_tokens) = (None, None);
        let mut saw_done = false;
        while let Some(event) = events.next_event(cancel).await? {
            if event.data.trim() == "[DONE]" {
                saw_done = true;
                break;
            }
            let chunk = self.stream_chunk(&event.data, &mut input_tokens, &mut output_tokens)?;
            let Some(choice) = chunk.pointer("/choices/0") else { continue };
            if let Some(delta) = choice.get("delta") {
                if let Some(piece) = delta.get("content").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                    text.push_str(piece);
                    on_event(StreamEvent::TextDelta(piece.to_string()));
                }
                for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(started) = calls.push(call) {
                        on_event(started);
                    }
                }
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                finish_reason = Some(reason.to_string());
            }
        }
        // Some compatible servers omit `[DONE]`; a choice that reported its
        // finish_reason is complete all the same.
        if !saw_done && finish_reason.is_none() {
            return Err(self.transport.bad_response("the stream ended before `data: [DONE]` (truncated reply)"));
        }
        let tool_calls = calls.finish(&self.transport)?;
        for call in &tool_calls {
            on_event(StreamEvent::ToolCall(call.clone()));
        }
        let usage =
            usage_or_estimate(input_tokens, output_tokens, &prompt_text(request), &reply_text(&text, &tool_calls));
        Ok(ChatResponse {
            stop_reason: stop_reason(finish_reason.as_deref(), !tool_calls.is_empty()),
            message: Message { role: Role::Assistant, content: text, tool_calls, tool_call_id: None },
            usage,
        })
    }

    async fn chat_whole(
        &self,
        request: &ChatRequest,
        on_event: EventSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, ProviderError> {
        let response = self.post("chat/completions", &self.chat_body(request, false), cancel).await?;
        let body = self.transport.read_json(response, cancel).await?;
        self.check_error(&body)?;
        let choice =
            body.pointer("/choices/0").ok_or_else(|| self.transport.bad_response("the reply has no `choices`"))?;
        let message =
            choice.get("message").ok_or_else(|| self.transport.bad_response("the reply's choice has no `message`"))?;
        let text = message.get("content").and_then(Value::as_str).unwrap_or_default().to_string();
        let mut tool_calls = Vec::new();
        for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let name = call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_string();
            let arguments = match call.pointer("/function/arguments") {
                Some(Value::String(text)) => parse_arguments(&self.transport, &name, text)?,
                Some(value @ Value::Object(_)) => value.clone(),
                _ => json!({}),
            };
            let id = call.get("id").and_then(Value::as_str).map(str::to_string);
            let id = id.unwrap_or_else(|| format!("call_{}", tool_calls.len()));
            tool_calls.push(ToolCall { id, name, arguments });
        }
        if !text.is_empty() {
            on_event(StreamEvent::TextDelta(text.clone()));
        }
        for call in &tool_calls {
            on_event(StreamEvent::ToolCallStarted { id: call.id.clone(), name: call.name.clone() });
            on_event(StreamEvent::ToolCall(call.clone()));
        }
        let usage = usage_or_estimate(
            body.pointer("/usage/prompt_tokens").and_then(Value::as_u64),
            body.pointer("/usage/completion_tokens").and_then(Value::as_u64),
            &prompt_text(request),
            &reply_text(&text, &tool_calls),
        );
        let finish_reason = choice.get("finish_reason").and_then(Value::as_str);
        Ok(ChatResponse {
            stop_reason: stop_reason(finish_reason, !tool_calls.is_empty()),
            message: Message { role: Role::Assistant, content: text, tool_calls, tool_call_id: None },
            usage,
        })
    }

    /// `POST /completions` with a raw prompt (and optional suffix); streamed
    /// (SSE) when `on_text` is given, which can stop it early.
    async fn legacy_completion(
        &self,
        prompt: &str,
        suffix: Option<&str>,
        stops: &[String],
        request: &FimRequest,
        cancel: &CancellationToken,
        on_text: Option<TextSink<'_>>,
    ) -> Result<Completion, ProviderError> {
        let mut body = json!({"model": self.options.model, "prompt": prompt, "stream": on_text.is_some()});
        if let Some(suffix) = suffix {
            body["suffix"] = json!(suffix);
        }
        if let Some(max_tokens) = request.max_tokens.or(self.options.max_tokens) {
            body["max_tokens"] = json!(max_tokens);
        }
        if let Some(temperature) = request.temperature.or(self.options.temperature) {
            body["temperature"] = json!(temperature);
        }
        if !stops.is_empty() {
            body["stop"] = json!(stops);
        }
        let sent_prompt = match suffix {
            Some(suffix) => format!("{prompt}\n--- suffix ---\n{suffix}"),
            None => prompt.to_string(),
        };
        let estimate_prompt = format!("{prompt}{}", suffix.unwrap_or_default());
        let response = self.post("completions", &body, cancel).await?;
        let Some(on_text) = on_text else {
            let reply = self.transport.read_json(response, cancel).await?;
            self.check_error(&reply)?;
            let choice = reply
                .pointer("/choices/0")
                .ok_or_else(|| self.transport.bad_response("the completion reply has no `choices`"))?;
            let raw = choice
                .get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| self.transport.bad_response("the completion choice has no `text`"))?;
            let text = cut_at_stops(raw, stops);
            let usage = usage_or_estimate(
                reply.pointer("/usage/prompt_tokens").and_then(Value::as_u64),
                reply.pointer("/usage/completion_tokens").and_then(Value::as_u64),
                &estimate_prompt,
                &text,
            );
            return Ok(Completion {
                text,
                usage,
                stop_reason: stop_reason(choice.get("finish_reason").and_then(Value::as_str), false),
                prompt: Some(sent_prompt),
            });
        };
        let mut events = SseReader::new(&self.transport, response);
        let mut scanner = StopScanner::new(stops);
        let mut text = String::new();
        let mut finish_reason: Option<String> = None;
        let (mut input_tokens, mut output_tokens) = (None, None);
        let mut ended = false;
        let mut caller_stopped = false;
        while let Some(event) = events.next_event(cancel).await? {
            if event.data.trim() == "[DONE]" {
                ended = true;
                break;
            }
            let chunk = self.stream_chunk(&event.data, &mut input_tokens, &mut output_tokens)?;
            let Some(choice) = chunk.pointer("/choices/0") else { continue };
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                finish_reason = Some(reason.to_string());
            }
            let piece = choice.get("text").and_then(Value::as_str).unwrap_or_default();
            let (released, hit_stop) = scanner.push(piece);
            if !released.is_empty() {
                text.push_str(&released);
                if !on_text(&released) {
                    caller_stopped = true;
                    break;
                }
            }
            if hit_stop {
                finish_reason = Some("stop".into());
                ended = true;
                break;
            }
        }
        if !caller_stopped {
            if !ended && finish_reason.is_none() {
                return Err(self.transport.bad_response("the stream ended before `data: [DONE]` (truncated reply)"));
            }
            let rest = scanner.finish();
            if !rest.is_empty() {
                text.push_str(&rest);
                caller_stopped = !on_text(&rest);
            }
        }
        // Dropping the reader closes the connection: the server stops generating.
        drop(events);
        let usage = usage_or_estimate(input_tokens, output_tokens, &estimate_prompt, &text);
        let stop_reason =
            if caller_stopped { StopReason::StopSequence } else { stop_reason(finish_reason.as_deref(), false) };
        Ok(Completion { text, usage, stop_reason, prompt: Some(sent_prompt) })
    }

    async fn complete_with(
        &self,
        request: &FimRequest,
        cancel: &CancellationToken,
        on_text: Option<TextSink<'_>>,
    ) -> Result<Completion, ProviderError> {
        let family = self.options.fim_family();
        match (self.options.fim_mode, family) {
            (FimMode::Template, Some(family)) | (FimMode::Auto, Some(family)) => {
                let (prompt, stops) = fim::build_prompt(family, request);
                self.legacy_completion(&prompt, None, &stops, request, cancel, on_text).await
            }
            (FimMode::Template, None) => Err(ProviderError::Config(format!(
                "no FIM template is known for model `{}`: set `fim_template` or use `fim = \"suffix\"` / `\"chat\"`",
                self.options.model
            ))),
            (FimMode::Suffix, _) => {
                self.legacy_completion(&request.prefix, Some(&request.suffix), &request.stop, request, cancel, on_text)
                    .await
            }
            (FimMode::Chat, _) | (FimMode::Auto, None) => match on_text {
                Some(on_text) => complete_via_chat_streaming(self, request, cancel, on_text).await,
                None => complete_via_chat(self, request, cancel).await,
            },
        }
    }
}

/// A chat "fill the hole" completion through any provider's `chat`.
pub(crate) async fn complete_via_chat(
    provider: &dyn Provider,
    request: &FimRequest,
    cancel: &CancellationToken,
) -> Result<Completion, ProviderError> {
    let chat = fim::chat_hole_filler(request);
    let response = provider.chat(&chat, &mut |_| {}, cancel).await?;
    Ok(Completion {
        text: cut_at_stops(&fim::extract_completion(&response.message.content), &request.stop),
        usage: response.usage,
        stop_reason: response.stop_reason,
        prompt: Some(fim::render_chat(&chat)),
    })
}

/// [`complete_via_chat`] streamed: the code of the reply (fences and an
/// echoed hole marker taken out as they arrive) goes to `on_text`; when it
/// says stop, the chat request is cancelled, which drops its connection.
pub(crate) async fn complete_via_chat_streaming(
    provider: &dyn Provider,
    request: &FimRequest,
    cancel: &CancellationToken,
    on_text: TextSink<'_>,
) -> Result<Completion, ProviderError> {
    let chat = fim::chat_hole_filler(request);
    let stop_chat = cancel.child_token();
    let mut code = fim::HoleReplyStream::default();
    let mut scanner = StopScanner::new(&request.stop);
    let mut passed = String::new();
    let mut caller_stopped = false;
    let mut on_event = |event: StreamEvent| {
        let StreamEvent::TextDelta(piece) = event else { return };
        if caller_stopped {
            return;
        }
        let (released, hit_stop) = scanner.push(&code.push(&piece));
        if !released.is_empty() {
            passed.push_str(&released);
            if !on_text(&released) {
                caller_stopped = true;
                stop_chat.cancel();
            }
        }
        if hit_stop && !caller_stopped {
            caller_stopped = true;
            stop_chat.cancel();
        }
    };
    let result = provider.chat(&chat, &mut on_event, &stop_chat).await;
    let prompt = Some(fim::render_chat(&chat));
    match result {
        Err(ProviderError::Cancelled) if caller_stopped && !cancel.is_cancelled() => {
            let usage = usage_or_estimate(None, None, &prompt_text(&chat), &passed);
            Ok(Completion { text: passed, usage, stop_reason: StopReason::StopSequence, prompt })
        }
        Err(error) => Err(error),
        Ok(response) => {
            let text = cut_at_stops(&fim::extract_completion(&response.message.content), &request.stop);
            if caller_stopped {
                return Ok(Completion {
                    text: passed,
                    usage: response.usage,
                    stop_reason: StopReason::StopSequence,
                    prompt,
                });
            }
            // What was held back (a possible closing fence that was not one).
            if let Some(rest) = text.strip_prefix(passed.as_str()).filter(|rest| !rest.is_empty()) {
                if !on_text(rest) {
                    let text = format!("{passed}{rest}");
                    return Ok(Completion {
                        text,
                        usage: response.usage,
                        stop_reason: StopReason::StopSequence,
                        prompt,
                    });
                }
            }
            Ok(Completion { text, usage: response.usage, stop_reason: response.stop_reason, prompt })
        }
    }
}

impl OpenAiProvider {
    /// One SSE chunk of `/chat/completions` or `/completions` as JSON, its
    /// error checked and the usage it reports (the last chunk, when asked
    /// for) kept in `input_tokens`/`output_tokens`.
    fn stream_chunk(
        &self,
        data: &str,
        input_tokens: &mut Option<u64>,
        output_tokens: &mut Option<u64>,
    ) -> Result<Value, ProviderError> {
        let chunk: Value = serde_json::from_str(data).map_err(|err| {
            self.transport.bad_response(format!("invalid stream chunk ({err}): {}", super::http::snippet(data)))
        })?;
        self.check_error(&chunk)?;
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            *input_tokens = usage.get("prompt_tokens").and_then(Value::as_u64).or(*input_tokens);
            *output_tokens = usage.get("completion_tokens").and_then(Value::as_u64).or(*output_tokens);
        }
        Ok(chunk)
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        "openai"
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

/// OpenAI's wire form of one message.
fn wire_message(message: &Message) -> Value {
    match message.role {
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id.clone().unwrap_or_default(),
            "content": message.content,
        }),
        Role::Assistant if !message.tool_calls.is_empty() => json!({
            "role": "assistant",
            "content": if message.content.is_empty() { Value::Null } else { json!(message.content) },
            "tool_calls": message.tool_calls.iter().map(|call| json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments.to_string()},
            })).collect::<Vec<_>>(),
        }),
        role => json!({"role": role, "content": message.content}),
    }
}

fn stop_reason(finish_reason: Option<&str>, has_tool_calls: bool) -> StopReason {
    match finish_reason {
        _ if has_tool_calls => StopReason::ToolUse,
        Some("length") => StopReason::MaxTokens,
        Some("tool_calls") | Some("function_call") => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

/// What the output-token estimate counts when the server reports no usage.
pub(crate) fn reply_text(text: &str, calls: &[ToolCall]) -> String {
    let mut out = text.to_string();
    for call in calls {
        out.push_str(&call.name);
        out.push_str(&call.arguments.to_string());
    }
    out
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
    announced: bool,
}

/// Reassembles tool calls streamed as `delta.tool_calls[i]` pieces keyed by
/// `index` (id and name first, then argument fragments).
#[derive(Default)]
struct ToolCallAssembler {
    calls: BTreeMap<u64, PartialCall>,
}

impl ToolCallAssembler {
    /// Adds one fragment; returns `ToolCallStarted` the first time a call's name is known.
    fn push(&mut self, fragment: &Value) -> Option<StreamEvent> {
        let index = fragment.get("index").and_then(Value::as_u64).unwrap_or(self.calls.len() as u64);
        let call = self.calls.entry(index).or_default();
        if let Some(id) = fragment.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            call.id = id.to_string();
        }
        if let Some(name) = fragment.pointer("/function/name").and_then(Value::as_str).filter(|s| !s.is_empty()) {
            call.name.push_str(name);
        }
        if let Some(arguments) = fragment.pointer("/function/arguments").and_then(Value::as_str) {
            call.arguments.push_str(arguments);
        }
        if !call.announced && !call.name.is_empty() {
            call.announced = true;
            if call.id.is_empty() {
                call.id = format!("call_{index}");
            }
            return Some(StreamEvent::ToolCallStarted { id: call.id.clone(), name: call.name.clone() });
        }
        None
    }

    fn finish(self, transport: &HttpTransport) -> Result<Vec<ToolCall>, ProviderError> {
        self.calls
            .into_iter()
            .map(|(index, call)| {
                if call.name.is_empty() {
                    return Err(transport.bad_response(format!("tool call #{index} has no function name")));
                }
                let arguments = parse_arguments(transport, &call.name, &call.arguments)?;
                let id = if call.id.is_empty() { format!("call_{index}") } else { call.id };
                Ok(ToolCall { id, name: call.name, arguments })
            })
            .collect()
    }
}
