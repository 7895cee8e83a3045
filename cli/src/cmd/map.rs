//! `sextant map`: print a ranked, token-budgeted map of a repository.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use sextant_core::repomap::{self, IndexOptions, MapRequest, NoteReason, Progress, RepoIndex};

/// Show the progress bar only when indexing takes longer than this.
const PROGRESS_DELAY: Duration = Duration::from_millis(300);
/// List notes one by one up to this many; summarise by reason beyond.
const MAX_LISTED_NOTES: usize = 10;

#[derive(clap::Args)]
pub struct Args {
    /// Repository root to map.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Token budget of the map (as counted by sextant's token estimator).
    #[arg(long, default_value_t = 1024)]
    pub tokens: usize,
    /// A file you are working on (personalises the ranking; left out of the
    /// map unless --include-focus). Repeatable.
    #[arg(long = "focus", value_name = "FILE")]
    pub focus: Vec<PathBuf>,
    /// An identifier you care about (its definitions rank higher). Repeatable.
    #[arg(long = "mention", value_name = "IDENT")]
    pub mention: Vec<String>,
    /// Also show definitions from the focus files.
    #[arg(long)]
    pub include_focus: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Do not read or write the tag cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Tag cache directory (default: the user cache dir, keyed by the root).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Indexing is CPU-bound (rayon inside); keep it off the async runtime.
    tokio::task::spawn_blocking(move || run_blocking(&args)).await.context("the map task failed")?
}

fn run_blocking(args: &Args) -> anyhow::Result<ExitCode> {
    let root = args.path.clone();
    if !root.is_dir() {
        anyhow::bail!("{} is not a directory", root.display());
    }
    let options = IndexOptions {
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir.clone().or_else(|| repomap::default_cache_dir(&root))
        },
    };
    let index = index_with_progress(&root, &options)?;
    report_notes(&index);

    let request = MapRequest {
        focus_files: args.focus.iter().map(|focus| workspace_relative(&root, focus)).collect(),
        mentioned_idents: args.mention.clone(),
        token_budget: args.tokens,
        include_focus_files: args.include_focus,
    };
    let render_started = Instant::now();
    let rendered = index.map.render(&request);
    tracing::debug!(elapsed = ?render_started.elapsed(), tokens = rendered.tokens, "repo map: rendered");

    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Text => stdout.write_all(rendered.text.as_bytes())?,
        Format::Json => {
            let json = serde_json::json!({
                "root": root.display().to_string(),
                "budget": args.tokens,
                "tokens": rendered.tokens,
                "text": rendered.text,
                "files": rendered.files,
                "notes": index.notes,
                "stats": index.stats,
            });
            serde_json::to_writer_pretty(&mut stdout, &json)?;
            stdout.write_all(b"\n")?;
        }
    }
    stdout.flush()?;
    // The process ends right after this: freeing hundreds of thousands of
    // tags one by one would only delay the exit.
    std::mem::forget(index);
    Ok(ExitCode::SUCCESS)
}

/// Loads the index, drawing an indicatif bar on stderr if that is a terminal
/// and indexing is slow.
pub fn index_with_progress(root: &Path, options: &IndexOptions) -> anyhow::Result<RepoIndex> {
    let interactive = std::io::stderr().is_terminal();
    let started = Instant::now();
    let bar: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);
    let progress = |event: Progress| {
        let Progress::Indexed { done, total } = event else {
            return;
        };
        if !interactive || started.elapsed() < PROGRESS_DELAY {
            return;
        }
        let Ok(mut bar) = bar.lock() else { return };
        let bar = bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template("indexing {bar:30} {pos}/{len} files {elapsed}")
            {
                bar.set_style(style);
            }
            bar
        });
        bar.set_position(done as u64);
    };
    let result = repomap::load_or_build(root, options, &progress);
    if let Ok(Some(bar)) = bar.into_inner() {
        bar.finish_and_clear();
    }
    Ok(result?)
}

/// Prints notes about skipped files and cache problems on stderr.
pub fn report_notes(index: &RepoIndex) {
    if let Some(warning) = &index.cache_warning {
        eprintln!("warning: {warning}");
    }
    if index.notes.is_empty() {
        return;
    }
    if index.notes.len() <= MAX_LISTED_NOTES {
        for note in &index.notes {
            eprintln!("note: {}: {}", note.path, note.reason);
        }
        return;
    }
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for note in &index.notes {
        let label = match note.reason {
            NoteReason::Binary => "binary",
            NoteReason::NotUtf8 => "not UTF-8",
            NoteReason::TooLarge { .. } => "too large",
            NoteReason::Unreadable { .. } => "unreadable",
            NoteReason::SyntaxErrors { .. } => "with syntax errors (indexed)",
            NoteReason::UnsupportedLanguage => "unsupported",
        };
        *counts.entry(label).or_insert(0) += 1;
    }
    let summary: Vec<String> = counts.iter().map(|(label, count)| format!("{count} {label}")).collect();
    eprintln!("note: {} files noted: {} (use --format json for the list)", index.notes.len(), summary.join(", "));
}

/// A focus path as the map knows it: relative to the root, `/`-separated.
/// Accepts paths relative to the current directory or to the root.
fn workspace_relative(root: &Path, focus: &Path) -> String {
    if let (Ok(root), Ok(file)) = (std::fs::canonicalize(root), std::fs::canonicalize(focus)) {
        if let Ok(relative) = file.strip_prefix(&root) {
            return relative.components().map(|part| part.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        }
    }
    focus.components().map(|part| part.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}
