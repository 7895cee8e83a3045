//! Checks of the non-Rust sources that `cargo xtask test` runs before the
//! tests, so CI rejects drift there too (the VS Code extension's `tsc` and
//! ESLint run inside its `npm run compile`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Compiles every Lua file of the Neovim plugin with Neovim's own LuaJIT
/// (`loadfile` parses without running), so a syntax error fails here rather
/// than in a user's editor. Neovim 0.7 is what `setup` installs.
pub fn neovim_lua(root: &Path) -> Result<()> {
    let files = lua_files(&root.join("editors/nvim"))?;
    if files.is_empty() {
        bail!("no Lua files under editors/nvim");
    }
    let list = files.iter().map(|path| format!("{:?}", path.display().to_string())).collect::<Vec<_>>().join(",");
    let script = format!(
        "local failed = false \
         for _, path in ipairs({{{list}}}) do \
           local ok, err = loadfile(path) \
           if not ok then io.stderr:write(err .. '\\n') failed = true end \
         end \
         if failed then vim.cmd('cquit 1') else vim.cmd('quitall!') end"
    );
    let output = Command::new(crate::setup::NVIM_07)
        .args(["--headless", "-u", "NONE", "-i", "NONE", "--noplugin", "-c", &format!("lua {script}")])
        .output()
        .with_context(|| format!("cannot run {} (installed by `cargo xtask setup`)", crate::setup::NVIM_07))?;
    if !output.status.success() {
        bail!("Lua syntax errors in the Neovim plugin:\n{}", String::from_utf8_lossy(&output.stderr));
    }
    eprintln!("xtask: {} Lua files of the Neovim plugin compile", files.len());
    Ok(())
}

fn lua_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            found.extend(lua_files(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "lua") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}
