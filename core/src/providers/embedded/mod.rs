//! The embedded models, run in-process on our own kernels, so Sextant
//! answers with no server and no API key: Qwen2.5-Coder-0.5B-Instruct by
//! default (native fill-in-the-middle, Qwen's ChatML and `<tool_call>`
//! format), SmolLM2-135M-Instruct for small machines (FIM through a chat
//! prompt, JSON tool calls).
//!
//! - `model`: the llama/qwen2 forward pass (GGUF read by candle-core, math
//!   in the `sextant-kernels` crate).
//! - `tokenizer`: byte-level BPE rebuilt from the GGUF vocabulary.
//! - `generate`: the sampling loop (streaming, stop strings, cancellation).
//! - `pull`: the model catalogue; assembling and checking downloaded parts.
//! - `fim_prompt`: the chat "continue the file" prompt for models without FIM.
//!
//! Invariant: the model is loaded once and shared (`Arc`); generation runs on
//! a blocking thread, one request at a time, never on the async executor.
//! The engine keeps the KV cache of the last request (`generate::Session`):
//! a request sharing a token prefix with it forwards only the rest.

mod fim_prompt;
mod generate;
mod model;
mod pull;
mod tokenizer;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use candle_core::quantized::gguf_file::Content;
use tokio_util::sync::CancellationToken;

pub use generate::{Generated, GenerationParams};
pub use model::LlamaConfig;
pub use pull::{
    find_model, install_model, verify_gguf, Carrier, EntryName, Expected, ModelSpec, PartSource, DEFAULT_MODEL_ID,
    MODELS,
};

use super::fim::{self, FimFamily};
use super::{
    ChatRequest, ChatResponse, Completion, EventSink, FimRequest, Message, Provider, ProviderError, Role, StopReason,
    StreamEvent, TextSink, ToolCall, ToolSpec, Usage,
};
use model::Llama;
use tokenizer::TextTokenizer;

/// Environment variable naming the model file, overriding the cache location.
pub const MODEL_PATH_ENV: &str = "SEXTANT_MODEL_PATH";

const DEFAULT_CHAT_MAX_TOKENS: usize = 512;
const DEFAULT_FIM_MAX_TOKENS: usize = 64;
/// Prompt-lookup draft tokens verified per greedy decoding step: none by
/// default. Verification is exact but runs the decoding kernel once per
/// draft, and these kernels are compute-bound (k tokens cost ~k times one),
/// so drafts do not pay yet; see `Generated::decode_steps`.
const DRAFT_TOKENS: usize = 0;
/// Fixed so that sampled output is reproducible run to run.
const SAMPLING_SEED: u64 = 0x5E7_7A17;

/// The token loop's settings for one request: greedy unless a temperature
/// is asked for, always the same seed, so a request repeats its answer.
fn generation_params(
    max_new: usize,
    temperature: Option<f32>,
    stop: Vec<String>,
    end_tokens: Vec<u32>,
) -> GenerationParams {
    GenerationParams {
        max_new_tokens: max_new,
        temperature: temperature.unwrap_or(0.0),
        seed: SAMPLING_SEED,
        stop,
        end_tokens,
        draft_tokens: DRAFT_TOKENS,
    }
}

/// SmolLM2's chat template uses this when the conversation has no system turn.
const SMOLLM_SYSTEM_PROMPT: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
/// Qwen2.5's chat template uses this when the conversation has no system turn.
const QWEN_SYSTEM_PROMPT: &str = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

/// Which prompt formats a loaded model was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PromptFamily {
    /// SmolLM2: ChatML, no FIM tokens, tools described in prose.
    SmolLm,
    /// Qwen2.5(-Coder): ChatML, native FIM tokens, `<tool_call>` blocks.
    Qwen,
}

impl PromptFamily {
    fn default_system_prompt(self) -> &'static str {
        match self {
            PromptFamily::SmolLm => SMOLLM_SYSTEM_PROMPT,
            PromptFamily::Qwen => QWEN_SYSTEM_PROMPT,
        }
    }
}

/// What can go wrong inside the embedded engine.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("cannot access {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}")]
    Format(String),
    #[error("tokenizer failed: {0}")]
    Tokenizer(String),
    #[error("tensor computation failed: {0}")]
    Candle(String),
    #[error("the conversation does not fit the {capacity}-token context window")]
    ContextFull { capacity: usize },
}

impl EmbeddedError {
    fn candle(err: candle_core::Error) -> Self {
        EmbeddedError::Candle(err.to_string())
    }
}

impl From<EmbeddedError> for ProviderError {
    fn from(err: EmbeddedError) -> Self {
        ProviderError::Embedded(err.to_string())
    }
}

/// Directory holding downloaded models.
pub fn models_dir() -> PathBuf {
    dirs::cache_dir().unwrap_or_else(|| PathBuf::from(".")).join("sextant").join("models")
}

/// Where `spec` is installed.
pub fn model_path(spec: &ModelSpec) -> PathBuf {
    models_dir().join(spec.file_name)
}

/// The spec of the default model.
pub fn default_model() -> &'static ModelSpec {
    // MODELS always lists the default; the fallback only keeps this total.
    find_model(DEFAULT_MODEL_ID).unwrap_or(&MODELS[0])
}

/// The model file to load: `$SEXTANT_MODEL_PATH` if set, else the cache copy
/// of the default model.
pub fn default_model_path() -> PathBuf {
    match std::env::var_os(MODEL_PATH_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => model_path(default_model()),
    }
}

/// The file for a configured model name: empty = [`default_model_path`],
/// else one of [`MODELS`] by id, else an existing GGUF file of that path.
pub fn resolve_model_path(model: &str) -> Result<PathBuf, ProviderError> {
    if model.trim().is_empty() {
        return Ok(default_model_path());
    }
    match find_model(model) {
        Some(spec) => Ok(model_path(spec)),
        None if Path::new(model).is_file() => Ok(PathBuf::from(model)),
        None => Err(ProviderError::Config(format!(
            "unknown embedded model `{model}` (known: {}; or a GGUF file path)",
            MODELS.iter().map(|spec| spec.id).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// What to tell a user whose model file is missing.
pub fn missing_model_message(path: &Path) -> String {
    let spec = path
        .file_name()
        .and_then(|name| MODELS.iter().find(|spec| name == spec.file_name))
        .unwrap_or_else(default_model);
    let command = if spec.id == DEFAULT_MODEL_ID {
        "sextant models pull".to_string()
    } else {
        format!("sextant models pull {}", spec.id)
    };
    format!(
        "the embedded model is not installed ({} does not exist). Run `{command}` to install {} \
         (about {} MB), or set {MODEL_PATH_ENV} to a GGUF model file.",
        path.display(),
        spec.display_name,
        spec.size_mb()
    )
}

struct Engine {
    model: Llama,
    tokenizer: TextTokenizer,
    family: PromptFamily,
    /// The KV cache of the last request, reused by the next one. The lock
    /// also serialises generations: two at once would only halve each
    /// one's speed.
    session: Mutex<generate::Session>,
    /// Prompt tokens the running request has forwarded so far.
    prefill_progress: AtomicUsize,
}

impl Engine {
    fn run(
        &self,
        prompt: &[u32],
        params: &GenerationParams,
        cancel: &CancellationToken,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generated, EmbeddedError> {
        // A panic mid-pass leaves the session's token count behind its cache,
        // which `Session::prepare` notices and starts cold.
        let mut session = self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.prefill_progress.store(0, Ordering::Relaxed);
        let progress = &self.prefill_progress;
        generate::generate(&self.model, &self.tokenizer, &mut session, progress, prompt, params, cancel, on_text)
    }
}

/// Figures from [`EmbeddedProvider::benchmark`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchFigures {
    pub prompt_tokens: usize,
    pub prompt_time: Duration,
    pub decode_tokens: usize,
    pub decode_time: Duration,
    pub load_time: Duration,
}

/// The in-process model behind the `Provider` trait. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedProvider {
    engine: Arc<Engine>,
    model_name: String,
    load_time: Duration,
}

impl EmbeddedProvider {
    /// Loads a GGUF model. A missing file gives [`missing_model_message`].
    pub fn load(model_path: &Path) -> Result<EmbeddedProvider, ProviderError> {
        if !model_path.is_file() {
            return Err(ProviderError::Embedded(missing_model_message(model_path)));
        }
        let started = Instant::now();
        let file = File::open(model_path).map_err(|err| EmbeddedError::Io(model_path.to_path_buf(), err))?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader).map_err(|err| {
            EmbeddedError::Format(format!("{} is not a readable GGUF file: {err}", model_path.display()))
        })?;
        let tokenizer = TextTokenizer::from_gguf_metadata(&content.metadata)?;
        let model = Llama::from_gguf(&content, &mut reader)?;
        let family = if tokenizer.token_id("<|fim_prefix|>").is_some() && tokenizer.token_id("<|fim_middle|>").is_some()
        {
            PromptFamily::Qwen
        } else {
            PromptFamily::SmolLm
        };
        let model_name = content
            .metadata
            .get("general.name")
            .and_then(|value| value.to_string().ok().cloned())
            .unwrap_or_else(|| {
                model_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "embedded".into())
            });
        Ok(EmbeddedProvider {
            engine: Arc::new(Engine {
                model,
                tokenizer,
                family,
                session: Mutex::new(generate::Session::default()),
                prefill_progress: AtomicUsize::new(0),
            }),
            model_name,
            load_time: started.elapsed(),
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.engine.model.config
    }

    /// Whether inline completion uses the model's own FIM tokens (else a
    /// chat prompt asks it to continue the file).
    pub fn has_native_fim(&self) -> bool {
        self.engine.family == PromptFamily::Qwen
    }

    /// The exact prompt ids a completion request turns into.
    pub fn fim_prompt_ids(&self, request: &FimRequest) -> Result<Vec<u32>, ProviderError> {
        if self.has_native_fim() {
            let (text, _) = fim::build_prompt(FimFamily::Qwen, request);
            Ok(self.engine.tokenizer.encode(&text)?)
        } else {
            let max_new = self.max_new_tokens(request.max_tokens, DEFAULT_FIM_MAX_TOKENS);
            Ok(self.build_prompt(&fim_prompt::chat_hole_filler(request), max_new)?)
        }
    }

    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Token ids of `text` (ChatML markup becomes its special-token ids).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, ProviderError> {
        Ok(self.engine.tokenizer.encode(text)?)
    }

    pub fn detokenize(&self, ids: &[u32]) -> Result<String, ProviderError> {
        Ok(self.engine.tokenizer.decode(ids)?)
    }

    /// The exact prompt ids a chat request turns into (after truncation).
    pub fn prompt_ids(&self, request: &ChatRequest) -> Result<Vec<u32>, ProviderError> {
        let max_new = self.max_new_tokens(request.max_tokens, DEFAULT_CHAT_MAX_TOKENS);
        Ok(self.build_prompt(request, max_new)?)
    }

    /// Generates from `prompt` on the calling thread, continuing from the
    /// KV cache the previous request left (see [`Generated`]'s counters).
    /// `on_text` returning false stops generation (`StopSequence`).
    pub fn generate_ids(
        &self,
        prompt: &[u32],
        params: &GenerationParams,
        cancel: &CancellationToken,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generated, ProviderError> {
        Ok(self.engine.run(prompt, params, cancel, on_text)?)
    }

    /// Prompt tokens the running (or last) request has forwarded so far:
    /// its prefill progress, past the reused prefix.
    pub fn prefill_progress(&self) -> usize {
        self.engine.prefill_progress.load(Ordering::Relaxed)
    }

    /// Forgets the cached KV prefix: the next request starts cold.
    pub fn clear_cache(&self) {
        self.engine.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
        // A watcher started before the next request must not see the last one's progress.
        self.engine.prefill_progress.store(0, Ordering::Relaxed);
    }

    /// The settings `complete` and `chat` generate with (greedy: temperature
    /// `None`), for callers of [`EmbeddedProvider::generate_ids`].
    pub fn default_params(&self, max_new_tokens: usize, temperature: Option<f32>) -> GenerationParams {
        generation_params(max_new_tokens, temperature, Vec::new(), Vec::new())
    }

    /// Times prefill of `prompt_tokens` tokens and greedy decoding of
    /// `decode_tokens` more (end-of-turn ignored), on the calling thread.
    pub fn benchmark(&self, prompt_tokens: usize, decode_tokens: usize) -> Result<BenchFigures, ProviderError> {
        let model = &self.engine.model;
        let _turn = self.engine.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let filler = self
            .engine
            .tokenizer
            .encode("The quick brown fox jumps over the lazy dog while the compiler checks every borrow. ")?;
        if filler.is_empty() {
            return Err(ProviderError::Embedded("the tokenizer produced no tokens".into()));
        }
        let prompt: Vec<u32> = filler.iter().copied().cycle().take(prompt_tokens.max(1)).collect();
        let mut cache = model.new_cache(prompt.len() + decode_tokens + 1)?;
        let started = Instant::now();
        let mut logits = model.forward(&prompt, &mut cache)?;
        let prompt_time = started.elapsed();
        let started = Instant::now();
        for _ in 0..decode_tokens {
            let next = argmax(&logits);
            logits = model.forward(&[next], &mut cache)?;
        }
        Ok(BenchFigures {
            prompt_tokens: prompt.len(),
            prompt_time,
            decode_tokens,
            decode_time: started.elapsed(),
            load_time: self.load_time,
        })
    }

    fn max_new_tokens(&self, requested: Option<u32>, default: usize) -> usize {
        let limit = self.config().context_length / 2;
        requested.map(|n| n as usize).unwrap_or(default).clamp(1, limit.max(1))
    }

    /// ChatML prompt ids. Over-long conversations lose their oldest tokens;
    /// the system turn and the assistant header are always kept. A trailing
    /// assistant message is left open, so the model continues it (prefill).
    fn build_prompt(&self, request: &ChatRequest, max_new: usize) -> Result<Vec<u32>, EmbeddedError> {
        let tokenizer = &self.engine.tokenizer;
        let chatml = render_chatml(&request.messages, &request.tools, self.engine.family);
        let mut system_ids = tokenizer.encode(&chatml.system)?;
        let turn_ids = tokenizer.encode(&chatml.turns)?;
        let header_ids = tokenizer.encode(&chatml.open_turn)?;
        let budget = self.config().context_length.saturating_sub(max_new);
        if system_ids.len() > budget / 2 {
            system_ids.drain(..system_ids.len() - budget / 2);
        }
        let header_ids = &header_ids[header_ids.len().saturating_sub(budget / 2)..];
        let room_for_turns = budget.saturating_sub(system_ids.len() + header_ids.len());
        let turn_ids = &turn_ids[turn_ids.len().saturating_sub(room_for_turns)..];
        let mut prompt = system_ids;
        prompt.extend_from_slice(turn_ids);
        prompt.extend_from_slice(header_ids);
        Ok(prompt)
    }

    /// Generates on a blocking thread, forwarding text to `on_text` on the
    /// calling task as it arrives. When `on_text` returns false the worker
    /// stops at its next token, nothing more is passed on, and the result
    /// is `StopSequence` with the text passed so far.
    async fn generate(
        &self,
        prompt: Vec<u32>,
        params: GenerationParams,
        cancel: &CancellationToken,
        on_text: &mut (dyn FnMut(String) -> bool + Send),
    ) -> Result<Generated, ProviderError> {
        let engine = Arc::clone(&self.engine);
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
        let listening = Arc::new(AtomicBool::new(true));
        let worker_listening = Arc::clone(&listening);
        let worker_cancel = cancel.clone();
        let worker = tokio::task::spawn_blocking(move || {
            engine.run(&prompt, &params, &worker_cancel, &mut |text| {
                sender.send(text.to_string()).is_ok() && worker_listening.load(Ordering::Relaxed)
            })
        });
        let mut passed = String::new();
        while let Some(text) = receiver.recv().await {
            if !listening.load(Ordering::Relaxed) {
                continue;
            }
            passed.push_str(&text);
            if !on_text(text) {
                listening.store(false, Ordering::Relaxed);
            }
        }
        let mut generated =
            worker.await.map_err(|err| ProviderError::Embedded(format!("the generation thread failed: {err}")))??;
        if !listening.load(Ordering::Relaxed) {
            generated.text = passed;
            generated.stop_reason = StopReason::StopSequence;
        }
        Ok(generated)
    }
}

const ASSISTANT_HEADER: &str = "<|im_start|>assistant\n";

/// A conversation in ChatML, split where truncation treats it differently.
struct ChatMl {
    /// The system turn (kept when the conversation is too long).
    system: String,
    /// Completed user/assistant/tool turns (truncated from the left).
    turns: String,
    /// The assistant turn the model writes: a bare header, or a header plus
    /// the start of the reply when the conversation ends with an assistant
    /// message.
    open_turn: String,
}

fn render_chatml(messages: &[Message], tools: &[ToolSpec], family: PromptFamily) -> ChatMl {
    let mut system_text: Vec<&str> =
        messages.iter().filter(|m| m.role == Role::System).map(|m| m.content.as_str()).collect();
    if system_text.is_empty() {
        system_text.push(family.default_system_prompt());
    }
    let mut system = system_text.join("\n\n");
    if !tools.is_empty() {
        match family {
            PromptFamily::SmolLm => system.push_str(&describe_tools(tools)),
            PromptFamily::Qwen => system.push_str(&qwen_tools(tools)),
        }
    }
    let system = format!("<|im_start|>system\n{system}<|im_end|>\n");

    let mut conversation: Vec<&Message> = messages.iter().filter(|m| m.role != Role::System).collect();
    let open_turn = match conversation.last() {
        Some(last) if last.role == Role::Assistant && last.tool_calls.is_empty() => {
            let prefill = format!("{ASSISTANT_HEADER}{}", last.content);
            conversation.pop();
            prefill
        }
        _ => ASSISTANT_HEADER.to_string(),
    };
    let turns = match family {
        PromptFamily::SmolLm => smollm_turns(&conversation),
        PromptFamily::Qwen => qwen_turns(&conversation),
    };
    ChatMl { system, turns, open_turn }
}

fn smollm_turns(conversation: &[&Message]) -> String {
    let mut turns = String::new();
    for message in conversation {
        let (role, content) = match message.role {
            Role::User | Role::System => ("user", message.content.clone()),
            Role::Assistant => {
                let mut content = message.content.clone();
                for call in &message.tool_calls {
                    if !content.is_empty() {
                        content.push('\n');
                    }
                    content.push_str(&serde_json::json!({"tool": call.name, "arguments": call.arguments}).to_string());
                }
                ("assistant", content)
            }
            // The model knows no tool role: results come back as a user turn.
            Role::Tool => (
                "user",
                format!("Tool result ({}):\n{}", message.tool_call_id.as_deref().unwrap_or("call"), message.content),
            ),
        };
        turns.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
    }
    turns
}

/// Turns as Qwen2.5's chat template writes them: tool calls as
/// `<tool_call>` blocks in the assistant turn, consecutive tool results in
/// one user turn as `<tool_response>` blocks.
fn qwen_turns(conversation: &[&Message]) -> String {
    let mut turns = String::new();
    for (index, message) in conversation.iter().enumerate() {
        match message.role {
            Role::User | Role::System => {
                turns.push_str(&format!("<|im_start|>user\n{}<|im_end|>\n", message.content));
            }
            Role::Assistant if message.tool_calls.is_empty() => {
                turns.push_str(&format!("<|im_start|>assistant\n{}<|im_end|>\n", message.content));
            }
            Role::Assistant => {
                turns.push_str("<|im_start|>assistant");
                if !message.content.is_empty() {
                    turns.push('\n');
                    turns.push_str(&message.content);
                }
                for call in &message.tool_calls {
                    let name = spaced_json(&serde_json::Value::String(call.name.clone()));
                    let arguments = spaced_json(&call.arguments);
                    turns.push_str(&format!(
                        "\n<tool_call>\n{{\"name\": {name}, \"arguments\": {arguments}}}\n</tool_call>"
                    ));
                }
                turns.push_str("<|im_end|>\n");
            }
            Role::Tool => {
                let previous_is_tool = index > 0 && conversation[index - 1].role == Role::Tool;
                let next_is_tool = conversation.get(index + 1).is_some_and(|next| next.role == Role::Tool);
                if !previous_is_tool {
                    turns.push_str("<|im_start|>user");
                }
                turns.push_str(&format!("\n<tool_response>\n{}\n</tool_response>", message.content));
                if !next_is_tool {
                    turns.push_str("<|im_end|>\n");
                }
            }
        }
    }
    turns
}

/// The tools section Qwen2.5's chat template appends to the system turn.
fn qwen_tools(tools: &[ToolSpec]) -> String {
    let mut text = String::from(
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for tool in tools {
        // Key order as the template's dict: type, function {name, description, parameters}.
        let string = |text: &str| spaced_json(&serde_json::Value::String(text.to_string()));
        text.push_str(&format!(
            "\n{{\"type\": \"function\", \"function\": {{\"name\": {}, \"description\": {}, \"parameters\": {}}}}}",
            string(&tool.name),
            string(&tool.description),
            spaced_json(&tool.parameters)
        ));
    }
    text.push_str(
        "\n</tools>\n\nFor each function call, return a json object with function name and arguments within \
         <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": \
         <args-json-object>}\n</tool_call>",
    );
    text
}

/// JSON the way Python's `json.dumps` writes it (`", "` and `": "`), as the
/// `tojson` filter of Qwen's chat template renders tool specs and calls.
fn spaced_json(value: &serde_json::Value) -> String {
    struct Spaced;
    impl serde_json::ser::Formatter for Spaced {
        fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, out: &mut W, first: bool) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                out.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, out: &mut W, first: bool) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                out.write_all(b", ")
            }
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, out: &mut W) -> std::io::Result<()> {
            out.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Spaced);
    // Writing a Value into memory cannot fail; an empty string would only
    // make the prompt worse, never crash.
    match serde::Serialize::serialize(value, &mut serializer) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The `<tool_call>` blocks of a Qwen reply, in order, and the reply text
/// outside them. A block that is not `{"name": ..., "arguments": {...}}`
/// becomes a call whose name says what is wrong, so the agent answers it
/// with an "unknown tool" error the model can correct.
fn parse_qwen_tool_calls(reply: &str) -> (String, Vec<(String, serde_json::Value)>) {
    const OPEN: &str = "<tool_call>";
    const CLOSE: &str = "</tool_call>";
    let mut calls = Vec::new();
    let mut text = String::new();
    let mut rest = reply;
    while let Some(start) = rest.find(OPEN) {
        text.push_str(&rest[..start]);
        let body_and_more = &rest[start + OPEN.len()..];
        let (body, after) = match body_and_more.find(CLOSE) {
            Some(end) => (&body_and_more[..end], &body_and_more[end + CLOSE.len()..]),
            None => (body_and_more, ""),
        };
        calls.push(parse_qwen_call(body));
        rest = after;
    }
    text.push_str(rest);
    (text.trim().to_string(), calls)
}

fn parse_qwen_call(body: &str) -> (String, serde_json::Value) {
    let malformed = |why: String| {
        (
            format!("(malformed <tool_call>: {why}; write {{\"name\": \"<tool>\", \"arguments\": {{...}}}})"),
            serde_json::json!({}),
        )
    };
    let value = match lenient_json(body) {
        Ok(value) => value,
        Err(err) => return malformed(format!("not valid JSON ({err})")),
    };
    // The tools list's own shape, {"type": "function", "function": {...}}, copied into a call.
    let value = match value.get("function") {
        Some(inner @ serde_json::Value::Object(_)) if value.get("name").is_none() => inner.clone(),
        _ => value,
    };
    let Some(name) = value.get("name").and_then(|n| n.as_str()) else {
        return malformed("no \"name\" string".into());
    };
    let arguments = match value.get("arguments") {
        None | Some(serde_json::Value::Null) => serde_json::json!({}),
        Some(serde_json::Value::String(text)) => match serde_json::from_str(text) {
            Ok(args @ serde_json::Value::Object(_)) => args,
            _ => return malformed("\"arguments\" is a string, not an object".into()),
        },
        Some(args @ serde_json::Value::Object(_)) => args.clone(),
        Some(_) => return malformed("\"arguments\" is not an object".into()),
    };
    (name.to_string(), arguments)
}

/// The first JSON value in `text`, forgiving what small models write: text
/// after the value (a second `}`, a sentence), and raw newlines or tabs
/// inside strings (an `edit_file` call with multi-line code).
fn lenient_json(text: &str) -> Result<serde_json::Value, serde_json::Error> {
    let first = |text: &str| {
        serde_json::Deserializer::from_str(text)
            .into_iter::<serde_json::Value>()
            .next()
            .unwrap_or_else(|| serde_json::from_str(text))
    };
    let text = text.trim();
    first(text).or_else(|err| {
        let repaired = escape_controls_in_strings(text);
        if repaired == text {
            Err(err)
        } else {
            first(&repaired).map_err(|_| err)
        }
    })
}

/// `text` with control characters inside JSON strings written as escapes.
fn escape_controls_in_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                out.push(c);
            }
            '\\' if in_string => {
                escaped = true;
                out.push(c);
            }
            '"' => {
                in_string = !in_string;
                out.push(c);
            }
            '\n' if in_string => out.push_str("\\n"),
            '\r' if in_string => out.push_str("\\r"),
            '\t' if in_string => out.push_str("\\t"),
            c if in_string && c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn describe_tools(tools: &[ToolSpec]) -> String {
    let mut text = String::from(
        "\n\nYou can use tools. To call one, reply with only a JSON object of the form \
         {\"tool\": \"<name>\", \"arguments\": {...}} and nothing else. Available tools:\n",
    );
    // Argument names and the description's first sentence, not the JSON
    // schemas: a schema costs ~100 prompt tokens per tool, and the small
    // model reads prompts at tens of tokens per second.
    for tool in tools {
        text.push_str(&format!(
            "- {}({}): {}\n",
            tool.name,
            argument_names(&tool.parameters),
            first_sentence(&tool.description)
        ));
    }
    text
}

/// `path, start_line?` from a JSON schema's `properties` (`?` = optional).
fn argument_names(schema: &serde_json::Value) -> String {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|names| names.iter().filter_map(|n| n.as_str()).collect())
        .unwrap_or_default();
    let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else {
        return String::new();
    };
    properties
        .keys()
        .map(|name| if required.contains(&name.as_str()) { name.clone() } else { format!("{name}?") })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Up to and including the first `. ` (or the whole text).
fn first_sentence(text: &str) -> &str {
    let text = text.trim();
    match text.find(". ") {
        Some(end) => &text[..=end],
        None => text,
    }
}

/// A `{"tool": ..., "arguments": ...}` reply naming one of `tools`, if the
/// whole reply is one (optionally inside a code fence).
fn parse_tool_call(reply: &str, tools: &[ToolSpec]) -> Option<(String, serde_json::Value)> {
    parse_json_call(reply).filter(|(name, _)| tools.iter().any(|tool| tool.name == *name))
}

/// A reply that is only a `{"name"|"tool": ..., "arguments": ...}` object
/// (optionally fenced), whatever the name: a Qwen reply naming no tool is
/// still meant as a call, and the agent's unknown-tool error lists the
/// real ones.
fn parse_json_call(reply: &str) -> Option<(String, serde_json::Value)> {
    let trimmed = reply.trim();
    let start = trimmed.find('{')?;
    let end = trimmed.rfind('}').filter(|&end| end > start)?;
    let outside = format!("{}{}", &trimmed[..start], &trimmed[end + 1..]);
    if !outside.trim().trim_matches('`').trim_start_matches("json").trim().is_empty() {
        return None;
    }
    // The first object counts: the 0.5B often writes the same call two or three times.
    let value = lenient_json(&trimmed[start..=end]).ok()?;
    let name = value.get("tool").or_else(|| value.get("name"))?.as_str()?;
    let arguments = match value.get("arguments").or_else(|| value.get("parameters")) {
        Some(serde_json::Value::String(text)) => serde_json::from_str(text).ok()?,
        Some(args @ serde_json::Value::Object(_)) => args.clone(),
        None => serde_json::json!({}),
        Some(_) => return None,
    };
    Some((name.to_string(), arguments))
}

fn argmax(logits: &[f32]) -> u32 {
    logits
        .iter()
        .enumerate()
        .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best })
        .0 as u32
}

/// While tools are offered, a reply that starts like JSON is held back until
/// it is known whether it is a tool call.
#[derive(PartialEq)]
enum ToolReplyMode {
    Undecided,
    Text,
    MaybeToolCall,
}

#[async_trait]
impl Provider for EmbeddedProvider {
    fn name(&self) -> &str {
        "embedded"
    }

    fn model(&self) -> &str {
        &self.model_name
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_event: EventSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, ProviderError> {
        let max_new = self.max_new_tokens(request.max_tokens, DEFAULT_CHAT_MAX_TOKENS);
        let prompt = self.build_prompt(request, max_new)?;
        let params = generation_params(max_new, request.temperature, request.stop.clone(), Vec::new());
        let has_tools = !request.tools.is_empty();
        let family = self.engine.family;
        let mut mode = if has_tools { ToolReplyMode::Undecided } else { ToolReplyMode::Text };
        let mut held = String::new();
        let generated = self
            .generate(prompt, params, cancel, &mut |text| {
                if mode == ToolReplyMode::Text {
                    on_event(StreamEvent::TextDelta(text));
                    return true;
                }
                held.push_str(&text);
                let start = held.trim_start();
                if mode == ToolReplyMode::Undecided && !start.is_empty() {
                    let opens_call = match family {
                        PromptFamily::SmolLm => start.starts_with('{') || start.starts_with('`'),
                        PromptFamily::Qwen => start.starts_with(['<', '{', '`']),
                    };
                    mode = if opens_call { ToolReplyMode::MaybeToolCall } else { ToolReplyMode::Text };
                }
                if mode == ToolReplyMode::Text {
                    on_event(StreamEvent::TextDelta(std::mem::take(&mut held)));
                }
                true
            })
            .await?;
        let usage =
            Usage { input_tokens: generated.prompt_tokens as u64, output_tokens: generated.output_tokens as u64 };

        let parsed_calls = if !has_tools || generated.stop_reason == StopReason::Cancelled {
            None
        } else if family == PromptFamily::Qwen {
            // The 0.5B sometimes writes the call as a bare (fenced) JSON
            // object instead of a <tool_call> block: accepted too.
            Some(parse_qwen_tool_calls(&generated.text)).filter(|(_, calls)| !calls.is_empty()).or_else(|| {
                // An unknown name counts only in the call shape, so a JSON answer is not taken for a call.
                parse_json_call(&generated.text)
                    .filter(|(name, _)| {
                        request.tools.iter().any(|tool| tool.name == *name) || generated.text.contains("\"arguments\"")
                    })
                    .map(|call| (String::new(), vec![call]))
            })
        } else {
            parse_tool_call(&generated.text, &request.tools).map(|call| (String::new(), vec![call]))
        };
        if let Some((text, calls)) = parsed_calls {
            let calls: Vec<ToolCall> = calls
                .into_iter()
                .enumerate()
                .map(|(index, (name, arguments))| ToolCall {
                    id: format!("call_{}_{index}", generated.output_tokens),
                    name,
                    arguments,
                })
                .collect();
            for call in &calls {
                on_event(StreamEvent::ToolCallStarted { id: call.id.clone(), name: call.name.clone() });
                on_event(StreamEvent::ToolCall(call.clone()));
            }
            let message = Message { tool_calls: calls, ..Message::assistant(text) };
            return Ok(ChatResponse { message, usage, stop_reason: StopReason::ToolUse });
        }
        if !held.is_empty() {
            on_event(StreamEvent::TextDelta(held));
        }
        Ok(ChatResponse { message: Message::assistant(generated.text), usage, stop_reason: generated.stop_reason })
    }

    async fn complete(&self, request: &FimRequest, cancel: &CancellationToken) -> Result<Completion, ProviderError> {
        self.complete_streaming(request, cancel, &mut |_| true).await
    }

    async fn complete_streaming(
        &self,
        request: &FimRequest,
        cancel: &CancellationToken,
        on_text: TextSink<'_>,
    ) -> Result<Completion, ProviderError> {
        let max_new = self.max_new_tokens(request.max_tokens, DEFAULT_FIM_MAX_TOKENS);
        if !self.has_native_fim() {
            let prompt_ids = self.build_prompt(&fim_prompt::chat_hole_filler(request), max_new)?;
            let params = generation_params(max_new, request.temperature, request.stop.clone(), Vec::new());
            // The reply repeats the blanks the prompt's prefix was healed of:
            // the listener sees the text after them.
            let blanks = fim_prompt::healed_blanks(request);
            let mut reply = String::new();
            let mut passed = 0usize;
            let generated = self
                .generate(prompt_ids.clone(), params, cancel, &mut |piece| {
                    reply.push_str(&piece);
                    if passed == 0 {
                        if blanks.starts_with(reply.as_str()) && reply.len() < blanks.len() {
                            return true;
                        }
                        passed = if reply.starts_with(blanks) { blanks.len() } else { 0 };
                    }
                    let fresh = &reply[passed..];
                    passed = reply.len();
                    fresh.is_empty() || on_text(fresh)
                })
                .await?;
            return Ok(Completion {
                text: fim_prompt::extract_completion(&generated.text, request),
                usage: Usage {
                    input_tokens: generated.prompt_tokens as u64,
                    output_tokens: generated.output_tokens as u64,
                },
                stop_reason: generated.stop_reason,
                prompt: Some(self.engine.tokenizer.decode(&prompt_ids)?),
            });
        }
        let (text, stops) = fim::build_prompt(FimFamily::Qwen, request);
        let tokenizer = &self.engine.tokenizer;
        let prompt = tokenizer.encode(&text)?;
        let room = self.config().context_length.saturating_sub(max_new);
        if prompt.len() > room {
            return Err(EmbeddedError::ContextFull { capacity: self.config().context_length }.into());
        }
        // Control tokens never reach the decoded text: they end generation
        // by id; the request's own stops stay text.
        let (end_tokens, text_stops): (Vec<Option<u32>>, Vec<String>) = stops
            .into_iter()
            .map(|stop| {
                match tokenizer.token_id(&stop).filter(|_| FimFamily::Qwen.stop_tokens().contains(&stop.as_str())) {
                    Some(id) => (Some(id), String::new()),
                    None => (None, stop),
                }
            })
            .unzip();
        let stop = text_stops.into_iter().filter(|stop| !stop.is_empty()).collect();
        let params = generation_params(max_new, request.temperature, stop, end_tokens.into_iter().flatten().collect());
        let generated = self.generate(prompt, params, cancel, &mut |piece| on_text(&piece)).await?;
        Ok(Completion {
            text: generated.text,
            usage: Usage {
                input_tokens: generated.prompt_tokens as u64,
                output_tokens: generated.output_tokens as u64,
            },
            stop_reason: generated.stop_reason,
            prompt: Some(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> ToolSpec {
        ToolSpec { name: name.into(), description: "reads a file".into(), parameters: serde_json::json!({}) }
    }

    #[test]
    fn tool_call_reply_is_parsed() {
        let tools = [tool("read_file")];
        let parsed =
            parse_tool_call("```json\n{\"tool\": \"read_file\", \"arguments\": {\"path\": \"a.rs\"}}\n```", &tools);
        assert_eq!(parsed, Some(("read_file".into(), serde_json::json!({"path": "a.rs"}))));
        assert_eq!(parse_tool_call("{\"tool\": \"other\", \"arguments\": {}}", &tools), None);
        assert_eq!(parse_tool_call("Sure! {\"tool\": \"read_file\"} is what I'd call", &tools), None);
        assert_eq!(parse_tool_call("} backwards {", &tools), None);
    }

    #[test]
    fn tools_are_described_by_argument_names_and_first_sentence() {
        let tools = [ToolSpec {
            name: "read_file".into(),
            description: "Read a file of the repository. Long files are cut; ask for a line range.".into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {"path": {"type": "string"}, "start_line": {"type": "integer"}},
                "required": ["path"]
            }),
        }];
        let text = describe_tools(&tools);
        assert!(text.ends_with("\n- read_file(path, start_line?): Read a file of the repository.\n"), "{text}");
        assert_eq!(argument_names(&serde_json::json!({"type": "object"})), "");
    }

    #[test]
    fn chatml_keeps_roles_in_order() {
        let chatml = render_chatml(
            &[Message::system("Be brief."), Message::user("Hi"), Message::assistant("Hello")],
            &[],
            PromptFamily::SmolLm,
        );
        assert_eq!(chatml.system, "<|im_start|>system\nBe brief.<|im_end|>\n");
        assert_eq!(chatml.turns, "<|im_start|>user\nHi<|im_end|>\n");
        assert_eq!(chatml.open_turn, "<|im_start|>assistant\nHello");
        let chatml = render_chatml(
            &[Message::user("Hi"), Message::assistant("Hello"), Message::user("Bye")],
            &[],
            PromptFamily::SmolLm,
        );
        assert!(chatml.system.contains("SmolLM"));
        assert_eq!(
            chatml.turns,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
        );
        assert_eq!(chatml.open_turn, ASSISTANT_HEADER);
    }

    #[test]
    fn qwen_tool_calls_are_parsed_and_bad_ones_say_why() {
        let reply =
            "Let me look.\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.rs\"}}\n</tool_call>\n\
                     <tool_call>\n{\"name\": \"grep\", \"arguments\": \"{\\\"pattern\\\": \\\"fn\\\"}\"}\n</tool_call>";
        let (text, calls) = parse_qwen_tool_calls(reply);
        assert_eq!(text, "Let me look.");
        assert_eq!(
            calls,
            vec![
                ("read_file".to_string(), serde_json::json!({"path": "a.rs"})),
                ("grep".to_string(), serde_json::json!({"pattern": "fn"})),
            ]
        );
        for bad in [
            "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": </tool_call>",
            "<tool_call>{\"arguments\": {}}</tool_call>",
            "<tool_call>{\"name\": \"read_file\", \"arguments\": [1]}</tool_call>",
            "<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\"",
        ] {
            let (_, calls) = parse_qwen_tool_calls(bad);
            assert_eq!(calls.len(), 1, "{bad}");
            assert!(calls[0].0.starts_with("(malformed <tool_call>:"), "{bad}: {}", calls[0].0);
        }
        assert!(parse_qwen_tool_calls("no calls here").1.is_empty());
        let repeated =
            "{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}} {\"name\": \"read_file\", \"arguments\": {}}";
        assert_eq!(parse_json_call(repeated), Some(("read_file".into(), serde_json::json!({"path": "a"}))));
        let fenced = "```json\n{\"name\": \"perimeter\", \"arguments\": {\"w\": 5.0}}\n```";
        assert_eq!(parse_json_call(fenced), Some(("perimeter".into(), serde_json::json!({"w": 5.0}))));
    }

    #[test]
    fn qwen_chatml_follows_its_template() {
        let call =
            ToolCall { id: "c1".into(), name: "read_file".into(), arguments: serde_json::json!({"path": "a.rs"}) };
        let messages = [
            Message::user("Read a.rs"),
            Message { tool_calls: vec![call], ..Message::assistant("") },
            Message::tool_result("c1", "fn a() {}"),
            Message::user("Thanks"),
        ];
        let chatml = render_chatml(&messages, &[tool("read_file")], PromptFamily::Qwen);
        assert!(chatml.system.starts_with(&format!("<|im_start|>system\n{QWEN_SYSTEM_PROMPT}\n\n# Tools\n")));
        assert!(chatml.system.contains(
            "<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"read_file\", \"description\": \"reads a file\", \"parameters\": {}}}\n</tools>"
        ));
        assert!(chatml.system.ends_with("</tool_call><|im_end|>\n"));
        assert_eq!(
            chatml.turns,
            "<|im_start|>user\nRead a.rs<|im_end|>\n\
             <|im_start|>assistant\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.rs\"}}\n</tool_call><|im_end|>\n\
             <|im_start|>user\n<tool_response>\nfn a() {}\n</tool_response><|im_end|>\n\
             <|im_start|>user\nThanks<|im_end|>\n"
        );
    }

    #[test]
    fn qwen_tool_calls_small_models_garble_are_repaired_or_refused_with_a_reason() {
        let parsed = |reply: &str| parse_qwen_tool_calls(reply).1;
        // Raw newlines inside a string (multi-line code in an edit).
        let multi_line = "<tool_call>\n{\"name\": \"edit_file\", \"arguments\": {\"path\": \"a.py\", \
                          \"search\": \"def f():\n    pass\", \"replace\": \"def f():\n\treturn 1\"}}\n</tool_call>";
        assert_eq!(
            parsed(multi_line),
            vec![(
                "edit_file".to_string(),
                serde_json::json!({"path": "a.py", "search": "def f():\n    pass", "replace": "def f():\n\treturn 1"})
            )]
        );
        // One closing brace too many.
        assert_eq!(
            parsed("<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.py\"}}}</tool_call>"),
            vec![("read_file".to_string(), serde_json::json!({"path": "a.py"}))]
        );
        // The shape of the <tools> list copied into the call.
        let wrapped = "<tool_call>{\"type\": \"function\", \"function\": {\"name\": \"list_dir\", \
                       \"arguments\": {\"path\": \".\"}}}</tool_call>";
        assert_eq!(parsed(wrapped), vec![("list_dir".to_string(), serde_json::json!({"path": "."}))]);
        // Not repairable: a call whose name says why, never a panic.
        for bad in
            ["<tool_call>read_file(\"a.py\")</tool_call>", "<tool_call>{\"name\": \"x\", </tool_call>", "<tool_call>"]
        {
            let calls = parsed(bad);
            assert_eq!(calls.len(), 1, "{bad}");
            assert!(calls[0].0.starts_with("(malformed <tool_call>: not valid JSON"), "{bad}: {}", calls[0].0);
        }
        assert_eq!(escape_controls_in_strings("{\"a\": \"x\\\"\ny\"}\n"), "{\"a\": \"x\\\"\\ny\"}\n");
    }

    /// A whole agent conversation rendered for Qwen, compared with what its
    /// GGUF `tokenizer.chat_template` produces for the same messages and
    /// tools (system turn with `# Tools` and `<tools>` signatures, calls as
    /// `<tool_call>`, consecutive results in one user turn as `<tool_response>`).
    #[test]
    fn qwen_conversation_with_tools_renders_as_the_chat_template_does() {
        let read_file = ToolSpec {
            name: "read_file".into(),
            description: "Read a text file.".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        };
        let grep = ToolSpec {
            name: "grep".into(),
            description: "Search file contents.".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"]}),
        };
        let call = |id: &str, name: &str, arguments| ToolCall { id: id.into(), name: name.into(), arguments };
        let messages = [
            Message::system("You are Sextant."),
            Message::user("Where is slugify?"),
            Message {
                tool_calls: vec![
                    call("c1", "grep", serde_json::json!({"pattern": "def slugify"})),
                    call("c2", "read_file", serde_json::json!({"path": "utils.py"})),
                ],
                ..Message::assistant("Searching.")
            },
            Message::tool_result("c1", "utils.py:4: def slugify(text):"),
            Message::tool_result("c2", "1 def slugify(text):"),
            Message::assistant("In utils.py."),
            Message::user("Thanks"),
        ];
        let chatml = render_chatml(&messages, &[read_file, grep], PromptFamily::Qwen);
        let rendered = format!("{}{}{}", chatml.system, chatml.turns, chatml.open_turn);
        expect_test::expect![[r#"
            <|im_start|>system
            You are Sextant.

            # Tools

            You may call one or more functions to assist with the user query.

            You are provided with function signatures within <tools></tools> XML tags:
            <tools>
            {"type": "function", "function": {"name": "read_file", "description": "Read a text file.", "parameters": {"properties": {"path": {"type": "string"}}, "required": ["path"], "type": "object"}}}
            {"type": "function", "function": {"name": "grep", "description": "Search file contents.", "parameters": {"properties": {"pattern": {"type": "string"}}, "required": ["pattern"], "type": "object"}}}
            </tools>

            For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
            <tool_call>
            {"name": <function-name>, "arguments": <args-json-object>}
            </tool_call><|im_end|>
            <|im_start|>user
            Where is slugify?<|im_end|>
            <|im_start|>assistant
            Searching.
            <tool_call>
            {"name": "grep", "arguments": {"pattern": "def slugify"}}
            </tool_call>
            <tool_call>
            {"name": "read_file", "arguments": {"path": "utils.py"}}
            </tool_call><|im_end|>
            <|im_start|>user
            <tool_response>
            utils.py:4: def slugify(text):
            </tool_response>
            <tool_response>
            1 def slugify(text):
            </tool_response><|im_end|>
            <|im_start|>assistant
            In utils.py.<|im_end|>
            <|im_start|>user
            Thanks<|im_end|>
            <|im_start|>assistant
        "#]].assert_eq(&rendered);
    }

    #[test]
    fn model_names_resolve_to_catalogue_files() {
        let smol = resolve_model_path("smollm2-135m").expect("known id");
        assert!(smol.ends_with("SmolLM2-135M-Instruct.Q4_1.gguf"), "{}", smol.display());
        let err = resolve_model_path("gpt-4o-mini").expect_err("not an embedded model");
        assert!(err.to_string().contains("qwen2.5-coder-0.5b"), "{err}");
        let message = missing_model_message(&smol);
        assert!(message.contains("sextant models pull smollm2-135m"), "{message}");
    }

    #[test]
    fn missing_model_message_says_what_to_run() {
        assert!(missing_model_message(Path::new("/nowhere/m.gguf")).contains("sextant models pull"));
    }
}
