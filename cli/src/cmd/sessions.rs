//! `sextant sessions`: list, show, search and export stored agent sessions.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use sextant_core::providers::Role;
use sextant_core::sessions::{format_utc, SessionStore};
use sextant_core::tools::{EditJournal, Workspace};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Most recent sessions first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one session's transcript.
    Show {
        /// Session id (or a unique prefix).
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Full-text search over all messages.
    Search {
        /// Words that must all occur.
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Revert the file edits the agent made in a session.
    Undo {
        id: String,
        /// Also overwrite files that changed since the agent wrote them.
        #[arg(long)]
        force: bool,
    },
    /// Export a session with all messages and tool calls.
    Export {
        id: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Markdown)]
        format: ExportFormat,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    Json,
    Markdown,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = SessionStore::open_default().context("cannot open the session database")?;
    match args.command {
        Command::List { limit, json } => {
            let sessions = store.list_sessions(limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&sessions)?);
            } else if sessions.is_empty() {
                println!("no sessions yet (database: {})", store.path());
            } else {
                println!(
                    "{:<12}  {:<19}  {:>5}  {:>9}  {:<20}  title",
                    "id", "updated (UTC)", "msgs", "tokens", "model"
                );
                for s in sessions {
                    println!(
                        "{:<12}  {:<19}  {:>5}  {:>9}  {:<20}  {}",
                        s.id,
                        format_utc(s.updated_at),
                        s.message_count,
                        s.input_tokens + s.output_tokens,
                        truncate(&s.model, 20),
                        truncate(&s.title, 60)
                    );
                }
            }
        }
        Command::Show { id, json } => {
            let export = store.export(&id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&export)?);
            } else {
                let s = &export.session;
                println!("session {}  {}  ({} / {})", s.id, format_utc(s.created_at), s.provider, s.model);
                println!("workspace {}", s.workspace);
                println!("tokens: {} in, {} out\n", s.input_tokens, s.output_tokens);
                for message in &export.messages {
                    match message.role {
                        Role::System => {}
                        Role::User => println!("> {}\n", message.content),
                        Role::Assistant => {
                            if !message.content.is_empty() {
                                println!("{}\n", message.content);
                            }
                            for call in &message.tool_calls {
                                println!("  [tool] {} {}", call.name, truncate(&call.arguments.to_string(), 200));
                            }
                        }
                        Role::Tool => println!("  [result] {}\n", truncate(&message.content.replace('\n', " "), 200)),
                    }
                }
            }
        }
        Command::Search { query, limit, json } => {
            let hits = store.search(&query.join(" "), limit)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&hits)?);
            } else if hits.is_empty() {
                println!("no matches");
            } else {
                for hit in hits {
                    println!(
                        "{}  {}  {:<9}  {}  | {}",
                        hit.session_id,
                        format_utc(hit.created_at),
                        hit.role,
                        truncate(&hit.title, 40),
                        hit.snippet.replace('\n', " ")
                    );
                }
            }
        }
        Command::Undo { id, force } => {
            let session = store.find_session(&id)?;
            let workspace = Workspace::new(&session.workspace)
                .with_context(|| format!("the session's workspace {} is not available", session.workspace))?;
            let entries = store.edits(&session.id)?;
            if entries.is_empty() {
                println!("session {} has no edits to undo", session.id);
                return Ok(ExitCode::SUCCESS);
            }
            // Stored paths are re-checked against the sandbox before anything
            // is written; the writes themselves go through safe_fs (no links).
            for entry in &entries {
                let resolved = workspace.resolve(&entry.display)?;
                if resolved != entry.path {
                    anyhow::bail!("stored edit of {} does not match its workspace path; refusing", entry.display);
                }
            }
            let mut journal = EditJournal::from_entries(entries);
            let result = journal.undo(workspace.root(), None, force);
            // Whatever was restored before a refusal leaves the stored journal too.
            store.replace_edits(&session.id, journal.entries())?;
            let undone = result?;
            for edit in undone {
                println!("reverted {}{}", edit.path, if edit.deleted { " (deleted)" } else { "" });
            }
        }
        Command::Export { id, format } => {
            let export = store.export(&id)?;
            match format {
                ExportFormat::Json => println!("{}", serde_json::to_string_pretty(&export)?),
                ExportFormat::Markdown => print!("{}", export.to_markdown()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max_chars.saturating_sub(3)).collect();
        cut.push_str("...");
        cut
    }
}
