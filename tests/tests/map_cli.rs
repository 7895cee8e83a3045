//! `sextant map` end to end: the built binary on a temp copy of the Python
//! fixture package (plus a binary file), checking the JSON and text outputs,
//! the token budget, the notes and argument errors.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the built `sextant` with `args`, failing the test after `TIMEOUT`.
fn run_sextant(args: &[&str], cwd: &Path) -> Output {
    let binary = sextant_tests::built_binary("sextant");
    let child = Command::new(&binary)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(TIMEOUT) {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => panic!("waiting for sextant {args:?} failed: {error}"),
        Err(_) => panic!("sextant {args:?} did not finish within {TIMEOUT:?}"),
    }
}

/// A temp copy of the python_pkg fixture with a binary `.py` file added.
fn python_workspace() -> tempfile::TempDir {
    let workspace = tempfile::tempdir().expect("temp dir");
    let fixture = sextant_tests::repo_root().join("tests/fixtures/repomap/python_pkg");
    sextant_tests::copy_dir(&fixture, workspace.path()).expect("copy the fixture");
    std::fs::write(workspace.path().join("blob.py"), b"\x7fELF\x00\x00\x01binary\x00").expect("write the binary file");
    workspace
}

fn stdout_text(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

#[test]
fn json_output_respects_the_budget_and_lists_skipped_files() {
    let workspace = python_workspace();
    let root = workspace.path().to_string_lossy().into_owned();
    let output = run_sextant(&["map", &root, "--no-cache", "--format", "json", "--tokens", "300"], workspace.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}: {stderr}", output.status);
    let json: Value = serde_json::from_str(&stdout_text(&output)).expect("stdout is JSON");

    assert_eq!(json["budget"], 300);
    let tokens = json["tokens"].as_u64().expect("tokens is a number");
    assert!(tokens <= 300, "{tokens} tokens over a budget of 300");
    assert!(tokens > 0, "the map is empty: {json}");
    let text = json["text"].as_str().expect("text is a string");
    assert!(text.contains("shapes/circle.py"), "{text}");

    let notes = json["notes"].as_array().expect("notes is an array");
    let reason_of = |path: &str| notes.iter().find(|note| note["path"] == path).map(|note| note["reason"].clone());
    assert_eq!(reason_of("blob.py"), Some(Value::from("binary")), "{notes:?}");
    assert_eq!(reason_of("legacy_latin1.py"), Some(Value::from("not_utf8")), "{notes:?}");
    // Hidden directories are not walked.
    assert!(reason_of(".hidden/secret.py").is_none(), "{notes:?}");
    // The same notes are reported on stderr for people.
    assert!(stderr.contains("blob.py: binary file"), "{stderr}");
    assert!(stderr.contains("legacy_latin1.py: not UTF-8"), "{stderr}");
}

#[test]
fn text_output_puts_the_mentioned_definition_first() {
    let workspace = python_workspace();
    let output = run_sextant(
        &["map", ".", "--no-cache", "--tokens", "300", "--focus", "main.py", "--mention", "clamp"],
        workspace.path(),
    );
    assert!(output.status.success(), "exit {:?}: {}", output.status, String::from_utf8_lossy(&output.stderr));
    let text = stdout_text(&output);
    let first_signature =
        text.lines().find(|line| line.starts_with('│')).unwrap_or_else(|| panic!("no definition shown:\n{text}"));
    assert!(first_signature.contains("def clamp"), "first definition is {first_signature:?}:\n{text}");
    let first_header = text.lines().find(|line| line.ends_with(':') && !line.starts_with('│'));
    assert_eq!(first_header, Some("shapes/util.py:"), "{text}");
    // The focus file itself is left out of the map.
    assert!(!text.contains("main.py:"), "{text}");
}

#[test]
fn malformed_token_budget_is_a_clear_error() {
    let workspace = python_workspace();
    let output = run_sextant(&["map", ".", "--tokens", "abc"], workspace.path());
    assert!(!output.status.success(), "`--tokens abc` was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tokens") && stderr.contains("abc"), "unclear error: {stderr}");
    assert!(output.stdout.is_empty(), "{}", stdout_text(&output));
}
