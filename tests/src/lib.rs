//! Shared helpers for the end-to-end tests.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};

use serde_json::Value;

/// The workspace checkout (the parent of this crate).
pub fn repo_root() -> PathBuf {
    let tests_crate = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests_crate.parent().unwrap_or(tests_crate).to_path_buf()
}

/// A binary the end-to-end tests spawn from target/debug; fails the test
/// with what to run when it has not been built.
pub fn built_binary(name: &str) -> PathBuf {
    let path = repo_root().join("target/debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`, done by `cargo xtask test`)",
        path.display()
    );
    path
}

/// Reads LSP frames (JSON bodies) from a server's stdout on a thread; the
/// receiver ends when the stream does or a frame is unreadable.
pub fn lsp_frames(stdout: impl Read + Send + 'static) -> Receiver<Value> {
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        loop {
            let mut length = None;
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
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
            if let Ok(value) = serde_json::from_slice(&body) {
                if sender.send(value).is_err() {
                    return;
                }
            }
        }
    });
    receiver
}

/// Copies the directory tree `from` to `to` (a fixture into a temp dir).
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Fails the test, saying what to run, when `npm ci` has not installed
/// `package` in the node project at `dir`.
pub fn require_node_package(dir: &Path, package: &str) {
    assert!(
        dir.join("node_modules").join(package).exists(),
        "node packages are missing in {}: run `cargo xtask setup` (npm ci)",
        dir.display()
    );
}

/// The editor clients' fixture workspace (Rust: a `Point` and functions on it).
pub const EDITOR_WORKSPACE: &str = "tests/clients/nvim/workspace";

/// `src/geometry.rs` of the editor workspace, as in the fixture.
pub fn geometry_fixture() -> String {
    let path = repo_root().join(EDITOR_WORKSPACE).join("src/geometry.rs");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// The "add doc comment" code action on `perimeter` in the editor workspace's
/// `src/geometry.rs`, as every editor test scripts and checks it.
pub mod doc_comment_action {
    use super::geometry_fixture;

    pub const TITLE: &str = "Sextant: add doc comment to `perimeter`";
    const DOC_LINE: &str = "/// Sum of the distances between consecutive points.";

    /// The model's reply: the item with its new doc comment, in a fence.
    pub fn model_reply() -> String {
        let item = "pub fn perimeter(points: &[Point]) -> f64 {
    let mut total = 0.0;
    for pair in points.windows(2) {
        total += pair[0].distance(&pair[1]);
    }
    total
}
";
        format!("Here it is:\n```rust\n{DOC_LINE}\n{item}```\n")
    }

    /// `src/geometry.rs` after the edit: the doc line above `perimeter`, nothing else.
    pub fn expected() -> String {
        geometry_fixture().replace("pub fn perimeter", &format!("{DOC_LINE}\npub fn perimeter"))
    }
}
