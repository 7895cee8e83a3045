//! `sextant bench <what>`: benchmarks that print our figures beside a peer's.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Repo map: cold and warm indexing/render times and peak memory.
    Map(super::bench_map::Args),
    /// Embedded model: prompt and decode tokens/s.
    Embedded(super::bench_embedded::Args),
    /// HumanEval single-line infilling through sextant-lsp, beside llama.cpp.
    Infill(super::bench_infill::Args),
    /// The agent on ten small checked tasks: success and tool-call validity.
    Agent(super::bench_agent::Args),
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Map(args) => super::bench_map::run(args).await,
        What::Embedded(args) => super::bench_embedded::run(args).await,
        What::Infill(args) => super::bench_infill::run(args).await,
        What::Agent(args) => super::bench_agent::run(args).await,
    }
}
