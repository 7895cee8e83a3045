//! `textDocument/inlineCompletion` (LSP 3.18; lsp-types 0.94 lacks it, so the
//! types are local and the method is registered with `custom_method`).
//!
//! Pipeline: snapshot the document -> build the prompt (pure, bounded) ->
//! cache / type-ahead -> debounce -> model (cancellable, with timeout) ->
//! post-process -> cache. A newer request for the same document cancels the
//! older one; `$/cancelRequest` drops the handler future (tower-lsp), which
//! drops the in-flight HTTP request with it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant_core::providers::FimRequest;
use tokio_util::sync::CancellationToken;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{Position, Range, TextDocumentIdentifier, Url};

use crate::document::Clamp;
use crate::errors::{invalid_params, request_failed, superseded};
use crate::model;
use crate::postprocess::{postprocess, CursorContext};
use crate::prompt::{build_prompt, CompletionPrompt};
use crate::session::{lock, read, PromptRecord, Session};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineCompletionParams {
    pub text_document: TextDocumentIdentifier,
    pub position: Position,
    #[serde(default)]
    pub context: Option<InlineCompletionContext>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineCompletionContext {
    /// 1 = invoked explicitly, 2 = automatically while typing.
    #[serde(default)]
    pub trigger_kind: Option<u32>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InlineCompletionItem {
    pub insert_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InlineCompletionList {
    pub items: Vec<InlineCompletionItem>,
}

/// A finished completion: its text and where it came from.
#[derive(Debug, Clone)]
pub struct Suggestion {
    pub text: String,
    pub cursor: Position,
    /// The cursor's char index in the snapshot the suggestion was made for.
    pub cursor_char: usize,
}

/// Runs the whole pipeline for one cursor position. `None` = nothing to offer.
pub async fn suggest(session: &Session, uri: &Url, position: Position) -> jsonrpc::Result<Option<Suggestion>> {
    let settings = session.settings();
    if !settings.completion.enabled {
        return Ok(None);
    }
    let document = session.document(uri).ok_or_else(|| invalid_params(format!("{uri} is not open")))?;
    if document.text.len_bytes() > settings.max_document_bytes {
        return Ok(None);
    }
    let cursor_char = document.char_index(position, Clamp::Strict).map_err(|e| invalid_params(e.to_string()))?;
    let path = session.relative_path(uri);

    // Supersede the previous request for this document.
    let cancel = CancellationToken::new();
    if let Some(previous) = lock(&session.inflight).insert(uri.clone(), cancel.clone()) {
        previous.cancel();
    }
    // Drop guard: a request dropped by `$/cancelRequest` cancels its token too.
    let _guard = cancel.clone().drop_guard();

    let prompt = {
        let map = read(&session.map);
        let ranked = session.ranking_for(&map, path.as_deref());
        build_prompt(
            &document.text,
            cursor_char,
            path.as_deref(),
            Some(&map),
            Some(&ranked),
            &settings.completion.budget(),
        )
    };
    let key = uri.as_str();
    let cached = {
        let mut cache = lock(&session.completions);
        cache
            .get(key, &prompt)
            .map(|text| (text, "cache hit"))
            .or_else(|| cache.type_ahead(key, &prompt).map(|text| (text, "type-ahead reuse")))
    };
    if let Some((text, outcome)) = cached {
        record(session, uri, &prompt, "cache", outcome);
        return Ok(Some(Suggestion { text, cursor: position, cursor_char }));
    }

    // Debounce: a keystroke within this window supersedes us.
    tokio::select! {
        _ = cancel.cancelled() => return Err(superseded()),
        _ = tokio::time::sleep(Duration::from_millis(settings.completion.debounce_ms)) => {}
    }

    let provider = model::provider(session, sextant_core::config::Purpose::Completion).await?;
    let request = FimRequest {
        prefix: prompt.prefix.clone(),
        suffix: prompt.suffix.clone(),
        path: path.clone(),
        context_files: prompt.context_files(),
        max_tokens: Some(settings.completion.max_tokens),
        temperature: Some(0.0),
        stop: Vec::new(),
    };
    let timeout = Duration::from_millis(settings.completion.timeout_ms);
    let completion = tokio::select! {
        _ = cancel.cancelled() => return Err(superseded()),
        result = tokio::time::timeout(timeout, provider.complete(&request, &cancel)) => match result {
            Err(_) => {
                cancel.cancel();
                record(session, uri, &prompt, provider.name(), "timed out");
                return Err(request_failed(format!("the model did not answer within {} ms", timeout.as_millis())));
            }
            Ok(Err(error)) => {
                record(session, uri, &prompt, provider.name(), &format!("error: {error}"));
                return Err(request_failed(format!("completion failed: {error}")));
            }
            Ok(Ok(completion)) => completion,
        },
    };
    let cleaned = postprocess(&completion.text, CursorContext { prefix: &prompt.prefix, suffix: &prompt.suffix });
    let outcome = match &cleaned {
        Some(text) => format!("model answered {} chars, {} after post-processing", completion.text.len(), text.len()),
        None => format!("model answered {} chars, nothing left after post-processing", completion.text.len()),
    };
    record(session, uri, &prompt, provider.name(), &outcome);
    let Some(text) = cleaned else { return Ok(None) };
    lock(&session.completions).insert(key, &prompt, text.clone());
    Ok(Some(Suggestion { text, cursor: position, cursor_char }))
}

fn record(session: &Session, uri: &Url, prompt: &CompletionPrompt, provider: &str, outcome: &str) {
    *lock(&session.last_prompt) = Some(PromptRecord {
        uri: uri.clone(),
        prompt: prompt.clone(),
        provider: provider.to_string(),
        outcome: outcome.to_string(),
    });
}

pub async fn handle(session: Arc<Session>, params: InlineCompletionParams) -> jsonrpc::Result<InlineCompletionList> {
    let uri = params.text_document.uri;
    let suggestion = suggest(&session, &uri, params.position).await?;
    let items = suggestion
        .map(|s| vec![InlineCompletionItem { insert_text: s.text, range: Some(Range::new(s.cursor, s.cursor)) }])
        .unwrap_or_default();
    Ok(InlineCompletionList { items })
}
