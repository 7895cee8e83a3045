//! Code actions: explain, fix this diagnostic, add doc comment, write tests,
//! refactor selection. Listing is instant (no model call); the edit is made in
//! `codeAction/resolve` (or, for clients without resolve support, by the
//! `sextant.codeAction` command through `workspace/applyEdit`).
//!
//! Invariant: an edit is offered only after `edits::check_edit` accepted it
//! (no more syntax errors than before).
//!
//! Invariant: listing never parses on the async threads: the enclosing
//! definition comes from the document's incrementally kept tree
//! ([`crate::syntax_tree`]), fetched (and reparsed if stale) on the blocking
//! pool. Documents above [`syntax_tree::MAX_SYNTAX_TREE_BYTES`] have no tree, so they get
//! only the actions that need none (explain the selection or the lines under
//! the cursor, refactor selection, fix diagnostic).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant_core::providers::{ChatRequest, Message};
use tokio_util::sync::CancellationToken;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, CodeActionParams, CodeActionResponse, Command, Diagnostic,
    DocumentChanges, OneOf, OptionalVersionedTextDocumentIdentifier, Range, TextDocumentEdit, TextEdit, Url,
    WorkspaceEdit,
};
use tree_sitter::Tree;

use crate::document::{Clamp, Document};
use crate::edits::{check_edit, extract_fenced_block, reindent};
use crate::errors::{invalid_params, request_failed};
use crate::model;
use crate::session::Session;
use crate::syntax_tree;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionKind {
    Fix,
    DocComment,
    Tests,
    Refactor,
}

/// Carried in `CodeAction.data` from the listing to the resolve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionData {
    pub action: ActionKind,
    pub uri: Url,
    pub range: Range,
    #[serde(default)]
    pub diagnostic: Option<Diagnostic>,
}

/// The smallest definition in the document that contains `char_index`:
/// (name, char range covering whole lines).
fn enclosing_definition(
    document: &Document,
    tree: Option<&Tree>,
    char_index: usize,
) -> Option<(String, std::ops::Range<usize>)> {
    let (tree, language) = (tree?, document.language?);
    let rope = &document.text;
    let byte = rope.char_to_byte(char_index.min(rope.len_chars()));
    let (name, bytes) = syntax_tree::enclosing_definition(tree, language, rope, byte)?;
    let start = rope.byte_to_char(bytes.start.min(rope.len_bytes()));
    let end = rope.byte_to_char(bytes.end.min(rope.len_bytes()));
    Some((name, full_lines(document, start..end)))
}

/// A snapshot of the open document with its tree, from the blocking pool.
async fn document_with_tree(session: &Arc<Session>, uri: &Url) -> jsonrpc::Result<Option<(Document, Option<Tree>)>> {
    let (session, uri) = (session.clone(), uri.clone());
    tokio::task::spawn_blocking(move || session.document_with_tree(&uri))
        .await
        .map_err(|error| request_failed(format!("parsing the document failed: {error}")))
}

/// Expands a char range to whole lines (including the last line's break).
fn full_lines(document: &Document, chars: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let rope = &document.text;
    let start_line = rope.char_to_line(chars.start.min(rope.len_chars()));
    let last = if chars.end > chars.start { chars.end - 1 } else { chars.end };
    let end_line = rope.char_to_line(last.min(rope.len_chars()));
    let end = if end_line + 1 < rope.len_lines() { rope.line_to_char(end_line + 1) } else { rope.len_chars() };
    rope.line_to_char(start_line)..end
}

/// No selection, or the one character under a block cursor (what Vim and
/// Kakoune send when nothing is selected).
fn is_bare_cursor(document: &Document, selection: &std::ops::Range<usize>) -> bool {
    selection.len() <= 1 && !document.slice_to_string(selection.clone()).contains('\n')
}

fn wanted(only: &Option<Vec<CodeActionKind>>, kind: &CodeActionKind) -> bool {
    match only {
        None => true,
        Some(kinds) => {
            kinds.iter().any(|k| kind.as_str() == k.as_str() || kind.as_str().starts_with(&format!("{}.", k.as_str())))
        }
    }
}

pub async fn list(session: Arc<Session>, params: CodeActionParams) -> jsonrpc::Result<Option<CodeActionResponse>> {
    let uri = params.text_document.uri;
    let Some((document, tree)) = document_with_tree(&session, &uri).await? else { return Ok(None) };
    let tree = tree.as_ref();
    let selection = document.char_range(params.range, Clamp::Strict).map_err(|e| invalid_params(e.to_string()))?;
    let resolve = session.client_flags().code_action_resolve;
    let only = &params.context.only;
    let mut actions: Vec<CodeActionOrCommand> = Vec::new();
    let explain_range = if is_bare_cursor(&document, &selection) {
        enclosing_definition(&document, tree, selection.start)
            .map(|(_, r)| r)
            .unwrap_or_else(|| full_lines(&document, selection.clone()))
    } else {
        selection.clone()
    };
    let explain_kind = CodeActionKind::new("refactor.sextant.explain");
    if wanted(only, &explain_kind) {
        actions.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: "Sextant: explain this code".into(),
            kind: Some(explain_kind),
            command: Some(Command {
                title: "Sextant: explain this code".into(),
                command: "sextant.explain".into(),
                arguments: Some(vec![serde_json::json!({"uri": uri, "range": document.range(explain_range)})]),
            }),
            ..CodeAction::default()
        }));
    }
    let mut push = |title: String, kind: CodeActionKind, data: ActionData, diagnostics: Option<Vec<Diagnostic>>| {
        if !wanted(only, &kind) {
            return;
        }
        let data_json = serde_json::to_value(&data).ok();
        let command = (!resolve).then(|| Command {
            title: title.clone(),
            command: "sextant.codeAction".into(),
            arguments: data_json.clone().map(|d| vec![d]),
        });
        actions.push(CodeActionOrCommand::CodeAction(CodeAction {
            title,
            kind: Some(kind),
            diagnostics,
            command,
            data: if resolve { data_json } else { None },
            ..CodeAction::default()
        }));
    };

    for diagnostic in params.context.diagnostics.iter().take(3) {
        let message: String = diagnostic.message.lines().next().unwrap_or("").chars().take(60).collect();
        let data = ActionData {
            action: ActionKind::Fix,
            uri: uri.clone(),
            range: diagnostic.range,
            diagnostic: Some(diagnostic.clone()),
        };
        push(format!("Sextant: fix “{message}”"), CodeActionKind::QUICKFIX, data, Some(vec![diagnostic.clone()]));
    }
    if let Some((name, range)) = enclosing_definition(&document, tree, selection.start) {
        let range = document.range(range);
        let data = ActionData { action: ActionKind::DocComment, uri: uri.clone(), range, diagnostic: None };
        push(format!("Sextant: add doc comment to `{name}`"), CodeActionKind::REFACTOR_REWRITE, data, None);
        let data = ActionData { action: ActionKind::Tests, uri: uri.clone(), range, diagnostic: None };
        push(format!("Sextant: write tests for `{name}`"), CodeActionKind::new("refactor.sextant.tests"), data, None);
    }
    // Vim and Kakoune send a one-character range for a bare cursor.
    if !is_bare_cursor(&document, &selection) {
        let data = ActionData { action: ActionKind::Refactor, uri: uri.clone(), range: params.range, diagnostic: None };
        push("Sextant: refactor selection".into(), CodeActionKind::REFACTOR_REWRITE, data, None);
    }
    Ok(Some(actions))
}

pub async fn resolve(session: Arc<Session>, mut action: CodeAction) -> jsonrpc::Result<CodeAction> {
    let Some(data) = action.data.clone() else { return Ok(action) };
    let data: ActionData =
        serde_json::from_value(data).map_err(|e| invalid_params(format!("bad code action data: {e}")))?;
    action.edit = Some(compute_edit(&session, &data).await?);
    Ok(action)
}

fn instruction(data: &ActionData, language: &str) -> String {
    match data.action {
        ActionKind::Fix => {
            let message = data.diagnostic.as_ref().map(|d| d.message.as_str()).unwrap_or("the problem");
            format!("Fix this diagnostic: {message}\nReturn the corrected version of the code below, complete.")
        }
        ActionKind::DocComment => format!(
            "Add a concise doc comment (the idiomatic {language} style) to the item below. Return the item with its new doc comment, code unchanged."
        ),
        ActionKind::Tests => format!(
            "Write unit tests for the item below in idiomatic {language}. Return only the new test code, to be appended at the end of the file."
        ),
        ActionKind::Refactor => "Refactor the code below for clarity without changing its behaviour. Return the complete replacement.".into(),
    }
}

/// Asks the model for the edit, extracts the fenced block, validates it.
pub async fn compute_edit(session: &Arc<Session>, data: &ActionData) -> jsonrpc::Result<WorkspaceEdit> {
    let (document, tree) = document_with_tree(session, &data.uri)
        .await?
        .ok_or_else(|| invalid_params(format!("{} is not open", data.uri)))?;
    let path = session.relative_path(&data.uri).unwrap_or_default();
    let requested = document.char_range(data.range, Clamp::Strict).map_err(|e| invalid_params(e.to_string()))?;
    let target = match data.action {
        ActionKind::Fix => enclosing_definition(&document, tree.as_ref(), requested.start)
            .map(|(_, r)| r)
            .filter(|r| r.end - r.start < 20_000)
            .unwrap_or_else(|| full_lines(&document, requested.clone())),
        _ => full_lines(&document, requested.clone()),
    };
    let target_text = document.slice_to_string(target.clone());
    let language = if path.ends_with(".py") {
        "Python"
    } else if path.ends_with(".rs") {
        "Rust"
    } else {
        "the file's language"
    };
    let prompt = format!(
        "File: {path}\n{}\n\n```\n{target_text}```\n\nReply with the code in one fenced code block.",
        instruction(data, language)
    );
    let reply = chat_once(session, &prompt).await?;
    let code = extract_fenced_block(&reply)
        .ok_or_else(|| request_failed("the model's reply had no fenced code block to apply"))?;
    if code.trim().is_empty() {
        return Err(request_failed("the model returned an empty code block"));
    }
    let (replace, mut new_text) = match data.action {
        ActionKind::Tests => {
            let end = document.text.len_chars();
            let separator = if document.text.to_string().ends_with('\n') { "\n" } else { "\n\n" };
            (end..end, format!("{separator}{code}"))
        }
        _ => {
            let indent: String = target_text.chars().take_while(|c| *c == ' ' || *c == '\t').collect();
            (target.clone(), reindent(&code, &indent))
        }
    };
    if document.slice_to_string(replace.clone()).ends_with('\n') && !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    let before = document.text.to_string();
    let mut after = document.text.clone();
    after.remove(replace.clone());
    after.insert(replace.start, &new_text);
    check_edit(&path, &before, &after.to_string()).map_err(|rejected| request_failed(rejected.to_string()))?;
    // A range ending after the document's final newline ends on a line that
    // holds nothing; kak-lsp 17 applied such an edit one line too high. The
    // same edit without that newline on both sides ends on the last line.
    let mut replace = replace;
    let document_end = document.text.len_chars();
    let ends_with_final_newline = replace.end == document_end
        && replace.end > replace.start
        && new_text.ends_with('\n')
        && document.slice_to_string(replace.end - 1..replace.end) == "\n";
    if ends_with_final_newline {
        replace.end -= 1;
        new_text.pop();
    }
    let edit = TextEdit { range: document.range(replace), new_text };
    // Versioned document changes only for clients that declared them (ALE did not).
    if !session.client_flags().document_changes {
        return Ok(WorkspaceEdit {
            changes: Some(HashMap::from([(data.uri.clone(), vec![edit])])),
            ..WorkspaceEdit::default()
        });
    }
    Ok(WorkspaceEdit {
        document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
            text_document: OptionalVersionedTextDocumentIdentifier {
                uri: data.uri.clone(),
                version: Some(document.version),
            },
            edits: vec![OneOf::Left(edit)],
        }])),
        changes: None::<HashMap<Url, Vec<TextEdit>>>,
        change_annotations: None,
    })
}

async fn chat_once(session: &Session, prompt: &str) -> jsonrpc::Result<String> {
    let provider = model::provider(session, sextant_core::config::Purpose::Chat).await?;
    let settings = session.settings();
    let request = ChatRequest {
        messages: vec![
            Message::system(
                "You are a precise coding assistant. Answer with the requested code in a single fenced code block.",
            ),
            Message::user(prompt),
        ],
        max_tokens: Some(settings.chat_max_tokens),
        temperature: Some(0.0),
        ..ChatRequest::default()
    };
    let cancel = CancellationToken::new();
    let _guard = cancel.clone().drop_guard();
    let mut ignore = |_event| {};
    let response = tokio::time::timeout(
        Duration::from_millis(settings.chat_timeout_ms),
        provider.chat(&request, &mut ignore, &cancel),
    )
    .await
    .map_err(|_| request_failed("the model did not answer in time"))?
    .map_err(|error| request_failed(format!("the model request failed: {error}")))?;
    Ok(response.message.content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::write;
    use crate::syntax_tree::MAX_SYNTAX_TREE_BYTES;
    use tower_lsp::lsp_types::{
        CodeActionContext, PartialResultParams, Position, TextDocumentIdentifier, WorkDoneProgressParams,
    };

    async fn titles(text: &str, position: Position) -> Vec<String> {
        let session = Arc::new(Session::default());
        let uri = Url::parse("file:///work/src/lib.rs").expect("url");
        let document = Document::new(text, 1, "rust".into(), Default::default()).with_path_language("src/lib.rs");
        write(&session.documents).insert(uri.clone(), document);
        let params = CodeActionParams {
            text_document: TextDocumentIdentifier { uri },
            range: Range::new(position, position),
            context: CodeActionContext::default(),
            work_done_progress_params: WorkDoneProgressParams::default(),
            partial_result_params: PartialResultParams::default(),
        };
        let actions = list(session, params).await.expect("listed").unwrap_or_default();
        actions
            .into_iter()
            .map(|action| match action {
                CodeActionOrCommand::CodeAction(action) => action.title,
                CodeActionOrCommand::Command(command) => command.title,
            })
            .collect()
    }

    #[tokio::test]
    async fn documents_above_the_tree_limit_get_the_actions_that_need_no_tree() {
        let function = "fn measured(input: u64) -> u64 {\n    input * 2\n}\n";
        let small = titles(function, Position::new(1, 4)).await;
        assert!(small.iter().any(|t| t == "Sextant: add doc comment to `measured`"), "{small:?}");
        // The same function followed by enough filler to pass the limit.
        let large =
            format!("{function}{}", "// filler line of a generated file\n".repeat(MAX_SYNTAX_TREE_BYTES / 35 + 1));
        assert!(large.len() > MAX_SYNTAX_TREE_BYTES);
        let large = titles(&large, Position::new(1, 4)).await;
        assert_eq!(large, vec!["Sextant: explain this code".to_string()]);
    }
}
