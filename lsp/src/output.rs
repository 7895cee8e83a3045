//! Showing command results in any client: a markdown file under
//! `<workspace>/.sextant/` opened with `window/showDocument`, or
//! `window/showMessage` (configurable; falls back to a message when the
//! client can't show documents or the file can't be written).
//!
//! The file is written through core's `safe_fs`, like every other write
//! into a workspace: a cloned repository may ship `.sextant/` or its result
//! names as symlinks (or hard links) to files elsewhere, and those are
//! refused, never followed; the result is then shown as a message instead.

use std::sync::atomic::Ordering;

use sextant_core::tools::{safe_fs, Workspace};
use tower_lsp::lsp_types::{MessageType, ShowDocumentParams, Url};
use tower_lsp::Client;

use crate::session::Session;
use crate::settings::ResultDisplay;

/// Longest text put into a `window/showMessage`.
const MESSAGE_LIMIT: usize = 4000;

pub async fn show_result(client: &Client, session: &Session, title: &str, markdown: &str) {
    match session.settings().results {
        ResultDisplay::None => {}
        ResultDisplay::Document if session.client_flags().show_document => {
            match write_result_file(session, title, markdown) {
                Ok(uri) => {
                    let params = ShowDocumentParams {
                        uri: uri.clone(),
                        external: None,
                        take_focus: Some(true),
                        selection: None,
                    };
                    match client.show_document(params).await {
                        Ok(true) => return,
                        Ok(false) => tracing::warn!("client did not show {uri}"),
                        Err(error) => tracing::warn!("window/showDocument failed: {error}"),
                    }
                    show_message(client, title, markdown).await;
                }
                Err(error) => {
                    tracing::warn!("cannot write the result file: {error:#}");
                    let note = format!("(not written to a file: {error:#})\n\n{markdown}");
                    show_message(client, title, &note).await;
                }
            }
        }
        ResultDisplay::Document | ResultDisplay::Message => show_message(client, title, markdown).await,
    }
}

async fn show_message(client: &Client, title: &str, markdown: &str) {
    let mut text = format!("{title}\n\n{markdown}");
    if text.len() > MESSAGE_LIMIT {
        let mut cut = MESSAGE_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n…");
    }
    client.show_message(MessageType::INFO, text).await;
    // The command's response must follow the message (issue 15 item 8:
    // Emacs 28's jsonrpc only shows a message once it has read it, and the
    // response ends the wait). tower-lsp writes queued notifications and
    // responses from one task, notifications polled first; yielding once
    // lets it write this one before the response exists.
    tokio::task::yield_now().await;
}

fn slug(title: &str) -> String {
    let slug: String =
        title.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).take(40).collect();
    slug.trim_matches('-').to_string()
}

fn write_result_file(session: &Session, title: &str, markdown: &str) -> anyhow::Result<Url> {
    let root = session.root().ok_or_else(|| anyhow::anyhow!("no workspace folder to write .sextant/ into"))?;
    let workspace = Workspace::new(&root)?;
    let counter = session.output_counter.fetch_add(1, Ordering::Relaxed);
    let path = workspace.root().join(".sextant").join(format!("{}-{counter}.md", slug(title)));
    safe_fs::write(workspace.root(), &path, format!("# {title}\n\n{markdown}\n").as_bytes())?;
    Url::from_file_path(&path).map_err(|()| anyhow::anyhow!("cannot make a URI for {}", path.display()))
}
