//! `textDocument/inlineCompletion` (LSP 3.18; lsp-types 0.94 lacks it, so the
//! types are local and the method is registered with `custom_method`).
//!
//! Pipeline: snapshot the document -> build the prompt (pure, bounded) ->
//! cache / type-ahead -> debounce -> decide the hole's shape from the syntax
//! at the cursor (`sextant_core::completion::decide`, with the document's
//! kept tree when it has one) -> stream the model's text into a `Stopper`
//! that ends generation where the hole ends (cancellable, with timeout;
//! `maxTokens` is only an upper bound) -> the core clean-up -> cache. A newer
//! request for the same document cancels the older one; `$/cancelRequest`
//! drops the handler future (tower-lsp), which drops the in-flight HTTP
//! request with it.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sextant_core::completion::{self, Hole, Stopper};
use sextant_core::providers::{FimRequest, StopReason};
use tokio_util::sync::CancellationToken;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{Position, Range, TextDocumentIdentifier, Url};

use crate::document::Clamp;
use crate::errors::{invalid_params, request_failed, superseded};
use crate::model;
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
        Record { provider: "cache", outcome, ..Record::default() }.save(session, uri, &prompt);
        return Ok(Some(Suggestion { text, cursor: position, cursor_char }));
    }

    // Debounce: a keystroke within this window supersedes us.
    tokio::select! {
        _ = cancel.cancelled() => return Err(superseded()),
        _ = tokio::time::sleep(Duration::from_millis(settings.completion.debounce_ms)) => {}
    }

    let hole = {
        // The kept tree follows every edit (re-parsed lazily); a stale one is
        // still close enough to tell a block body or a string from code.
        let syntax = document.syntax.old_tree().map(|tree| {
            let cursor_byte = document.text.char_to_byte(cursor_char.min(document.text.len_chars()));
            completion::syntax_at_cursor(tree, cursor_byte)
        });
        completion::decide(&prompt.prefix, &prompt.suffix, syntax.as_ref())
    };
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
    let mut stopper = Stopper::new(&hole);
    let mut on_text = |piece: &str| stopper.push(piece);
    let streamed = provider.complete_streaming(&request, &cancel, &mut on_text);
    let result = tokio::select! {
        _ = cancel.cancelled() => return Err(superseded()),
        result = tokio::time::timeout(timeout, streamed) => result,
    };
    let completion = match result {
        Err(_) => {
            cancel.cancel();
            let record =
                Record { provider: provider.name(), outcome: "timed out", hole: Some(&hole), ..Record::default() };
            record.save(session, uri, &prompt);
            return Err(request_failed(format!("the model did not answer within {} ms", timeout.as_millis())));
        }
        Ok(Err(error)) => {
            let outcome = format!("error: {error}");
            Record { provider: provider.name(), outcome: &outcome, hole: Some(&hole), ..Record::default() }
                .save(session, uri, &prompt);
            return Err(request_failed(format!("completion failed: {error}")));
        }
        Ok(Ok(completion)) => completion,
    };
    stopper.finish();
    // A provider whose stream did not match its final text (it could not
    // stream, or rewrote the text at the end) is judged on the final text.
    let mut whole = Stopper::new(&hole);
    let stopper = if stopper.received() == completion.text || completion.stop_reason == StopReason::StopSequence {
        stopper
    } else {
        whole.push(&completion.text);
        whole.finish();
        whole
    };
    let stop = match stopper.cause() {
        Some(cause) => format!("the stopper ended it: {}", cause.describe()),
        None => match completion.stop_reason {
            StopReason::MaxTokens => format!("the model reached maxTokens ({})", settings.completion.max_tokens),
            StopReason::Cancelled => "cancelled".to_string(),
            _ => "the model ended its answer".to_string(),
        },
    };
    let cleaned = completion::clean(stopper.kept(), &prompt.prefix, &prompt.suffix);
    let outcome = match &cleaned {
        Some(text) => format!(
            "model sent {} chars, the hole kept {}, {} after the clean-up",
            completion.text.len(),
            stopper.kept().len(),
            text.len()
        ),
        None => format!("model sent {} chars, nothing left after the clean-up", completion.text.len()),
    };
    Record {
        provider: provider.name(),
        outcome: &outcome,
        hole: Some(&hole),
        stop: Some(&stop),
        model_prompt: completion.prompt.as_deref(),
        raw: Some(&completion.text),
    }
    .save(session, uri, &prompt);
    let Some(text) = cleaned else { return Ok(None) };
    lock(&session.completions).insert(key, &prompt, text.clone());
    Ok(Some(Suggestion { text, cursor: position, cursor_char }))
}

/// What `sextant.showLastPrompt` will show about this request.
#[derive(Default)]
struct Record<'a> {
    provider: &'a str,
    outcome: &'a str,
    hole: Option<&'a Hole>,
    stop: Option<&'a str>,
    model_prompt: Option<&'a str>,
    raw: Option<&'a str>,
}

impl Record<'_> {
    fn save(self, session: &Session, uri: &Url, prompt: &CompletionPrompt) {
        *lock(&session.last_prompt) = Some(PromptRecord {
            uri: uri.clone(),
            prompt: prompt.clone(),
            provider: self.provider.to_string(),
            outcome: self.outcome.to_string(),
            model_prompt: self.model_prompt.map(str::to_string),
            hole: self.hole.map(|hole| format!("{:?} (indent {}): {}", hole.kind, hole.indent, hole.reason)),
            stop: self.stop.map(str::to_string),
            raw: self.raw.map(str::to_string),
        });
    }
}

pub async fn handle(session: Arc<Session>, params: InlineCompletionParams) -> jsonrpc::Result<InlineCompletionList> {
    let uri = params.text_document.uri;
    let suggestion = suggest(&session, &uri, params.position).await?;
    let items = suggestion
        .map(|s| vec![InlineCompletionItem { insert_text: s.text, range: Some(Range::new(s.cursor, s.cursor)) }])
        .unwrap_or_default();
    Ok(InlineCompletionList { items })
}
