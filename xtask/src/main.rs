//! Dev tooling (`cargo xtask <task>`), in Rust rather than shell scripts.
//!
//! - `setup`: install what the tests need (node packages, Neovim 0.7 and 0.11,
//!   the embedded model, code-server and Chromium, Emacs with eglot and
//!   lsp-mode). Idempotent: anything already present is skipped.
//! - `lint`: `cargo fmt --check` (rustfmt.toml), `cargo clippy -D warnings`
//!   and a Lua syntax check of the Neovim plugin.
//! - `test`:  `setup`, `lint`, then the whole test suite (cargo tests, which
//!   drive the real clients, after the VS Code extension's build with tsc and
//!   ESLint, its unit tests and package).
//! - `bench <what>`: benchmarks that print figures beside a peer.
//! - `peer llama-cpp`: build llama.cpp's `llama-bench` and `llama-server`
//!   from pinned sources, the peer of `bench embedded` and `bench infill`
//!   (not part of `setup`: it takes over 25 minutes on 2 cores).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

mod lint;
mod peer;
mod setup;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("setup") => setup::all(&root),
        Some("lint") => lint(&root),
        Some("test") => {
            setup::all(&root)?;
            test(&root)
        }
        Some("bench") => {
            run(Command::new(cargo()).args(["build", "--release", "-p", "sextant", "-p", "sextant-lsp"]))?;
            let mut cmd = Command::new(root.join("target/release/sextant"));
            cmd.arg("bench").args(&args[1..]);
            run(&mut cmd)
        }
        Some("peer") => peer::main(&root, &args[1..]),
        _ => bail!("usage: cargo xtask <setup|lint|test|bench [ARGS]|peer llama-cpp>"),
    }
}

fn lint(root: &Path) -> Result<()> {
    run(Command::new(cargo()).args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new(cargo()).args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    lint::neovim_lua(root)
}

fn test(root: &Path) -> Result<()> {
    // Drift is rejected before anything runs: formatting and lints.
    lint(root)?;
    // Binaries first: the end-to-end tests spawn them from target/debug.
    run(Command::new(cargo()).args(["build", "--workspace", "--bins"]))?;
    // The .vsix too: the code-server test installs it as a user would.
    setup::vscode_package(root)?;
    let mut cargo_test = Command::new(cargo());
    cargo_test.args(["test", "--workspace", "--no-fail-fast"]);
    setup::test_env(root, &mut cargo_test);
    run(&mut cargo_test)?;
    Ok(())
}

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}
