//! Hover: instant structural facts from the repo map (signature, doc,
//! definition site, reference count) for the identifier under the cursor,
//! plus an optional AI explanation (`hover.ai`), cached per (symbol, hash of
//! the definition's text).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use sextant_core::providers::{ChatRequest, Message};
use sextant_core::repomap::Tag;
use tokio_util::sync::CancellationToken;
use tower_lsp::jsonrpc;
use tower_lsp::lsp_types::{Hover, HoverContents, HoverParams};

use crate::document::Clamp;
use crate::errors::invalid_params;
use crate::model;
use crate::session::{lock, read, Session};

/// What the repo map knows about a symbol.
#[derive(Debug, Clone)]
pub struct SymbolFacts {
    pub name: String,
    pub definitions: Vec<Tag>,
    pub reference_count: usize,
    pub referencing_files: usize,
}

pub fn symbol_facts(session: &Session, name: &str) -> Option<SymbolFacts> {
    let map = read(&session.map);
    let definitions: Vec<Tag> = map.definitions(name).into_iter().cloned().collect();
    if definitions.is_empty() {
        return None;
    }
    let references = map.references(name);
    let mut files: Vec<&str> = references.iter().map(|tag| &*tag.path).collect();
    files.dedup();
    Some(SymbolFacts {
        name: name.to_string(),
        reference_count: references.len(),
        referencing_files: files.len(),
        definitions,
    })
}

pub fn render_facts(session: &Session, facts: &SymbolFacts) -> String {
    let mut out = String::new();
    let root = session.root();
    for (index, tag) in facts.definitions.iter().take(3).enumerate() {
        if index > 0 {
            out.push_str("\n---\n\n");
        }
        let language = if tag.path.ends_with(".py") { "python" } else { "rust" };
        let signature = tag.signature().unwrap_or(&tag.name);
        out.push_str(&format!("```{language}\n{}\n```\n\n", signature.trim()));
        if let Some(doc) = tag.doc().filter(|d| !d.trim().is_empty()) {
            out.push_str(doc.trim());
            out.push_str("\n\n");
        }
        let location = format!("{}:{}", tag.path, tag.line + 1);
        let link = root
            .as_ref()
            .and_then(|root| tower_lsp::lsp_types::Url::from_file_path(root.join(&*tag.path)).ok())
            .map(|url| format!("[{location}]({url}#L{})", tag.line + 1))
            .unwrap_or(location);
        let scope = tag.scope().map(|s| format!(" in `{s}`")).unwrap_or_default();
        out.push_str(&format!("*{}*{scope} — defined at {link}\n", tag.kind.as_str()));
    }
    if facts.definitions.len() > 3 {
        out.push_str(&format!("\n(+{} more definitions)\n", facts.definitions.len() - 3));
    }
    out.push_str(&format!(
        "\n{} reference{} in {} file{}\n",
        facts.reference_count,
        if facts.reference_count == 1 { "" } else { "s" },
        facts.referencing_files,
        if facts.referencing_files == 1 { "" } else { "s" }
    ));
    out
}

pub async fn handle(session: Arc<Session>, params: HoverParams) -> jsonrpc::Result<Option<Hover>> {
    let uri = params.text_document_position_params.text_document.uri;
    let position = params.text_document_position_params.position;
    let Some(document) = session.document(&uri) else { return Ok(None) };
    let cursor = document.char_index(position, Clamp::Strict).map_err(|e| invalid_params(e.to_string()))?;
    let Some((name, range)) = document.identifier_at(cursor) else { return Ok(None) };
    let Some(facts) = symbol_facts(&session, &name) else { return Ok(None) };
    let mut markdown = render_facts(&session, &facts);
    if session.settings().hover.ai {
        match ai_explanation(&session, &facts).await {
            Ok(text) => markdown.push_str(&format!("\n---\n\n**AI:** {}\n", text.trim())),
            Err(error) => markdown.push_str(&format!("\n---\n\n*AI explanation unavailable: {}*\n", error.message)),
        }
    }
    Ok(Some(Hover {
        contents: HoverContents::Markup(crate::markup::content(markdown, session.client_flags().hover_markdown)),
        range: Some(document.range(range)),
    }))
}

/// The source text of a definition, read from the open document or disk.
fn definition_source(session: &Session, tag: &Tag) -> Option<String> {
    let root = session.root()?;
    let path = root.join(&*tag.path);
    let uri = tower_lsp::lsp_types::Url::from_file_path(&path).ok()?;
    let text = match session.document(&uri) {
        Some(document) => document.text.to_string(),
        None => std::fs::read_to_string(&path).ok()?,
    };
    text.get(tag.byte_range.clone()).map(|s| s.chars().take(4000).collect())
}

async fn ai_explanation(session: &Session, facts: &SymbolFacts) -> jsonrpc::Result<String> {
    let tag = &facts.definitions[0];
    let source = definition_source(session, tag).unwrap_or_else(|| tag.signature().unwrap_or_default().to_string());
    let mut hasher = DefaultHasher::new();
    source.hash(&mut hasher);
    let key = (facts.name.clone(), hasher.finish());
    if let Some(text) = lock(&session.hover_cache).get(&key) {
        return Ok(text.clone());
    }
    let provider = model::provider(session, sextant_core::config::Purpose::Chat).await?;
    let settings = session.settings();
    let request = ChatRequest {
        messages: vec![
            Message::system("You explain code symbols in two or three sentences for a hover tooltip. No preamble."),
            Message::user(format!("Explain `{}` from {}:\n```\n{source}\n```", facts.name, tag.path)),
        ],
        max_tokens: Some(200),
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
    .map_err(|_| crate::errors::request_failed("the model did not answer in time"))?
    .map_err(|error| crate::errors::request_failed(error.to_string()))?;
    let text = response.message.content;
    lock(&session.hover_cache).put(key, text.clone());
    Ok(text)
}
