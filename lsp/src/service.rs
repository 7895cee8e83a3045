//! Wiring: the tower-lsp service plus a thin layer that adds
//! `inlineCompletionProvider` to the `initialize` result.
//!
//! lsp-types 0.94 predates LSP 3.18, so `ServerCapabilities` has no field for
//! it and `experimental` is not where 3.18 clients look. The layer patches
//! the serialised response instead: the capability appears at the top level
//! of `capabilities`, exactly as 3.18 specifies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tower_lsp::jsonrpc::{Request, Response};
use tower_lsp::{ExitedError, LspService, Server};
use tower_service::Service;

use crate::server::Backend;

pub struct InlineCompletionCapability<S> {
    inner: S,
    shutdown_requested: Arc<AtomicBool>,
}

impl<S> Service<Request> for InlineCompletionCapability<S>
where
    S: Service<Request, Response = Option<Response>, Error = ExitedError>,
    S::Future: Send + 'static,
{
    type Response = Option<Response>;
    type Error = ExitedError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let is_initialize = request.method() == "initialize";
        match request.method() {
            "shutdown" => self.shutdown_requested.store(true, Ordering::Release),
            // tower-lsp only notices `exit` when the next message (or EOF)
            // arrives; a client that keeps the pipe open would wait forever.
            // Exit code per the spec: 0 after `shutdown`, else 1.
            "exit" => {
                let code = if self.shutdown_requested.load(Ordering::Acquire) { 0 } else { 1 };
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    std::process::exit(code);
                });
            }
            _ => {}
        }
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(if is_initialize { response.map(add_inline_completion_provider) } else { response })
        })
    }
}

fn add_inline_completion_provider(response: Response) -> Response {
    let (id, body) = response.into_parts();
    let body = body.map(|mut result| {
        if let Some(capabilities) = result.get_mut("capabilities").and_then(Value::as_object_mut) {
            capabilities.insert("inlineCompletionProvider".into(), json!({}));
        }
        result
    });
    Response::from_parts(id, body)
}

const MAX_CONCURRENT_MESSAGES: usize = 256;

/// Serves the language server on stdin/stdout until the client exits.
pub async fn serve_stdio() {
    let (service, socket) = LspService::build(Backend::new)
        .custom_method("textDocument/inlineCompletion", Backend::inline_completion)
        .finish();
    let service = InlineCompletionCapability { inner: service, shutdown_requested: Arc::new(AtomicBool::new(false)) };
    // Malformed input is filtered out before tower-lsp sees it (see `transport`).
    // Its error replies to rejected requests are interleaved with
    // tower-lsp's own output, between whole frames.
    let (sanitized_writer, sanitized_reader) = tokio::io::duplex(1 << 20);
    let (replies, pending_replies) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(crate::transport::sanitize(tokio::io::stdin(), sanitized_writer, replies));
    let (server_output, output_reader) = tokio::io::duplex(1 << 20);
    let writer = tokio::spawn(crate::transport::write_output(output_reader, pending_replies, tokio::io::stdout()));
    // tower-lsp runs at most this many messages at once, notifications
    // included: slow model calls must never hold back didChange or
    // $/cancelRequest, so allow plenty.
    Server::new(sanitized_reader, server_output, socket)
        .concurrency_level(MAX_CONCURRENT_MESSAGES)
        .serve(service)
        .await;
    // The server's output ends when `Server` is dropped; let the writer drain it.
    let _ = writer.await;
}
