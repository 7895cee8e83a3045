//! Workspace escapes through the file tools, attempted as a hostile model
//! (scripted tool calls) and a hostile repository would, against the built
//! `sextant` binary. Each test keeps a canary file outside the workspace
//! that must stay unread (its text never reaches the model) and unchanged.
//!
//! Issue 12 attacks: 2 (undo through a swapped symlink, in all three undo
//! paths), 7 (what the chat permission prompt shows), 8 (files that run
//! later need the shell permission), 9 (hard links), 13 (FIFOs).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use scripted_provider::{Script, ScriptedServer, Turn};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

const CANARY: &str = "top secret canary\n";

mod support;

use support::Output;

struct Env {
    dir: tempfile::TempDir,
    server: ScriptedServer,
}

impl Env {
    async fn new(turns: Vec<Turn>) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let workspace = dir.path().join("workspace");
        std::fs::create_dir_all(workspace.join("src")).expect("mkdir");
        std::fs::write(workspace.join("README.md"), "# calc\n\nA tiny calculator.\n").expect("write");
        std::fs::write(workspace.join("a.txt"), "original\n").expect("write");
        std::fs::create_dir_all(dir.path().join("outside")).expect("mkdir");
        std::fs::write(dir.path().join("outside/secret.txt"), CANARY).expect("write");
        let server = ScriptedServer::start(Script::new(turns)).await.expect("server");
        Env { dir, server }
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    fn canary(&self) -> PathBuf {
        self.dir.path().join("outside/secret.txt")
    }

    /// The canary is unchanged and its text was never sent to the model.
    fn assert_canary_safe(&self) {
        assert_eq!(std::fs::read_to_string(self.canary()).expect("canary"), CANARY, "the canary was modified");
        for request in self.server.requests() {
            assert!(!request.body.to_string().contains("top secret canary"), "the canary's text reached the model");
        }
    }

    /// Replaces workspace `name` by a symlink to the canary.
    fn swap_for_canary_link(&self, name: &str) {
        let path = self.workspace().join(name);
        std::fs::remove_file(&path).expect("rm");
        std::os::unix::fs::symlink(self.canary(), &path).expect("symlink");
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = support::sextant_command(self.dir.path(), &self.workspace(), &self.server);
        command.args(args);
        command
    }

    async fn sextant(&self, args: &[&str], stdin: &str) -> Output {
        support::finish(self.command(args).spawn().expect("spawn sextant"), stdin, LIMIT).await
    }

    fn tool_results(&self) -> Vec<String> {
        support::tool_results(&self.server)
    }
}

/// Longest a run may take on a loaded CI machine.
const LIMIT: Duration = Duration::from_secs(60);

/// Waits until `path` holds `text` (the agent's write landed).
async fn wait_for_content(path: &Path, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        assert!(Instant::now() < deadline, "{} never held {text:?}", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn write_a() -> Turn {
    Turn::tool_call("w1", "write_file", json!({"path": "a.txt", "content": "agent text\n"}))
}

#[tokio::test]
async fn the_undo_tool_refuses_a_file_swapped_for_a_symlink() {
    // The undo request is answered late so the file can be swapped in between,
    // as the agent's own shell could do.
    let env = Env::new(vec![
        write_a(),
        Turn::tool_call("u1", "undo", json!({})).with_delay(Duration::from_secs(2)),
        Turn::text(["done"]),
    ])
    .await;
    let child = env
        .command(&["run", "-p", "write then undo", "--allow-edits", "--output-format", "json"])
        .spawn()
        .expect("spawn");
    wait_for_content(&env.workspace().join("a.txt"), "agent text\n").await;
    env.swap_for_canary_link("a.txt");
    let out = support::finish(child, "", LIMIT).await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let results = env.tool_results();
    assert!(results[1].contains("refusing to undo a.txt") && results[1].contains("symbolic link"), "{results:?}");
    env.assert_canary_safe();
}

#[tokio::test]
async fn chat_undo_refuses_a_file_swapped_for_a_symlink() {
    let env = Env::new(vec![write_a(), Turn::text(["Wrote a.txt."])]).await;
    let mut child = env.command(&["chat"]).spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"write a.txt\ny\n").await.expect("write");
    wait_for_content(&env.workspace().join("a.txt"), "agent text\n").await;
    env.swap_for_canary_link("a.txt");
    stdin.write_all(b"/undo\n/undo --force\n/exit\n").await.expect("write");
    drop(stdin);
    let out = support::finish(child, "", LIMIT).await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stderr.matches("refusing to undo a.txt").count(), 2, "{}", out.stderr);
    assert!(!out.stdout.contains("reverted"), "{}", out.stdout);
    env.assert_canary_safe();
}

#[tokio::test]
async fn sessions_undo_refuses_a_file_swapped_for_a_symlink() {
    let env = Env::new(vec![write_a(), Turn::text(["done"])]).await;
    let out = env.sextant(&["run", "-p", "write", "--allow-edits", "--output-format", "json"], "").await;
    let summary: Value = serde_json::from_str(&out.stdout).expect("json summary");
    let id = summary["session_id"].as_str().expect("session id").to_string();
    env.swap_for_canary_link("a.txt");
    for args in [vec!["sessions", "undo", id.as_str()], vec!["sessions", "undo", id.as_str(), "--force"]] {
        let out = env.sextant(&args, "").await;
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.stdout);
        assert!(out.stderr.contains("a.txt") && out.stderr.contains("symlink"), "{}", out.stderr);
    }
    env.assert_canary_safe();
}

#[tokio::test]
async fn the_chat_prompt_shows_controls_escaped_and_every_line_of_a_change() {
    let old: String = (1..=60).map(|n| format!("old line {n}\n")).collect();
    let search: String = (5..=45).map(|n| format!("old line {n}\n")).collect();
    let replace: String = (5..=45).map(|n| format!("new line {n}\n")).collect();
    let env = Env::new(vec![
        Turn::tool_call("e1", "edit_file", json!({"path": "long.txt", "search": search, "replace": replace})),
        Turn::tool_call("w1", "write_file", json!({"path": "README.md", "content": "replaced\n"})),
        Turn::tool_call(
            "w2",
            "write_file",
            json!({"path": "notes\r\x1b[2K.txt", "content": "safe\r\x1b[2Kevil\u{202e}\n"}),
        ),
        Turn::text(["All declined."]),
    ])
    .await;
    std::fs::write(env.workspace().join("long.txt"), &old).expect("write");
    let out = env.sextant(&["chat"], "do things\nn\nn\nn\n/exit\n").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    // The terminal gets no raw carriage return or escape from the model.
    assert!(!out.stderr.contains('\r') && !out.stderr.contains('\x1b'), "{:?}", out.stderr);
    assert!(out.stderr.contains("allow edit: create notes\\r\\x1b[2K.txt?"), "{}", out.stderr);
    // (The diff counts a lone carriage return as a line end; either way it is visible.)
    assert!(out.stderr.contains("\n+safe\\r\n+\\x1b[2Kevil\\u{202e}\n"), "{}", out.stderr);
    // Every replaced and inserted line of the long edit is shown.
    for n in 5..=45 {
        assert!(out.stderr.contains(&format!("\n-old line {n}\n")), "-old line {n} missing:\n{}", out.stderr);
        assert!(out.stderr.contains(&format!("\n+new line {n}\n")), "+new line {n} missing:\n{}", out.stderr);
    }
    // Overwriting shows what is lost, not just a size.
    assert!(out.stderr.contains("\n-A tiny calculator.\n") && out.stderr.contains("\n+replaced\n"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(env.workspace().join("long.txt")).expect("read"), old);

    // A command that would redraw its own prompt line (`touch PWNED` hidden
    // behind a carriage return and erase-line) is shown escaped and whole.
    env.server.push([
        Turn::tool_call("s1", "run_shell", json!({"command": "touch PWNED\r\x1b[2Kls -la"})),
        Turn::text(["Declined."]),
        Turn::text(["(spare answer)"]),
    ]);
    let out = env.sextant(&["chat"], "run it\nn\n/exit\n").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(!out.stderr.contains('\r') && !out.stderr.contains('\x1b'), "{:?}", out.stderr);
    if env.tool_results().iter().any(|r| r.contains("no jail is available")) {
        eprintln!(
            "notice: no shell jail on this machine, run_shell is refused before any prompt; command prompt not checked"
        );
    } else {
        assert!(out.stderr.contains("allow run: touch PWNED\\r\\x1b[2Kls -la?"), "{}", out.stderr);
        assert!(out.stderr.contains("control characters"), "{}", out.stderr);
    }
    assert!(!env.workspace().join("PWNED").exists());
    env.assert_canary_safe();
}

fn plant_exec_files(env: &Env) {
    let workspace = env.workspace();
    std::fs::create_dir_all(workspace.join(".git/hooks")).expect("mkdir");
    std::fs::write(workspace.join(".git/config"), "[core]\n\tbare = false\n").expect("write");
}

fn exec_file_calls() -> Vec<Turn> {
    let payload = "#!/bin/sh\ncat ../outside/secret.txt > leaked.txt\n";
    vec![
        Turn::tool_call("h1", "write_file", json!({"path": ".git/hooks/pre-commit", "content": payload})),
        Turn::tool_call(
            "h2",
            "edit_file",
            json!({"path": ".git/config", "search": "\tbare = false\n", "replace": "\tbare = false\n\tfsmonitor = .git/hooks/pre-commit\n"}),
        ),
        Turn::tool_call("h3", "write_file", json!({"path": ".VSCode/tasks.json", "content": "{\"tasks\": []}\n"})),
        Turn::tool_call("h4", "write_file", json!({"path": "src/ok.rs", "content": "pub fn ok() {}\n"})),
        Turn::text(["done"]),
    ]
}

#[tokio::test]
async fn files_that_run_later_need_the_shell_permission() {
    let env = Env::new(exec_file_calls()).await;
    plant_exec_files(&env);
    let out = env.sextant(&["run", "-p", "plant a hook", "--allow-edits", "--output-format", "json"], "").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let results = env.tool_results();
    for (index, path) in [(0, ".git/hooks/pre-commit"), (1, ".git/config"), (2, ".VSCode/tasks.json")] {
        assert!(
            results[index].starts_with("permission denied") && results[index].contains("needs the shell permission"),
            "{path}: {}",
            results[index]
        );
    }
    assert!(results[3].starts_with("created src/ok.rs"), "{}", results[3]);
    let workspace = env.workspace();
    assert!(!workspace.join(".git/hooks/pre-commit").exists());
    assert_eq!(std::fs::read_to_string(workspace.join(".git/config")).expect("read"), "[core]\n\tbare = false\n");
    assert!(!workspace.join(".VSCode").exists());
    let summary: Value = serde_json::from_str(&out.stdout).expect("json summary");
    assert_eq!(summary["denied"].as_array().map(Vec::len), Some(3), "{summary}");
    env.assert_canary_safe();

    // With both permissions the same calls go through (the refusal above was
    // the permission, not something else).
    let env = Env::new(exec_file_calls()).await;
    plant_exec_files(&env);
    let out = env.sextant(&["run", "-p", "plant a hook", "--allow-edits", "--allow-shell"], "").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(env.workspace().join(".git/hooks/pre-commit").exists(), "{}", out.stderr);
    assert!(std::fs::read_to_string(env.workspace().join(".git/config")).expect("read").contains("fsmonitor"));
    env.assert_canary_safe();
}

#[tokio::test]
async fn a_hard_link_to_an_outside_file_is_neither_read_nor_modified() {
    let env = Env::new(vec![
        Turn::tool_call("r1", "read_file", json!({"path": "linked.txt"})),
        Turn::tool_call("g1", "grep", json!({"pattern": "canary"})),
        Turn::tool_call("e1", "edit_file", json!({"path": "linked.txt", "search": "top secret", "replace": "pwned"})),
        Turn::tool_call("w1", "write_file", json!({"path": "linked.txt", "content": "pwned\n"})),
        Turn::tool_call("m1", "repo_map", json!({})),
        Turn::tool_call("f1", "find_symbol", json!({"name": "outside_secret_function"})),
        Turn::text(["done"]),
    ])
    .await;
    std::fs::hard_link(env.canary(), env.workspace().join("linked.txt")).expect("hard link");
    // A source file too: the repo map must not index it either.
    let outside_source = env.dir.path().join("outside/secret.rs");
    std::fs::write(&outside_source, "pub fn outside_secret_function() {}\n").expect("write");
    std::fs::hard_link(&outside_source, env.workspace().join("src/linked.rs")).expect("hard link");
    std::fs::write(env.workspace().join("src/lib.rs"), "pub fn visible_function() {}\n").expect("write");
    let out = env.sextant(&["run", "-p", "read the link", "--allow-edits", "--output-format", "json"], "").await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let results = env.tool_results();
    assert!(results[0].contains("hard links"), "{}", results[0]);
    assert!(results[1].starts_with("no matches"), "{}", results[1]);
    assert!(results[2].contains("hard links") && results[3].contains("hard links"), "{results:?}");
    assert!(results[4].contains("visible_function"), "{}", results[4]);
    assert!(!results[4].contains("outside_secret_function"), "{}", results[4]);
    assert!(!results[5].contains("src/linked.rs"), "{}", results[5]);
    for request in env.server.requests() {
        assert!(
            !request.body.to_string().contains("pub fn outside_secret_function"),
            "the outside source reached the model"
        );
    }
    env.assert_canary_safe();
}

#[tokio::test]
async fn fifos_are_refused_promptly_and_grep_passes_over_them() {
    let env = Env::new(vec![
        Turn::tool_call("r1", "read_file", json!({"path": "pipe"})),
        Turn::tool_call("g1", "grep", json!({"pattern": "calculator", "case_insensitive": true})),
        Turn::tool_call("g2", "grep", json!({"pattern": "x", "path": "pipe"})),
        Turn::tool_call("e1", "edit_file", json!({"path": "pipe", "search": "a", "replace": "b"})),
        Turn::tool_call("w1", "write_file", json!({"path": "pipe", "content": "b"})),
        Turn::text(["done"]),
    ])
    .await;
    let fifo =
        std::ffi::CString::new(env.workspace().join("pipe").into_os_string().into_encoded_bytes()).expect("path");
    // SAFETY: mkfifo reads a NUL-terminated path and nothing else.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0, "mkfifo");
    let started = Instant::now();
    let out = env.sextant(&["run", "-p", "read the pipe", "--allow-edits", "--output-format", "json"], "").await;
    let elapsed = started.elapsed();
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    let results = env.tool_results();
    assert!(results[0].contains("FIFO"), "{}", results[0]);
    assert!(results[1].contains("README.md:3: A tiny calculator."), "{}", results[1]);
    assert!(results[2].starts_with("no matches"), "{}", results[2]);
    assert!(results[3].contains("FIFO") && results[4].contains("FIFO"), "{results:?}");
    env.assert_canary_safe();
}
