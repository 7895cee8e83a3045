//! `sextant chat`: a REPL around one agent conversation. Lines come from
//! stdin, whether it is a terminal or a pipe (tests drive it with a pipe);
//! permission questions read their answer from the same line stream.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sextant_core::agent::{
    Agent, AgentError, AgentEvent, AgentObserver, Permission, PermissionAnswer, PermissionRequest, Permissions,
};
use sextant_core::config::Config;
use sextant_core::sessions::{format_utc, SessionStore};
use sextant_core::tools::{escape_controls, has_controls, PermissionKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::run::{build_agent, load_provider, CliObserver, CommonArgs};

#[derive(clap::Args)]
pub struct Args {
    /// Allow edits without asking.
    #[arg(long)]
    allow_edits: bool,
    /// Allow shell commands without asking (the deny list still applies).
    #[arg(long)]
    allow_shell: bool,
    /// Model requests per message before giving up (default: [agent] max_steps, else 25).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Continue a stored session (id or unique prefix).
    #[arg(long, value_name = "ID")]
    resume: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

const HELP: &str = "\
commands:
  /help              this help
  /model [NAME]      show the model, or switch to NAME (history is kept)
  /clear             start a new conversation (and a new session)
  /undo [--force] [PATH]
                     revert the agent's edits (all, or one file); --force
                     overwrites files changed since the agent wrote them
  /usage             tokens used in this chat
  /map [TOKENS]      print the repo map
  /sessions [N]      list recent sessions
  /exit, /quit       leave (Ctrl-D works too)
anything else is sent to the agent; Ctrl-C cancels the running answer.";

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let grant = |allowed: bool| if allowed { Permission::Allow } else { Permission::Ask };
    let permissions = Permissions { edits: grant(args.allow_edits), shell: grant(args.allow_shell) };
    let (mut agent, config) = build_agent(&args.common, permissions, args.max_steps)?;
    if let Some(id) = &args.resume {
        let resumed = agent.resume(id).await?;
        println!("resumed session {resumed}");
    }
    let interactive = std::io::stdin().is_terminal();
    let mut lines = spawn_line_reader();
    let running_turn = spawn_interrupt_handler();

    if interactive {
        eprintln!(
            "sextant chat: {} ({}) in {}. /help for commands.",
            agent.provider().model(),
            agent.provider().name(),
            agent.workspace().root().display()
        );
    }
    loop {
        if interactive {
            eprint!("> ");
            std::io::stderr().flush().ok();
        }
        let Some(line) = lines.recv().await else { break };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(command) = line.strip_prefix('/') {
            match slash_command(command, &mut agent, &config).await {
                Ok(Flow::Continue) => continue,
                Ok(Flow::Exit) => break,
                Err(err) => {
                    eprintln!("error: {err:#}");
                    continue;
                }
            }
        }
        let cancel = CancellationToken::new();
        set_running(&running_turn, Some(cancel.clone()));
        let mut observer = ChatObserver { output: CliObserver::text(), lines: &mut lines };
        let result = agent.run(line, &mut observer, &cancel).await;
        set_running(&running_turn, None);
        match result {
            Ok(summary) => observer.output.finish(&summary)?,
            Err(AgentError::Provider { source, partial }) => {
                observer.output.fail(&partial, &source.to_string())?;
                eprintln!("error: the model request failed: {source}");
            }
            Err(err) => eprintln!("error: {err}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

enum Flow {
    Continue,
    Exit,
}

async fn slash_command(command: &str, agent: &mut Agent, config: &Config) -> anyhow::Result<Flow> {
    let mut words = command.split_whitespace();
    let name = words.next().unwrap_or("");
    let rest: Vec<&str> = words.collect();
    match name {
        "help" | "h" | "?" => println!("{HELP}"),
        "exit" | "quit" | "q" => return Ok(Flow::Exit),
        "model" => match rest.first() {
            None => println!("model: {} ({})", agent.provider().model(), agent.provider().name()),
            Some(model) => {
                let provider = load_provider(config, Some(model))?;
                agent.set_provider(provider);
                println!("model: {} ({})", agent.provider().model(), agent.provider().name());
            }
        },
        "clear" => {
            agent.clear();
            println!("conversation cleared");
        }
        "undo" => {
            let force = rest.contains(&"--force");
            let path = rest.iter().copied().find(|word| *word != "--force");
            let undone = agent.undo(path, force)?;
            if undone.is_empty() {
                println!("nothing to undo");
            }
            for edit in undone {
                println!("reverted {}{}", edit.path, if edit.deleted { " (deleted)" } else { "" });
            }
        }
        "usage" => {
            let usage = agent.total_usage();
            println!(
                "tokens: {} in, {} out{}",
                usage.input_tokens,
                usage.output_tokens,
                agent.session_id().map(|id| format!(" (session {id})")).unwrap_or_default()
            );
        }
        "map" => {
            let tokens = match rest.first() {
                Some(text) => text.parse().map_err(|_| anyhow::anyhow!("/map takes a token budget, e.g. /map 2048"))?,
                None => agent.options().repo_map_tokens.max(256),
            };
            let workspace = agent.workspace().clone();
            let map = tokio::task::spawn_blocking(move || {
                sextant_core::tools::render_repo_map(&workspace, &[], &[], tokens, true)
            })
            .await?;
            println!(
                "{}",
                if map.trim().is_empty() { "(empty map: no Rust or Python sources)" } else { map.trim_end() }
            );
        }
        "sessions" => {
            let limit = match rest.first() {
                Some(text) => text.parse().map_err(|_| anyhow::anyhow!("/sessions takes a count"))?,
                None => 10,
            };
            let store = SessionStore::open_default()?;
            for s in store.list_sessions(limit)? {
                let marker = if agent.session_id() == Some(s.id.as_str()) { "*" } else { " " };
                println!("{marker}{}  {}  {}", s.id, format_utc(s.updated_at), s.title);
            }
        }
        other => println!("unknown command /{other}; /help lists the commands"),
    }
    Ok(Flow::Continue)
}

type RunningTurn = Arc<Mutex<Option<CancellationToken>>>;

/// Ctrl-C cancels the answer being generated; at the prompt it exits.
fn spawn_interrupt_handler() -> RunningTurn {
    let running: RunningTurn = Arc::new(Mutex::new(None));
    let watched = running.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            let current = watched.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
            match current {
                Some(cancel) => {
                    eprintln!("\n(cancelled)");
                    cancel.cancel();
                }
                None => std::process::exit(130),
            }
        }
    });
    running
}

fn set_running(running: &RunningTurn, cancel: Option<CancellationToken>) {
    *running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = cancel;
}

/// Reads stdin lines on a blocking thread; the channel closes at EOF.
fn spawn_line_reader() -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if sender.send(line.trim_end_matches(['\n', '\r']).to_string()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    receiver
}

struct ChatObserver<'a> {
    output: CliObserver,
    lines: &'a mut mpsc::UnboundedReceiver<String>,
}

#[async_trait]
impl AgentObserver for ChatObserver<'_> {
    fn on_event(&mut self, event: AgentEvent) {
        self.output.on_event(event);
    }

    async fn ask_permission(&mut self, request: PermissionRequest) -> PermissionAnswer {
        self.output.end_line();
        let (text, question) = permission_prompt(&request);
        if let Some(rows) = terminal_rows() {
            if !self.page(&text, rows).await {
                eprintln!();
                return PermissionAnswer::Deny;
            }
        } else {
            // A pipe gets everything at once.
            eprint!("{text}");
        }
        eprint!("{question}");
        std::io::stderr().flush().ok();
        let answer = match self.lines.recv().await {
            Some(line) => match line.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" => PermissionAnswer::Allow,
                "a" | "always" => PermissionAnswer::AllowAlways,
                _ => PermissionAnswer::Deny,
            },
            None => PermissionAnswer::Deny,
        };
        eprintln!();
        answer
    }
}

impl ChatObserver<'_> {
    /// Shows `text` a screen at a time, waiting for Enter between screens.
    /// Returns false when the input ended while paging.
    async fn page(&mut self, text: &str, rows: usize) -> bool {
        let lines: Vec<&str> = text.lines().collect();
        let page = rows.saturating_sub(2).max(5);
        let mut shown = 0;
        while shown < lines.len() {
            let end = (shown + page).min(lines.len());
            for line in &lines[shown..end] {
                eprintln!("{line}");
            }
            shown = end;
            if shown < lines.len() {
                eprint!("-- {shown}/{} lines shown; Enter for more --", lines.len());
                std::io::stderr().flush().ok();
                if self.lines.recv().await.is_none() {
                    return false;
                }
            }
        }
        true
    }
}

/// The text of a permission question (the full diff or command, every
/// control character escaped) and the question line itself. Nothing in the
/// request is cut or passed to the terminal raw, so a `\r` or an escape
/// sequence from the model cannot hide or rewrite what is asked.
fn permission_prompt(request: &PermissionRequest) -> (String, String) {
    let runs_later = request.kind == PermissionKind::Shell && request.tool != "run_shell";
    let what = match request.kind {
        PermissionKind::Edit => "edit",
        PermissionKind::Shell if runs_later => "edit (needs the shell permission)",
        PermissionKind::Shell => "run",
    };
    let mut text = String::new();
    if !request.detail.is_empty() {
        text.push_str(&escape_controls(&request.detail));
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    if has_controls(&request.summary) || has_controls(&request.detail) {
        text.push_str(
            "note: this request contains control characters; they are shown escaped (\\r, \\x1b, \\u{...})\n",
        );
    }
    let question = format!("allow {what}: {}? [y]es / [n]o / [a]lways: ", escape_controls(&request.summary));
    (text, question)
}

/// The terminal's height when the prompt goes to an interactive terminal
/// (stderr and stdin both terminals); `None` means print everything at once.
fn terminal_rows() -> Option<usize> {
    if !std::io::stderr().is_terminal() || !std::io::stdin().is_terminal() {
        return None;
    }
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass.
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    Some(if ok && size.ws_row > 0 { size.ws_row as usize } else { 24 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: PermissionKind, tool: &str, summary: &str, detail: &str) -> PermissionRequest {
        PermissionRequest { kind, tool: tool.into(), summary: summary.into(), detail: detail.into() }
    }

    #[tokio::test]
    async fn paging_waits_for_enter_between_screens_and_stops_at_end_of_input() {
        let text: String = (0..12).map(|n| format!("line {n}\n")).collect();
        let (sender, mut lines) = mpsc::unbounded_channel();
        // 7 rows: 5 lines a screen, so 12 lines are 3 screens and 2 waits.
        for _ in 0..3 {
            sender.send(String::new()).expect("send");
        }
        let mut observer = ChatObserver { output: CliObserver::text(), lines: &mut lines };
        assert!(observer.page(&text, 7).await);
        assert_eq!(observer.lines.len(), 1, "one Enter per extra screen");
        drop(sender);
        observer.lines.recv().await;
        assert!(!observer.page(&text, 7).await, "input ended while paging");
    }

    #[test]
    fn prompts_escape_controls_and_keep_every_line() {
        let (text, question) =
            permission_prompt(&request(PermissionKind::Shell, "run_shell", "touch PWNED\r\x1b[2Kls -la", ""));
        assert_eq!(question, "allow run: touch PWNED\\r\\x1b[2Kls -la? [y]es / [n]o / [a]lways: ");
        assert!(text.contains("control characters"), "{text}");
        let detail: String = (0..100).map(|n| format!("+line {n}\n")).collect();
        let (text, question) = permission_prompt(&request(PermissionKind::Edit, "write_file", "create x.txt", &detail));
        assert_eq!(text, detail);
        assert_eq!(question, "allow edit: create x.txt? [y]es / [n]o / [a]lways: ");
        let (_, question) =
            permission_prompt(&request(PermissionKind::Shell, "write_file", "overwrite .git/config", "d"));
        assert!(question.starts_with("allow edit (needs the shell permission): overwrite .git/config?"), "{question}");
    }
}
