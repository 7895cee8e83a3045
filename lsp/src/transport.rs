//! A sanitising stdin filter in front of tower-lsp, and the stdout writer
//! that answers what it rejects.
//!
//! tower-lsp 0.20 reads stdin with a `FramedRead`, which ends the stream on
//! the first undecodable frame (bad JSON, invalid UTF-8, a bad header): one
//! malformed message would shut the server down. This filter re-frames stdin
//! itself and forwards only valid frames; it resynchronises on the next
//! `Content-Length` header after noise. What it rejects is answered as
//! JSON-RPC says, so a client never waits forever: -32700 (parse error) with
//! `id: null`, -32600 (invalid request) with the request's own id where one
//! can be read (`602.0`, ids past `i64`), else `null`. Notifications are
//! never answered. Two repairs keep real clients working: lone UTF-16
//! surrogate escapes (`\ud800`) become U+FFFD instead of dropping a whole
//! `didOpen`, and `shutdown`/`exit` with empty params (`null`, `{}`, `[]`, as
//! both Emacs clients send) lose the params tower-lsp would refuse.
//!
//! Invariant: every frame forwarded parses as a tower-lsp `Request` or
//! `Response`, so the framed reader downstream never errors; every reply is
//! written between whole frames of tower-lsp's own output.

use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tower_lsp::jsonrpc::{Request, Response};

/// Larger client messages (32 MiB: twice the server's 16 MiB document limit,
/// room for JSON escapes) are skipped as they stream in, never buffered, and
/// the user is told with `window/showMessage`. A 200 MB garbage message used
/// to leave ~400 MB resident.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// A Content-Length past this (1 GiB) is a corrupt header, not a message to
/// skip: the input resynchronises on the next header instead.
const MAX_PLAUSIBLE_BODY_BYTES: usize = 1024 * 1024 * 1024;
/// Header blocks longer than this without a terminator are noise; keep the tail.
const MAX_HEADER_BYTES: usize = 64 * 1024;

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// What a complete frame turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A JSON-RPC message for tower-lsp (possibly repaired).
    Valid(Vec<u8>),
    /// Not forwarded; `reply` is the error response owed to the sender.
    Rejected { reason: String, reply: Option<Vec<u8>> },
}

impl Frame {
    fn noise(reason: String) -> Frame {
        Frame::Rejected { reason, reply: None }
    }
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

fn error_reply(id: Value, code: i64, message: String) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string().into_bytes()
}

/// Replaces `\uXXXX` escapes of unpaired UTF-16 surrogates with `\ufffd`;
/// `None` when there were none (so the text's parse error is something else).
fn repair_lone_surrogates(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let escape_at = |i: usize| -> Option<u16> {
        let hex = text.get(i + 2..i + 6)?;
        (bytes.get(i) == Some(&b'\\') && matches!(bytes.get(i + 1), Some(b'u'))).then_some(())?;
        u16::from_str_radix(hex, 16).ok()
    };
    let mut out = String::with_capacity(text.len());
    let mut repaired = false;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            match escape_at(i) {
                // A proper pair stays as it is.
                Some(0xd800..=0xdbff) if escape_at(i + 6).is_some_and(|low| (0xdc00..=0xdfff).contains(&low)) => {
                    i += 12
                }
                Some(0xd800..=0xdfff) => {
                    out.push_str(&text[copied..i]);
                    out.push_str("\\ufffd");
                    repaired = true;
                    i += 6;
                    copied = i;
                }
                // Any other escape (\\, \", \n, \u0041): skip both characters.
                _ => i += 2,
            }
        } else {
            i += 1;
        }
    }
    repaired.then(|| {
        out.push_str(&text[copied..]);
        out
    })
}

/// Decides what to do with one frame's body.
pub fn classify(body: &[u8]) -> Frame {
    let Ok(text) = std::str::from_utf8(body) else {
        let reason = "body is not UTF-8".to_string();
        return Frame::Rejected {
            reply: Some(error_reply(Value::Null, PARSE_ERROR, format!("Parse error: {reason}"))),
            reason,
        };
    };
    let (value, mut changed): (Value, bool) = match serde_json::from_str(text) {
        Ok(value) => (value, false),
        Err(err) => match repair_lone_surrogates(text).and_then(|fixed| serde_json::from_str(&fixed).ok()) {
            Some(value) => (value, true),
            None => {
                let reason = format!("body is not JSON: {err}");
                let reply = error_reply(Value::Null, PARSE_ERROR, format!("Parse error: {reason}"));
                return Frame::Rejected { reason, reply: Some(reply) };
            }
        },
    };
    let value = match without_empty_lifecycle_params(value) {
        Ok(stripped) => {
            changed = true;
            stripped
        }
        Err(unchanged) => unchanged,
    };
    if serde_json::from_value::<Request>(value.clone()).is_ok()
        || serde_json::from_value::<Response>(value.clone()).is_ok()
    {
        // Forward the client's own bytes unless a repair changed them.
        return Frame::Valid(if changed { value.to_string().into_bytes() } else { body.to_vec() });
    }
    let reason = "body is JSON but not a JSON-RPC 2.0 message".to_string();
    let is_notification = value.get("method").is_some() && value.get("id").is_none();
    let is_response = value.get("method").is_none() && (value.get("result").is_some() || value.get("error").is_some());
    if is_notification || is_response {
        return Frame::noise(reason);
    }
    let id = match value.get("id") {
        Some(id @ (Value::Number(_) | Value::String(_))) => id.clone(),
        _ => Value::Null,
    };
    let reply = error_reply(id, INVALID_REQUEST, format!("Invalid request: {reason}"));
    Frame::Rejected { reason, reply: Some(reply) }
}

/// `shutdown` and `exit` take no params; tower-lsp refuses even empty ones.
/// `Ok` with the params removed, `Err` with the message as it was.
fn without_empty_lifecycle_params(mut value: Value) -> Result<Value, Value> {
    let lifecycle = matches!(value.get("method").and_then(Value::as_str), Some("shutdown" | "exit"));
    let empty = match value.get("params") {
        Some(Value::Null) => true,
        Some(Value::Object(map)) => map.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        _ => false,
    };
    match value.as_object_mut() {
        Some(object) if lifecycle && empty => {
            object.remove("params");
            Ok(value)
        }
        _ => Err(value),
    }
}

/// Something dropped from the input instead of a frame.
#[derive(Debug, PartialEq, Eq)]
enum Dropped {
    /// Noise dropped to resynchronise.
    Noise(String),
    /// A header announcing a body over the limit: its `length` bytes
    /// (partly still to come) are to be skipped.
    Oversized { length: usize },
}

/// Splits one complete frame's body off the front of `buffer`: `Ok(body)`,
/// `Err` for what was dropped, `None` until more arrives. Bodies over
/// `max_body` are not waited for: the header is removed and the caller skips
/// the body.
fn split_frame(buffer: &mut Vec<u8>, max_body: usize) -> Option<Result<Vec<u8>, Dropped>> {
    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buffer.len() > MAX_HEADER_BYTES {
            // Keep a tail in case a header is split across reads.
            let drop = buffer.len() - 1024;
            buffer.drain(..drop);
            return Some(Err(Dropped::Noise(format!("{drop} bytes of noise without a header"))));
        }
        return None;
    };
    let header = &buffer[..end];
    let Some(length) = content_length(header).filter(|len| *len <= MAX_PLAUSIBLE_BODY_BYTES.max(max_body)) else {
        let dropped = end + 4;
        buffer.drain(..dropped);
        return Some(Err(Dropped::Noise(format!("a header block without a usable Content-Length ({dropped} bytes)"))));
    };
    if length > max_body {
        buffer.drain(..end + 4);
        return Some(Err(Dropped::Oversized { length }));
    }
    let start = end + 4;
    if buffer.len() < start + length {
        return None;
    }
    let body: Vec<u8> = buffer[start..start + length].to_vec();
    buffer.drain(..start + length);
    Some(Ok(body))
}

/// Splits complete frames off the front of `buffer` and classifies them;
/// after a frame over [`MAX_BODY_BYTES`], `skip` holds how many bytes of its
/// body are still to be dropped (from `buffer` first, then as they arrive).
pub fn next_frame(buffer: &mut Vec<u8>, skip: &mut usize) -> Option<Frame> {
    let skipped = (*skip).min(buffer.len());
    buffer.drain(..skipped);
    *skip -= skipped;
    if *skip > 0 {
        return None;
    }
    Some(match split_frame(buffer, MAX_BODY_BYTES)? {
        Ok(body) => classify(&body),
        Err(Dropped::Noise(reason)) => Frame::noise(reason),
        Err(Dropped::Oversized { length }) => {
            *skip = length;
            let message = format!(
                "Sextant: the editor sent a {:.1} MB message, over the server's {} MB limit; it was ignored \
                 (a document that large is not opened)",
                length as f64 / 1_048_576.0,
                MAX_BODY_BYTES / 1_048_576
            );
            let notification =
                json!({"jsonrpc": "2.0", "method": "window/showMessage", "params": {"type": 2, "message": message}});
            Frame::Rejected {
                reason: format!("a {length}-byte message over the limit"),
                reply: Some(notification.to_string().into_bytes()),
            }
        }
    })
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Copies valid frames from `input` to `output` until `input` ends; error
/// replies for rejected requests go to `replies` (see [`write_output`]).
pub async fn sanitize(
    mut input: impl AsyncRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
    replies: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut skip = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some(frame) = next_frame(&mut buffer, &mut skip) {
            match frame {
                Frame::Valid(body) => {
                    let written = async {
                        output.write_all(&framed(&body)).await?;
                        output.flush().await
                    };
                    if written.await.is_err() {
                        return;
                    }
                }
                Frame::Rejected { reason, reply } => {
                    tracing::error!("rejected a malformed message: {reason}");
                    if let Some(reply) = reply {
                        let _ = replies.send(reply);
                    }
                }
            }
        }
        match input.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

/// Writes tower-lsp's output and the transport's error replies to `stdout`,
/// each as whole frames, until tower-lsp's output ends.
pub async fn write_output(
    mut server_output: impl AsyncRead + Unpin,
    mut replies: mpsc::UnboundedReceiver<Vec<u8>>,
    mut stdout: impl AsyncWrite + Unpin,
) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut replies_open = true;
    loop {
        // The server's own output is not capped.
        while let Some(frame) = split_frame(&mut buffer, usize::MAX) {
            if let Ok(body) = frame {
                if stdout.write_all(&framed(&body)).await.is_err() || stdout.flush().await.is_err() {
                    return;
                }
            }
        }
        tokio::select! {
            read = server_output.read(&mut chunk) => match read {
                Ok(0) | Err(_) => return,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            },
            reply = replies.recv(), if replies_open => match reply {
                Some(body) => {
                    if stdout.write_all(&framed(&body)).await.is_err() || stdout.flush().await.is_err() {
                        return;
                    }
                }
                None => replies_open = false,
            },
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
        while let Some(frame) = next_frame(&mut buffer, &mut 0) {
            frames.push(frame);
        }
        assert_eq!(frames.len(), 5);
        assert!(frames[..4].iter().all(|f| matches!(f, Frame::Rejected { .. })));
        assert_eq!(frames[4], Frame::Valid(valid.to_vec()));
        assert!(buffer.is_empty());
    }

    #[test]
    fn partial_frames_wait_for_more_input() {
        let mut buffer = b"Content-Length: 10\r\n\r\n{\"a\"".to_vec();
        assert_eq!(next_frame(&mut buffer, &mut 0), None);
        let mut buffer = b"Content-Length: 99999999999999\r\n\r\n".to_vec();
        assert!(matches!(next_frame(&mut buffer, &mut 0), Some(Frame::Rejected { reply: None, .. })));
    }

    #[test]
    fn oversized_bodies_are_skipped_as_they_arrive_and_reported() {
        let length = MAX_BODY_BYTES + 10;
        let mut buffer = format!("Content-Length: {length}\r\n\r\n{{\"jsonrpc\":\"2.0\"").into_bytes();
        let mut skip = 0;
        let Some(Frame::Rejected { reply: Some(reply), .. }) = next_frame(&mut buffer, &mut skip) else {
            panic!("not rejected")
        };
        let reply: Value = serde_json::from_slice(&reply).expect("json");
        assert_eq!(reply["method"], json!("window/showMessage"));
        assert!(reply["params"]["message"].as_str().is_some_and(|m| m.contains("32 MB limit")), "{reply}");
        // The body streams in; nothing of it is kept, and the next frame is read.
        let mut received = buffer.len();
        while received < length {
            let piece = (length - received).min(1 << 20);
            buffer.extend(std::iter::repeat_n(b'x', piece));
            received += piece;
            assert_eq!(next_frame(&mut buffer, &mut skip), None);
            assert!(buffer.is_empty());
        }
        let valid = br#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#;
        buffer.extend(frame(valid));
        assert_eq!(next_frame(&mut buffer, &mut skip), Some(Frame::Valid(valid.to_vec())));
    }

    fn reply_of(body: &[u8]) -> Option<Value> {
        match classify(body) {
            Frame::Rejected { reply, .. } => reply.map(|r| serde_json::from_slice(&r).expect("reply is JSON")),
            Frame::Valid(body) => panic!("accepted: {}", String::from_utf8_lossy(&body)),
        }
    }

    #[test]
    fn rejected_requests_are_answered_as_json_rpc_says() {
        let error = |body: &[u8]| reply_of(body).map(|r| (r["id"].clone(), r["error"]["code"].clone()));
        assert_eq!(error(b"{not json"), Some((Value::Null, json!(-32700))));
        assert_eq!(error(&[0xff, 0xfe]), Some((Value::Null, json!(-32700))));
        assert_eq!(error(br#"{"id": 4, "method": "initialize"}"#), Some((json!(4), json!(-32600))), "no jsonrpc");
        assert_eq!(error(br#"{"jsonrpc": "2.0", "id": 602.0, "method": "x"}"#), Some((json!(602.0), json!(-32600))));
        let huge = br#"{"jsonrpc": "2.0", "id": 18446744073709551615, "method": "x"}"#;
        assert_eq!(error(huge), Some((json!(18446744073709551615u64), json!(-32600))));
        assert_eq!(error(br#"[1, 2]"#), Some((Value::Null, json!(-32600))));
        // Notifications and stray responses are never answered.
        assert_eq!(error(br#"{"method": "initialized"}"#), None);
        assert_eq!(error(br#"{"id": 1, "result": 5}"#), None);
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let body = br#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"text":"a\ud800b \ud83d\ude00 \\ud800 \udc00"}}"#;
        let Frame::Valid(fixed) = classify(body) else { panic!("not repaired") };
        let value: Value = serde_json::from_slice(&fixed).expect("json");
        assert_eq!(value["params"]["text"], json!("a\u{fffd}b \u{1f600} \\ud800 \u{fffd}"));
    }

    #[test]
    fn empty_shutdown_params_are_accepted() {
        for params in ["null", "{}", "[]"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"shutdown","params":{params}}}"#);
            let Frame::Valid(fixed) = classify(body.as_bytes()) else { panic!("{params} rejected") };
            assert_eq!(serde_json::from_slice::<Value>(&fixed).expect("json").get("params"), None);
        }
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"shutdown","params":{"x":1}}"#;
        let Frame::Valid(kept) = classify(body) else { panic!("rejected") };
        assert!(String::from_utf8_lossy(&kept).contains("params"), "non-empty params are left for tower-lsp to judge");
    }
}
