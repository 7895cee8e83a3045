//! `sextant-lsp`: speaks LSP on stdin/stdout. Logs go to stderr (stdout is
//! the protocol); set `SEXTANT_LOG` (e.g. `debug`) to change the level.

/// mimalloc, like the CLI: the repo map behind completions and chat
/// allocates millions of small objects across threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    prefer_small_pages();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEXTANT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_env_filter(filter).init();
    if std::env::args().any(|arg| arg == "--version") {
        println!("sextant-lsp {}", env!("CARGO_PKG_VERSION"));
        return std::process::ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sextant-lsp: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(sextant_lsp::service::serve_stdio());
    std::process::ExitCode::SUCCESS
}

/// The server stays resident beside the editor, so memory counts more than
/// the few milliseconds transparent huge pages save on loading the index:
/// mimalloc asks for huge pages, which kept a warm django index at 94 MB
/// resident instead of 58 MB (the CLI, short-lived, keeps them).
fn prefer_small_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory.
    // Failure (old kernel, seccomp) only leaves huge pages on.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
