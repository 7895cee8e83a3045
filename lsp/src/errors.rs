//! JSON-RPC errors sent to the client. Messages say what happened.

use tower_lsp::jsonrpc::{Error, ErrorCode};

/// LSP `RequestFailed`: the request was valid but could not be carried out.
const REQUEST_FAILED: i64 = -32803;
/// LSP `ServerCancelled`: the server dropped the request (superseded).
const SERVER_CANCELLED: i64 = -32802;

pub fn invalid_params(message: impl Into<String>) -> Error {
    Error { code: ErrorCode::InvalidParams, message: message.into().into(), data: None }
}

pub fn request_failed(message: impl Into<String>) -> Error {
    Error { code: ErrorCode::ServerError(REQUEST_FAILED), message: message.into().into(), data: None }
}

pub fn superseded() -> Error {
    Error {
        code: ErrorCode::ServerError(SERVER_CANCELLED),
        message: "superseded by a newer request for the same document".into(),
        data: None,
    }
}
