//! Fill-in-the-middle prompt templates, chosen by model family, plus a chat
//! "fill the hole" fallback for models without FIM tokens.
//!
//! Pure functions: a [`FimRequest`] in, a prompt (and stop sequences) out.
//!
//! Invariant: every template's stop list contains the family's own control
//! tokens, so a model that starts a new FIM block is cut off there instead of
//! leaking special tokens into the editor.

use serde::{Deserialize, Serialize};

use super::{ChatRequest, FimRequest, Message};

/// Model families with known FIM tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FimFamily {
    /// StarCoder / StarCoder2 / StarCoderBase: `<fim_prefix>…<fim_suffix>…<fim_middle>`.
    StarCoder,
    /// CodeLlama: `<PRE> … <SUF>… <MID>`.
    CodeLlama,
    /// DeepSeek-Coder: `<｜fim▁begin｜>…<｜fim▁hole｜>…<｜fim▁end｜>`.
    DeepSeek,
    /// Qwen2.5-Coder: `<|fim_prefix|>…` with repo-level `<|repo_name|>` / `<|file_sep|>`.
    Qwen,
    /// Codestral: `[SUFFIX]…[PREFIX]…`.
    Codestral,
}

impl FimFamily {
    /// Recognises the family from a model name such as `qwen2.5-coder:1.5b`,
    /// `bigcode/starcoder2-3b` or `deepseek-coder-6.7b-base`.
    pub fn detect(model: &str) -> Option<FimFamily> {
        let name = model.to_ascii_lowercase().replace(['_', ' '], "-");
        if name.contains("starcoder") {
            Some(FimFamily::StarCoder)
        } else if name.contains("codellama") || name.contains("code-llama") {
            Some(FimFamily::CodeLlama)
        } else if name.contains("deepseek-coder") || name.contains("deepseekcoder") {
            Some(FimFamily::DeepSeek)
        } else if name.contains("qwen") && name.contains("coder") {
            Some(FimFamily::Qwen)
        } else if name.contains("codestral") {
            Some(FimFamily::Codestral)
        } else {
            None
        }
    }

    /// The family's control tokens that must end a completion.
    pub fn stop_tokens(self) -> &'static [&'static str] {
        match self {
            FimFamily::StarCoder => &["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>", "<|endoftext|>"],
            FimFamily::CodeLlama => &["<EOT>", "<PRE>", "<SUF>", "<MID>"],
            FimFamily::DeepSeek => {
                &["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "<|EOT|>", "<｜end▁of▁sentence｜>"]
            }
            FimFamily::Qwen => &[
                "<|endoftext|>",
                "<|fim_prefix|>",
                "<|fim_suffix|>",
                "<|fim_middle|>",
                "<|fim_pad|>",
                "<|repo_name|>",
                "<|file_sep|>",
                "<|im_end|>",
            ],
            FimFamily::Codestral => &["[INST]", "[/INST]", "[PREFIX]", "[SUFFIX]", "[MIDDLE]", "</s>"],
        }
    }
}

/// How a provider answers a FIM request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FimMode {
    /// `template` when the model family is known, else the provider's natural
    /// choice (`suffix` for Ollama, `chat` for OpenAI-compatible and Anthropic).
    #[default]
    Auto,
    /// Send prefix and `suffix` separately and let the server apply the template.
    Suffix,
    /// Build the family's raw FIM prompt here and send it as a plain completion.
    Template,
    /// Ask a chat model to fill a marked hole.
    Chat,
}

/// Repo name used in Qwen's repo-level prompt (the request carries none).
const QWEN_REPO_NAME: &str = "workspace";

/// The raw FIM prompt for `family` and the stop sequences to send with it
/// (the family's control tokens followed by the request's own stops).
pub fn build_prompt(family: FimFamily, request: &FimRequest) -> (String, Vec<String>) {
    let FimRequest { prefix, suffix, .. } = request;
    let prompt = match family {
        FimFamily::StarCoder => format!("<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>"),
        FimFamily::CodeLlama => format!("<PRE> {prefix} <SUF>{suffix} <MID>"),
        FimFamily::DeepSeek => format!("<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>"),
        FimFamily::Qwen => qwen_prompt(request),
        FimFamily::Codestral => format!("[SUFFIX]{suffix}[PREFIX]{prefix}"),
    };
    let mut stops: Vec<String> = family.stop_tokens().iter().map(|s| s.to_string()).collect();
    for stop in &request.stop {
        if !stops.contains(stop) {
            stops.push(stop.clone());
        }
    }
    (prompt, stops)
}

/// Qwen2.5-Coder: plain FIM without context files; the repo-level format
/// (`<|repo_name|>`, one `<|file_sep|>` per file, current file last) with them.
fn qwen_prompt(request: &FimRequest) -> String {
    let fim = format!("<|fim_prefix|>{}<|fim_suffix|>{}<|fim_middle|>", request.prefix, request.suffix);
    if request.context_files.is_empty() {
        return fim;
    }
    let mut prompt = format!("<|repo_name|>{QWEN_REPO_NAME}\n");
    for (path, contents) in &request.context_files {
        prompt.push_str(&format!("<|file_sep|>{path}\n{contents}"));
        if !contents.ends_with('\n') {
            prompt.push('\n');
        }
    }
    let current = request.path.as_deref().unwrap_or("current_file");
    prompt.push_str(&format!("<|file_sep|>{current}\n{fim}"));
    prompt
}

/// The marker a chat model is asked to replace.
pub const HOLE: &str = "<HOLE>";

const HOLE_FILLER_SYSTEM: &str = "You are a code completion engine. The user shows a file with exactly one \
<HOLE> marker. Reply with only the code that replaces <HOLE>: no explanation, no markdown fences, and do not \
repeat code that is already before or after the marker. Match the surrounding indentation. If nothing belongs \
there, reply with nothing.";

/// A chat request asking a chat-only model to fill the hole between prefix
/// and suffix. Pair it with [`extract_completion`] on the reply.
pub fn chat_hole_filler(request: &FimRequest) -> ChatRequest {
    let mut user = String::new();
    for (path, contents) in &request.context_files {
        user.push_str(&format!("Context file `{path}`:\n```\n{contents}\n```\n\n"));
    }
    match &request.path {
        Some(path) => user.push_str(&format!("Fill the {HOLE} in `{path}`:\n")),
        None => user.push_str(&format!("Fill the {HOLE}:\n")),
    }
    user.push_str(&format!("```\n{}{HOLE}{}\n```", request.prefix, request.suffix));
    ChatRequest {
        messages: vec![Message::system(HOLE_FILLER_SYSTEM), Message::user(user)],
        tools: Vec::new(),
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        stop: request.stop.clone(),
    }
}

/// A chat request as plain text, one `[role]` header per message: what a
/// chat model was shown, for `showLastPrompt`.
pub fn render_chat(request: &ChatRequest) -> String {
    request
        .messages
        .iter()
        .map(|message| format!("[{}]\n{}", format!("{:?}", message.role).to_lowercase(), message.content))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The code in a chat model's hole-filling reply: the body of the first
/// fenced block if there is one (an unterminated fence runs to the end),
/// otherwise the reply itself; any echoed `<HOLE>` marker is removed.
pub fn extract_completion(reply: &str) -> String {
    let code = match reply.find("```") {
        Some(open) => {
            let after_fence = &reply[open + 3..];
            // Skip the info string (`rust`, `python`, …) up to the end of the line.
            let body = match after_fence.find('\n') {
                Some(newline) => &after_fence[newline + 1..],
                None => "",
            };
            match body.find("```") {
                Some(close) => body[..close].strip_suffix('\n').unwrap_or(&body[..close]),
                None => body,
            }
        }
        None => reply,
    };
    code.replace(HOLE, "")
}

/// [`extract_completion`] applied while a chat reply streams in: each push
/// returns the code that became certain (a reply that may still turn out to
/// open a fence, a possible closing fence and a partial `<HOLE>` marker are
/// held back until the next piece decides them).
#[derive(Debug, Default)]
pub struct HoleReplyStream {
    reply: String,
    passed: String,
}

impl HoleReplyStream {
    pub fn push(&mut self, piece: &str) -> String {
        self.reply.push_str(piece);
        let opening = self.reply.trim_start();
        if opening.len() < 3 && "```".starts_with(opening) {
            return String::new();
        }
        if let Some(fence) = self.reply.find("```") {
            // The info string is not known until its line ends.
            if !self.reply[fence + 3..].contains('\n') {
                return String::new();
            }
        }
        let code = extract_completion(&self.reply);
        let mut certain = code.len();
        // A last line that may be a closing fence, with the newline before it.
        let last_line_start = code.rfind('\n').map_or(0, |i| i + 1);
        let last_line = code[last_line_start..].trim_start();
        if last_line.len() < 3 && "```".starts_with(last_line) {
            certain = last_line_start.saturating_sub(1);
        }
        for len in 1..HOLE.len() {
            if code[..certain].ends_with(&HOLE[..len]) {
                certain -= len;
                break;
            }
        }
        let certain = &code[..certain];
        match certain.strip_prefix(self.passed.as_str()) {
            Some(new) if !new.is_empty() => {
                let new = new.to_string();
                self.passed.push_str(&new);
                new
            }
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{expect, Expect};

    use super::*;

    #[test]
    fn hole_reply_stream_passes_only_certain_code() {
        let mut stream = HoleReplyStream::default();
        let pieces = ["``", "`py", "thon\nx = ", "1\n", "y = 2", "\n`", "``\nDone."];
        let out: Vec<String> = pieces.iter().map(|p| stream.push(p)).collect();
        assert_eq!(out, vec!["", "", "x = ", "1", "\ny = 2", "", ""]);
        let mut plain = HoleReplyStream::default();
        let out: Vec<String> = ["a + ", "b<HO", "LE>", " + c"].iter().map(|p| plain.push(p)).collect();
        assert_eq!(out.concat(), "a + b + c");
        assert_eq!(extract_completion("a + b<HOLE> + c"), "a + b + c");
    }

    fn request() -> FimRequest {
        FimRequest {
            prefix: "fn add(a: i32, b: i32) -> i32 {\n    ".into(),
            suffix: "\n}\n".into(),
            path: Some("src/math.rs".into()),
            stop: vec!["\n\n".into()],
            ..FimRequest::default()
        }
    }

    fn check(family: FimFamily, request: &FimRequest, expected: Expect) {
        let (prompt, stops) = build_prompt(family, request);
        expected.assert_eq(&format!("{prompt}\n---- stops: {stops:?}"));
    }

    #[test]
    fn starcoder_template() {
        check(
            FimFamily::StarCoder,
            &request(),
            expect![[r#"
                <fim_prefix>fn add(a: i32, b: i32) -> i32 {
                    <fim_suffix>
                }
                <fim_middle>
                ---- stops: ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>", "<|endoftext|>", "\n\n"]"#]],
        );
    }

    #[test]
    fn codellama_template() {
        check(
            FimFamily::CodeLlama,
            &request(),
            expect![[r#"
                <PRE> fn add(a: i32, b: i32) -> i32 {
                     <SUF>
                }
                 <MID>
                ---- stops: ["<EOT>", "<PRE>", "<SUF>", "<MID>", "\n\n"]"#]],
        );
    }

    #[test]
    fn deepseek_template() {
        check(
            FimFamily::DeepSeek,
            &request(),
            expect![[r#"
                <｜fim▁begin｜>fn add(a: i32, b: i32) -> i32 {
                    <｜fim▁hole｜>
                }
                <｜fim▁end｜>
                ---- stops: ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", "<|EOT|>", "<｜end▁of▁sentence｜>", "\n\n"]"#]],
        );
    }

    #[test]
    fn qwen_template_without_context() {
        check(
            FimFamily::Qwen,
            &request(),
            expect![[r#"
                <|fim_prefix|>fn add(a: i32, b: i32) -> i32 {
                    <|fim_suffix|>
                }
                <|fim_middle|>
                ---- stops: ["<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<|im_end|>", "\n\n"]"#]],
        );
    }

    #[test]
    fn qwen_template_repo_level() {
        let mut request = request();
        request.context_files = vec![
            ("src/lib.rs".into(), "pub mod math;".into()),
            ("src/ops.rs".into(), "pub fn sub(a: i32, b: i32) -> i32 { a - b }\n".into()),
        ];
        check(
            FimFamily::Qwen,
            &request,
            expect![[r#"
                <|repo_name|>workspace
                <|file_sep|>src/lib.rs
                pub mod math;
                <|file_sep|>src/ops.rs
                pub fn sub(a: i32, b: i32) -> i32 { a - b }
                <|file_sep|>src/math.rs
                <|fim_prefix|>fn add(a: i32, b: i32) -> i32 {
                    <|fim_suffix|>
                }
                <|fim_middle|>
                ---- stops: ["<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<|im_end|>", "\n\n"]"#]],
        );
    }

    #[test]
    fn codestral_template() {
        check(
            FimFamily::Codestral,
            &request(),
            expect![[r#"
                [SUFFIX]
                }
                [PREFIX]fn add(a: i32, b: i32) -> i32 {
                    
                ---- stops: ["[INST]", "[/INST]", "[PREFIX]", "[SUFFIX]", "[MIDDLE]", "</s>", "\n\n"]"#]],
        );
    }

    #[test]
    fn family_detection_by_model_name() {
        let cases = [
            ("bigcode/starcoder2-3b", Some(FimFamily::StarCoder)),
            ("starcoderbase-1b", Some(FimFamily::StarCoder)),
            ("codellama:7b-code", Some(FimFamily::CodeLlama)),
            ("CodeLlama-13b-hf", Some(FimFamily::CodeLlama)),
            ("deepseek-coder:6.7b-base", Some(FimFamily::DeepSeek)),
            ("deepseek-ai/DeepSeek-Coder-V2-Lite-Base", Some(FimFamily::DeepSeek)),
            ("qwen2.5-coder:1.5b", Some(FimFamily::Qwen)),
            ("Qwen/Qwen2.5-Coder-7B", Some(FimFamily::Qwen)),
            ("codestral-latest", Some(FimFamily::Codestral)),
            ("gpt-4o-mini", None),
            ("qwen2.5:7b", None),
            ("SmolLM2-135M-Instruct", None),
        ];
        for (name, family) in cases {
            assert_eq!(FimFamily::detect(name), family, "{name}");
        }
    }

    #[test]
    fn chat_hole_filler_marks_the_hole() {
        let mut request = request();
        request.context_files = vec![("src/ops.rs".into(), "pub fn sub() {}".into())];
        let chat = chat_hole_filler(&request);
        assert_eq!(chat.messages.len(), 2);
        expect![[r#"
            Context file `src/ops.rs`:
            ```
            pub fn sub() {}
            ```

            Fill the <HOLE> in `src/math.rs`:
            ```
            fn add(a: i32, b: i32) -> i32 {
                <HOLE>
            }

            ```"#]]
        .assert_eq(&chat.messages[1].content);
    }

    #[test]
    fn extract_completion_strips_fences() {
        assert_eq!(extract_completion("a + b"), "a + b");
        assert_eq!(extract_completion("```rust\na + b\n```"), "a + b");
        assert_eq!(extract_completion("Here you go:\n```\nx = 1\ny = 2\n```\nDone."), "x = 1\ny = 2");
        assert_eq!(extract_completion("```python\nreturn x"), "return x");
        assert_eq!(extract_completion("a<HOLE> + b"), "a + b");
        assert_eq!(extract_completion(""), "");
    }
}
