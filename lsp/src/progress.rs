//! Work-done progress (`$/progress`): create (or reuse the client's) token,
//! then begin / report / end. A client without progress support gets nothing.

use tower_lsp::lsp_types::notification::Progress as ProgressNotification;
use tower_lsp::lsp_types::request::WorkDoneProgressCreate;
use tower_lsp::lsp_types::{
    NumberOrString, ProgressParams, ProgressParamsValue, WorkDoneProgress, WorkDoneProgressBegin,
    WorkDoneProgressCreateParams, WorkDoneProgressEnd, WorkDoneProgressReport,
};
use tower_lsp::Client;

use crate::session::Session;

pub struct Progress {
    client: Client,
    token: Option<NumberOrString>,
}

impl Progress {
    /// Starts a progress bar. Uses `client_token` when the request carried a
    /// `workDoneToken`, else creates one with `window/workDoneProgress/create`.
    pub async fn begin(
        client: &Client,
        session: &Session,
        client_token: Option<NumberOrString>,
        title: &str,
        cancellable: bool,
    ) -> Progress {
        let token = match client_token {
            Some(token) => Some(token),
            None if session.client_flags().work_done_progress => {
                let counter = session.output_counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let token = NumberOrString::String(format!("sextant/{title}/{counter}"));
                match client
                    .send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams { token: token.clone() })
                    .await
                {
                    Ok(()) => Some(token),
                    Err(error) => {
                        tracing::warn!("client refused a progress token: {error}");
                        None
                    }
                }
            }
            None => None,
        };
        let progress = Progress { client: client.clone(), token };
        progress
            .send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: title.to_string(),
                cancellable: Some(cancellable),
                message: None,
                percentage: None,
            }))
            .await;
        progress
    }

    async fn send(&self, value: WorkDoneProgress) {
        if let Some(token) = &self.token {
            self.client
                .send_notification::<ProgressNotification>(ProgressParams {
                    token: token.clone(),
                    value: ProgressParamsValue::WorkDone(value),
                })
                .await;
        }
    }

    pub async fn report(&self, message: impl Into<String>, percentage: Option<u32>) {
        self.send(WorkDoneProgress::Report(WorkDoneProgressReport {
            cancellable: None,
            message: Some(message.into()),
            percentage: percentage.map(|p| p.min(100)),
        }))
        .await;
    }

    pub async fn end(self, message: impl Into<String>) {
        self.send(WorkDoneProgress::End(WorkDoneProgressEnd { message: Some(message.into()) })).await;
    }
}
