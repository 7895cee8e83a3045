//! `sextant trust`: approve (or revoke) a workspace's `.sextant.toml`, so its
//! provider settings apply. See `sextant_core::config::trust`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sextant_core::config::{self, trust::TrustStore};

#[derive(Parser, Debug)]
pub struct Args {
    /// Workspace whose .sextant.toml to trust (default: the current directory).
    #[arg(value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Forget the approval instead.
    #[arg(long, conflicts_with = "list")]
    pub revoke: bool,
    /// List trusted workspaces.
    #[arg(long)]
    pub list: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = TrustStore::open_default()?;
    if args.list {
        let records = store.records()?;
        if records.is_empty() {
            println!("no trusted workspaces ({})", store.path().display());
        }
        for record in records {
            println!("{}  (file hash {})", record.workspace.display(), &record.file_hash[..16]);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let dir = match args.workspace {
        Some(dir) => dir,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let root = dir.canonicalize().with_context(|| format!("cannot open {}", dir.display()))?;
    if args.revoke {
        let was = store.revoke(&root)?;
        println!("{}: {}", root.display(), if was { "no longer trusted" } else { "was not trusted" });
        return Ok(ExitCode::SUCCESS);
    }
    let Some(file) = config::find_project_file(&root) else {
        anyhow::bail!("{} has no {} (a regular file at its root) to trust", root.display(), config::PROJECT_FILE);
    };
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    // Show what trusting changes: the settings an untrusted file loses.
    let text = String::from_utf8_lossy(&bytes);
    let mut layer = config::parse_toml(&text, &file)?;
    let destination = config::project::take_destination_settings(&mut layer);
    store.trust(&root, &bytes)?;
    println!("trusted {} (this exact content; editing it lapses the trust)", file.display());
    if destination.is_empty() {
        println!("it sets no provider settings, so nothing changes until it does");
    } else {
        println!("its provider settings now apply: {}", destination.join(", "));
    }
    println!("permissions and raised limits are still never taken from a project file");
    Ok(ExitCode::SUCCESS)
}
