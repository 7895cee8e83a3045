//! `sextant bench map`: repo-map speed and memory, beside universal-ctags
//! and, where it is installed, aider's repo map.
//!
//! For each repository it measures
//! - in-process: cold index (walk + read + parse, no cache), warm index (tag
//!   cache present), render, and an in-memory re-render with a new focus;
//! - as child processes (peak memory = the child's max RSS from `wait4`):
//!   `sextant map` cold (`--no-cache`) and warm (cache present), and the peer
//!   `ctags -R` (universal-ctags) on the same tree, and aider's `RepoMap`
//!   cold and warm (`bench_map_aider.py`; aider-chat is a large pip package,
//!   so it is looked for, not installed).
//!
//! Timings are medians over `--runs`. Nothing here asserts a target: it prints
//! figures for people to compare.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use sextant_core::repomap::{self, IndexOptions, MapRequest, RepoIndex, Role};

const CORPUS_HELP: &str = "\
Corpora (no network but the package registries is needed):
  Rust:   crates already in ~/.cargo/registry/src/*/ after a workspace build,
          e.g. `sextant bench map ~/.cargo/registry/src/*/tokio-1.*`. More crates:
          `cargo new /tmp/corpus-rs && cd /tmp/corpus-rs && cargo add tokio --features full && cargo fetch`.
  Python: `python3 -m pip download --no-deps --no-binary :all: django -d /tmp/corpus`
          then `tar xzf /tmp/corpus/django-*.tar.gz -C /tmp/corpus` and
          `sextant bench map /tmp/corpus/django-*/`.
  Peers:  `apt-get install universal-ctags` (measured as `ctags -R`);
          `pip install aider-chat` (its RepoMap, run by the python in
          $SEXTANT_AIDER_PYTHON, else python3).";

#[derive(clap::Args)]
#[command(after_help = CORPUS_HELP)]
pub struct Args {
    /// Repositories to measure.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Token budget of the rendered maps.
    #[arg(long, default_value_t = 1024)]
    pub tokens: usize,
    /// Repetitions per timing, in-process and child process (the median is
    /// printed).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(move || {
        // Child processes first, for every repo, while this process is still
        // small: Linux carries the parent's peak RSS into a spawned child's
        // ru_maxrss, so the parent's size is a floor under every figure.
        let scratch = tempfile_dir()?;
        let mut children = Vec::new();
        for (number, path) in args.paths.iter().enumerate() {
            if !path.is_dir() {
                anyhow::bail!("{} is not a directory\n\n{CORPUS_HELP}", path.display());
            }
            children.push(measure_children(path, &scratch.join(number.to_string()), args.tokens, args.runs)?);
        }
        for (path, children) in args.paths.iter().zip(children) {
            bench_in_process(path, &scratch, &args, children)?;
        }
        let _ = std::fs::remove_dir_all(&scratch);
        Ok(ExitCode::SUCCESS)
    })
    .await
    .context("the benchmark task failed")?
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn timed<T>(runs: usize, mut action: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let mut samples = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        last = Some(action()?);
        samples.push(started.elapsed());
    }
    let last = last.context("no benchmark run happened")?;
    Ok((median(samples), last))
}

fn no_progress(_: repomap::Progress) {}

struct ChildFigures {
    cold: ChildRun,
    warm: ChildRun,
    ctags: Result<ChildRun, String>,
    aider: Result<AiderRuns, String>,
}

/// aider's repo map: one cold run (it takes seconds to minutes) and the
/// median of the warm ones.
struct AiderRuns {
    cold: ChildRun,
    warm: ChildRun,
}

/// `sextant map` cold and warm, and `ctags -R`, as child processes (each the
/// median of `runs`: a single spawn is too noisy on a shared machine).
fn measure_children(root: &Path, scratch: &Path, tokens: usize, runs: usize) -> anyhow::Result<ChildFigures> {
    std::fs::create_dir_all(scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let exe = std::env::current_exe().context("cannot find the sextant executable")?;
    let budget = tokens.to_string();
    let map = || {
        let mut command = Command::new(&exe);
        command.arg("map").arg(root).args(["--tokens", &budget]);
        command
    };
    let cold = median_child(runs, || measure_child(map().arg("--no-cache")))?;
    let cache = scratch.join("child-cache");
    measure_child(map().arg("--cache-dir").arg(&cache))?; // populate
                                                          // Let the racy-mtime window pass so the warm run trusts file stats.
    std::thread::sleep(repomap::index::RACY_WINDOW);
    let warm = median_child(runs, || measure_child(map().arg("--cache-dir").arg(&cache)))?;
    let ctags = measure_ctags(root, scratch);
    let aider = measure_aider(root, scratch, &budget, runs);
    Ok(ChildFigures { cold, warm, ctags, aider })
}

/// The run with the median wall time out of `runs` (at least one).
fn median_child(runs: usize, mut run: impl FnMut() -> anyhow::Result<ChildRun>) -> anyhow::Result<ChildRun> {
    let mut samples = Vec::new();
    for _ in 0..runs.max(1) {
        samples.push(run()?);
    }
    samples.sort_by_key(|sample| sample.wall);
    let middle = samples.len() / 2;
    Ok(samples.swap_remove(middle))
}

fn bench_in_process(root: &Path, scratch: &Path, args: &Args, children: ChildFigures) -> anyhow::Result<()> {
    let request = MapRequest { token_budget: args.tokens, ..MapRequest::default() };
    let (cold, index) = timed(args.runs, || Ok(repomap::load_or_build(root, &IndexOptions::default(), &no_progress)?))?;
    let with_cache = IndexOptions { cache_dir: Some(scratch.join(format!("cache-{}", file_name_label(root)))) };
    repomap::load_or_build(root, &with_cache, &no_progress)?; // populate
    std::thread::sleep(repomap::index::RACY_WINDOW);
    let (warm, _) = timed(args.runs, || Ok(repomap::load_or_build(root, &with_cache, &no_progress)?))?;
    let (render, rendered) = timed(args.runs, || Ok(index.map.render(&request)))?;
    let refocus = MapRequest {
        focus_files: index.map.files().nth(index.map.file_count() / 2).map(str::to_string).into_iter().collect(),
        mentioned_idents: vec!["new".to_string()],
        ..request.clone()
    };
    let (rerender, _) = timed(args.runs, || Ok(index.map.render(&refocus)))?;
    print_report(root, &index, &rendered.text, Figures { cold, warm, render, rerender, children });
    Ok(())
}

/// A file-name-safe label for a path.
fn file_name_label(path: &Path) -> String {
    path.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

struct Figures {
    cold: Duration,
    warm: Duration,
    render: Duration,
    rerender: Duration,
    children: ChildFigures,
}

fn print_report(root: &Path, index: &RepoIndex, text: &str, figures: Figures) {
    let ctags = &figures.children.ctags;
    let tags = index.map.tag_count();
    let definitions: usize = index
        .map
        .files()
        .map(|path| index.map.file_tags(path).iter().filter(|tag| tag.role == Role::Definition).count())
        .sum();
    println!("repo map benchmark: {}", root.display());
    println!(
        "  {} files indexed ({} noted), {} tags ({} definitions), map {} tokens, {} threads",
        index.map.file_count(),
        index.notes.len(),
        tags,
        definitions,
        sextant_core::tokens::count(text),
        rayon_threads(),
    );
    let figure = |run: &ChildRun| format!("{:>8.3} s {:>7.1} MB", run.wall.as_secs_f64(), run.max_rss_mb);
    let peer = |run: &Result<ChildRun, String>| match run {
        Ok(run) => figure(run),
        Err(why) => format!("peer unavailable: {why}"),
    };
    println!("  {:<44} {:<22} ctags -R (universal-ctags)", "", "sextant");
    println!(
        "  {:<44} {:>8.3} s {:>7.1} MB  {}",
        "cold: `sextant map --no-cache` (process)",
        figures.children.cold.wall.as_secs_f64(),
        figures.children.cold.max_rss_mb,
        peer(ctags)
    );
    println!(
        "  {:<44} {:>8.3} s {:>7.1} MB  n/a (ctags has no cache)",
        "warm: `sextant map` with tag cache (process)",
        figures.children.warm.wall.as_secs_f64(),
        figures.children.warm.max_rss_mb,
    );
    println!("  {:<44} {:>8.3} s", "cold index, in-process (walk+read+parse)", figures.cold.as_secs_f64());
    println!("  {:<44} {:>8.3} s", "warm index, in-process (tag cache)", figures.warm.as_secs_f64());
    println!("  {:<44} {:>8.3} s", "render (rank + budget fit)", figures.render.as_secs_f64());
    println!("  {:<44} {:>8.3} s", "warm in-memory re-render (new focus)", figures.rerender.as_secs_f64());
    match &figures.children.aider {
        Ok(aider) => println!(
            "  aider repo map (same files; cold once, warm median):  cold {}  warm {}",
            figure(&aider.cold).trim_start(),
            figure(&aider.warm).trim_start(),
        ),
        Err(why) => println!("  aider repo map: peer unavailable: {why}"),
    }
    println!("  (process peak memory includes this benchmark's own small footprint, inherited by spawned children)");
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

struct ChildRun {
    wall: Duration,
    max_rss_mb: f64,
}

/// Runs a command to completion with output discarded, returning its wall
/// time and peak resident memory (from `wait4`).
fn measure_child(command: &mut Command) -> anyhow::Result<ChildRun> {
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our un-reaped child; the pointers are valid for the call.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if reaped != pid {
        anyhow::bail!("waiting for {command:?} failed: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        anyhow::bail!("{command:?} failed (wait status {status})");
    }
    // Linux reports ru_maxrss in KiB.
    Ok(ChildRun { wall, max_rss_mb: usage.ru_maxrss as f64 / 1024.0 })
}

fn measure_ctags(root: &Path, scratch: &Path) -> Result<ChildRun, String> {
    let version = Command::new("ctags").arg("--version").stderr(Stdio::null()).output();
    match version {
        Ok(output) if String::from_utf8_lossy(&output.stdout).contains("Universal Ctags") => {}
        Ok(_) => return Err("`ctags` is not universal-ctags (apt-get install universal-ctags)".to_string()),
        Err(_) => return Err("universal-ctags is not installed (apt-get install universal-ctags)".to_string()),
    }
    let tags_file = scratch.join("ctags.tags");
    measure_child(
        Command::new("ctags").args(["-R", "--languages=Rust,Python", "--fields=+nS", "-f"]).arg(&tags_file).arg(root),
    )
    .map_err(|error| format!("{error:#}"))
}

/// The peer script, written next to the peers' other scratch files.
const AIDER_SCRIPT: &str = include_str!("bench_map_aider.py");

/// aider's `RepoMap` on the same files with the same budget, its tag cache
/// kept in `scratch` (never in the measured tree).
fn measure_aider(root: &Path, scratch: &Path, budget: &str, runs: usize) -> Result<AiderRuns, String> {
    let python = std::env::var("SEXTANT_AIDER_PYTHON").unwrap_or_else(|_| "python3".to_string());
    // litellm (imported by aider) otherwise fetches its model price list.
    let offline = [("LITELLM_LOCAL_MODEL_COST_MAP", "True")];
    let importable = Command::new(&python)
        .args(["-c", "import aider.repomap"])
        .envs(offline)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !importable {
        return Err(format!(
            "aider-chat is not installed for `{python}` (pip install aider-chat; SEXTANT_AIDER_PYTHON picks the python)"
        ));
    }
    let script = scratch.join("bench_map_aider.py");
    std::fs::write(&script, AIDER_SCRIPT).map_err(|error| format!("cannot write {}: {error}", script.display()))?;
    let cache = scratch.join("aider-cache");
    let run = || measure_child(Command::new(&python).arg(&script).arg(root).arg(budget).arg(&cache).envs(offline));
    let failed = |error: anyhow::Error| format!("{error:#}");
    let cold = run().map_err(failed)?;
    let warm = median_child(runs, run).map_err(failed)?;
    Ok(AiderRuns { cold, warm })
}

/// A private scratch directory for caches and the peer's output.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sextant-bench-map-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
