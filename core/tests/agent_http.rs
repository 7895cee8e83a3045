//! The agent against the OpenAI-compatible provider talking real HTTP to the
//! scripted provider on 127.0.0.1: tool calls streamed over SSE, results sent
//! back on the wire, usage summed, session stored.

mod agent_support;

use std::sync::Arc;

use agent_support::{Fixture, Recorder};
use scripted_provider::{Script, ScriptedServer, Turn};
use serde_json::{json, Value};
use sextant_core::agent::{Agent, AgentError, AgentEvent, AgentOptions, Permissions, RunOutcome};
use sextant_core::providers::http::RemoteOptions;
use sextant_core::providers::openai::OpenAiProvider;
use sextant_core::sessions::SessionStore;
use sextant_core::tools::{Isolation, Workspace};
use tokio_util::sync::CancellationToken;

fn uncached() -> AgentOptions {
    let mut options = AgentOptions::default();
    options.tool_limits.repo_map_cache = false;
    options
}

#[tokio::test]
async fn scripted_tool_calls_over_http_change_files() {
    let fixture = Fixture::new("basic");
    let script = Script::new(vec![
        Turn::tool_call("c1", "grep", json!({"pattern": "fn multiply"})).with_usage(50, 5),
        Turn::tool_call(
            "c2",
            "edit_file",
            json!({"path": "src/lib.rs", "search": "    a * b\n", "replace": "    a.saturating_mul(b)\n"}),
        )
        .with_usage(60, 6),
        Turn::tool_call("c3", "write_file", json!({"path": "CHANGELOG.md", "content": "- multiply saturates\n"}))
            .with_usage(70, 7),
        Turn::tool_call("c4", "run_shell", json!({"command": "grep -c saturating src/lib.rs"})).with_usage(80, 8),
        Turn::text(["multiply ", "now ", "saturates."]).with_usage(90, 9),
    ]);
    let server = ScriptedServer::start(script).await.expect("server");
    let provider =
        OpenAiProvider::new(RemoteOptions::new("scripted", format!("{}/v1", server.url()))).expect("provider");
    let store = Arc::new(SessionStore::open(&fixture.dir.path().join("data/sessions.db")).expect("store"));
    let workspace = Workspace::new(fixture.workspace()).expect("workspace");
    let mut agent = Agent::new(Arc::new(provider), workspace, Permissions::headless(true, true), Some(store.clone()))
        .with_options(uncached())
        .with_shell_isolation(Isolation::None)
        .allow_unjailed_shell(true);
    let mut recorder = Recorder::default();
    let summary = agent.run("make multiply saturate", &mut recorder, &CancellationToken::new()).await.expect("run");

    assert_eq!(summary.outcome, RunOutcome::Completed);
    assert_eq!(summary.final_text, "multiply now saturates.");
    assert_eq!(recorder.text(), "multiply now saturates.");
    assert_eq!((summary.usage.input_tokens, summary.usage.output_tokens), (350, 35));
    assert!(fixture.read("src/lib.rs").contains("a.saturating_mul(b)"));
    assert_eq!(fixture.read("CHANGELOG.md"), "- multiply saturates\n");

    // What went over the wire: tools advertised, tool results echoed with their ids.
    let requests = server.requests();
    assert_eq!(requests.len(), 5);
    let tools: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(tools.contains(&"edit_file") && tools.contains(&"run_shell"), "{tools:?}");
    let last_messages = requests[4].body["messages"].as_array().expect("messages");
    let tool_messages: Vec<&Value> = last_messages.iter().filter(|m| m["role"] == "tool").collect();
    assert_eq!(tool_messages.len(), 4);
    assert_eq!(tool_messages[0]["tool_call_id"], "c1");
    assert!(tool_messages[0]["content"].as_str().unwrap_or("").contains("src/lib.rs:9: pub fn multiply"));
    assert_eq!(tool_messages[1]["content"], "edited src/lib.rs");
    assert!(tool_messages[3]["content"].as_str().unwrap_or("").contains("stdout:\n1\n"), "{}", tool_messages[3]);

    let finished: Vec<&str> = recorder
        .events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::ToolCallFinished { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(finished, ["grep", "edit_file", "write_file", "run_shell"]);

    let id = summary.session_id.expect("session");
    let session = store.find_session(&id).expect("stored");
    assert_eq!((session.input_tokens, session.output_tokens), (350, 35));
    assert_eq!(store.search("saturates", 5).expect("search").first().map(|h| h.session_id.clone()), Some(id));
}

#[tokio::test]
async fn provider_errors_end_the_run_with_an_error() {
    let fixture = Fixture::new("basic");
    let server = ScriptedServer::start(Script::new(vec![Turn::status(401)])).await.expect("server");
    let provider =
        OpenAiProvider::new(RemoteOptions::new("scripted", format!("{}/v1", server.url()))).expect("provider");
    let workspace = Workspace::new(fixture.workspace()).expect("workspace");
    let mut agent =
        Agent::new(Arc::new(provider), workspace, Permissions::headless(false, false), None).with_options(uncached());
    let err = agent.run("hi", &mut Recorder::default(), &CancellationToken::new()).await.expect_err("401 fails");
    assert!(err.to_string().contains("authentication failed"), "{err}");
    let AgentError::Provider { partial, .. } = err else { panic!("expected a provider error") };
    assert_eq!((partial.outcome, partial.steps), (RunOutcome::Failed, 1));
}
