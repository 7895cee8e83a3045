//! Shared helpers for the agent tests: a fixture workspace copied to a
//! temporary directory, an in-process scripted provider and a recording observer.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;
use sextant_core::agent::{AgentEvent, AgentObserver, PermissionAnswer, PermissionRequest};
use sextant_core::providers::{
    ChatRequest, ChatResponse, Completion, EventSink, FimRequest, Message, Provider, ProviderError, Role, StopReason,
    StreamEvent, ToolCall, Usage,
};
use tokio_util::sync::CancellationToken;

/// Copies `tests/fixtures/agent/<name>` into a fresh temp dir. The temp dir
/// holds `workspace/` (the copy) and `outside/` (a sibling the agent must not touch).
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/agent").join(name);
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(&source, &dir.path().join("workspace"));
        std::fs::create_dir_all(dir.path().join("outside")).expect("mkdir outside");
        std::fs::write(dir.path().join("outside/secret.txt"), "top secret\n").expect("write secret");
        Fixture { dir }
    }
    pub fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }
    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }
    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.workspace().join(relative)).expect("read workspace file")
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// One scripted model turn.
#[derive(Clone, Debug)]
pub enum Turn {
    Text(String),
    Tools(Vec<(String, Value)>),
}

pub fn text(t: &str) -> Turn {
    Turn::Text(t.to_string())
}

pub fn tool(name: &str, args: Value) -> Turn {
    Turn::Tools(vec![(name.to_string(), args)])
}

/// A provider that replays a script and records every request it gets.
pub struct ScriptedProvider {
    script: Mutex<std::collections::VecDeque<Turn>>,
    pub requests: Mutex<Vec<ChatRequest>>,
    counter: Mutex<usize>,
}

impl ScriptedProvider {
    pub fn new(turns: Vec<Turn>) -> Arc<Self> {
        Arc::new(ScriptedProvider {
            script: Mutex::new(turns.into()),
            requests: Mutex::new(Vec::new()),
            counter: Mutex::new(0),
        })
    }
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().expect("lock").clone()
    }
    /// The tool results (role Tool) the model was sent, in order.
    pub fn tool_results(&self) -> Vec<String> {
        let requests = self.requests();
        let Some(last) = requests.last() else { return Vec::new() };
        last.messages.iter().filter(|m| m.role == Role::Tool).map(|m| m.content.clone()).collect()
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn name(&self) -> &str {
        "scripted"
    }
    fn model(&self) -> &str {
        "scripted-model"
    }
    async fn chat(
        &self,
        request: &ChatRequest,
        on_event: EventSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, ProviderError> {
        if cancel.is_cancelled() {
            return Err(ProviderError::Cancelled);
        }
        self.requests.lock().expect("lock").push(request.clone());
        let turn = self.script.lock().expect("lock").pop_front();
        let usage = Usage { input_tokens: 100, output_tokens: 10 };
        match turn {
            None => {
                on_event(StreamEvent::TextDelta("script exhausted".into()));
                Ok(ChatResponse {
                    message: Message::assistant("script exhausted"),
                    usage,
                    stop_reason: StopReason::EndTurn,
                })
            }
            Some(Turn::Text(reply)) => {
                for piece in reply.split_inclusive(' ') {
                    on_event(StreamEvent::TextDelta(piece.to_string()));
                }
                Ok(ChatResponse { message: Message::assistant(reply), usage, stop_reason: StopReason::EndTurn })
            }
            Some(Turn::Tools(calls)) => {
                let mut message = Message::assistant("");
                for (name, arguments) in calls {
                    let mut counter = self.counter.lock().expect("lock");
                    *counter += 1;
                    let call = ToolCall { id: format!("call_{counter}"), name, arguments };
                    on_event(StreamEvent::ToolCall(call.clone()));
                    message.tool_calls.push(call);
                }
                Ok(ChatResponse { message, usage, stop_reason: StopReason::ToolUse })
            }
        }
    }
    async fn complete(&self, _request: &FimRequest, _cancel: &CancellationToken) -> Result<Completion, ProviderError> {
        Err(ProviderError::Config("the scripted test provider does not do FIM".into()))
    }
}

/// Records events; answers permission questions from a queue (default deny).
#[derive(Default)]
pub struct Recorder {
    pub events: Vec<AgentEvent>,
    pub answers: Vec<PermissionAnswer>,
    pub asked: Vec<PermissionRequest>,
}

impl Recorder {
    pub fn text(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| match e {
                AgentEvent::TextDelta { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

#[async_trait]
impl AgentObserver for Recorder {
    fn on_event(&mut self, event: AgentEvent) {
        self.events.push(event);
    }
    async fn ask_permission(&mut self, request: PermissionRequest) -> PermissionAnswer {
        self.asked.push(request);
        if self.answers.is_empty() {
            PermissionAnswer::Deny
        } else {
            self.answers.remove(0)
        }
    }
}
