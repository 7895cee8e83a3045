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

/// The CPU's model name from /proc/cpuinfo, for benchmark headers.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|line| line.starts_with("model name"))?;
            line.split_once(':').map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

/// The 1, 5 and 15-minute load averages, for benchmark headers.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unavailable".to_string())
}
