//! Shared helpers for the end-to-end tests.

use std::path::{Path, PathBuf};

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
