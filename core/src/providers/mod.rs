//! Model providers: one trait, several wire protocols, plus the embedded model.
//!
//! Everything above this module (LSP, CLI, agent) talks to a `dyn Provider`
//! and never to a wire format. Streaming is a callback so callers can render
//! tokens as they arrive while still receiving the aggregated response.

pub mod anthropic;
pub mod embedded;
pub mod factory;
pub mod fim;
pub mod http;
pub mod ollama;
pub mod openai;

pub use crate::config::Purpose;
pub use factory::build;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// The result of a tool call, sent back to the model.
    Tool,
}

/// A tool invocation requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned id; echoed back in the matching `Role::Tool` message.
    pub id: String,
    pub name: String,
    /// JSON arguments as parsed from the provider's reply.
    pub arguments: serde_json::Value,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    /// Text content (may be empty for an assistant message that only calls tools).
    pub content: String,
    /// Tool calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the id of the call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn system(text: impl Into<String>) -> Self {
        Self::text(Role::System, text)
    }
    pub fn user(text: impl Into<String>) -> Self {
        Self::text(Role::User, text)
    }
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::text(Role::Assistant, text)
    }
    pub fn tool_result(call_id: impl Into<String>, text: impl Into<String>) -> Self {
        Message { tool_call_id: Some(call_id.into()), ..Self::text(Role::Tool, text) }
    }
    fn text(role: Role, text: impl Into<String>) -> Self {
        Message { role, content: text.into(), tool_calls: Vec::new(), tool_call_id: None }
    }
}

/// A tool the model may call, described by a JSON schema for its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema (`{"type":"object","properties":{...},"required":[...]}`).
    pub parameters: serde_json::Value,
}

/// A chat request. `model` overrides the provider's configured model when set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    #[serde(default)]
    pub tools: Vec<ToolSpec>,
    pub max_tokens: Option<u32>,
    /// 0.0 = greedy. `None` = provider default.
    pub temperature: Option<f32>,
    #[serde(default)]
    pub stop: Vec<String>,
}

/// A fill-in-the-middle request: complete between `prefix` and `suffix`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FimRequest {
    pub prefix: String,
    pub suffix: String,
    /// Path of the file being edited, relative to the workspace (used by
    /// repo-level templates such as Qwen2.5-Coder's `<|file_sep|>`).
    pub path: Option<String>,
    /// Extra context files (path, contents), most relevant last.
    #[serde(default)]
    pub context_files: Vec<(String, String)>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    #[serde(default)]
    pub stop: Vec<String>,
}

/// Token usage of one request, as reported by the provider (or counted locally).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, rhs: Self) {
        self.input_tokens += rhs.input_tokens;
        self.output_tokens += rhs.output_tokens;
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    Cancelled,
    /// The output fell into a loop (the same tokens or line over and over).
    Repetition,
}

/// Incremental events delivered while a response streams in.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of assistant text.
    TextDelta(String),
    /// The model started a tool call (arguments follow when complete).
    ToolCallStarted { id: String, name: String },
    /// A tool call whose arguments are complete.
    ToolCall(ToolCall),
}

/// The aggregated result of a chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The assistant message (text plus any tool calls).
    pub message: Message,
    pub usage: Usage,
    pub stop_reason: StopReason,
}

/// The result of a FIM request.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    pub usage: Usage,
    pub stop_reason: StopReason,
    /// The exact text the model was given after templating (FIM markers,
    /// repo-level context, or the rendered chat), for `showLastPrompt`.
    pub prompt: Option<String>,
}

/// Everything that can go wrong talking to a model. Messages are written for
/// the end user: they say what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("authentication failed for {provider}: {message} (check the API key)")]
    Auth { provider: String, message: String },
    #[error("{provider} rate-limited the request after {attempts} attempts: {message}")]
    RateLimited { provider: String, attempts: u32, message: String },
    #[error("{provider} returned HTTP {status}: {message}")]
    Http { provider: String, status: u16, message: String },
    #[error("{provider} did not answer within {timeout:?}")]
    Timeout { provider: String, timeout: Duration },
    #[error("cannot reach {provider}: {message}")]
    Connect { provider: String, message: String },
    #[error("{provider} sent a malformed reply: {message}")]
    BadResponse { provider: String, message: String },
    #[error("the request was cancelled")]
    Cancelled,
    #[error("{0}")]
    Config(String),
    #[error("embedded model: {0}")]
    Embedded(String),
}

/// Receives streamed events. Called on the task driving the request.
pub type EventSink<'a> = &'a mut (dyn FnMut(StreamEvent) + Send);

/// Receives completion text as it streams in. Returning false says the
/// caller has what it needs (the hole is filled), which stops generation
/// without wasting more tokens; the text passed so far is kept.
pub type TextSink<'a> = &'a mut (dyn FnMut(&str) -> bool + Send);

/// A model backend.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Short provider id: "openai", "anthropic", "ollama", "embedded".
    fn name(&self) -> &str;
    /// The model this provider sends requests to.
    fn model(&self) -> &str;
    /// Streaming chat with optional tool calling.
    async fn chat(
        &self,
        request: &ChatRequest,
        on_event: EventSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, ProviderError>;
    /// Fill-in-the-middle completion (native FIM where the model supports it,
    /// otherwise a chat "fill the hole" prompt).
    async fn complete(&self, request: &FimRequest, cancel: &CancellationToken) -> Result<Completion, ProviderError>;
    /// [`Provider::complete`], streaming the text to `on_text` as it arrives
    /// and stopping when `on_text` returns false (then `stop_reason` is
    /// `StopSequence` and `text` ends with the last piece passed). Providers
    /// that cannot stream deliver the whole text as one piece.
    async fn complete_streaming(
        &self,
        request: &FimRequest,
        cancel: &CancellationToken,
        on_text: TextSink<'_>,
    ) -> Result<Completion, ProviderError> {
        let completion = self.complete(request, cancel).await?;
        on_text(&completion.text);
        Ok(completion)
    }
}
