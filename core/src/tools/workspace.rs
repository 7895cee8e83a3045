//! The workspace sandbox: every path a tool touches goes through here.
//!
//! Invariant: a `Workspace` only ever hands out absolute paths whose real
//! (symlink-resolved) location is inside the canonical root. `..` escapes,
//! absolute paths elsewhere and symlinks pointing out are refused, also for
//! files that do not exist yet (their nearest existing ancestor is checked).

use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SandboxError {
    #[error("workspace root {0} cannot be opened: {1}")]
    BadRoot(PathBuf, String),
    #[error("path {0:?} is empty")]
    Empty(String),
    #[error("path {0:?} escapes the workspace (`..` leads above the workspace root)")]
    DotDotEscape(String),
    #[error("path {0:?} is outside the workspace")]
    Outside(String),
    #[error("path {0:?} resolves through a symlink to {1}, which is outside the workspace")]
    SymlinkOutside(String, PathBuf),
    #[error("path {0:?} is a dangling symlink; refusing to write through it")]
    DanglingSymlink(String),
    #[error("cannot resolve {0:?}: {1}")]
    Io(String, String),
}

/// A directory the agent may read and write inside, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// Opens `root`, which must be an existing directory. The root is
    /// canonicalised once so later prefix checks compare real paths.
    pub fn new(root: impl AsRef<Path>) -> Result<Self, SandboxError> {
        let root = root.as_ref();
        let canonical =
            root.canonicalize().map_err(|err| SandboxError::BadRoot(root.to_path_buf(), err.to_string()))?;
        if !canonical.is_dir() {
            return Err(SandboxError::BadRoot(root.to_path_buf(), "not a directory".into()));
        }
        Ok(Workspace { root: canonical })
    }

    /// The canonical workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a path given by the model (relative to the root, or absolute
    /// inside it) for reading or writing. The file itself need not exist, but
    /// whatever part of it exists must really live inside the workspace.
    pub fn resolve(&self, requested: &str) -> Result<PathBuf, SandboxError> {
        let trimmed = requested.trim();
        if trimmed.is_empty() {
            return Err(SandboxError::Empty(requested.to_string()));
        }
        let lexical = self.normalise_lexically(requested, Path::new(trimmed))?;

        // Walk up to the deepest ancestor that exists (as a file, dir or link).
        let mut existing = lexical.clone();
        let mut missing_tail: Vec<std::ffi::OsString> = Vec::new();
        loop {
            match std::fs::symlink_metadata(&existing) {
                Ok(_) => break,
                Err(_) => {
                    let Some(name) = existing.file_name().map(|n| n.to_os_string()) else {
                        return Err(SandboxError::Outside(requested.to_string()));
                    };
                    missing_tail.push(name);
                    if !existing.pop() {
                        return Err(SandboxError::Outside(requested.to_string()));
                    }
                }
            }
        }
        let real_existing = match existing.canonicalize() {
            Ok(real) => real,
            Err(_) if is_symlink(&existing) => {
                return Err(SandboxError::DanglingSymlink(requested.to_string()));
            }
            Err(err) => return Err(SandboxError::Io(requested.to_string(), err.to_string())),
        };
        if !real_existing.starts_with(&self.root) {
            return Err(if real_existing != existing {
                SandboxError::SymlinkOutside(requested.to_string(), real_existing)
            } else {
                SandboxError::Outside(requested.to_string())
            });
        }
        let mut resolved = real_existing;
        for name in missing_tail.into_iter().rev() {
            resolved.push(name);
        }
        Ok(resolved)
    }

    /// The path relative to the root, with `/` separators, for display.
    pub fn display(&self, path: &Path) -> String {
        let relative = path.strip_prefix(&self.root).unwrap_or(path);
        let text = relative.to_string_lossy().replace('\\', "/");
        if text.is_empty() {
            ".".to_string()
        } else {
            text
        }
    }

    /// Joins a relative path onto the root (or takes an absolute one) and
    /// folds `.`/`..` without touching the file system. Refuses to climb
    /// above the root and refuses absolute paths that are not under it.
    fn normalise_lexically(&self, requested: &str, path: &Path) -> Result<PathBuf, SandboxError> {
        let mut out = if path.is_absolute() { PathBuf::new() } else { self.root.clone() };
        let floor = if path.is_absolute() { 0 } else { self.root.components().count() };
        for component in path.components() {
            match component {
                Component::Prefix(_) | Component::RootDir => out.push(component.as_os_str()),
                Component::CurDir => {}
                Component::ParentDir => {
                    if out.components().count() <= floor.max(1) {
                        return Err(SandboxError::DotDotEscape(requested.to_string()));
                    }
                    out.pop();
                }
                Component::Normal(name) => out.push(name),
            }
        }
        if path.is_absolute() && !out.starts_with(&self.root) {
            // An absolute path may name the root through a symlinked prefix
            // (e.g. /tmp vs /private/tmp); accept it only if it resolves inside.
            let resolved = deepest_existing_canonical(&out);
            match resolved {
                Some(real) if real.starts_with(&self.root) => {}
                _ => return Err(SandboxError::Outside(requested.to_string())),
            }
        } else if !out.starts_with(&self.root) {
            return Err(SandboxError::DotDotEscape(requested.to_string()));
        }
        Ok(out)
    }
}

/// Why writing `relative` (a workspace path, `/`-separated) can make code run
/// later without the user deciding to run anything, if it can.
///
/// These are files a tool executes or loads automatically on an ordinary
/// action: git on `git status` (hooks, `core.fsmonitor`), direnv on `cd`,
/// an editor on opening the folder, cargo and rustup on any cargo command
/// (rust-analyzer runs one in the background), CI on push. Writing one is as
/// powerful as running a command, outside any jail, so it needs the shell
/// permission as well as the edit permission. Project code that the user
/// builds or runs on purpose (`build.rs`, `Makefile`, `package.json`
/// scripts, tests, ...) is not listed: reviewing edits to it is the normal
/// job of reviewing the agent's work, and it is what the agent edits all
/// day. Matching is case-insensitive (case-insensitive file systems) and
/// applies at any depth (nested checkouts, a subdirectory opened later).
pub fn runs_automatically(relative: &str) -> Option<&'static str> {
    let lowered = relative.to_lowercase().replace('\\', "/");
    let parts: Vec<&str> = lowered.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let last = *parts.last()?;
    for part in &parts {
        let reason = match *part {
            ".git" => "git runs hooks and configured commands (core.fsmonitor, core.pager, filters) from .git on ordinary git commands",
            ".hg" => "Mercurial runs hooks configured in .hg/hgrc",
            ".jj" => "jj loads repository configuration from .jj",
            ".vscode" => "VS Code loads .vscode settings and tasks (tasks can run on folder open, settings choose the programs it starts)",
            ".idea" => "JetBrains IDEs load run configurations and startup tasks from .idea",
            ".devcontainer" => "dev container tools run the commands in .devcontainer when the folder is opened",
            ".circleci" => "CI runs .circleci configuration on push",
            _ => continue,
        };
        return Some(reason);
    }
    for pair in parts.windows(2) {
        let reason = match (pair[0], pair[1]) {
            (".github", "workflows" | "actions") => "GitHub runs workflows and actions on push, with the repository's secrets",
            (".cargo", "config" | "config.toml") => {
                "cargo loads .cargo/config on every cargo command (rustc wrappers, runners, aliases), also rust-analyzer's background check"
            }
            _ => continue,
        };
        return Some(reason);
    }
    let reason = match last {
        ".sextant.toml" => "Sextant loads it as project configuration",
        ".envrc" => "direnv runs .envrc when a shell enters the directory",
        ".env" => {
            "dotenv loaders (docker compose, pipenv, editors) load .env into the environment of the programs they start"
        }
        ".pre-commit-config.yaml" => "pre-commit runs the hooks it lists on every git commit",
        ".gitlab-ci.yml" | ".travis.yml" => "CI runs this configuration on push",
        ".devcontainer.json" => "dev container tools run its commands when the folder is opened",
        "rust-toolchain" | "rust-toolchain.toml" => {
            "rustup runs the toolchain it names (possibly a local path) for every cargo and rustc command"
        }
        ".npmrc" | ".yarnrc" | ".yarnrc.yml" => "npm and yarn load it on every command (script shell, yarnPath)",
        ".nvim.lua" | ".nvimrc" | ".exrc" => "Neovim and Vim run it on start-up in this directory ('exrc')",
        name if name.ends_with(".code-workspace") => "VS Code loads settings and tasks from workspace files",
        _ => return None,
    };
    Some(reason)
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).map(|m| m.file_type().is_symlink()).unwrap_or(false)
}

fn deepest_existing_canonical(path: &Path) -> Option<PathBuf> {
    let mut current = path.to_path_buf();
    loop {
        if let Ok(real) = current.canonicalize() {
            return Some(real);
        }
        if !current.pop() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Workspace, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
        std::fs::write(dir.path().join("src/lib.rs"), "fn main() {}\n").expect("write");
        std::fs::write(outside.path().join("secret.txt"), "secret").expect("write");
        let ws = Workspace::new(dir.path()).expect("workspace");
        (dir, ws, outside)
    }

    #[test]
    fn relative_paths_inside_resolve() {
        let (_dir, ws, _out) = setup();
        let path = ws.resolve("src/lib.rs").expect("inside");
        assert_eq!(path, ws.root().join("src/lib.rs"));
        assert_eq!(ws.display(&path), "src/lib.rs");
        let new_file = ws.resolve("src/new/deeper.rs").expect("new file inside");
        assert_eq!(new_file, ws.root().join("src/new/deeper.rs"));
        assert_eq!(ws.resolve("./src/../src/lib.rs").expect("folds"), ws.root().join("src/lib.rs"));
    }

    #[test]
    fn dot_dot_escape_is_refused() {
        let (_dir, ws, _out) = setup();
        assert!(matches!(ws.resolve("../x"), Err(SandboxError::DotDotEscape(_))));
        assert!(matches!(ws.resolve("src/../../x"), Err(SandboxError::DotDotEscape(_))));
        assert!(matches!(ws.resolve("a/b/../../../etc/passwd"), Err(SandboxError::DotDotEscape(_))));
    }

    #[test]
    fn absolute_paths_outside_are_refused_inside_accepted() {
        let (_dir, ws, outside) = setup();
        let secret = outside.path().join("secret.txt");
        assert!(matches!(ws.resolve(&secret.to_string_lossy()), Err(SandboxError::Outside(_))));
        assert!(matches!(ws.resolve("/etc/passwd"), Err(SandboxError::Outside(_))));
        let inside = ws.root().join("src/lib.rs");
        assert_eq!(ws.resolve(&inside.to_string_lossy()).expect("inside"), inside);
    }

    #[test]
    fn symlinks_out_are_refused_for_existing_and_new_files() {
        let (dir, ws, outside) = setup();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escape_dir")).expect("symlink");
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.path().join("escape_file")).expect("symlink");
        std::os::unix::fs::symlink(outside.path().join("missing.txt"), dir.path().join("dangling")).expect("symlink");
        assert!(matches!(ws.resolve("escape_file"), Err(SandboxError::SymlinkOutside(..))));
        assert!(matches!(ws.resolve("escape_dir/secret.txt"), Err(SandboxError::SymlinkOutside(..))));
        // A new file under a symlinked directory: the parent is checked.
        assert!(matches!(ws.resolve("escape_dir/new.txt"), Err(SandboxError::SymlinkOutside(..))));
        assert!(matches!(ws.resolve("dangling"), Err(SandboxError::DanglingSymlink(_))));
    }

    #[test]
    fn symlinks_within_the_workspace_are_fine() {
        let (dir, ws, _out) = setup();
        std::os::unix::fs::symlink(dir.path().join("src"), dir.path().join("alias")).expect("symlink");
        assert_eq!(ws.resolve("alias/lib.rs").expect("inside"), ws.root().join("src/lib.rs"));
    }

    #[test]
    fn empty_and_missing_root() {
        let (_dir, ws, _out) = setup();
        assert!(matches!(ws.resolve("  "), Err(SandboxError::Empty(_))));
        assert!(Workspace::new("/definitely/not/here").is_err());
    }

    #[test]
    fn files_that_run_later_are_recognised_case_insensitively() {
        for path in [
            ".git/hooks/pre-commit",
            ".git/config",
            ".GIT/Config",
            "vendor/lib/.git/hooks/post-checkout",
            ".git",
            ".hg/hgrc",
            ".sextant.toml",
            ".vscode/tasks.json",
            ".vscode/settings.json",
            ".VSCode/launch.json",
            ".envrc",
            "sub/.env",
            ".github/workflows/ci.yml",
            ".pre-commit-config.yaml",
            ".cargo/config.toml",
            "crates/x/.cargo/config",
            "rust-toolchain.toml",
            ".idea/workspace.xml",
            "team.code-workspace",
            "./.git/./info/../hooks/x",
        ] {
            assert!(runs_automatically(path).is_some(), "{path}");
        }
        for path in [
            "src/lib.rs",
            "build.rs",
            "Makefile",
            "package.json",
            ".gitignore",
            ".github/README.md",
            "git/config",
            "docs/.envrc.md",
        ] {
            assert_eq!(runs_automatically(path), None, "{path}");
        }
    }
}
