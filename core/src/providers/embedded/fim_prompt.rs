//! Fill-in-the-middle for a chat model without FIM tokens: the user turn
//! shows the code after the cursor, and the assistant turn is pre-filled with
//! the code before it, so the model simply continues the file.

use crate::providers::{ChatRequest, FimRequest, Message};

const FENCE: &str = "```";
/// Trailing blanks are cut from the pre-filled prefix: BPE merges a space
/// with the word after it, so a prompt ending in a lone space token derails
/// the model. The reply then starts with the blanks, which are removed again.
const HEALED: &[char] = &[' ', '\t'];
/// Only code near the cursor matters to a small model, and a short prompt
/// keeps completion latency low.
const PREFIX_CHARS: usize = 1500;
const SUFFIX_CHARS: usize = 500;

fn tail(text: &str, max_chars: usize) -> &str {
    let skip = text.chars().count().saturating_sub(max_chars);
    match text.char_indices().nth(skip) {
        Some((at, _)) if skip > 0 => &text[at..],
        _ => text,
    }
}

fn head(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

pub fn chat_hole_filler(request: &FimRequest) -> ChatRequest {
    let system = "You are a code completion engine. Continue the code exactly where it stops. \
                  Write only code, no explanations.";
    let mut user = String::new();
    for (path, contents) in &request.context_files {
        user.push_str(&format!("Related file {path}:\n{FENCE}\n{}\n{FENCE}\n\n", tail(contents, PREFIX_CHARS / 2)));
    }
    match &request.path {
        Some(path) => user.push_str(&format!("Continue the file {path} from where it stops.")),
        None => user.push_str("Continue the code from where it stops."),
    }
    let suffix = head(&request.suffix, SUFFIX_CHARS);
    if !suffix.trim().is_empty() {
        user.push_str(&format!(" The code after the gap is:\n{FENCE}\n{suffix}\n{FENCE}"));
    }
    let prefill = format!("{FENCE}\n{}", tail(&request.prefix, PREFIX_CHARS).trim_end_matches(HEALED));
    let mut stop = request.stop.clone();
    stop.push(FENCE.to_string());
    ChatRequest {
        messages: vec![Message::system(system), Message::user(user), Message::assistant(prefill)],
        tools: Vec::new(),
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        stop,
    }
}

/// The blanks cut from the end of the pre-filled prefix, which the reply
/// starts with.
pub fn healed_blanks(request: &FimRequest) -> &str {
    &request.prefix[request.prefix.trim_end_matches(HEALED).len()..]
}

/// The code to insert: the model's continuation, cut where it starts to
/// repeat the code after the cursor.
pub fn extract_completion(reply: &str, request: &FimRequest) -> String {
    let blanks = healed_blanks(request);
    let mut text = reply.strip_prefix(blanks).unwrap_or(reply).to_string();
    if let Some(at) = text.find(FENCE) {
        text.truncate(at);
    }
    let suffix_line = request.suffix.lines().map(str::trim).find(|line| !line.is_empty());
    if let Some(line) = suffix_line {
        if let Some(at) = text.find(line) {
            text.truncate(at);
        }
    }
    if request.suffix.starts_with('\n') || request.suffix.is_empty() {
        let kept = text.trim_end().len();
        text.truncate(kept);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prefix: &str, suffix: &str) -> FimRequest {
        FimRequest { prefix: prefix.into(), suffix: suffix.into(), ..Default::default() }
    }

    #[test]
    fn continuation_stops_before_the_suffix() {
        let req = request("fn add(a: i32, b: i32) -> i32 {\n    ", "\n}\n");
        assert_eq!(extract_completion("    a + b\n}\n\nfn main() {}", &req), "a + b");
        assert_eq!(extract_completion("    a + b\n```", &req), "a + b");
    }

    #[test]
    fn prompt_prefills_the_prefix() {
        let chat = chat_hole_filler(&request("let x = ", ";\nprint(x)"));
        assert!(chat.messages[1].content.contains(";\nprint(x)"));
        assert_eq!(chat.messages[2].content, "```\nlet x =");
        assert!(chat.stop.contains(&"```".to_string()));
    }
}
