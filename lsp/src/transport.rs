//! A sanitising stdin filter in front of tower-lsp.
//!
//! tower-lsp 0.20 reads stdin with a `FramedRead`, which ends the stream on
//! the first undecodable frame (bad JSON, invalid UTF-8, a bad header): one
//! malformed message would shut the server down. This filter re-frames stdin
//! itself, drops (and logs) anything that is not a well-formed JSON-RPC
//! message, resynchronises on the next `Content-Length` header after noise,
//! and forwards only valid frames.
//!
//! Invariant: every frame forwarded parses as a tower-lsp `Request` or
//! `Response`, so the framed reader downstream never errors.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tower_lsp::jsonrpc::{Request, Response};

/// Larger bodies are treated as a corrupt header (nothing legitimate is this big).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;
/// Header blocks longer than this without a terminator are noise; keep the tail.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What a complete frame turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Valid(Vec<u8>),
    Dropped(String),
}

/// The Content-Length of a header block (the last one wins, so noise before a
/// real header is skipped).
fn content_length(header: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(header);
    let lower = text.to_ascii_lowercase();
    let at = lower.rfind("content-length:")?;
    let rest = &text[at + "content-length:".len()..];
    let value = rest.split(['\r', '\n']).next()?.trim();
    value.parse().ok()
}

/// Whether a body is a message tower-lsp will accept.
pub fn check_body(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("body is not JSON: {e}"))?;
    if serde_json::from_value::<Request>(value.clone()).is_ok() || serde_json::from_value::<Response>(value).is_ok() {
        Ok(())
    } else {
        Err("body is JSON but not a JSON-RPC 2.0 message".into())
    }
}

/// Splits complete frames off the front of `buffer`.
pub fn next_frame(buffer: &mut Vec<u8>) -> Option<Frame> {
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buffer.len() > MAX_HEADER_BYTES {
            // Keep a tail in case a header is split across reads.
            let drop = buffer.len() - 1024;
            buffer.drain(..drop);
            return Some(Frame::Dropped(format!("{drop} bytes of noise without a header")));
        }
        return None;
    };
    let header = &buffer[..end];
    let Some(length) = content_length(header).filter(|len| *len <= MAX_BODY_BYTES) else {
        let dropped = end + 4;
        buffer.drain(..dropped);
        return Some(Frame::Dropped(format!("a header block without a usable Content-Length ({dropped} bytes)")));
    };
    let start = end + 4;
    if buffer.len() < start + length {
        return None;
    }
    let body: Vec<u8> = buffer[start..start + length].to_vec();
    buffer.drain(..start + length);
    Some(match check_body(&body) {
        Ok(()) => Frame::Valid(body),
        Err(reason) => Frame::Dropped(reason),
    })
}

/// Copies valid frames from `input` to `output` until `input` ends.
pub async fn sanitize(mut input: impl AsyncRead + Unpin, mut output: impl AsyncWrite + Unpin) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some(frame) = next_frame(&mut buffer) {
            match frame {
                Frame::Valid(body) => {
                    let header = format!("Content-Length: {}\r\n\r\n", body.len());
                    let written = async {
                        output.write_all(header.as_bytes()).await?;
                        output.write_all(&body).await?;
                        output.flush().await
                    };
                    if written.await.is_err() {
                        return;
                    }
                }
                Frame::Dropped(reason) => tracing::error!("dropped a malformed message: {reason}"),
            }
        }
        match input.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn keeps_valid_frames_and_drops_the_rest() {
        let valid = br#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#;
        let mut buffer = Vec::new();
        buffer.extend(frame(b"{not json}"));
        buffer.extend(frame(&[0xff, 0xfe]));
        buffer.extend(frame(br#"{"foo":1}"#));
        buffer.extend(b"random noise Content-Length: x\r\n\r\n");
        buffer.extend(b"more noise ");
        buffer.extend(frame(valid));
        let mut frames = Vec::new();
        while let Some(frame) = next_frame(&mut buffer) {
            frames.push(frame);
        }
        assert_eq!(frames.len(), 5);
        assert!(frames[..4].iter().all(|f| matches!(f, Frame::Dropped(_))));
        assert_eq!(frames[4], Frame::Valid(valid.to_vec()));
        assert!(buffer.is_empty());
    }

    #[test]
    fn partial_frames_wait_for_more_input() {
        let mut buffer = b"Content-Length: 10\r\n\r\n{\"a\"".to_vec();
        assert_eq!(next_frame(&mut buffer), None);
        let mut buffer = b"Content-Length: 99999999999999\r\n\r\n".to_vec();
        assert!(matches!(next_frame(&mut buffer), Some(Frame::Dropped(_))));
    }
}
