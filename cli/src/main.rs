//! `sextant`: the command-line face of sextant-core.
//!
//! Each subcommand lives in its own file under `cmd/` with a clap `Args`
//! struct and a `run` function; this file only parses and dispatches.

use clap::{Parser, Subcommand};

mod cmd;

#[derive(Parser)]
#[command(name = "sextant", version, about = "Local-first AI code assistant: repo map, ask, agent runs, chat")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a ranked, token-budgeted map of a repository.
    Map(cmd::map::Args),
    /// Ask a question about the repository; the answer streams to the terminal.
    Ask(cmd::ask::Args),
    /// Manage models (list, pull the embedded model).
    Models(cmd::models::Args),
    /// Run the agent headless on one task.
    Run(cmd::run::Args),
    /// Interactive chat REPL with the agent.
    Chat(cmd::chat::Args),
    /// List, show, search and export stored sessions.
    Sessions(cmd::sessions::Args),
    /// Trust a workspace's .sextant.toml so its provider settings apply (or --revoke, --list).
    Trust(cmd::trust::Args),
    /// Token usage summary.
    Usage(cmd::usage::Args),
    /// Check the installation: config, model, providers, tools.
    Doctor(cmd::doctor::Args),
    /// Benchmarks (repo map, embedded model); prints figures beside a peer.
    Bench(cmd::bench::Args),
}

/// mimalloc, as tree-sitter already uses (see `repomap::extract`): indexing
/// allocates millions of small tags and strings across rayon threads, where
/// glibc's per-thread arenas cost ~25% of a warm repo map in page faults and
/// `mprotect` calls.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    cmd::init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Map(args) => cmd::map::run(args).await,
            Command::Ask(args) => cmd::ask::run(args).await,
            Command::Models(args) => cmd::models::run(args).await,
            Command::Run(args) => cmd::run::run(args).await,
            Command::Chat(args) => cmd::chat::run(args).await,
            Command::Sessions(args) => cmd::sessions::run(args).await,
            Command::Usage(args) => cmd::usage::run(args).await,
            Command::Trust(args) => cmd::trust::run(args).await,
            Command::Doctor(args) => cmd::doctor::run(args).await,
            Command::Bench(args) => cmd::bench::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
