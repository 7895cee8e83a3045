//! One module per subcommand. Each exposes `Args` and `async fn run(Args) -> anyhow::Result<ExitCode>`.

pub mod ask;
pub mod bench;
pub mod bench_agent;
pub mod bench_embedded;
pub mod bench_infill;
pub mod bench_map;
pub mod chat;
pub mod doctor;
pub mod map;
pub mod models;
pub mod run;
pub mod sessions;
pub mod trust;
pub mod usage;

/// Logs go to stderr, filtered by `SEXTANT_LOG` (default: warnings only).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEXTANT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Project-file settings that were ignored (untrusted provider, permissions,
/// raised limits), said once on stderr so the user knows why.
pub fn warn_config_notes(config: &sextant_core::config::Config) {
    for note in &config.notes {
        eprintln!("warning: {note}");
    }
}
