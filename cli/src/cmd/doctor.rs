//! `sextant doctor`: checks the installation and prints ok / warn / fail per
//! item: config, provider reachable, model present, bwrap, session database.
//! Exits 1 when any check fails.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use sextant_core::config::{Config, ProviderKind, Purpose};
use sextant_core::providers::{embedded, ChatRequest, Message, ProviderError};
use sextant_core::sessions::SessionStore;
use sextant_core::tools::shell::{process_limit_kind, ProcessLimitKind, INSTALL_HINT, UNJAILED_FLAG};
use sextant_core::tools::{detect_isolation, jail_problem, Isolation, ShellLimits};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    /// Workspace whose `.sextant.toml` is checked (default: current directory).
    #[arg(long, short = 'C', value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Skip the request that checks the provider and model.
    #[arg(long)]
    offline: bool,
    /// Print JSON instead of lines.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    message: String,
}

fn check(name: &'static str, status: Status, message: impl Into<String>) -> Check {
    Check { name, status, message: message.into() }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = match args.workspace.clone() {
        Some(dir) => dir,
        None => std::env::current_dir()?,
    };
    let mut checks = Vec::new();
    let config = match sextant_core::config::load(Some(&root)) {
        Ok(config) => {
            checks.push(if config.sources.is_empty() {
                check("config", Status::Warn, "no config file found; using defaults (embedded model)")
            } else {
                let files: Vec<String> = config.sources.iter().map(|p| p.display().to_string()).collect();
                check("config", Status::Ok, format!("loaded {}", files.join(", ")))
            });
            for note in &config.notes {
                checks.push(check("project config", Status::Warn, note.clone()));
            }
            Some(config)
        }
        Err(err) => {
            checks.push(check("config", Status::Fail, err.to_string()));
            None
        }
    };
    if let Some(config) = &config {
        checks.extend(provider_checks(config, args.offline).await);
    }
    checks.push(bwrap_check());
    checks.push(shell_limits_check());
    checks.push(sessions_check());

    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        for c in &checks {
            let label = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            println!("{label}  {:<10} {}", c.name, c.message);
        }
    }
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// A catalogue model must have its catalogue size and a readable GGUF
/// structure (a partial copy fails here, not at the first request); another
/// GGUF file only its structure.
fn embedded_model_check(path: &std::path::Path) -> Check {
    let spec = path.file_name().and_then(|name| embedded::MODELS.iter().find(|spec| name == spec.file_name));
    let size = match (spec, std::fs::metadata(path)) {
        (Some(spec), _) => spec.size,
        (None, Ok(metadata)) => metadata.len(),
        (None, Err(err)) => return check("model", Status::Fail, format!("cannot read {}: {err}", path.display())),
    };
    let name = spec.map(|spec| spec.display_name).unwrap_or("GGUF model");
    match embedded::verify_gguf(path, size) {
        Ok(()) => check("model", Status::Ok, format!("{name} at {} ({} MB)", path.display(), size / 1_000_000)),
        Err(err) => check(
            "model",
            Status::Fail,
            format!(
                "{err}; reinstall it with `sextant models pull{}`",
                spec.map(|s| format!(" {}", s.id)).unwrap_or_default()
            ),
        ),
    }
}

/// "provider" (reachable) and "model" (present) checks.
async fn provider_checks(config: &Config, offline: bool) -> Vec<Check> {
    let resolved = config.resolve(Purpose::Chat);
    if resolved.kind == ProviderKind::Embedded {
        let model = match resolved
            .embedded_model_path
            .clone()
            .map(Ok)
            .unwrap_or_else(|| embedded::resolve_model_path(&resolved.model))
        {
            Err(err) => check("model", Status::Fail, err.to_string()),
            Ok(path) if !path.is_file() => check("model", Status::Fail, embedded::missing_model_message(&path)),
            Ok(path) => embedded_model_check(&path),
        };
        return vec![check("provider", Status::Ok, "embedded (local, no network)"), model];
    }
    let target = format!("{} at {}", resolved.kind.as_str(), resolved.base_url);
    if offline {
        return vec![check("provider", Status::Warn, format!("{target}: not contacted (--offline)"))];
    }
    let provider = match sextant_core::providers::build(config, Purpose::Chat) {
        Ok(provider) => provider,
        Err(err) => return vec![check("provider", Status::Fail, format!("{target}: {err}"))],
    };
    // A one-token request shows both that the server answers and that it
    // knows the model.
    let request = ChatRequest {
        messages: vec![Message::user("Reply with OK.")],
        max_tokens: Some(1),
        temperature: Some(0.0),
        ..ChatRequest::default()
    };
    let cancel = CancellationToken::new();
    let mut ignore = |_| {};
    let outcome = tokio::time::timeout(Duration::from_secs(60), provider.chat(&request, &mut ignore, &cancel)).await;
    let model = resolved.model.clone();
    match outcome {
        Ok(Ok(_)) => vec![
            check("provider", Status::Ok, format!("{target} answered")),
            check("model", Status::Ok, format!("{model} answered a test request")),
        ],
        Ok(Err(ProviderError::Http { status: 404, message, .. })) => vec![
            check("provider", Status::Ok, format!("{target} is reachable")),
            check("model", Status::Fail, format!("{model} not found: {message}")),
        ],
        Ok(Err(err @ (ProviderError::Connect { .. } | ProviderError::Timeout { .. }))) => {
            vec![check("provider", Status::Fail, format!("{target}: {err}"))]
        }
        Ok(Err(err)) => vec![
            check("provider", Status::Ok, format!("{target} is reachable")),
            check("model", Status::Fail, format!("{model}: {err}")),
        ],
        Err(_) => vec![check("provider", Status::Fail, format!("{target} did not answer within 60 s"))],
    }
}

fn bwrap_check() -> Check {
    let refused = format!("run_shell refuses commands ({INSTALL_HINT}, or pass {UNJAILED_FLAG})");
    match find_on_path("bwrap") {
        None => check("bwrap", Status::Warn, format!("not installed: {refused}")),
        Some(path) => match detect_isolation() {
            Isolation::Bwrap => check(
                "bwrap",
                Status::Ok,
                format!("{}: shell commands run jailed (user namespace, no capabilities, no network)", path.display()),
            ),
            Isolation::None => check(
                "bwrap",
                Status::Warn,
                format!("{}: {}; {refused}", path.display(), jail_problem().unwrap_or("cannot create the jail")),
            ),
        },
    }
}

/// How a shell command's process count is limited here.
fn shell_limits_check() -> Check {
    let limits = ShellLimits::default();
    let memory = format!("{} MiB of data per process", limits.max_memory_bytes >> 20);
    match process_limit_kind() {
        ProcessLimitKind::Cgroup => check(
            "shell limits",
            Status::Ok,
            format!("pids cgroup ({} tasks per command), {memory}", limits.max_processes),
        ),
        ProcessLimitKind::Rlimit => check(
            "shell limits",
            Status::Ok,
            format!("RLIMIT_NPROC ({} tasks above your current count), {memory}", limits.max_processes),
        ),
        ProcessLimitKind::None => check(
            "shell limits",
            Status::Warn,
            format!("no process-count limit: root without a writable pids cgroup (the kernel exempts root from RLIMIT_NPROC); {memory}"),
        ),
    }
}

fn sessions_check() -> Check {
    let path = match SessionStore::default_path() {
        Ok(path) => path,
        Err(err) => return check("sessions", Status::Fail, err.to_string()),
    };
    match SessionStore::open(&path).and_then(|store| store.health()) {
        Ok(health) if health.integrity == "ok" => check(
            "sessions",
            Status::Ok,
            format!(
                "{} (schema v{}, {} journal, {} sessions)",
                health.path, health.schema_version, health.journal_mode, health.sessions
            ),
        ),
        Ok(health) => {
            check("sessions", Status::Fail, format!("{}: integrity check says {}", health.path, health.integrity))
        }
        Err(err) => check("sessions", Status::Fail, err.to_string()),
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}
