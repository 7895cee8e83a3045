//! Real editors without a Sextant plugin drive the built sextant-lsp through
//! their own LSP clients, configured with the README's snippets: Emacs 28
//! with eglot 1.9 and with lsp-mode 8.0, under `emacs --batch`, and Vim 9
//! with ALE 3.3 and with YouCompleteMe, in tmux (a real terminal, so Vim's main loop, timers and
//! insert-mode completion run as for a user; the keys are fed by the
//! script). Each scenario is a script in tests/clients/<editor>/ that writes
//! a JSON result; the assertions are here. Kakoune 2022.10 with kak-lsp
//! 17.1.2 is typed into through tmux by tests/clients/kakoune/drive.py; it
//! runs only where kak-lsp is installed (CI does not build it: ~10 minutes).
//!
//! An editor that is not installed skips its test with a one-line notice
//! naming `cargo xtask setup`, which installs them all from Debian.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use scripted_provider::{RecordedRequest, Script, ScriptedServer, Turn};
use serde_json::Value;
use sextant_tests::{built_binary, copy_dir, doc_comment_action, repo_root, EDITOR_WORKSPACE};

/// Longest a scenario may take, start-up included (a loaded 2-core CI box is slow).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

const CHAT_PROMPT: &str = "What does midpoint return?";
const CHAT_ANSWER: &str = "midpoint returns the Point halfway between a and b.";
/// The model's completion on a new line in a function body: two lines, as
/// models often answer there.
const COMPLETION: &str = "let count = points.len();\n    let _ = count;";

/// The model turns every scenario uses: the doc comment, the completion and
/// the chat answer, each matched to its own request.
fn script() -> Script {
    Script::new(vec![
        Turn::text([doc_comment_action::model_reply()]).for_body("Add a concise doc comment"),
        Turn::text([CHAT_ANSWER]).for_body(CHAT_PROMPT),
    ])
    .with_fallback(Turn::text([COMPLETION]))
}

/// `program` if it runs, else None after printing why the test is skipped.
fn installed(program: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()));
    if found.is_none() {
        eprintln!("skipping {test}: `{program}` is not installed (run `cargo xtask setup`)");
    }
    found
}

/// PATH with target/debug first, so the snippets' plain `sextant-lsp` is the built one.
fn path_with_server() -> std::ffi::OsString {
    let server_dir = built_binary("sextant-lsp").parent().map(Path::to_path_buf).unwrap_or_default();
    let mut dirs = vec![server_dir];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// One finished scenario: its JSON result and the requests the model saw.
struct Outcome {
    result: Value,
    requests: Vec<RecordedRequest>,
    /// The workspace copy, kept until the assertions are done.
    _temp: tempfile::TempDir,
}

/// Runs `command` (an editor started on a scenario script) in a fresh copy of
/// the editor workspace, with the scripted provider configured through
/// `SEXTANT_*` and a user config file (the snippets carry no settings).
/// Panics with the editor's output unless the result says `ok`.
async fn run_scenario(name: &str, mut command: tokio::process::Command) -> Outcome {
    let provider = ScriptedServer::start(script()).await.unwrap_or_else(|e| panic!("scripted provider: {e:#}"));
    let temp = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let workspace = temp.path().join("workspace");
    copy_dir(&repo_root().join(EDITOR_WORKSPACE), &workspace).unwrap_or_else(|e| panic!("copy workspace: {e}"));
    let home = temp.path().join("home");
    std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("home: {e}"));
    let config = temp.path().join("config.toml");
    std::fs::write(&config, "[lsp]\nresults = \"message\"\n[lsp.completion]\ndebounce_ms = 0\n")
        .unwrap_or_else(|e| panic!("config: {e}"));
    let result_path = temp.path().join("result.json");
    let log_path = temp.path().join("editor.log");
    let log = std::fs::File::create(&log_path).unwrap_or_else(|e| panic!("log: {e}"));
    let log_err = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
    command
        .current_dir(&workspace)
        .env("PATH", path_with_server())
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("SEXTANT_CONFIG", &config)
        .env("SEXTANT_PROVIDER", "openai")
        .env("SEXTANT_MODEL", "scripted")
        .env("SEXTANT_BASE_URL", format!("{}/v1", provider.url()))
        .env("SEXTANT_API_KEY", "test-key")
        .env("SEXTANT_MAX_RETRIES", "0")
        .env("SEXTANT_LOG", "info,sextant_lsp=debug")
        .env("SEXTANT_TEST_WORKSPACE", &workspace)
        .env("SEXTANT_TEST_RESULT", &result_path)
        .env("TMPDIR", temp.path())
        .env("SEXTANT_TEST_ACTION", doc_comment_action::TITLE)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start the editor for {name}: {e}"));
    let exit = match tokio::time::timeout(SCENARIO_TIMEOUT, child.wait()).await {
        Ok(status) => format!("{status:?}"),
        Err(_) => {
            let _ = child.kill().await;
            format!("killed after {SCENARIO_TIMEOUT:?}")
        }
    };
    let result: Value = std::fs::read_to_string(&result_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let requests = provider.requests();
    if result["ok"] != Value::Bool(true) {
        panic!(
            "{name} failed (editor: {exit})\nresult: {}\n--- editor output\n{}\n--- {} model request(s):\n{}",
            serde_json::to_string_pretty(&result).unwrap_or_default(),
            std::fs::read_to_string(&log_path).unwrap_or_default(),
            requests.len(),
            requests.iter().map(|r| format!("{} {}", r.path, r.raw_body)).collect::<Vec<_>>().join("\n"),
        );
    }
    Outcome { result, requests, _temp: temp }
}

/// src/geometry.rs after the doc-comment action and the completion accepted
/// on a new line below `let mut total = 0.0;`.
fn after_completion() -> String {
    with_completion(&doc_comment_action::expected())
}

/// `text` with the completion accepted on a new (indented) line below
/// `let mut total = 0.0;`.
fn with_completion(text: &str) -> String {
    let inserted = format!("    {COMPLETION}\n");
    text.replace("let mut total = 0.0;\n", &format!("let mut total = 0.0;\n{inserted}"))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

/// The README's snippet is the one the scenario ran: the lines between the
/// scenario's `README snippet` markers appear verbatim in README.md.
fn assert_readme_carries_snippet(script: &Path) {
    let source = std::fs::read_to_string(script).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let snippet: Vec<&str> = source
        .lines()
        .skip_while(|line| !line.contains("---- README snippet"))
        .skip(1)
        .take_while(|line| !line.contains("---- end of README snippet"))
        .collect();
    assert!(!snippet.is_empty(), "{} has no README snippet markers", script.display());
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap_or_default();
    let snippet = snippet.join("\n");
    assert!(readme.contains(&snippet), "README.md lacks the snippet tested by {}:\n{snippet}", script.display());
}

/// What every scenario checks once its editor is done.
fn assert_common(outcome: &Outcome, editor: &str) {
    assert_hover_actions_chat(outcome, editor);
    assert_eq!(
        text(&outcome.result["text_after_action"]).trim_end(),
        doc_comment_action::expected().trim_end(),
        "{editor} applied the doc comment"
    );
}

/// The hover, the code actions offered and the chat prompt reaching the model.
fn assert_hover_actions_chat(outcome: &Outcome, editor: &str) {
    let result = &outcome.result;
    let hover = text(&result["hover"]);
    assert!(hover.contains("fn distance(&self, other: &Point) -> f64"), "{editor} hover lacks the signature:\n{hover}");
    let offered: Vec<&str> = result["offered"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
    assert!(offered.contains(&doc_comment_action::TITLE), "{editor} code actions: {offered:?}");
    assert!(
        outcome.requests.iter().any(|r| r.raw_body.contains(CHAT_PROMPT)),
        "{editor}: the chat prompt reached the model"
    );
}

// ---- Emacs + eglot ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emacs_eglot() {
    let Some(emacs) = installed("emacs", "emacs_eglot") else { return };
    let script = repo_root().join("tests/clients/emacs/eglot.el");
    assert_readme_carries_snippet(&script);
    let mut command = tokio::process::Command::new(emacs);
    command.arg("--batch").arg("-l").arg(&script);
    let outcome = run_scenario("emacs_eglot", command).await;
    assert_common(&outcome, "eglot");
    let result = &outcome.result;
    // The completion item is inserted whole by completion-at-point.
    let completed = text(&result["text_after_completion"]);
    assert_eq!(completed.trim_end(), after_completion().trim_end(), "eglot's completion-at-point");
    assert_eq!(text(&result["chat_answer"]), CHAT_ANSWER);
    // Issue 15 item 8: jsonrpc in Emacs 28 shows a notification only once it
    // has read it; the result message must arrive before the response.
    let shown = text(&result["messages_when_chat_returned"]);
    assert!(shown.contains(CHAT_ANSWER), "the chat answer is in *Messages* when the request returns:\n{shown}");
    // Clean shutdown: `shutdown` answered without error, then `exit`. (jsonrpc
    // in Emacs 28 deletes the process right after sending `exit`, so its exit
    // status is eglot's SIGKILL, not the server's.)
    let events = text(&result["events"]);
    assert!(!events.contains("-32602"), "no invalid-params error in eglot's events:\n{events}");
    assert!(events.contains(":method \"shutdown\""), "eglot sent shutdown:\n{events}");
    assert!(events.contains(":method \"exit\""), "eglot sent exit:\n{events}");
}

// ---- Emacs + lsp-mode ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emacs_lsp_mode() {
    let Some(emacs) = installed("emacs", "emacs_lsp_mode") else { return };
    let script = repo_root().join("tests/clients/emacs/lsp-mode.el");
    assert_readme_carries_snippet(&script);
    let mut command = tokio::process::Command::new(emacs);
    command.arg("--batch").arg("-l").arg(&script);
    let outcome = run_scenario("emacs_lsp_mode", command).await;
    assert_common(&outcome, "lsp-mode");
    let result = &outcome.result;
    let completed = text(&result["text_after_completion"]);
    assert_eq!(completed.trim_end(), after_completion().trim_end(), "lsp-mode's completion-at-point");
    assert_eq!(text(&result["chat_answer"]), CHAT_ANSWER);
    let shown = text(&result["messages_when_chat_returned"]);
    assert!(shown.contains(CHAT_ANSWER), "the chat answer is in *Messages* when the request returns:\n{shown}");
    let progress: Vec<&str> =
        result["progress_titles"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
    assert!(progress.contains(&"Sextant chat"), "lsp-mode shows the chat's $/progress: {progress:?}");
    // Shutdown: no error reply shown (Emacs's jsonrpc deletes the process
    // after `exit`, so the exit status is its SIGKILL, not the server's).
    let messages = text(&result["messages"]);
    assert!(!messages.contains("-32602") && !messages.contains("Unexpected params"), "shutdown error:\n{messages}");
}

// ---- Vim in tmux ---------------------------------------------------------------

/// Kills a test's own tmux server (its socket is in a temporary directory
/// of its own), whatever way the scenario ends.
struct TmuxServer {
    tmux: PathBuf,
    socket: PathBuf,
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.tmux)
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `vim -Nu <script>` in a detached 120x40 tmux session of a tmux
/// server of its own; the command returns once Vim has quit.
async fn vim_scenario(name: &str, vim: &Path, tmux: &Path, script: &Path) -> Outcome {
    let socket_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tmux socket dir: {e}"));
    let socket = socket_dir.path().join("tmux");
    let _server = TmuxServer { tmux: tmux.to_path_buf(), socket: socket.clone() };
    let mut command = tokio::process::Command::new("sh");
    // The session's shell gets this environment from the tmux server, which
    // this command starts; `wait-for` blocks until Vim has quit.
    command
        .arg("-c")
        .arg(
            r#"tmux -S "$SEXTANT_TEST_TMUX" -f /dev/null new-session -d -x 120 -y 40 \
                 '"$SEXTANT_TEST_VIM" -Nu "$SEXTANT_TEST_VIM_SCRIPT"; tmux -S "$SEXTANT_TEST_TMUX" wait-for -S vim-quit' \
               && tmux -S "$SEXTANT_TEST_TMUX" wait-for vim-quit"#,
        )
        .env("SEXTANT_TEST_TMUX", &socket)
        .env("SEXTANT_TEST_VIM", vim)
        .env("SEXTANT_TEST_VIM_SCRIPT", script)
        .env_remove("TMUX");
    run_scenario(name, command).await
}

// ---- Vim + ALE ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vim_ale() {
    let Some(vim) = installed("vim", "vim_ale") else { return };
    let Some(tmux) = installed("tmux", "vim_ale") else { return };
    if !Path::new("/usr/share/vim/vimfiles/pack/dist-bundle/opt/ale").exists() {
        eprintln!("skipping vim_ale: Debian's vim-ale is not installed (run `cargo xtask setup`)");
        return;
    }
    let script = repo_root().join("tests/clients/vim/ale.vim");
    assert_readme_carries_snippet(&script);
    let outcome = vim_scenario("vim_ale", &vim, &tmux, &script).await;
    assert_hover_actions_chat(&outcome, "ALE");
    let result = &outcome.result;
    // ALE runs the picked action's command, but it declares
    // workspace.applyEdit false, so the server does not send it the edit
    // (it would wait for a reply ALE never sends): the text is unchanged.
    let completed = text(&result["text_after_completion"]);
    // Issue 15 item 3: ALE inserted a NUL byte for the multi-line item, and
    // inserts an item only up to its first `(`.
    assert_eq!(
        completed.trim_end(),
        with_completion(text(&result["text_after_action"])).trim_end(),
        "ALE's CTRL-X CTRL-O"
    );
    let shown = text(&result["chat_shown"]);
    assert!(shown.contains(CHAT_ANSWER), "the chat answer is on the screen:\n{shown}");
}

// ---- Vim + YouCompleteMe ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vim_youcompleteme() {
    let Some(vim) = installed("vim", "vim_youcompleteme") else { return };
    let Some(tmux) = installed("tmux", "vim_youcompleteme") else { return };
    if !Path::new("/usr/share/vim/vimfiles/pack/dist-bundle/opt/youcompleteme").exists() {
        eprintln!("skipping vim_youcompleteme: Debian's vim-youcompleteme is not installed (run `cargo xtask setup`)");
        return;
    }
    let script = repo_root().join("tests/clients/vim/ycm.vim");
    assert_readme_carries_snippet(&script);
    let outcome = vim_scenario("vim_youcompleteme", &vim, &tmux, &script).await;
    // The code action is listed by FixIt and applied through ycmd's
    // workspace/applyEdit handling.
    assert_common(&outcome, "YouCompleteMe");
    let result = &outcome.result;
    // YouCompleteMe lists plaintext first: no markdown shown as it is.
    let hover = text(&result["hover"]);
    assert!(!hover.contains("```") && !hover.contains("*method*"), "YouCompleteMe shows plain text:\n{hover}");
    // Issue 15 item 3: YouCompleteMe dropped the multi-line item.
    let completed = text(&result["text_after_completion"]);
    assert_eq!(completed.trim_end(), after_completion().trim_end(), "YouCompleteMe's completion, picked with Tab");
    // Issue 15 item 7: the prompt is one string argument.
    let shown = text(&result["chat_shown"]);
    assert!(shown.contains(CHAT_ANSWER), "the chat answer is in the preview window:\n{shown}");
    // Quitting Vim: ycmd sends shutdown, gets a reply without error, sends exit.
    let log_path = PathBuf::from(text(&result["ycmd_log"]));
    let mut log = String::new();
    for _ in 0..100 {
        log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains(r#""method":"exit""#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shutdown = log.lines().filter(|line| line.contains(r#""method":"shutdown""#)).count();
    assert_eq!(shutdown, 1, "ycmd sent one shutdown request:\n{log}");
    assert!(log.contains(r#""method":"exit""#), "ycmd sent exit:\n{log}");
    assert!(!log.contains("-32602") && !log.contains("Unexpected params"), "shutdown answered without error:\n{log}");
}

// ---- Kakoune + kak-lsp ----------------------------------------------------------------

/// kak-lsp on PATH, else where a local `cargo install --root target/tools/kak-lsp` put it.
fn kak_lsp() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join("kak-lsp")).find(|p| p.is_file()));
    on_path.or_else(|| Some(repo_root().join("target/tools/kak-lsp/bin/kak-lsp")).filter(|p| p.is_file()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kakoune_kak_lsp() {
    let Some(_kak) = installed("kak", "kakoune_kak_lsp") else { return };
    let Some(_tmux) = installed("tmux", "kakoune_kak_lsp") else { return };
    let Some(kak_lsp) = kak_lsp() else {
        eprintln!(
            "skipping kakoune_kak_lsp: kak-lsp is not installed (CI skips this test; build it with \
             `cargo install kak-lsp --version 17.1.2 --locked`, ~10 minutes)"
        );
        return;
    };
    let dir = repo_root().join("tests/clients/kakoune");
    assert_readme_carries_snippet(&dir.join("kakrc"));
    assert_readme_carries_snippet(&dir.join("kak-lsp.toml"));
    // kak-lsp's directory joins the scenario's PATH (built sextant-lsp first).
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(r#"PATH="$PATH:$SEXTANT_TEST_KAK_LSP_DIR" exec python3 "$SEXTANT_TEST_DRIVER""#)
        .env("SEXTANT_TEST_KAK_LSP_DIR", kak_lsp.parent().unwrap_or(Path::new("/")))
        .env("SEXTANT_TEST_DRIVER", dir.join("drive.py"));
    let outcome = run_scenario("kakoune_kak_lsp", command).await;
    assert_common(&outcome, "kak-lsp");
    let result = &outcome.result;
    // Issue 15 item 3: Kakoune inserted nothing for the multi-line item (kak-lsp 15).
    let completed = text(&result["text_after_completion"]);
    assert_eq!(completed.trim_end(), after_completion().trim_end(), "kak-lsp's completion, picked with CTRL-N");
    let shown = text(&result["chat_shown"]);
    assert!(shown.contains(CHAT_ANSWER), "the chat answer is in an info box:\n{shown}");
    let log = text(&result["kak_lsp_log"]);
    assert!(log.contains("Language server closed pipe"), "the server exited once kak-lsp stopped:\n{log}");
}
