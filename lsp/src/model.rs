//! Provider handles: built lazily with `sextant_core::providers::factory`
//! from the merged config on first use, shared by every feature, dropped when
//! the configuration changes. Inline completion may use its own provider
//! (`completion` table of the config).

use std::sync::Arc;

use sextant_core::config::Purpose;
use sextant_core::providers::{factory, Provider};
use tower_lsp::jsonrpc;

use crate::errors::request_failed;
use crate::session::Session;

pub async fn provider(session: &Session, purpose: Purpose) -> jsonrpc::Result<Arc<dyn Provider>> {
    let slot = match purpose {
        Purpose::Chat => &session.chat_provider,
        Purpose::Completion => &session.completion_provider,
    };
    let mut slot = slot.lock().await;
    if let Some(provider) = slot.as_ref() {
        return Ok(provider.clone());
    }
    let config = session.config();
    // Loading the embedded model reads a file: keep it off the async threads.
    let built = tokio::task::spawn_blocking(move || factory::build(&config, purpose))
        .await
        .map_err(|e| request_failed(format!("setting up the model provider failed: {e}")))?
        .map_err(|e| request_failed(format!("cannot set up the model provider: {e}")))?;
    *slot = Some(built.clone());
    Ok(built)
}
