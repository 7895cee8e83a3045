//! The HTTP providers against the scripted server on 127.0.0.1: every
//! scenario runs for each wire protocol (OpenAI, Anthropic, Ollama).

use std::time::{Duration, Instant};

use expect_test::{expect, Expect};
use scripted_provider::{Script, ScriptedServer, ScriptedToolCall, Turn};
use serde_json::{json, Value};
use sextant_core::providers::anthropic::AnthropicProvider;
use sextant_core::providers::fim::FimMode;
use sextant_core::providers::http::{HttpSettings, RemoteOptions};
use sextant_core::providers::ollama::OllamaProvider;
use sextant_core::providers::openai::OpenAiProvider;
use sextant_core::providers::{
    ChatRequest, ChatResponse, FimRequest, Message, Provider, ProviderError, StopReason, StreamEvent, ToolCall,
    ToolSpec, Usage,
};
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-test-secret-key";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Wire {
    OpenAi,
    Anthropic,
    Ollama,
}

const ALL: [Wire; 3] = [Wire::OpenAi, Wire::Anthropic, Wire::Ollama];

fn options(wire: Wire, server: &ScriptedServer, model: &str) -> RemoteOptions {
    let base_url = match wire {
        Wire::OpenAi => format!("{}/v1", server.url()),
        Wire::Anthropic | Wire::Ollama => server.url(),
    };
    let mut options = RemoteOptions::new(model, base_url);
    options.api_key = Some(KEY.to_string());
    options.http = HttpSettings {
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_secs(5),
    };
    options
}

fn provider(wire: Wire, options: RemoteOptions) -> Box<dyn Provider> {
    let built: Result<Box<dyn Provider>, ProviderError> = match wire {
        Wire::OpenAi => OpenAiProvider::new(options).map(|p| Box::new(p) as Box<dyn Provider>),
        Wire::Anthropic => AnthropicProvider::new(options).map(|p| Box::new(p) as Box<dyn Provider>),
        Wire::Ollama => OllamaProvider::new(options).map(|p| Box::new(p) as Box<dyn Provider>),
    };
    built.expect("provider builds")
}

async fn start(turns: Vec<Turn>) -> ScriptedServer {
    ScriptedServer::start(Script::new(turns)).await.expect("scripted server starts")
}

async fn chat(
    provider: &dyn Provider,
    request: &ChatRequest,
) -> (Result<ChatResponse, ProviderError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let result = provider.chat(request, &mut |event| events.push(event), &CancellationToken::new()).await;
    (result, events)
}

fn question() -> ChatRequest {
    ChatRequest { messages: vec![Message::user("Say hello")], ..ChatRequest::default() }
}

fn text_deltas(events: &[StreamEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(text) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// Asserts the API key went out in the protocol's header, without ever
/// printing the key on failure.
fn assert_key_sent(wire: Wire, request: &scripted_provider::RecordedRequest) {
    let ok = match wire {
        Wire::OpenAi | Wire::Ollama => request.header("authorization") == Some(&format!("Bearer {KEY}")),
        Wire::Anthropic => {
            request.header("x-api-key") == Some(KEY) && request.header("anthropic-version") == Some("2023-06-01")
        }
    };
    assert!(ok, "{wire:?}: API key header missing or wrong");
}

#[tokio::test]
async fn streams_text_and_reports_wire_usage() {
    for wire in ALL {
        let server = start(vec![Turn::text(["Hel", "lo", " world"]).with_usage(7, 3)]).await;
        let provider = provider(wire, options(wire, &server, "m1"));
        let (result, events) = chat(provider.as_ref(), &question()).await;
        let response = result.unwrap_or_else(|e| panic!("{wire:?}: {e}"));
        assert_eq!(response.message.content, "Hello world", "{wire:?}");
        assert_eq!(text_deltas(&events), vec!["Hel", "lo", " world"], "{wire:?}");
        assert_eq!(response.usage, Usage { input_tokens: 7, output_tokens: 3 }, "{wire:?}");
        assert_eq!(response.stop_reason, StopReason::EndTurn, "{wire:?}");
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "{wire:?}");
        assert_eq!(requests[0].body["stream"], json!(true), "{wire:?}");
        assert_key_sent(wire, &requests[0]);
    }
}

#[tokio::test]
async fn non_streaming_replies() {
    for wire in ALL {
        let server = start(vec![Turn::text(["Hel", "lo"]).with_usage(5, 2)]).await;
        let mut options = options(wire, &server, "m1");
        options.stream = false;
        let provider = provider(wire, options);
        let (result, events) = chat(provider.as_ref(), &question()).await;
        let response = result.unwrap_or_else(|e| panic!("{wire:?}: {e}"));
        assert_eq!(response.message.content, "Hello", "{wire:?}");
        assert_eq!(text_deltas(&events), vec!["Hello"], "{wire:?}");
        assert_eq!(response.usage, Usage { input_tokens: 5, output_tokens: 2 }, "{wire:?}");
        assert_eq!(server.requests()[0].body["stream"], json!(false), "{wire:?}");
    }
}

#[tokio::test]
async fn usage_is_estimated_when_the_wire_has_none() {
    for wire in ALL {
        let server = start(vec![Turn::text(["A fairly long answer ", "with several words in it"])]).await;
        let provider = provider(wire, options(wire, &server, "m1"));
        let (result, _) = chat(provider.as_ref(), &question()).await;
        let usage = result.unwrap_or_else(|e| panic!("{wire:?}: {e}")).usage;
        assert!(usage.input_tokens > 0 && usage.output_tokens > 0, "{wire:?}: {usage:?}");
    }
}

#[tokio::test]
async fn tool_calls_with_arguments_split_across_chunks() {
    for wire in ALL {
        let mut turn = Turn::text(["Let me look."]);
        turn.tool_calls = vec![
            ScriptedToolCall {
                id: "call_a".into(),
                name: "read_file".into(),
                arguments: json!({"path": "src/lib.rs", "lines": [1, 20]}),
                chunks: Some(4),
            },
            ScriptedToolCall { id: "call_b".into(), name: "list_dir".into(), arguments: json!({}), chunks: Some(1) },
        ];
        let server = start(vec![turn.with_usage(20, 10)]).await;
        let provider = provider(wire, options(wire, &server, "m1"));
        let (result, events) = chat(provider.as_ref(), &question()).await;
        let response = result.unwrap_or_else(|e| panic!("{wire:?}: {e}"));
        // Ollama's wire format carries no call ids: the client numbers them.
        let (id_a, id_b) = if wire == Wire::Ollama { ("call_0", "call_1") } else { ("call_a", "call_b") };
        let expected = vec![
            ToolCall {
                id: id_a.into(),
                name: "read_file".into(),
                arguments: json!({"path": "src/lib.rs", "lines": [1, 20]}),
            },
            ToolCall { id: id_b.into(), name: "list_dir".into(), arguments: json!({}) },
        ];
        assert_eq!(response.message.tool_calls, expected, "{wire:?}");
        assert_eq!(response.message.content, "Let me look.", "{wire:?}");
        assert_eq!(response.stop_reason, StopReason::ToolUse, "{wire:?}");
        let started: Vec<_> =
            events.iter().filter(|e| matches!(e, StreamEvent::ToolCallStarted { .. })).cloned().collect();
        assert_eq!(
            started,
            vec![
                StreamEvent::ToolCallStarted { id: id_a.into(), name: "read_file".into() },
                StreamEvent::ToolCallStarted { id: id_b.into(), name: "list_dir".into() },
            ],
            "{wire:?}"
        );
        let finished: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCall(call) => Some(call.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(finished, expected, "{wire:?}");
    }
}

#[tokio::test]
async fn retries_429_honouring_retry_after() {
    for wire in ALL {
        let server = start(vec![Turn::status_retry_after(429, "1"), Turn::text(["ok"])]).await;
        let provider = provider(wire, options(wire, &server, "m1"));
        let started = Instant::now();
        let (result, _) = chat(provider.as_ref(), &question()).await;
        assert_eq!(result.unwrap_or_else(|e| panic!("{wire:?}: {e}")).message.content, "ok");
        assert_eq!(server.requests().len(), 2, "{wire:?}");
        // A lower bound only: the client must have waited the server's 1 s.
        assert!(started.elapsed() >= Duration::from_millis(950), "{wire:?}: did not honour Retry-After");
    }
}

#[tokio::test]
async fn retries_500_with_backoff() {
    for wire in ALL {
        let server = start(vec![Turn::status(500), Turn::status(503), Turn::text(["fine"])]).await;
        let provider = provider(wire, options(wire, &server, "m1"));
        let (result, _) = chat(provider.as_ref(), &question()).await;
        assert_eq!(result.unwrap_or_else(|e| panic!("{wire:?}: {e}")).message.content, "fine");
        assert_eq!(server.requests().len(), 3, "{wire:?}");
    }
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    for wire in ALL {
        let server = start(vec![
            Turn::status_retry_after(429, "0"),
            Turn::status_retry_after(429, "0"),
            Turn::status_retry_after(429, "0"),
            Turn::text(["never reached"]),
        ])
        .await;
        let provider = provider(wire, options(wire, &server, "m1"));
        let (result, _) = chat(provider.as_ref(), &question()).await;
        match result {
            Err(ProviderError::RateLimited { attempts, .. }) => assert_eq!(attempts, 3, "{wire:?}"),
            other => panic!("{wire:?}: expected RateLimited, got {other:?}"),
        }
        assert_eq!(server.requests().len(), 3, "{wire:?}: 1 attempt + max_retries 2");
    }
}

#[tokio::test]
async fn unauthorized_is_an_auth_error_without_retry() {
    for wire in ALL {
        let server = start(vec![Turn::status(401), Turn::text(["never reached"])]).await;
        let provider = provider(wire, options(wire, &server, "m1"));
        let (result, _) = chat(provider.as_ref(), &question()).await;
        let err = result.expect_err("401 must fail");
        assert!(matches!(err, ProviderError::Auth { .. }), "{wire:?}: {err:?}");
        assert!(!err.to_string().contains(KEY), "{wire:?}: the key leaked into the error");
        assert_eq!(server.requests().len(), 1, "{wire:?}");
    }
}

#[tokio::test]
async fn slow_server_times_out() {
    for wire in ALL {
        let server = start(vec![Turn::text(["late"]).with_delay(Duration::from_secs(5))]).await;
        let mut options = options(wire, &server, "m1");
        options.http.timeout = Duration::from_millis(300);
        let provider = provider(wire, options);
        let (result, _) = chat(provider.as_ref(), &question()).await;
        assert!(matches!(result, Err(ProviderError::Timeout { .. })), "{wire:?}: {result:?}");
        assert_eq!(server.requests().len(), 1, "{wire:?}: timeouts are not retried");
    }
}

#[tokio::test]
async fn stalled_stream_times_out() {
    for wire in ALL {
        let server = start(vec![Turn::text(["a", "b"]).with_chunk_delay(Duration::from_secs(5))]).await;
        let mut options = options(wire, &server, "m1");
        options.http.timeout = Duration::from_millis(500);
        let provider = provider(wire, options);
        let (result, _) = chat(provider.as_ref(), &question()).await;
        assert!(matches!(result, Err(ProviderError::Timeout { .. })), "{wire:?}: {result:?}");
    }
}

#[tokio::test]
async fn truncated_stream_is_a_bad_response() {
    for wire in ALL {
        for stream in [true, false] {
            let server = start(vec![Turn::truncated(["one ", "two ", "three ", "four"])]).await;
            let mut options = options(wire, &server, "m1");
            options.stream = stream;
            let provider = provider(wire, options);
            let (result, _) = chat(provider.as_ref(), &question()).await;
            assert!(matches!(result, Err(ProviderError::BadResponse { .. })), "{wire:?} stream={stream}: {result:?}");
        }
    }
}

#[tokio::test]
async fn garbage_body_is_a_bad_response() {
    for wire in ALL {
        for stream in [true, false] {
            let server = start(vec![Turn::garbage("<html>502 Bad Gateway</html>")]).await;
            let mut options = options(wire, &server, "m1");
            options.stream = stream;
            let provider = provider(wire, options);
            let (result, _) = chat(provider.as_ref(), &question()).await;
            assert!(matches!(result, Err(ProviderError::BadResponse { .. })), "{wire:?} stream={stream}: {result:?}");
        }
    }
}

#[tokio::test]
async fn errors_inside_a_stream_are_reported() {
    for wire in ALL {
        for stream in [true, false] {
            let server = start(vec![Turn::stream_error("overloaded_error", "the model is busy")]).await;
            let mut options = options(wire, &server, "m1");
            options.stream = stream;
            let provider = provider(wire, options);
            let (result, _) = chat(provider.as_ref(), &question()).await;
            let err = result.expect_err("an in-stream error must fail the request");
            assert!(err.to_string().contains("the model is busy"), "{wire:?} stream={stream}: {err}");
        }
    }
}

#[tokio::test]
async fn cancellation_mid_stream_returns_promptly() {
    for wire in ALL {
        let chunks: Vec<String> = (0..30).map(|i| format!("chunk{i} ")).collect();
        let server = start(vec![Turn::text(chunks).with_chunk_delay(Duration::from_secs(1))]).await;
        let provider = provider(wire, options(wire, &server, "m1"));
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        let started = Instant::now();
        let mut seen = 0;
        let result = provider
            .chat(
                &question(),
                &mut |event| {
                    if matches!(event, StreamEvent::TextDelta(_)) {
                        seen += 1;
                        trigger.cancel();
                    }
                },
                &cancel,
            )
            .await;
        assert!(matches!(result, Err(ProviderError::Cancelled)), "{wire:?}: {result:?}");
        assert_eq!(seen, 1, "{wire:?}");
        // The script would run 30 s; returning well before proves the stream was dropped.
        assert!(started.elapsed() < Duration::from_secs(20), "{wire:?}: cancel was not prompt");
    }
}

#[tokio::test]
async fn cancellation_during_retry_wait() {
    let server = start(vec![Turn::status_retry_after(429, "30"), Turn::text(["late"])]).await;
    let mut options = options(Wire::OpenAi, &server, "m1");
    options.http.max_backoff = Duration::from_secs(60);
    let provider = provider(Wire::OpenAi, options);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        trigger.cancel();
    });
    let result = provider.chat(&question(), &mut |_| {}, &cancel).await;
    assert!(matches!(result, Err(ProviderError::Cancelled)), "{result:?}");
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let mut options = RemoteOptions::new("m1", format!("http://127.0.0.1:{port}/v1"));
    options.http.max_retries = 1;
    options.http.initial_backoff = Duration::from_millis(10);
    let provider = provider(Wire::OpenAi, options);
    let (result, _) = chat(provider.as_ref(), &question()).await;
    assert!(matches!(result, Err(ProviderError::Connect { .. })), "{result:?}");
}

/// A conversation exercising every message kind, for request-body snapshots.
fn full_conversation() -> ChatRequest {
    let call = ToolCall { id: "call_1".into(), name: "read_file".into(), arguments: json!({"path": "a.rs"}) };
    ChatRequest {
        messages: vec![
            Message::system("You are terse."),
            Message::user("What is in a.rs?"),
            Message { tool_calls: vec![call], ..Message::assistant("Reading it.") },
            Message::tool_result("call_1", "fn main() {}"),
            Message::user("Thanks. Summarise."),
        ],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "Read a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        }],
        max_tokens: Some(256),
        temperature: Some(0.0),
        stop: vec!["END".into()],
    }
}

async fn sent_body(wire: Wire) -> (String, Value) {
    let server = start(vec![Turn::text(["ok"])]).await;
    let provider = provider(wire, options(wire, &server, "model-x"));
    let (result, _) = chat(provider.as_ref(), &full_conversation()).await;
    result.unwrap_or_else(|e| panic!("{wire:?}: {e}"));
    let request = server.requests().remove(0);
    assert_key_sent(wire, &request);
    (request.path, request.body)
}

fn check_body(path: &str, body: &Value, expected: Expect) {
    let pretty = serde_json::to_string_pretty(body).expect("JSON value serialises");
    expected.assert_eq(&format!("POST {path}\n{pretty}"));
}

#[tokio::test]
async fn openai_request_body() {
    let (path, body) = sent_body(Wire::OpenAi).await;
    check_body(
        &path,
        &body,
        expect![[r#"
            POST /v1/chat/completions
            {
              "max_tokens": 256,
              "messages": [
                {
                  "content": "You are terse.",
                  "role": "system"
                },
                {
                  "content": "What is in a.rs?",
                  "role": "user"
                },
                {
                  "content": "Reading it.",
                  "role": "assistant",
                  "tool_calls": [
                    {
                      "function": {
                        "arguments": "{\"path\":\"a.rs\"}",
                        "name": "read_file"
                      },
                      "id": "call_1",
                      "type": "function"
                    }
                  ]
                },
                {
                  "content": "fn main() {}",
                  "role": "tool",
                  "tool_call_id": "call_1"
                },
                {
                  "content": "Thanks. Summarise.",
                  "role": "user"
                }
              ],
              "model": "model-x",
              "stop": [
                "END"
              ],
              "stream": true,
              "stream_options": {
                "include_usage": true
              },
              "temperature": 0.0,
              "tools": [
                {
                  "function": {
                    "description": "Read a file",
                    "name": "read_file",
                    "parameters": {
                      "properties": {
                        "path": {
                          "type": "string"
                        }
                      },
                      "required": [
                        "path"
                      ],
                      "type": "object"
                    }
                  },
                  "type": "function"
                }
              ]
            }"#]],
    );
}

#[tokio::test]
async fn anthropic_request_body() {
    let (path, body) = sent_body(Wire::Anthropic).await;
    check_body(
        &path,
        &body,
        expect![[r#"
            POST /v1/messages
            {
              "max_tokens": 256,
              "messages": [
                {
                  "content": "What is in a.rs?",
                  "role": "user"
                },
                {
                  "content": [
                    {
                      "text": "Reading it.",
                      "type": "text"
                    },
                    {
                      "id": "call_1",
                      "input": {
                        "path": "a.rs"
                      },
                      "name": "read_file",
                      "type": "tool_use"
                    }
                  ],
                  "role": "assistant"
                },
                {
                  "content": [
                    {
                      "content": "fn main() {}",
                      "tool_use_id": "call_1",
                      "type": "tool_result"
                    },
                    {
                      "text": "Thanks. Summarise.",
                      "type": "text"
                    }
                  ],
                  "role": "user"
                }
              ],
              "model": "model-x",
              "stop_sequences": [
                "END"
              ],
              "stream": true,
              "system": "You are terse.",
              "temperature": 0.0,
              "tools": [
                {
                  "description": "Read a file",
                  "input_schema": {
                    "properties": {
                      "path": {
                        "type": "string"
                      }
                    },
                    "required": [
                      "path"
                    ],
                    "type": "object"
                  },
                  "name": "read_file"
                }
              ]
            }"#]],
    );
}

#[tokio::test]
async fn ollama_request_body() {
    let (path, body) = sent_body(Wire::Ollama).await;
    check_body(
        &path,
        &body,
        expect![[r#"
            POST /api/chat
            {
              "messages": [
                {
                  "content": "You are terse.",
                  "role": "system"
                },
                {
                  "content": "What is in a.rs?",
                  "role": "user"
                },
                {
                  "content": "Reading it.",
                  "role": "assistant",
                  "tool_calls": [
                    {
                      "function": {
                        "arguments": {
                          "path": "a.rs"
                        },
                        "name": "read_file"
                      }
                    }
                  ]
                },
                {
                  "content": "fn main() {}",
                  "role": "tool",
                  "tool_name": "read_file"
                },
                {
                  "content": "Thanks. Summarise.",
                  "role": "user"
                }
              ],
              "model": "model-x",
              "options": {
                "num_predict": 256,
                "stop": [
                  "END"
                ],
                "temperature": 0.0
              },
              "stream": true,
              "tools": [
                {
                  "function": {
                    "description": "Read a file",
                    "name": "read_file",
                    "parameters": {
                      "properties": {
                        "path": {
                          "type": "string"
                        }
                      },
                      "required": [
                        "path"
                      ],
                      "type": "object"
                    }
                  },
                  "type": "function"
                }
              ]
            }"#]],
    );
}

fn fim_request() -> FimRequest {
    FimRequest {
        prefix: "def add(a, b):\n    ".into(),
        suffix: "\n\nprint(add(1, 2))\n".into(),
        path: Some("calc.py".into()),
        max_tokens: Some(32),
        stop: vec!["\n\n".into()],
        ..FimRequest::default()
    }
}

async fn complete(provider: &dyn Provider) -> Result<sextant_core::providers::Completion, ProviderError> {
    provider.complete(&fim_request(), &CancellationToken::new()).await
}

#[tokio::test]
async fn openai_fim_uses_the_family_template() {
    let server = start(vec![Turn::text(["return a + b", "\n\nextra"]).with_usage(30, 6)]).await;
    let provider = provider(Wire::OpenAi, options(Wire::OpenAi, &server, "qwen2.5-coder-1.5b"));
    let completion = complete(provider.as_ref()).await.expect("completion");
    assert_eq!(completion.text, "return a + b", "cut at the request's stop sequence");
    assert_eq!(completion.usage, Usage { input_tokens: 30, output_tokens: 6 });
    let request = server.requests().remove(0);
    assert_eq!(request.path, "/v1/completions");
    assert_eq!(
        request.body["prompt"],
        json!("<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>")
    );
    assert!(request.body["stop"].as_array().is_some_and(|s| s.contains(&json!("<|fim_prefix|>"))));
    assert_eq!(request.body["max_tokens"], json!(32));
}

#[tokio::test]
async fn openai_fim_with_suffix_parameter() {
    let server = start(vec![Turn::text(["return a + b"])]).await;
    let mut options = options(Wire::OpenAi, &server, "some-model");
    options.fim_mode = FimMode::Suffix;
    let provider = provider(Wire::OpenAi, options);
    let completion = complete(provider.as_ref()).await.expect("completion");
    assert_eq!(completion.text, "return a + b");
    let body = &server.requests()[0].body;
    assert_eq!(body["prompt"], json!("def add(a, b):\n    "));
    assert_eq!(body["suffix"], json!("\n\nprint(add(1, 2))\n"));
}

#[tokio::test]
async fn chat_only_models_fill_the_hole_through_chat() {
    for wire in [Wire::OpenAi, Wire::Anthropic] {
        let server = start(vec![Turn::text(["```python\n", "return a + b\n", "```"])]).await;
        let provider = provider(wire, options(wire, &server, "gpt-4o-mini"));
        let completion = complete(provider.as_ref()).await.unwrap_or_else(|e| panic!("{wire:?}: {e}"));
        assert_eq!(completion.text, "return a + b", "{wire:?}");
        let request = server.requests().remove(0);
        assert!(request.raw_body.contains("<HOLE>"), "{wire:?}: the hole marker was not sent");
    }
}

#[tokio::test]
async fn ollama_fim_sends_suffix_to_generate() {
    let server = start(vec![Turn::text(["return a + b"]).with_usage(12, 4)]).await;
    let provider = provider(Wire::Ollama, options(Wire::Ollama, &server, "qwen2.5-coder:1.5b"));
    let completion = complete(provider.as_ref()).await.expect("completion");
    assert_eq!(completion.text, "return a + b");
    assert_eq!(completion.usage, Usage { input_tokens: 12, output_tokens: 4 });
    let request = server.requests().remove(0);
    assert_eq!(request.path, "/api/generate");
    assert_eq!(request.body["prompt"], json!("def add(a, b):\n    "));
    assert_eq!(request.body["suffix"], json!("\n\nprint(add(1, 2))\n"));
    assert_eq!(request.body["stream"], json!(false));
    assert_eq!(request.body["options"]["num_predict"], json!(32));
}

#[tokio::test]
async fn ollama_fim_raw_template_mode() {
    let server = start(vec![Turn::text(["return a + b"])]).await;
    let mut options = options(Wire::Ollama, &server, "starcoder2:3b");
    options.fim_mode = FimMode::Template;
    let provider = provider(Wire::Ollama, options);
    complete(provider.as_ref()).await.expect("completion");
    let body = &server.requests()[0].body;
    assert_eq!(body["raw"], json!(true));
    assert_eq!(body["prompt"], json!("<fim_prefix>def add(a, b):\n    <fim_suffix>\n\nprint(add(1, 2))\n<fim_middle>"));
}

#[tokio::test]
async fn fim_errors_are_mapped_too() {
    let server = start(vec![Turn::status(401)]).await;
    let ollama = provider(Wire::Ollama, options(Wire::Ollama, &server, "qwen2.5-coder:1.5b"));
    assert!(matches!(complete(ollama.as_ref()).await, Err(ProviderError::Auth { .. })));
    let server = start(vec![Turn::garbage("nope")]).await;
    let openai = provider(Wire::OpenAi, options(Wire::OpenAi, &server, "deepseek-coder-1.3b"));
    assert!(matches!(complete(openai.as_ref()).await, Err(ProviderError::BadResponse { .. })));
}

#[test]
fn options_debug_redacts_the_key() {
    let mut options = RemoteOptions::new("m", "http://127.0.0.1:1");
    options.api_key = Some(KEY.into());
    let printed = format!("{options:?}");
    assert!(!printed.contains(KEY) && printed.contains("<redacted>"));
}
