//! `Provider::complete_streaming` over the wire against the scripted server
//! on 127.0.0.1: text arrives piece by piece, and a sink that says "stop"
//! ends the request early — the client hangs up, so the server writes only a
//! few of the reply's frames (asserted on frames written, never on timing).

use std::time::Duration;

use scripted_provider::{Script, ScriptedServer, Turn};
use serde_json::json;
use sextant_core::completion::{decide, Stopper};
use sextant_core::providers::anthropic::AnthropicProvider;
use sextant_core::providers::fim::FimMode;
use sextant_core::providers::http::{HttpSettings, RemoteOptions};
use sextant_core::providers::ollama::OllamaProvider;
use sextant_core::providers::openai::OpenAiProvider;
use sextant_core::providers::{FimRequest, Provider, ProviderError, StopReason};
use tokio_util::sync::CancellationToken;

/// 20 pieces: a first line that fills the hole, then 19 more lines of noise.
fn long_reply() -> Vec<String> {
    let mut pieces = vec!["    b = a * 2\n".to_string()];
    pieces.extend((1..20).map(|i| format!("    noise_{i} = {i}\n")));
    pieces
}

fn options(base_url: String, model: &str) -> RemoteOptions {
    let mut options = RemoteOptions::new(model, base_url);
    options.http = HttpSettings {
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        max_retries: 0,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_secs(1),
    };
    options
}

/// A HumanEval-like hole: the prefix ends at the start of a line, the suffix
/// is the next line.
fn request() -> FimRequest {
    FimRequest {
        prefix: "def f(a):\n".into(),
        suffix: "    return b\n".into(),
        max_tokens: Some(256),
        temperature: Some(0.0),
        ..FimRequest::default()
    }
}

/// Streams `request` into a stopper for the hole; returns what it kept,
/// the completion, and the pieces the sink saw.
async fn stream_through_stopper(
    provider: &dyn Provider,
) -> Result<(String, sextant_core::providers::Completion, usize), ProviderError> {
    let request = request();
    let hole = decide(&request.prefix, &request.suffix, None);
    let mut stopper = Stopper::new(&hole);
    let mut pieces = 0;
    let mut sink = |piece: &str| {
        pieces += 1;
        stopper.push(piece)
    };
    let completion = provider.complete_streaming(&request, &CancellationToken::new(), &mut sink).await?;
    stopper.finish();
    Ok((stopper.kept().to_string(), completion, pieces))
}

async fn server_with_long_reply() -> ScriptedServer {
    let turn = Turn::text(long_reply()).with_chunk_delay(Duration::from_millis(40));
    ScriptedServer::start(Script::new(vec![turn])).await.expect("scripted server starts")
}

/// The request's frames written before the client hung up, and in all.
fn frames_of_first(server: &ScriptedServer) -> (usize, usize) {
    let frames = server.frames();
    let first = frames.first().copied().unwrap_or_default();
    (first.sent, first.total)
}

#[tokio::test]
async fn openai_legacy_completion_streams_and_stops_after_the_holes_line() {
    let server = server_with_long_reply().await;
    let provider =
        OpenAiProvider::new(options(format!("{}/v1", server.url()), "qwen2.5-coder-0.5b")).expect("provider");
    let (kept, completion, pieces) = stream_through_stopper(&provider).await.expect("completion");
    assert_eq!(kept, "    b = a * 2\n");
    assert_eq!(completion.stop_reason, StopReason::StopSequence);
    // The stopper may need the start of the next line (a deeper `.method()`
    // line would continue the hole), and one read can carry one frame or
    // several: the sink says stop at the first or the second piece.
    assert!((1..=2).contains(&pieces), "the sink stopped at once, not after {pieces} pieces");
    let sent_prompt = completion.prompt.expect("the sent prompt is reported");
    let request = server.requests().remove(0);
    assert_eq!(request.path, "/v1/completions");
    assert_eq!(request.body["stream"], json!(true));
    assert_eq!(request.body["prompt"], json!(sent_prompt), "Completion::prompt is exactly what was sent");
    // Give the server time to notice the hang-up on its next writes.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (sent, total) = frames_of_first(&server);
    assert_eq!(total, 22, "20 text chunks, the final chunk and [DONE]");
    assert!(sent <= 6, "the client hung up early: {sent} of {total} frames were written");
}

#[tokio::test]
async fn openai_streamed_completion_without_stopping_returns_everything() {
    let server =
        ScriptedServer::start(Script::new(vec![Turn::text(["a", "b<|endof", "text|>c"])])).await.expect("starts");
    let provider =
        OpenAiProvider::new(options(format!("{}/v1", server.url()), "qwen2.5-coder-0.5b")).expect("provider");
    let mut seen = Vec::new();
    let mut sink = |piece: &str| {
        seen.push(piece.to_string());
        true
    };
    let completion = provider.complete_streaming(&request(), &CancellationToken::new(), &mut sink).await.expect("ok");
    assert_eq!(completion.text, "ab", "cut at the family's stop token, split across chunks");
    assert_eq!(seen.concat(), "ab");
    assert_ne!(completion.stop_reason, StopReason::StopSequence);
}

#[tokio::test]
async fn ollama_generate_streams_and_stops_after_the_holes_line() {
    for mode in [FimMode::Suffix, FimMode::Template] {
        let server = server_with_long_reply().await;
        let mut options = options(server.url(), "qwen2.5-coder:0.5b");
        options.fim_mode = mode;
        let provider = OllamaProvider::new(options).expect("provider");
        let (kept, completion, _) = stream_through_stopper(&provider).await.expect("completion");
        assert_eq!(kept, "    b = a * 2\n", "{mode:?}");
        assert_eq!(completion.stop_reason, StopReason::StopSequence, "{mode:?}");
        let request = server.requests().remove(0);
        assert_eq!(request.path, "/api/generate");
        assert_eq!(request.body["stream"], json!(true), "{mode:?}");
        if mode == FimMode::Template {
            assert_eq!(request.body["prompt"], json!(completion.prompt.expect("prompt")), "{mode:?}");
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (sent, total) = frames_of_first(&server);
        assert_eq!(total, 21, "{mode:?}: 20 chunks and the final object");
        assert!(sent <= 6, "{mode:?}: the client hung up early: {sent} of {total} frames were written");
    }
}

#[tokio::test]
async fn chat_hole_filling_streams_and_stops_for_openai_and_anthropic() {
    for wire in ["openai", "anthropic"] {
        let mut reply = vec!["```python\n".to_string()];
        reply.extend(long_reply());
        reply.push("```\n".into());
        let turn = Turn::text(reply).with_chunk_delay(Duration::from_millis(40));
        let server = ScriptedServer::start(Script::new(vec![turn])).await.expect("starts");
        let provider: Box<dyn Provider> = match wire {
            "openai" => {
                Box::new(OpenAiProvider::new(options(format!("{}/v1", server.url()), "gpt-4o-mini")).expect("p"))
            }
            _ => {
                let mut options = options(server.url(), "claude-haiku");
                options.api_key = Some("test-key".into());
                Box::new(AnthropicProvider::new(options).expect("p"))
            }
        };
        let (kept, completion, _) = stream_through_stopper(provider.as_ref()).await.expect("completion");
        assert_eq!(kept, "    b = a * 2\n", "{wire}: the fence is not part of the code");
        assert_eq!(completion.stop_reason, StopReason::StopSequence, "{wire}");
        assert!(completion.prompt.is_some_and(|p| p.contains("<HOLE>")), "{wire}");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (sent, total) = frames_of_first(&server);
        assert!(total >= 22, "{wire}: {total}");
        assert!(sent <= 8, "{wire}: the client hung up early: {sent} of {total} frames were written");
    }
}
