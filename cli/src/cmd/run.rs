//! `sextant run`: the agent on one task, headless. Edits and shell commands
//! need `--allow-edits` / `--allow-shell`; without them the model is told
//! "permission denied" and the refusals are reported at the end.
//!
//! Output formats: `text` (answer streams to stdout, progress and the usage
//! summary to stderr), `json` (one object at the end), `stream-json` (one JSON
//! event per line, then a `{"type":"result",...}` line).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use clap::ValueEnum;
use sextant_core::agent::{
    Agent, AgentError, AgentEvent, AgentObserver, AgentOptions, PermissionAnswer, PermissionRequest, Permissions,
    RunOutcome, RunSummary,
};
use sextant_core::config::Config;
use sextant_core::providers::{Provider, Purpose};
use sextant_core::sessions::SessionStore;
use sextant_core::tools::{escape_controls, Workspace};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Args {
    /// The task. Read from stdin when omitted and stdin is not a terminal.
    #[arg(short = 'p', long = "prompt")]
    prompt: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output_format: OutputFormat,
    /// Let the agent create and change files in the workspace.
    #[arg(long)]
    allow_edits: bool,
    /// Let the agent run shell commands (the deny list still applies).
    #[arg(long)]
    allow_shell: bool,
    /// Model requests before giving up (default: [agent] max_steps, else 25).
    #[arg(long)]
    max_steps: Option<usize>,
    #[command(flatten)]
    common: CommonArgs,
}

/// Options shared by `run` and `chat`.
#[derive(clap::Args, Clone)]
pub struct CommonArgs {
    /// Workspace root the agent works in (default: current directory).
    #[arg(long, short = 'C', value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Use this model instead of the configured chat model.
    #[arg(long)]
    pub model: Option<String>,
    /// Token budget of the repo map in the system prompt, 0 = none
    /// (default: [agent] repo_map_tokens, else 1024).
    #[arg(long)]
    pub map_tokens: Option<usize>,
    /// Most tokens each model reply may have (default: `max_tokens` of
    /// the configuration, else the provider's own limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens: Option<u32>,
    /// Do not record the session in the session database.
    #[arg(long)]
    pub no_session: bool,
    /// Where no jail is available (bubblewrap missing, or no user
    /// namespaces), run shell commands WITHOUT one: they can then read and
    /// change everything you can and reach the network. Also
    /// `[agent] dangerously_allow_unjailed_shell = true` in the user config.
    #[arg(long)]
    pub dangerously_allow_unjailed_shell: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Text,
    Json,
    StreamJson,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let task = match args.prompt.clone() {
        Some(prompt) => prompt,
        None if !std::io::stdin().is_terminal() => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("cannot read the task from stdin")?;
            text
        }
        None => anyhow::bail!("no task: pass -p \"...\" or pipe the task on stdin"),
    };
    if task.trim().is_empty() {
        anyhow::bail!("the task is empty");
    }
    let permissions = Permissions::headless(args.allow_edits, args.allow_shell);
    let (mut agent, _config) = build_agent(&args.common, permissions, args.max_steps)?;

    let cancel = CancellationToken::new();
    let on_interrupt = cancel.clone();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let mut observer = CliObserver::new(args.output_format);
    let result = agent.run(&task, &mut observer, &cancel).await;
    interrupt.abort();
    let summary = match result {
        Ok(summary) => summary,
        Err(AgentError::Provider { source, partial }) => {
            // Report what happened before the failure (edits stay on disk).
            observer.fail(&partial, &source.to_string())?;
            return Err(anyhow::Error::new(source).context("the model request failed"));
        }
        Err(err) => return Err(err.into()),
    };
    observer.finish(&summary)?;
    Ok(match summary.outcome {
        RunOutcome::Completed => ExitCode::SUCCESS,
        RunOutcome::MaxSteps => ExitCode::from(2),
        RunOutcome::Cancelled => ExitCode::from(130),
        RunOutcome::Failed => ExitCode::FAILURE,
    })
}

/// Workspace + config + provider + session store + options -> an agent.
/// Returns the config too, so `chat` can switch models later.
pub fn build_agent(
    common: &CommonArgs,
    permissions: Permissions,
    max_steps: Option<usize>,
) -> anyhow::Result<(Agent, Config)> {
    let root = match &common.workspace {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot determine the current directory")?,
    };
    let workspace = Workspace::new(&root).with_context(|| format!("cannot use {} as the workspace", root.display()))?;
    let config = sextant_core::config::load(Some(workspace.root())).context("cannot load the configuration")?;
    super::warn_config_notes(&config);
    let provider = load_provider(&config, common.model.as_deref())?;
    let store = if common.no_session {
        None
    } else {
        match SessionStore::open_default() {
            Ok(store) => Some(Arc::new(store)),
            Err(err) => {
                eprintln!("warning: sessions will not be saved: {err}");
                None
            }
        }
    };
    let mut options =
        AgentOptions { temperature: config.temperature, max_tokens: config.max_tokens, ..AgentOptions::default() };
    if let Some(section) = config.section("agent") {
        options.apply_config(section).map_err(|err| anyhow::anyhow!("invalid configuration: {err}"))?;
    }
    if let Some(steps) = max_steps {
        options.max_steps = steps.max(1);
    }
    if let Some(tokens) = common.map_tokens {
        options.repo_map_tokens = tokens;
    }
    if let Some(tokens) = common.max_tokens {
        options.max_tokens = Some(tokens);
    }
    // A project file can never set this key (config::project drops `dangerously_*`).
    let unjailed = common.dangerously_allow_unjailed_shell
        || config
            .section("agent")
            .and_then(|agent| agent.get("dangerously_allow_unjailed_shell"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
    if unjailed && sextant_core::tools::detect_isolation() == sextant_core::tools::Isolation::None {
        eprintln!("warning: shell commands run WITHOUT a jail (dangerously_allow_unjailed_shell)");
    }
    let agent =
        Agent::new(provider, workspace, permissions, store).with_options(options).allow_unjailed_shell(unjailed);
    Ok((agent, config))
}

/// The configured chat provider, optionally with another model.
pub fn load_provider(config: &Config, model: Option<&str>) -> anyhow::Result<Arc<dyn Provider>> {
    let mut config = config.clone();
    if let Some(model) = model {
        config.model = Some(model.to_string());
    }
    sextant_core::providers::build(&config, Purpose::Chat).context("cannot set up the model provider")
}

/// Renders agent events for `run` (and `chat`, in text mode).
pub struct CliObserver {
    format: OutputFormat,
    /// Whether the last thing printed to stdout ended a line.
    at_line_start: bool,
    /// Whether any answer text streamed in (non-streaming providers send none,
    /// so the final text is printed at the end instead).
    streamed_text: bool,
}

impl CliObserver {
    fn new(format: OutputFormat) -> Self {
        CliObserver { format, at_line_start: true, streamed_text: false }
    }

    /// Text-mode observer (used by chat).
    pub fn text() -> Self {
        Self::new(OutputFormat::Text)
    }

    /// Ends the current stdout line if text was streamed into it.
    pub fn end_line(&mut self) {
        if !self.at_line_start {
            println!();
            self.at_line_start = true;
        }
    }

    /// After a provider failure: the partial summary (JSON formats carry the
    /// error in an `error` field; text mode prints the summary on stderr).
    pub fn fail(&mut self, partial: &RunSummary, error: &str) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Text => {
                self.end_line();
                eprint!("{}", text_summary(partial));
            }
            OutputFormat::Json | OutputFormat::StreamJson => {
                let mut value = serde_json::to_value(partial)?;
                if let Some(object) = value.as_object_mut() {
                    if self.format == OutputFormat::StreamJson {
                        object.insert("type".into(), "result".into());
                    }
                    object.insert("error".into(), error.into());
                }
                if self.format == OutputFormat::Json {
                    println!("{}", serde_json::to_string_pretty(&value)?);
                } else {
                    println!("{value}");
                }
            }
        }
        std::io::stdout().flush().ok();
        Ok(())
    }

    /// Prints the result (JSON formats) or the summary (text, on stderr).
    pub fn finish(&mut self, summary: &RunSummary) -> anyhow::Result<()> {
        match self.format {
            OutputFormat::Text => {
                if !self.streamed_text && !summary.final_text.is_empty() {
                    print!("{}", escape_controls(&summary.final_text));
                    self.at_line_start = summary.final_text.ends_with('\n');
                }
                self.end_line();
                eprint!("{}", text_summary(summary));
            }
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(summary)?),
            OutputFormat::StreamJson => {
                let mut value = serde_json::to_value(summary)?;
                if let Some(object) = value.as_object_mut() {
                    object.insert("type".into(), "result".into());
                }
                println!("{value}");
            }
        }
        std::io::stdout().flush().ok();
        Ok(())
    }
}

/// The end-of-run block printed on stderr in text mode.
pub fn text_summary(summary: &RunSummary) -> String {
    let mut out = String::new();
    if !summary.edits.is_empty() {
        let files: Vec<String> = summary
            .edits
            .iter()
            .map(|e| if e.created { format!("{} (new)", e.path) } else { e.path.clone() })
            .collect();
        out.push_str(&format!("changed: {}\n", files.join(", ")));
    }
    for denied in &summary.denied {
        let line = format!("denied: {} {}: {}", denied.tool, denied.summary, denied.reason);
        out.push_str(&escape_controls(&line));
        out.push('\n');
    }
    match summary.outcome {
        RunOutcome::Completed => {}
        RunOutcome::MaxSteps => out.push_str(&format!("stopped: reached the step limit ({} steps)\n", summary.steps)),
        RunOutcome::Cancelled => out.push_str("stopped: cancelled\n"),
        RunOutcome::Failed => {
            out.push_str(&format!("stopped: the model request failed after {} steps\n", summary.steps))
        }
    }
    out.push_str(&format!(
        "tokens: {} in, {} out ({} steps, {} tool calls){}\n",
        summary.usage.input_tokens,
        summary.usage.output_tokens,
        summary.steps,
        summary.tool_calls,
        summary.session_id.as_deref().map(|id| format!(", session {id}")).unwrap_or_default()
    ));
    out
}

/// The first non-empty line, shortened, with control characters escaped.
fn first_line(text: &str, max_chars: usize) -> String {
    let escaped = escape_controls(text);
    let line = escaped.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let mut cut: String = line.chars().take(max_chars).collect();
    if line.chars().count() > max_chars {
        cut.push_str("...");
    }
    cut
}

#[async_trait]
impl AgentObserver for CliObserver {
    fn on_event(&mut self, event: AgentEvent) {
        match self.format {
            OutputFormat::Json => {}
            OutputFormat::StreamJson => {
                if let Ok(line) = serde_json::to_string(&event) {
                    println!("{line}");
                    std::io::stdout().flush().ok();
                }
            }
            OutputFormat::Text => match event {
                AgentEvent::TextDelta { text } => {
                    // Model text never reaches the terminal raw (no escape sequences).
                    print!("{}", escape_controls(&text));
                    std::io::stdout().flush().ok();
                    if !text.is_empty() {
                        self.at_line_start = text.ends_with('\n');
                        self.streamed_text = true;
                    }
                }
                AgentEvent::ToolCallStarted { name, summary, .. } => {
                    self.end_line();
                    eprintln!("-> {name} {}", first_line(&summary, 100));
                }
                AgentEvent::ToolCallFinished { is_error: true, output, .. } => {
                    eprintln!("   error: {}", first_line(&output, 200));
                }
                AgentEvent::PermissionDenied { reason, .. } => eprintln!("   {}", escape_controls(&reason)),
                AgentEvent::Warning { message } => eprintln!("warning: {message}"),
                _ => {}
            },
        }
    }

    async fn ask_permission(&mut self, _request: PermissionRequest) -> PermissionAnswer {
        // Headless runs use Allow/Deny permissions and are never asked.
        PermissionAnswer::Deny
    }
}
