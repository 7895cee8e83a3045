//! `workspace/executeCommand`: sextant.chat, sextant.explain, sextant.agent,
//! sextant.showLastPrompt and sextant.codeAction (code actions for clients
//! without `codeAction/resolve`).
//!
//! Model output streams into work-done progress reports (the text so far);
//! the result is shown (see `output`) and also returned as the response.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use sextant_core::agent::{Agent, AgentEvent, AgentObserver, Permission, Permissions};
use sextant_core::providers::{ChatRequest, Message, StreamEvent};
use sextant_core::repomap::MapRequest;
use sextant_core::tools::Workspace;
use tokio_util::sync::CancellationToken;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{ExecuteCommandParams, NumberOrString, Range, Url};
use tower_lsp::Client;

use crate::code_actions::{compute_edit, ActionData};
use crate::document::Clamp;
use crate::errors::{invalid_params, request_failed};
use crate::model;
use crate::output::show_result;
use crate::progress::Progress;
use crate::session::{lock, read, Session};

pub const COMMANDS: &[&str] =
    &["sextant.chat", "sextant.explain", "sextant.agent", "sextant.showLastPrompt", "sextant.codeAction"];

/// Longest progress message (the tail of the streamed text).
const PROGRESS_TEXT_LIMIT: usize = 1000;

#[derive(Debug, Deserialize)]
struct ChatArgs {
    prompt: String,
    #[serde(default)]
    uri: Option<Url>,
    #[serde(default)]
    range: Option<Range>,
}

#[derive(Debug, Deserialize)]
struct LocationArgs {
    uri: Url,
    range: Range,
}

#[derive(Debug, Deserialize)]
struct AgentArgs {
    task: String,
}

fn first_argument<T: serde::de::DeserializeOwned>(command: &str, arguments: &[Value]) -> jsonrpc::Result<T> {
    let argument = match arguments.first().cloned().unwrap_or(Value::Null) {
        // Some clients (YouCompleteMe) can only send strings: a JSON object
        // in a string, or the text itself for the commands that take one.
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(object @ Value::Object(_)) => object,
            _ => match command {
                "sextant.chat" => serde_json::json!({ "prompt": text }),
                "sextant.agent" => serde_json::json!({ "task": text }),
                _ => Value::String(text),
            },
        },
        other => other,
    };
    serde_json::from_value(argument).map_err(|e| invalid_params(format!("{command}: bad arguments: {e}")))
}

pub async fn execute(
    client: Client,
    session: Arc<Session>,
    params: ExecuteCommandParams,
) -> jsonrpc::Result<Option<Value>> {
    let token = params.work_done_progress_params.work_done_token;
    let arguments = params.arguments;
    match params.command.as_str() {
        "sextant.chat" => {
            let args: ChatArgs = first_argument("sextant.chat", &arguments)?;
            let messages = chat_messages(&session, &args.prompt, args.uri.as_ref(), args.range)?;
            let text = stream_chat(&client, &session, token, "Sextant chat", messages).await?;
            Ok(Some(Value::String(text)))
        }
        "sextant.explain" => {
            let args: LocationArgs = first_argument("sextant.explain", &arguments)?;
            let prompt = "Explain what this code does, how it fits into the project, and anything surprising.";
            let messages = chat_messages(&session, prompt, Some(&args.uri), Some(args.range))?;
            let text = stream_chat(&client, &session, token, "Sextant explain", messages).await?;
            Ok(Some(Value::String(text)))
        }
        "sextant.agent" => {
            let args: AgentArgs = first_argument("sextant.agent", &arguments)?;
            run_agent(&client, &session, token, &args.task).await.map(|text| Some(Value::String(text)))
        }
        "sextant.showLastPrompt" => {
            let markdown = last_prompt_markdown(&session);
            show_result(&client, &session, "Last completion prompt", &markdown).await;
            Ok(Some(Value::String(markdown)))
        }
        "sextant.codeAction" => {
            let data: ActionData = first_argument("sextant.codeAction", &arguments)?;
            // Asking a client that cannot apply edits would wait forever (ALE).
            if !session.client_flags().apply_edit {
                return Err(request_failed(
                    "this editor cannot apply workspace edits (workspace.applyEdit is false), so Sextant cannot make \
                     this change here; use sextant.chat to get the code instead",
                ));
            }
            let edit = compute_edit(&session, &data).await?;
            let applied = client
                .apply_edit(edit)
                .await
                .map_err(|e| request_failed(format!("workspace/applyEdit failed: {}", e.message)))?;
            if !applied.applied {
                return Err(request_failed(format!(
                    "the client did not apply the edit: {}",
                    applied.failure_reason.unwrap_or_default()
                )));
            }
            Ok(Some(Value::String("edit applied".into())))
        }
        other => Err(invalid_params(format!("unknown command {other}; known: {}", COMMANDS.join(", ")))),
    }
}

/// System prompt + repo map + the selected code (if any) + the user's prompt.
fn chat_messages(
    session: &Session,
    prompt: &str,
    uri: Option<&Url>,
    range: Option<Range>,
) -> jsonrpc::Result<Vec<Message>> {
    if prompt.trim().is_empty() {
        return Err(invalid_params("the prompt is empty"));
    }
    let path = uri.and_then(|uri| session.relative_path(uri));
    let rendered = read(&session.map).render(&MapRequest {
        focus_files: path.iter().cloned().collect(),
        mentioned_idents: Vec::new(),
        token_budget: 1024,
        include_focus_files: true,
    });
    let mut system =
        String::from("You are Sextant, a concise coding assistant working in the user's editor. Answer in Markdown.");
    if !rendered.text.is_empty() {
        system.push_str("\n\nRepository map (most relevant definitions):\n");
        system.push_str(&rendered.text);
    }
    let mut user = String::new();
    if let (Some(uri), Some(path)) = (uri, path.as_deref()) {
        let document = session.document(uri).ok_or_else(|| invalid_params(format!("{uri} is not open")))?;
        let selected = match range {
            Some(range) => {
                let chars = document.char_range(range, Clamp::Strict).map_err(|e| invalid_params(e.to_string()))?;
                document.slice_to_string(chars)
            }
            None => String::new(),
        };
        if selected.trim().is_empty() {
            user.push_str(&format!("(The user is editing {path}.)\n\n"));
        } else {
            user.push_str(&format!("Code from {path}:\n```\n{}\n```\n\n", selected.trim_end()));
        }
    }
    user.push_str(prompt);
    Ok(vec![Message::system(system), Message::user(user)])
}

fn tail_chars(text: &str, limit: usize) -> String {
    let count = text.chars().count();
    if count <= limit {
        text.to_string()
    } else {
        format!("…{}", text.chars().skip(count - limit).collect::<String>())
    }
}

/// Streams a chat answer into progress reports, shows and returns it.
async fn stream_chat(
    client: &Client,
    session: &Session,
    token: Option<NumberOrString>,
    title: &str,
    messages: Vec<Message>,
) -> jsonrpc::Result<String> {
    let provider = model::provider(session, sextant_core::config::Purpose::Chat).await?;
    let settings = session.settings();
    let progress = Progress::begin(client, session, token, title, false).await;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    let cancel = CancellationToken::new();
    let _guard = cancel.clone().drop_guard();
    let request = ChatRequest {
        messages,
        max_tokens: Some(settings.chat_max_tokens),
        temperature: Some(0.2),
        ..ChatRequest::default()
    };
    let timeout = Duration::from_millis(settings.chat_timeout_ms);
    let chat_cancel = cancel.clone();
    let chat = async move {
        let mut on_event = move |event: StreamEvent| {
            if let StreamEvent::TextDelta(text) = event {
                // The receiver only goes away when the request is being dropped.
                let _ = sender.send(text);
            }
        };
        tokio::time::timeout(timeout, provider.chat(&request, &mut on_event, &chat_cancel)).await
    };
    let report = async {
        let mut text = String::new();
        while let Some(delta) = receiver.recv().await {
            text.push_str(&delta);
            progress.report(tail_chars(&text, PROGRESS_TEXT_LIMIT), None).await;
        }
        text
    };
    let (result, streamed) = tokio::join!(chat, report);
    let text = match result {
        Err(_) => {
            progress.end("timed out").await;
            return Err(request_failed(format!("the model did not answer within {} s", timeout.as_secs())));
        }
        Ok(Err(error)) => {
            progress.end("failed").await;
            return Err(request_failed(format!("the model request failed: {error}")));
        }
        Ok(Ok(response)) if !response.message.content.is_empty() => response.message.content,
        Ok(Ok(_)) => streamed,
    };
    progress.end("done").await;
    show_result(client, session, title, &text).await;
    Ok(text)
}

/// Forwards agent events to progress reports.
struct ProgressObserver {
    sender: tokio::sync::mpsc::UnboundedSender<String>,
}

impl AgentObserver for ProgressObserver {
    fn on_event(&mut self, event: AgentEvent) {
        let line = match event {
            AgentEvent::TextDelta { text } => text,
            AgentEvent::ToolCallStarted { summary, name, .. } => format!("\n[{name}] {summary}\n"),
            AgentEvent::PermissionDenied { tool, reason, .. } => format!("\n[{tool} denied] {reason}\n"),
            AgentEvent::Warning { message } => format!("\n[warning] {message}\n"),
            _ => return,
        };
        let _ = self.sender.send(line);
    }
}

async fn run_agent(
    client: &Client,
    session: &Session,
    token: Option<NumberOrString>,
    task: &str,
) -> jsonrpc::Result<String> {
    let root = session.root().ok_or_else(|| request_failed("the agent needs a workspace folder"))?;
    let workspace = Workspace::new(&root).map_err(|e| request_failed(format!("cannot open the workspace: {e}")))?;
    let provider = model::provider(session, sextant_core::config::Purpose::Chat).await?;
    let settings = session.settings();
    let grant = |allowed: bool| if allowed { Permission::Allow } else { Permission::Deny };
    let permissions =
        Permissions { edits: grant(settings.agent.allow_edits), shell: grant(settings.agent.allow_shell) };
    let mut agent = Agent::new(provider, workspace, permissions, None)
        .allow_unjailed_shell(settings.agent.dangerously_allow_unjailed_shell);
    agent.set_max_steps(settings.agent.max_steps);
    let progress = Progress::begin(client, session, token, "Sextant agent", false).await;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    let cancel = CancellationToken::new();
    let _guard = cancel.clone().drop_guard();
    let run_cancel = cancel.clone();
    let task = task.to_string();
    let run = async move {
        let mut observer = ProgressObserver { sender };
        agent.run(&task, &mut observer, &run_cancel).await
    };
    let report = async {
        let mut text = String::new();
        while let Some(delta) = receiver.recv().await {
            text.push_str(&delta);
            progress.report(tail_chars(&text, PROGRESS_TEXT_LIMIT), None).await;
        }
    };
    let (result, ()) = tokio::join!(run, report);
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            progress.end("failed").await;
            return Err(request_failed(format!("the agent failed: {error}")));
        }
    };
    progress.end(format!("{:?} after {} steps", summary.outcome, summary.steps)).await;
    let mut markdown = summary.final_text.clone();
    if !summary.edits.is_empty() {
        markdown.push_str("\n\n**Files changed:**\n");
        for edit in &summary.edits {
            markdown.push_str(&format!("- {}{}\n", edit.path, if edit.created { " (new)" } else { "" }));
        }
    }
    for denied in &summary.denied {
        markdown.push_str(&format!("\n*Not allowed:* {} {} ({})\n", denied.tool, denied.summary, denied.reason));
    }
    show_result(client, session, "Sextant agent", &markdown).await;
    Ok(markdown)
}

/// Markdown report of what went into the last inline-completion prompt.
pub fn last_prompt_markdown(session: &Session) -> String {
    let Some(record) = lock(&session.last_prompt).clone() else {
        return "No inline completion has been requested yet.".into();
    };
    let prompt = &record.prompt;
    let mut out = format!(
        "**Document:** {}\n**Provider:** {}\n**Outcome:** {}\n\n| part | tokens |\n|---|---|\n| prefix | {} |\n| suffix | {} |\n| context | {} |\n\n",
        record.uri,
        record.provider,
        record.outcome,
        prompt.prefix_tokens,
        prompt.suffix_tokens,
        prompt.context_tokens()
    );
    if let Some(hole) = &record.hole {
        out.push_str(&format!("**Hole:** {hole}\n"));
    }
    if let Some(stop) = &record.stop {
        out.push_str(&format!("**Stopped because:** {stop}\n"));
    }
    out.push_str(&format!("\n**Identifiers near the cursor:** {}\n\n", prompt.nearby_identifiers.join(", ")));
    if prompt.context.is_empty() {
        out.push_str("No repo-map context was included.\n\n");
    }
    for snippet in &prompt.context {
        out.push_str(&format!("### Context: {} ({} tokens)\n\nWhy chosen:\n", snippet.path, snippet.tokens));
        for why in &snippet.why {
            out.push_str(&format!("- {why}\n"));
        }
        out.push_str(&format!("\n```\n{}```\n\n", snippet.text));
    }
    // A fence longer than any run of backticks in the text, so it cannot end early.
    let fence = |text: &str| "`".repeat(longest_backtick_run(text).max(2) + 1);
    match &record.model_prompt {
        Some(sent) => {
            let fence = fence(sent);
            out.push_str(&format!("### Exact text the model was given\n\n{fence}\n{sent}\n{fence}\n\n"));
        }
        None => out.push_str("No model ran for this request (the windows below were used).\n\n"),
    }
    if let Some(raw) = &record.raw {
        let fence = fence(raw);
        out.push_str(&format!("### What the model sent\n\n{fence}\n{raw}\n{fence}\n\n"));
    }
    let prefix_tail: Vec<&str> = prompt.prefix.lines().rev().take(15).collect();
    let prefix_tail: Vec<&str> = prefix_tail.into_iter().rev().collect();
    let suffix_head: Vec<&str> = prompt.suffix.lines().take(5).collect();
    out.push_str(&format!(
        "### Prefix (last lines)\n\n```\n{}\n```\n\n### Suffix (first lines)\n\n```\n{}\n```\n",
        prefix_tail.join("\n"),
        suffix_head.join("\n")
    ));
    out
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}
