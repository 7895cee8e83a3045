//! Responsiveness of the real `sextant-lsp` binary over stdio (issue 15,
//! items 11-13), printed beside the figures the issue measured before the
//! fixes. Nothing is asserted.
//!
//! - Code actions on a 100 KB, 1 MB and 10 MB Rust file: 4 requests in flight
//!   per cursor move (as editors send them), at varied cursors, first while
//!   the cursor only moves, then with a typed character (`didChange`) before
//!   each move; meanwhile a second thread sends hovers one after another and
//!   times them.
//! - Completion fallback (`textDocument/completion`) throughput with 16 files
//!   in flight against the scripted provider (instant answers), every request
//!   at a new cursor so none is a cache hit; the debounce is set to 0 so the
//!   figure is the server's own cost.
//! - Peak RSS around a 50 MB `didOpen` (VmHWM/VmRSS from /proc).
//!
//! The workspace is this repository (its ~100 Rust files are indexed, so
//! hovers and rankings do real work); the measured documents are opened under
//! `bench/` and never written to disk. Run: `cargo bench -p sextant-lsp
//! --bench lsp_responsiveness` (builds the server in release).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scripted_provider::{Script, ScriptedServer, Turn};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(300);

struct Client {
    child: Mutex<Child>,
    stdin: Mutex<ChildStdin>,
    pending: Mutex<HashMap<i64, Sender<Value>>>,
    notifications: Mutex<Vec<Value>>,
    next_id: AtomicI64,
}

impl Client {
    fn start(root: &Path, cache: &Path) -> Arc<Client> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sextant-lsp"))
            .current_dir(root)
            .env("XDG_CACHE_HOME", cache)
            .env("SEXTANT_CONFIG", cache.join("none.toml"))
            .env("SEXTANT_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start sextant-lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let client = Arc::new(Client {
            child: Mutex::new(child),
            stdin: Mutex::new(stdin),
            pending: Mutex::new(HashMap::new()),
            notifications: Mutex::new(Vec::new()),
            next_id: AtomicI64::new(1),
        });
        let reader = client.clone();
        std::thread::spawn(move || reader.read_frames(stdout));
        client
    }

    fn read_frames(&self, stdout: impl Read) {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut length = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(value) = line.strip_prefix("Content-Length: ") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
            let Some(length) = length else { return };
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let Ok(message) = serde_json::from_slice::<Value>(&body) else { continue };
            match (message.get("id").cloned(), message.get("method").is_some()) {
                // A request from the server (progress tokens, registrations): accept it.
                (Some(id), true) => self.send(&json!({"jsonrpc": "2.0", "id": id, "result": null})),
                (Some(id), false) => {
                    let sender = id.as_i64().and_then(|id| self.pending.lock().expect("lock").remove(&id));
                    if let Some(sender) = sender {
                        let _ = sender.send(message);
                    }
                }
                (None, _) => self.notifications.lock().expect("lock").push(message),
            }
        }
    }

    fn send(&self, message: &Value) {
        let body = message.to_string();
        let mut stdin = self.stdin.lock().expect("lock");
        let _ = write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len());
        let _ = stdin.flush();
    }

    fn notify(&self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn request_async(&self, method: &str, params: Value) -> Receiver<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = channel();
        self.pending.lock().expect("lock").insert(id, sender);
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        receiver
    }

    fn request(&self, method: &str, params: Value) -> (Value, Duration) {
        let start = Instant::now();
        let response = self.request_async(method, params).recv_timeout(TIMEOUT).expect("no response in time");
        (response, start.elapsed())
    }

    fn wait_for_notification(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        while start.elapsed() < TIMEOUT {
            if let Some(found) = self.notifications.lock().expect("lock").iter().find(|n| matches(n)) {
                return found.clone();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no {what} within {TIMEOUT:?}");
    }

    /// (VmRSS, VmHWM) of the server in MB.
    fn memory_mb(&self) -> (f64, f64) {
        let pid = self.child.lock().expect("lock").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        };
        (field("VmRSS:").unwrap_or(0.0) / 1024.0, field("VmHWM:").unwrap_or(0.0) / 1024.0)
    }

    fn stop(&self) {
        let _ = self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let mut child = self.child.lock().expect("lock");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
    }
}

fn initialize(client: &Client, root: &Path, provider_url: &str) {
    let root_uri = format!("file://{}", root.display());
    let (response, _) = client.request(
        "initialize",
        json!({
            "processId": null,
            "rootUri": root_uri,
            "capabilities": {"window": {"workDoneProgress": true}},
            "initializationOptions": {
                "provider": "openai", "baseUrl": format!("{provider_url}/v1"), "model": "scripted", "maxRetries": 0,
                "lsp": {"completion": {"debounceMs": 0}}
            }
        }),
    );
    assert!(response.get("result").is_some(), "initialize failed: {response}");
    client.notify("initialized", json!({}));
    client.wait_for_notification("end of indexing", |n| {
        n["method"] == "$/progress" && n["params"]["value"]["kind"] == "end"
    });
}

/// Lines per generated function: the cursor and hover lines are at fixed offsets.
const FUNCTION_LINES: usize = 7;

fn rust_file(bytes: usize) -> (String, usize) {
    let mut text = String::with_capacity(bytes + 256);
    let mut functions = 0;
    while text.len() < bytes {
        let i = functions;
        text.push_str(&format!(
            "/// Computes item {i}.\npub fn compute_item_{i}(input: &[u64]) -> u64 {{\n    let mut total = 0;\n    for value in input {{ total += value * {i}; }}\n    helper_for_bench(total);\n    total\n}}\n"
        ));
        functions += 1;
    }
    (text, functions)
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    if samples.is_empty() {
        return 0.0;
    }
    let index = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[index].as_secs_f64() * 1000.0
}

fn summary(samples: &mut [Duration]) -> String {
    let max = samples.iter().max().copied().unwrap_or_default().as_secs_f64() * 1000.0;
    format!(
        "p50 {:7.2} ms  p95 {:7.2} ms  max {:7.2} ms  (n={})",
        percentile(samples, 0.5),
        percentile(samples, 0.95),
        max,
        samples.len()
    )
}

/// A small deterministic generator for cursor positions.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

fn code_actions(client: &Arc<Client>, root: &Path, size: usize, label: &str, before: &str) {
    let (text, functions) = rust_file(size);
    let uri = format!("file://{}/bench/big_{size}.rs", root.display());
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}}),
    );
    let code_action = |line: usize| {
        let position = json!({"line": line, "character": 8});
        json!({"textDocument": {"uri": uri}, "range": {"start": position, "end": position}, "context": {"diagnostics": []}})
    };
    let (_, first) = client.request("textDocument/codeAction", code_action(3));
    println!(
        "{label}: first code action after didOpen (waits for the initial parse): {:.1} ms",
        first.as_secs_f64() * 1000.0
    );

    for typing in [false, true] {
        let running = Arc::new(AtomicBool::new(true));
        let hover_client = client.clone();
        let hover_running = running.clone();
        let hover_uri = uri.clone();
        let hovers = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut rng = Lcg(7);
            while hover_running.load(Ordering::Acquire) {
                let line = rng.below(functions) * FUNCTION_LINES + 4;
                let params = json!({"textDocument": {"uri": hover_uri}, "position": {"line": line, "character": 8}});
                let (response, took) = hover_client.request("textDocument/hover", params);
                assert!(response.get("error").is_none(), "hover failed: {response}");
                samples.push(took);
                std::thread::sleep(Duration::from_millis(5));
            }
            samples
        });
        let mut rng = Lcg(11);
        let mut samples = Vec::new();
        let mut version = 1;
        let rounds = if size >= 10_000_000 { 25 } else { 50 };
        let mut offered_doc_comment = 0;
        for _ in 0..rounds {
            let line = rng.below(functions) * FUNCTION_LINES + 2;
            if typing {
                version += 1;
                let at = json!({"line": line, "character": 4});
                client.notify(
                    "textDocument/didChange",
                    json!({"textDocument": {"uri": uri, "version": version},
                           "contentChanges": [{"range": {"start": at, "end": at}, "text": " "}]}),
                );
            }
            let start = Instant::now();
            let pending: Vec<Receiver<Value>> =
                (0..4).map(|_| client.request_async("textDocument/codeAction", code_action(line))).collect();
            for receiver in pending {
                let response = receiver.recv_timeout(TIMEOUT).expect("code action answered");
                samples.push(start.elapsed());
                let titles = response["result"].as_array().map(|a| a.len()).unwrap_or(0);
                offered_doc_comment += usize::from(titles > 1);
            }
        }
        running.store(false, Ordering::Release);
        let mut hover_samples = hovers.join().expect("hover thread");
        let phase = if typing { "typing (didChange before each move)" } else { "cursor moves" };
        println!("{label}, {phase}:");
        println!("  code actions (4 in flight)   {}", summary(&mut samples));
        println!("  hover, concurrently          {}", summary(&mut hover_samples));
        println!("  responses with the definition-based actions: {offered_doc_comment}/{}", rounds * 4);
    }
    println!("  before (issue 15): {before}");
    client.notify("textDocument/didClose", json!({"textDocument": {"uri": uri}}));
}

fn completion_throughput(client: &Arc<Client>, root: &Path) {
    const FILES: usize = 16;
    const PER_FILE: usize = 60;
    let (text, _) = rust_file(20_000);
    let lines = text.lines().count();
    let uris: Vec<String> = (0..FILES).map(|i| format!("file://{}/bench/completion_{i}.rs", root.display())).collect();
    for uri in &uris {
        client.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}}),
        );
    }
    // Warm-up: one request per file (rankings, provider handle).
    for uri in &uris {
        client.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": 3, "character": 4}}),
        );
    }
    let start = Instant::now();
    let workers: Vec<_> = uris
        .iter()
        .enumerate()
        .map(|(index, uri)| {
            let (client, uri) = (client.clone(), uri.clone());
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                let mut answered = 0;
                for n in 0..PER_FILE {
                    // A new line each time: no cache hit, every request reaches the provider.
                    let line = (index * 7 + n * 13) % lines.saturating_sub(1).max(1);
                    let params = json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": 4}});
                    let (response, took) = client.request("textDocument/completion", params);
                    answered += usize::from(response["result"].as_array().is_some_and(|items| !items.is_empty()));
                    samples.push(took);
                }
                (samples, answered)
            })
        })
        .collect();
    let mut samples = Vec::new();
    let mut answered = 0;
    for worker in workers {
        let (mut s, a) = worker.join().expect("worker");
        samples.append(&mut s);
        answered += a;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!("completion fallback, {FILES} files in flight, scripted provider, debounce 0:");
    println!(
        "  {:.0} req/s ({} requests in {elapsed:.2} s, {answered} with an item)",
        samples.len() as f64 / elapsed,
        samples.len()
    );
    println!("  latency                      {}", summary(&mut samples));
    println!("  before (issue 15): 14 req/s with 16 files in flight; two files alternating p50 59 ms vs 8 ms for one");
}

fn huge_did_open(client: &Arc<Client>, root: &Path) {
    let (rss_before, peak_before) = client.memory_mb();
    let text = "x".repeat(50 * 1024 * 1024);
    let uri = format!("file://{}/bench/huge.rs", root.display());
    let start = Instant::now();
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": text}}),
    );
    let shown = client.wait_for_notification("a message about the 50 MB document", |n| {
        n["method"] == "window/showMessage" && n["params"]["message"].as_str().is_some_and(|m| m.contains("limit"))
    });
    let refused_after = start.elapsed();
    // The server still answers.
    let hover = json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}});
    let (response, took) = client.request("textDocument/hover", hover);
    let (rss_after, peak_after) = client.memory_mb();
    println!("50 MB didOpen:");
    println!("  message after {:.0} ms: {}", refused_after.as_secs_f64() * 1000.0, shown["params"]["message"]);
    println!(
        "  next request answered in {:.1} ms: {}",
        took.as_secs_f64() * 1000.0,
        response.get("result").unwrap_or(&Value::Null)
    );
    println!("  server RSS {rss_before:.0} -> {rss_after:.0} MB, peak RSS {peak_before:.0} -> {peak_after:.0} MB");
    println!("  before (issue 15): unresponsive > 30 s at 50 MB (1.95 GB RSS); a 200 MB message left ~400 MB resident");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("lsp_responsiveness: bench");
        return;
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).expect("repo root");
    let root = std::env::var_os("SEXTANT_BENCH_LSP_REPO").map(PathBuf::from).unwrap_or(repo);
    let cache = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let script = Script::new(Vec::new()).with_fallback(Turn::text(["helper_for_bench(1);"]));
    let provider: ScriptedServer = runtime.block_on(ScriptedServer::start(script)).expect("scripted provider");
    println!(
        "sextant-lsp responsiveness over stdio; workspace {} (indexed), documents under bench/ (not on disk)",
        root.display()
    );
    let client = Client::start(&root, cache.path());
    let indexing = Instant::now();
    initialize(&client, &root, &provider.url());
    println!("indexed in {:.1} s", indexing.elapsed().as_secs_f64());
    // The function every generated file calls: hovers look it up in the map.
    let helper_uri = format!("file://{}/bench/helper.rs", root.display());
    let helper =
        "/// Called by every generated function.\npub fn helper_for_bench(total: u64) -> u64 {\n    total\n}\n";
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": helper_uri, "languageId": "rust", "version": 1, "text": helper}}),
    );
    std::thread::sleep(Duration::from_millis(800));
    code_actions(
        &client,
        &root,
        100_000,
        "100 KB",
        "200 ms per code action at 114 KB; a hover behind 4 of them waited 832 ms",
    );
    code_actions(&client, &root, 1_000_000, "1 MB", "3.3 s per code action");
    code_actions(&client, &root, 10_000_000, "10 MB", "44.6 s per code action at 20 MB");
    completion_throughput(&client, &root);
    huge_did_open(&client, &root);
    client.stop();
}
