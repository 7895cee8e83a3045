//! `textDocument/completion` fallback for clients without inline completion:
//! the same pipeline, offered as one completion item that replaces the word
//! being typed (so client-side filtering keeps it visible).

use std::sync::Arc;

use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{
    CompletionItem, CompletionItemKind, CompletionParams, CompletionResponse, CompletionTextEdit, Documentation,
    TextEdit,
};

use crate::inline_completion::suggest;
use crate::session::Session;

pub async fn handle(session: Arc<Session>, params: CompletionParams) -> jsonrpc::Result<Option<CompletionResponse>> {
    let uri = params.text_document_position.text_document.uri;
    let position = params.text_document_position.position;
    let Some(suggestion) = suggest(&session, &uri, position).await? else { return Ok(None) };
    let Some(document) = session.document(&uri) else { return Ok(None) };
    // The identifier part before the cursor is what the client filters on.
    let mut word_start = suggestion.cursor_char.min(document.text.len_chars());
    while word_start > 0 {
        let c = document.text.char(word_start - 1);
        if !(c.is_alphanumeric() || c == '_') {
            break;
        }
        word_start -= 1;
    }
    let typed = document.slice_to_string(word_start..suggestion.cursor_char);
    let new_text = format!("{typed}{}", suggestion.text);
    let item = CompletionItem {
        // The label is the inserted text: lsp-mode's plain completion-at-point
        // inserts the label and nothing else (issue 15 item 3).
        label: new_text.clone(),
        kind: Some(CompletionItemKind::TEXT),
        detail: Some("sextant".into()),
        documentation: Some(Documentation::MarkupContent(crate::markup::content(
            format!("```\n{new_text}\n```"),
            session.client_flags().completion_markdown,
        ))),
        filter_text: Some(new_text.clone()),
        sort_text: Some("0".into()),
        text_edit: Some(CompletionTextEdit::Edit(TextEdit {
            range: document.range(word_start..suggestion.cursor_char),
            new_text,
        })),
        ..CompletionItem::default()
    };
    Ok(Some(CompletionResponse::Array(vec![item])))
}
