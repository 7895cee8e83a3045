//! The `scripted-provider` binary as a non-Rust client sees it: start it,
//! read the URL from the port file, talk raw HTTP, read the request log.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.is_empty() {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "the port file never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One raw HTTP/1.1 POST; returns the whole response (the server closes).
fn post(url: &str, path: &str, body: &str) -> String {
    let authority = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(authority).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAuthorization: Bearer k\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[test]
fn binary_serves_a_script_file_and_logs_requests() {
    let dir = tempfile_dir();
    let script = dir.join("script.json");
    std::fs::write(
        &script,
        r#"{"turns": [{"text": "only for generate", "match": {"path": "/api/generate", "body": "\"suffix\""}},
                      {"text": ["Hel", "lo"], "usage": {"input_tokens": 3, "output_tokens": 2}},
                      {"fault": {"status": 429, "retry_after": "1"}}],
            "fallback": {"text": "fallback"}}"#,
    )
    .expect("write script");
    let port_file = dir.join("port");
    let log = dir.join("requests.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_scripted-provider"))
        .arg("--script")
        .arg(&script)
        .arg("--port-file")
        .arg(&port_file)
        .arg("--requests-log")
        .arg(&log)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn scripted-provider");
    let _guard = KillOnDrop(child);
    let url = wait_for_file(&port_file);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let first = post(&url, "/v1/chat/completions", r#"{"model":"m","stream":false}"#);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(first.contains(r#""content":"Hello""#) && first.contains(r#""prompt_tokens":3"#), "{first}");
    let second = post(&url, "/api/generate", r#"{"model":"m","stream":false}"#);
    assert!(second.starts_with("HTTP/1.1 429") && second.contains("retry-after: 1"), "{second}");
    let matched = post(&url, "/api/generate", r#"{"model":"m","prompt":"a","suffix":"b","stream":false}"#);
    assert!(matched.contains(r#""response":"only for generate""#), "{matched}");
    let fallback = post(&url, "/api/generate", r#"{"model":"m","stream":false}"#);
    assert!(fallback.contains(r#""response":"fallback""#), "{fallback}");

    let logged: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("request log")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    assert_eq!(logged.len(), 4);
    assert_eq!(logged[2]["path"], "/api/generate");
    assert_eq!(logged[2]["body"]["suffix"], "b");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn binary_rejects_a_bad_script() {
    let dir = tempfile_dir();
    let script = dir.join("bad.json");
    std::fs::write(&script, r#"[{"txet": "typo"}]"#).expect("write");
    let output =
        Command::new(env!("CARGO_BIN_EXE_scripted-provider")).arg("--script").arg(&script).output().expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid script"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the system temp dir (this crate has no tempfile dep).
fn tempfile_dir() -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("scripted-provider-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
