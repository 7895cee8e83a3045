//! sextant-lsp driven over stdio by the real node client library
//! (vscode-languageserver-protocol 3.18.5). Each scenario is a script in
//! tests/clients/node/; it starts the built server (and, where needed, the
//! scripted-provider binary) and asserts; here we run it and report.
//!
//! Needs `cargo build --workspace --bins` first (the xtask test step does it)
//! and `npm ci` in tests/clients/node (`cargo xtask setup`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sextant_tests::{built_binary, repo_root, require_node_package};

/// A scenario on a loaded 2-core CI box: start-up, indexing and a few model
/// round trips. Far above what it needs, far below "hung".
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);

fn run_scenario(script: &str) {
    let root = repo_root();
    let client_dir = root.join("tests/clients/node");
    require_node_package(&client_dir, "vscode-languageserver-protocol");
    let mut child = Command::new("node")
        .arg(client_dir.join(script))
        .current_dir(&client_dir)
        .env("SEXTANT_LSP_BIN", built_binary("sextant-lsp"))
        .env("SCRIPTED_PROVIDER_BIN", built_binary("scripted-provider"))
        .env("SEXTANT_FIXTURE", root.join("tests/fixtures/lsp-workspace"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start node (is Node.js installed?): {error}"));
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let stdout = child.stdout.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            text
        })
    });
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            text
        })
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > SCENARIO_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(error) => panic!("waiting for node failed: {error}"),
        }
    };
    let stdout = stdout.and_then(|t| t.join().ok()).unwrap_or_default();
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    println!("{stdout}");
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("{script} failed ({status}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}"),
        None => panic!("{script} timed out after {SCENARIO_TIMEOUT:?}:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"),
    }
}

#[test]
fn lsp_protocol_basics() {
    run_scenario("lsp_protocol.mjs");
}

#[test]
fn lsp_inline_completion() {
    run_scenario("lsp_completion.mjs");
}

#[test]
fn lsp_code_actions_commands_and_configuration() {
    run_scenario("lsp_actions.mjs");
}

/// A repository's `.sextant.toml` cannot grant the editor's agent permissions.
#[test]
fn lsp_project_config_grants_no_permissions() {
    run_scenario("lsp_project_config.mjs");
}

/// What Vim's ALE and YouCompleteMe declare: plaintext, no applyEdit, no
/// documentChanges, one-character cursor ranges, string arguments.
#[test]
fn lsp_minimal_client() {
    run_scenario("lsp_minimal_client.mjs");
}
