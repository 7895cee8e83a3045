//! `sextant bench agent`: the agent on ten small real tasks, each checked by
//! its result, not by what the model says it did.
//!
//! Every task copies a fixture repository (`tests/fixtures/agent-bench/`,
//! compiled into the binary) into a fresh temporary directory and runs the
//! same agent `sextant run` builds (`run::build_agent`: configuration,
//! provider, options), with edits allowed and shell commands allowed only as
//! the permission system allows them headless: always inside the jail, never
//! unjailed. The checks run afterwards in the same jail (they execute code
//! the model wrote): Python snippets that import the changed modules, run the
//! program or the tests; answers are matched in the model's final text.
//!
//! Per task it reports success, turns (model requests), tool calls, valid
//! tool calls (a known tool with arguments that match its JSON schema) and
//! wall time; in total the success rate and the tool-call validity rate.
//! Nothing here asserts a target: it prints figures to compare.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use serde_json::Value;
use sextant_core::agent::{AgentError, AgentEvent, AgentObserver, PermissionAnswer, PermissionRequest, Permissions};
use sextant_core::providers::ToolSpec;
use sextant_core::tools::{self, escape_controls, Isolation, ShellLimits};
use tokio_util::sync::CancellationToken;

use super::run::{build_agent, CommonArgs};

#[derive(clap::Args)]
pub struct Args {
    /// The model (default: the configured chat model; built in: the embedded
    /// Qwen2.5-Coder-0.5B). An embedded model id or GGUF file, or a model of
    /// the configured provider.
    #[arg(long, value_name = "ID|FILE")]
    model: Option<String>,
    /// Only the tasks whose id contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<String>,
    /// Model requests per task before it counts as given up.
    #[arg(long, default_value_t = 6)]
    max_turns: usize,
    /// Wall-time limit per task, in seconds (the run is cancelled, then checked).
    #[arg(long, default_value_t = 240)]
    time_limit: u64,
    /// Print each tool call, its error and the final answer while running.
    #[arg(long, short = 'v')]
    verbose: bool,
}

/// A fixture file: path in the repository and content.
type FixtureFile = (&'static str, &'static str);

macro_rules! fixture {
    ($repo:literal, $($path:literal),+ $(,)?) => {
        &[$(($path, include_str!(concat!("../../../tests/fixtures/agent-bench/", $repo, "/", $path)))),+]
    };
}

const PY_SHOP: &[FixtureFile] = fixture!(
    "py-shop",
    "README.md",
    "config.py",
    "version.py",
    "utils.py",
    "orders.py",
    "main.py",
    "pricing.py",
    "test_pricing.py",
    "geometry.py",
);
const RS_UNITS: &[FixtureFile] = fixture!("rs-units", "Cargo.toml", "src/lib.rs", "src/limits.rs");

/// One condition a task's result must meet.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// The final answer contains this text (case-insensitive).
    Answer(&'static str),
    /// This file still has its fixture content.
    Unchanged(&'static str),
    /// This Rust file parses without syntax errors.
    RustParses(&'static str),
    /// This Python script exits 0 when run in the workspace (in the jail).
    Python(&'static str),
}

struct Task {
    id: &'static str,
    repo: &'static [FixtureFile],
    prompt: &'static str,
    checks: &'static [Check],
}

/// Name of the check script written into the workspace after the run.
const CHECK_SCRIPT: &str = ".bench_check.py";

const TASKS: &[Task] = &[
    Task {
        id: "answer-version",
        repo: PY_SHOP,
        prompt: "What version number is set in version.py? Reply with the version only.",
        checks: &[Check::Answer("2.7.1")],
    },
    Task {
        id: "answer-rust-constant",
        repo: RS_UNITS,
        prompt: "How many metres are in one mile according to src/lib.rs? Reply with the number only.",
        checks: &[Check::Answer("1609.344")],
    },
    Task {
        id: "answer-defining-file",
        repo: PY_SHOP,
        prompt: "Which file defines the function slugify? Reply with the file name only.",
        checks: &[Check::Answer("utils.py")],
    },
    Task {
        id: "docstring",
        repo: PY_SHOP,
        prompt: "Add a docstring to the function slugify in utils.py.",
        checks: &[Check::Python(
            r#"import ast
tree = ast.parse(open("utils.py").read())
found = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "slugify"]
assert found, "utils.py defines no slugify"
assert ast.get_docstring(found[0]), "slugify has no docstring"
from utils import slugify, format_name
assert slugify("Hello Big World") == "hello-big-world", "slugify behaves differently"
assert format_name("Ada", "Lovelace") == "Lovelace, Ada", "format_name behaves differently"
"#,
        )],
    },
    Task {
        id: "rename",
        repo: PY_SHOP,
        prompt: "Rename the function format_name in utils.py to format_full_name and update all its callers.",
        checks: &[Check::Python(
            r##"import pathlib, re, subprocess, sys
left = [str(p) for p in pathlib.Path(".").rglob("*.py")
        if p.name != ".bench_check.py" and re.search(r"\bformat_name\b", p.read_text())]
assert not left, f"format_name is still used in {left}"
import utils
assert utils.format_full_name("Ada", "Lovelace") == "Lovelace, Ada", "format_full_name is wrong"
run = subprocess.run([sys.executable, "main.py"], capture_output=True, text=True, timeout=20)
assert run.returncode == 0, "main.py fails: " + run.stderr[-300:]
assert "#7 Lovelace, Ada" in run.stdout and "Turing, Alan" in run.stdout, "main.py prints " + run.stdout
"##,
        )],
    },
    Task {
        id: "fix-test",
        repo: PY_SHOP,
        prompt: "The tests in test_pricing.py fail. Fix the bug in pricing.py; do not change the tests.",
        checks: &[
            Check::Unchanged("test_pricing.py"),
            Check::Python(
                r#"import subprocess, sys
run = subprocess.run([sys.executable, "-m", "unittest", "test_pricing"], capture_output=True, text=True, timeout=20)
assert run.returncode == 0, "the tests fail: " + run.stderr[-300:]
"#,
            ),
        ],
    },
    Task {
        id: "create-file",
        repo: PY_SHOP,
        prompt: "Create a file NOTES.md whose only line is: Deploys on Friday need two reviewers",
        checks: &[Check::Python(
            r#"import os
assert os.path.isfile("NOTES.md"), "NOTES.md does not exist"
text = open("NOTES.md").read().strip()
assert text == "Deploys on Friday need two reviewers", "NOTES.md holds " + repr(text[:200])
"#,
        )],
    },
    Task {
        id: "python-constant",
        repo: PY_SHOP,
        prompt: "In config.py, change MAX_RETRIES from 3 to 5.",
        checks: &[Check::Python(
            r#"import config
assert config.MAX_RETRIES == 5, f"MAX_RETRIES is {config.MAX_RETRIES}"
assert config.TIMEOUT_SECONDS == 30 and config.CURRENCY == "EUR", "other settings changed"
"#,
        )],
    },
    Task {
        id: "add-function",
        repo: PY_SHOP,
        prompt: "Add a function perimeter(w, h) to geometry.py that returns the perimeter of a w x h rectangle.",
        checks: &[Check::Python(
            r#"import geometry
assert hasattr(geometry, "perimeter"), "geometry.py has no perimeter"
assert geometry.perimeter(2, 3) == 10, f"perimeter(2, 3) is {geometry.perimeter(2, 3)}"
assert geometry.perimeter(1.5, 1) == 5, f"perimeter(1.5, 1) is {geometry.perimeter(1.5, 1)}"
assert geometry.area(2, 3) == 6, "area changed"
"#,
        )],
    },
    Task {
        id: "rust-constant",
        repo: RS_UNITS,
        prompt: "In src/limits.rs, change MAX_BATCH to 128.",
        checks: &[
            Check::RustParses("src/limits.rs"),
            Check::Python(
                r#"import re
text = open("src/limits.rs").read()
assert re.search(r"pub const MAX_BATCH: usize = 128;", text), "MAX_BATCH is not 128"
assert "pub fn fits(count: usize) -> bool" in text, "fits() is gone"
"#,
            ),
        ],
    },
];

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let tasks: Vec<&Task> = TASKS
        .iter()
        .filter(|task| args.tasks.is_empty() || args.tasks.iter().any(|wanted| task.id.contains(wanted.as_str())))
        .collect();
    if tasks.is_empty() {
        let ids: Vec<&str> = TASKS.iter().map(|task| task.id).collect();
        anyhow::bail!("no task matches {:?}; the tasks are: {}", args.tasks, ids.join(", "));
    }
    let isolation = tools::detect_isolation();
    print_machine();
    println!(
        "shell: {}; limits per task: {} turns, {} s\n",
        match isolation {
            Isolation::Bwrap => "allowed, jailed (bubblewrap)",
            Isolation::None => "refused (no jail available; checks that run code cannot run either)",
        },
        args.max_turns,
        args.time_limit
    );

    let scratch = ScratchDir::new()?;
    let mut results = Vec::new();
    for (number, task) in tasks.iter().enumerate() {
        let workspace = scratch.path.join(format!("{number}-{}", task.id));
        write_fixture(&workspace, task.repo)?;
        if args.verbose {
            eprintln!("== {}: {}", task.id, task.prompt);
        }
        let result = run_task(task, &workspace, &args, isolation).await?;
        print_row(&result, results.is_empty());
        results.push(result);
    }
    print_totals(&results);
    Ok(ExitCode::SUCCESS)
}

/// What one task run produced.
struct TaskResult {
    id: &'static str,
    model: String,
    success: bool,
    /// Why the check failed, or how the run ended abnormally.
    note: String,
    turns: usize,
    tool_calls: usize,
    valid_calls: usize,
    /// Prompt and generated tokens of all the task's model requests.
    tokens_in: u64,
    tokens_out: u64,
    wall: Duration,
}

async fn run_task(task: &Task, workspace: &Path, args: &Args, isolation: Isolation) -> anyhow::Result<TaskResult> {
    let common = CommonArgs {
        workspace: Some(workspace.to_path_buf()),
        model: args.model.clone(),
        map_tokens: None,
        max_tokens: None,
        no_session: true,
        dangerously_allow_unjailed_shell: false,
    };
    let (agent, _config) = build_agent(&common, Permissions::headless(true, true), Some(args.max_turns))?;
    // Each task's workspace is new: its repo-map tag cache would only pile up.
    let mut options = agent.options().clone();
    options.tool_limits.repo_map_cache = false;
    let mut agent = agent.with_options(options);
    let model = format!("{}/{}", agent.provider().name(), agent.provider().model());
    let mut observer = BenchObserver { specs: agent.toolbox().specs(), verbose: args.verbose, ..Default::default() };

    let cancel = CancellationToken::new();
    let timer = {
        let cancel = cancel.clone();
        let limit = Duration::from_secs(args.time_limit.max(1));
        tokio::spawn(async move {
            tokio::time::sleep(limit).await;
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let outcome = agent.run(task.prompt, &mut observer, &cancel).await;
    let wall = started.elapsed();
    timer.abort();
    let timed_out = cancel.is_cancelled();

    let (final_text, turns, usage, ended) = match outcome {
        Ok(summary) => {
            let ended = match summary.outcome {
                sextant_core::agent::RunOutcome::Completed => None,
                sextant_core::agent::RunOutcome::MaxSteps => Some("turn limit".to_string()),
                sextant_core::agent::RunOutcome::Cancelled if timed_out => Some("time limit".to_string()),
                other => Some(format!("{other:?}").to_lowercase()),
            };
            (summary.final_text, summary.steps, summary.usage, ended)
        }
        Err(AgentError::Provider { source, partial }) => {
            (partial.final_text, partial.steps, partial.usage, Some(source.to_string()))
        }
        Err(err) => return Err(err.into()),
    };
    if args.verbose {
        eprintln!("   answer: {}", one_line(&final_text, 300));
    }
    let verdict = check(task, workspace, &final_text, isolation).await;
    let note = match (&verdict, ended) {
        (Ok(()), None) => String::new(),
        (Ok(()), Some(ended)) => format!("({ended})"),
        (Err(why), None) => why.clone(),
        (Err(why), Some(ended)) => format!("{why} ({ended})"),
    };
    Ok(TaskResult {
        id: task.id,
        model,
        success: verdict.is_ok(),
        note,
        turns,
        tool_calls: observer.calls,
        valid_calls: observer.valid_calls,
        tokens_in: usage.input_tokens,
        tokens_out: usage.output_tokens,
        wall,
    })
}

/// Counts tool calls and checks them against the tools' schemas.
#[derive(Default)]
struct BenchObserver {
    specs: Vec<ToolSpec>,
    verbose: bool,
    calls: usize,
    valid_calls: usize,
}

#[async_trait]
impl AgentObserver for BenchObserver {
    fn on_event(&mut self, event: AgentEvent) {
        match event {
            AgentEvent::ToolCallStarted { name, arguments, .. } => {
                self.calls += 1;
                let problem = call_problem(&self.specs, &name, &arguments);
                if problem.is_none() {
                    self.valid_calls += 1;
                }
                if self.verbose {
                    let verdict = problem.map(|why| format!("  [invalid: {why}]")).unwrap_or_default();
                    eprintln!("-> {} {}{verdict}", escape_controls(&name), one_line(&arguments.to_string(), 200));
                }
            }
            AgentEvent::ToolCallFinished { is_error: true, output, .. } if self.verbose => {
                eprintln!("   error: {}", one_line(&output, 300));
            }
            _ => {}
        }
    }

    async fn ask_permission(&mut self, _request: PermissionRequest) -> PermissionAnswer {
        // The bench's permissions are Allow/Deny: nothing is ever asked.
        PermissionAnswer::Deny
    }
}

/// Why a call is not a valid call of one of `specs` (`None`: it is): the
/// tool must exist and the arguments be an object with every required
/// property, no unknown one, and each of the type its schema gives.
fn call_problem(specs: &[ToolSpec], name: &str, arguments: &Value) -> Option<String> {
    let Some(spec) = specs.iter().find(|spec| spec.name == name) else {
        return Some(format!("unknown tool {name:?}"));
    };
    let empty = serde_json::Map::new();
    let given = match arguments {
        Value::Object(map) => map,
        Value::Null => &empty,
        other => return Some(format!("arguments are not an object: {other}")),
    };
    let properties = spec.parameters.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let required = spec.parameters.get("required").and_then(Value::as_array);
    for key in required.into_iter().flatten().filter_map(Value::as_str) {
        if !given.contains_key(key) {
            return Some(format!("missing argument {key:?}"));
        }
    }
    for (key, value) in given {
        let Some(schema) = properties.get(key) else {
            return Some(format!("unknown argument {key:?}"));
        };
        if !matches_type(schema, value) {
            return Some(format!("argument {key:?} is not of type {}", schema.get("type").unwrap_or(&Value::Null)));
        }
    }
    None
}

/// The JSON-schema subset the tools use: `type` (string, integer, boolean,
/// array with `items`), `minimum`.
fn matches_type(schema: &Value, value: &Value) -> bool {
    let fits_minimum = |n: f64| schema.get("minimum").and_then(Value::as_f64).is_none_or(|min| n >= min);
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("integer") => value.as_i64().is_some_and(|n| fits_minimum(n as f64)),
        Some("number") => value.as_f64().is_some_and(fits_minimum),
        Some("array") => value
            .as_array()
            .is_some_and(|items| schema.get("items").is_none_or(|item| items.iter().all(|v| matches_type(item, v)))),
        Some("object") => value.is_object(),
        _ => true,
    }
}

/// Every check of `task` on the workspace after the run; the first failure says why.
async fn check(task: &Task, workspace: &Path, final_text: &str, isolation: Isolation) -> Result<(), String> {
    let fixture: BTreeMap<&str, &str> = task.repo.iter().copied().collect();
    for check in task.checks {
        match *check {
            Check::Answer(expected) => {
                if !final_text.to_lowercase().contains(&expected.to_lowercase()) {
                    return Err(format!("the answer does not contain {expected:?}"));
                }
            }
            Check::Unchanged(path) => {
                let now = std::fs::read_to_string(workspace.join(path)).unwrap_or_default();
                if fixture.get(path).is_none_or(|original| *original != now) {
                    return Err(format!("{path} was changed"));
                }
            }
            Check::RustParses(path) => {
                let text = std::fs::read_to_string(workspace.join(path)).map_err(|err| format!("{path}: {err}"))?;
                match sextant_core::syntax::count_syntax_errors(sextant_core::repomap::Language::Rust, &text) {
                    Ok(0) => {}
                    Ok(errors) => return Err(format!("{path} has {errors} syntax errors")),
                    Err(err) => return Err(format!("{path}: {err}")),
                }
            }
            Check::Python(script) => run_python_check(workspace, script, isolation).await?,
        }
    }
    Ok(())
}

/// Runs a check script in the jail (it imports code the model wrote).
async fn run_python_check(workspace: &Path, script: &str, isolation: Isolation) -> Result<(), String> {
    if isolation == Isolation::None {
        return Err("not checked: no jail to run the check in".to_string());
    }
    let script_path = workspace.join(CHECK_SCRIPT);
    std::fs::write(&script_path, script).map_err(|err| format!("cannot write the check script: {err}"))?;
    let limits = ShellLimits { timeout: Duration::from_secs(60), ..ShellLimits::default() };
    let command = format!("python3 -B {CHECK_SCRIPT}");
    let output = tools::shell::run(workspace, &command, limits, isolation, &CancellationToken::new()).await;
    let _ = std::fs::remove_file(&script_path);
    let output = output.map_err(|err| format!("cannot run the check: {err}"))?;
    if output.exit_code == Some(0) {
        return Ok(());
    }
    let last_line = output.stderr.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("").trim();
    Err(if output.timed_out { "the check timed out".to_string() } else { last_line.to_string() })
}

fn write_fixture(root: &Path, files: &[FixtureFile]) -> anyhow::Result<()> {
    for (path, content) in files {
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, content).with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(())
}

/// A directory under the system temp dir, removed when dropped.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let path = std::env::temp_dir().join(format!("sextant-bench-agent-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
        // Canonical, so the workspace root the agent sees has no symlinked component.
        let path = path.canonicalize().with_context(|| format!("cannot resolve {}", path.display()))?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn one_line(text: &str, max_chars: usize) -> String {
    let flat = escape_controls(&text.split_whitespace().collect::<Vec<_>>().join(" "));
    let mut cut: String = flat.chars().take(max_chars).collect();
    if flat.chars().count() > max_chars {
        cut.push_str("...");
    }
    cut
}

/// CPU, core count, date (UTC) and load average, so figures can be compared.
fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string());
    println!("machine: {cpu}, {cores} cores");
    println!("date: {} UTC, load average: {load}", sextant_core::sessions::format_utc(now as i64));
}

fn print_row(result: &TaskResult, first: bool) {
    if first {
        println!("model: {}\n", result.model);
        println!(
            "{:<22} {:>7} {:>6} {:>6} {:>6} {:>9} {:>8}  note",
            "task", "success", "turns", "calls", "valid", "tokens", "time"
        );
    }
    println!(
        "{:<22} {:>7} {:>6} {:>6} {:>6} {:>9} {:>7.1}s  {}",
        result.id,
        if result.success { "yes" } else { "no" },
        result.turns,
        result.tool_calls,
        result.valid_calls,
        format!("{}/{}", result.tokens_in, result.tokens_out),
        result.wall.as_secs_f64(),
        one_line(&result.note, 120)
    );
}

fn print_totals(results: &[TaskResult]) {
    let successes = results.iter().filter(|r| r.success).count();
    let calls: usize = results.iter().map(|r| r.tool_calls).sum();
    let valid: usize = results.iter().map(|r| r.valid_calls).sum();
    let wall: Duration = results.iter().map(|r| r.wall).sum();
    let tokens_in: u64 = results.iter().map(|r| r.tokens_in).sum();
    let tokens_out: u64 = results.iter().map(|r| r.tokens_out).sum();
    let validity = if calls == 0 { "-".to_string() } else { format!("{:.0}%", 100.0 * valid as f64 / calls as f64) };
    println!(
        "\nsuccess: {successes}/{} ({:.0}%), tool-call validity: {valid}/{calls} ({validity}), \
         total time {:.0} s, \
         tokens {tokens_in} in / {tokens_out} out",
        results.len(),
        100.0 * successes as f64 / results.len().max(1) as f64,
        wall.as_secs_f64()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A solution: files to write over the fixture, and the final answer.
    struct Solution {
        files: &'static [(&'static str, &'static str)],
        answer: &'static str,
    }

    /// A correct and an incorrect solution of each task, written as a
    /// person would (the incorrect ones are near misses).
    fn solutions(id: &str) -> (Solution, Solution) {
        let answer = |answer| Solution { files: &[], answer };
        match id {
            "answer-version" => (answer("The version is 2.7.1."), answer("2.7.0")),
            "answer-rust-constant" => (answer("1609.344"), answer("1609")),
            "answer-defining-file" => (answer("`utils.py`"), answer("orders.py")),
            "docstring" => (
                Solution {
                    files: &[(
                        "utils.py",
                        "def slugify(text):\n    \"\"\"Lower-case words joined by dashes.\"\"\"\n    words = text.lower().split()\n    return \"-\".join(words)\n\n\ndef format_name(first, last):\n    return f\"{last}, {first}\"\n",
                    )],
                    answer: "done",
                },
                // A comment is not a docstring.
                Solution {
                    files: &[(
                        "utils.py",
                        "def slugify(text):\n    # Lower-case words joined by dashes.\n    words = text.lower().split()\n    return \"-\".join(words)\n\n\ndef format_name(first, last):\n    return f\"{last}, {first}\"\n",
                    )],
                    answer: "Added a docstring.",
                },
            ),
            "rename" => (
                Solution {
                    files: &[
                        ("utils.py", "def slugify(text):\n    return \"-\".join(text.lower().split())\n\n\ndef format_full_name(first, last):\n    return f\"{last}, {first}\"\n"),
                        ("orders.py", "from utils import format_full_name, slugify\n\n\ndef order_label(order_id, first, last):\n    return f\"#{order_id} {format_full_name(first, last)}\"\n"),
                        ("main.py", "from orders import order_label\nfrom utils import format_full_name\n\nprint(order_label(7, \"Ada\", \"Lovelace\"))\nprint(format_full_name(\"Alan\", \"Turing\"))\n"),
                    ],
                    answer: "renamed",
                },
                // The definition renamed, the callers forgotten.
                Solution {
                    files: &[(
                        "utils.py",
                        "def slugify(text):\n    return \"-\".join(text.lower().split())\n\n\ndef format_full_name(first, last):\n    return f\"{last}, {first}\"\n",
                    )],
                    answer: "renamed",
                },
            ),
            "fix-test" => (
                Solution {
                    files: &[(
                        "pricing.py",
                        "TAX_RATE = 0.2\n\n\ndef with_tax(price):\n    return price * (1 + TAX_RATE)\n\n\ndef discount(price, percent):\n    return price * (1 - percent / 100)\n",
                    )],
                    answer: "fixed",
                },
                // Passing by rewriting the test does not count.
                Solution {
                    files: &[(
                        "test_pricing.py",
                        "import unittest\n\n\nclass PricingTest(unittest.TestCase):\n    def test_nothing(self):\n        pass\n",
                    )],
                    answer: "fixed",
                },
            ),
            "create-file" => (
                Solution { files: &[("NOTES.md", "Deploys on Friday need two reviewers\n")], answer: "created" },
                Solution { files: &[("NOTES.md", "Deploys on Friday need two reviewers.\nMore.\n")], answer: "created" },
            ),
            "python-constant" => (
                Solution {
                    files: &[("config.py", "MAX_RETRIES = 5\nTIMEOUT_SECONDS = 30\nCURRENCY = \"EUR\"\n")],
                    answer: "changed",
                },
                Solution {
                    files: &[("config.py", "MAX_RETRIES = 5\nTIMEOUT_SECONDS = 5\nCURRENCY = \"EUR\"\n")],
                    answer: "changed",
                },
            ),
            "add-function" => (
                Solution {
                    files: &[(
                        "geometry.py",
                        "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n",
                    )],
                    answer: "added",
                },
                Solution {
                    files: &[(
                        "geometry.py",
                        "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return w + h\n",
                    )],
                    answer: "added",
                },
            ),
            "rust-constant" => (
                Solution {
                    files: &[(
                        "src/limits.rs",
                        "pub const MAX_BATCH: usize = 128;\n\npub fn fits(count: usize) -> bool {\n    count <= MAX_BATCH\n}\n",
                    )],
                    answer: "changed",
                },
                // The right line, but the file no longer parses.
                Solution {
                    files: &[(
                        "src/limits.rs",
                        "pub const MAX_BATCH: usize = 128;\n\npub fn fits(count: usize) -> bool {\n    count <= MAX_BATCH\n",
                    )],
                    answer: "changed",
                },
            ),
            other => panic!("no solutions written for task {other}"),
        }
    }

    async fn verdict(task: &Task, solution: &Solution, isolation: Isolation) -> Result<(), String> {
        let scratch = ScratchDir::new().expect("a scratch directory");
        write_fixture(&scratch.path, task.repo).expect("the fixture is written");
        let files: Vec<FixtureFile> = solution.files.to_vec();
        write_fixture(&scratch.path, &files).expect("the solution is written");
        check(task, &scratch.path, solution.answer, isolation).await
    }

    #[tokio::test]
    async fn each_checker_accepts_a_correct_solution_and_rejects_a_wrong_one() {
        let isolation = tools::detect_isolation();
        let python = std::process::Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
        if isolation == Isolation::None || !python {
            eprintln!("skipped: the checks need bubblewrap and python3 (cargo xtask setup installs bubblewrap)");
            return;
        }
        for task in TASKS {
            let (right, wrong) = solutions(task.id);
            assert_eq!(verdict(task, &right, isolation).await, Ok(()), "{}: the correct solution fails", task.id);
            let refused = verdict(task, &wrong, isolation).await;
            assert!(refused.as_ref().is_err_and(|why| !why.is_empty()), "{}: the wrong solution passes", task.id);
            // The untouched fixture never passes either.
            let untouched = Solution { files: &[], answer: "" };
            assert!(verdict(task, &untouched, isolation).await.is_err(), "{}: passes without any change", task.id);
        }
    }

    #[test]
    fn tool_calls_are_checked_against_their_schemas() {
        let specs = tools::Toolbox::new(tools::Workspace::new(std::env::temp_dir()).expect("a workspace")).specs();
        let problem = |name: &str, arguments: Value| call_problem(&specs, name, &arguments);
        assert_eq!(problem("read_file", serde_json::json!({"path": "a.py", "start_line": 2})), None);
        assert_eq!(problem("list_dir", Value::Null), None);
        assert_eq!(problem("repo_map", serde_json::json!({"focus": ["a.py"]})), None);
        assert!(
            problem("open_file", serde_json::json!({"path": "a.py"})).is_some_and(|why| why.contains("unknown tool"))
        );
        assert!(problem("read_file", serde_json::json!({})).is_some_and(|why| why.contains("missing argument")));
        assert!(problem("read_file", serde_json::json!({"file": "a.py"})).is_some_and(|why| why.contains("missing")));
        assert!(
            problem("read_file", serde_json::json!({"path": "a", "lines": 3})).is_some_and(|w| w.contains("unknown"))
        );
        assert!(problem("read_file", serde_json::json!({"path": 3})).is_some_and(|why| why.contains("type")));
        assert!(problem("read_file", serde_json::json!({"path": "a", "start_line": 0})).is_some());
        assert!(problem("repo_map", serde_json::json!({"focus": [1]})).is_some());
        assert!(problem("read_file", serde_json::json!(["a.py"])).is_some());
    }
}
