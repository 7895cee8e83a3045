//! `sextant usage`: token totals per day and model from the session database.

use std::process::ExitCode;

use anyhow::Context;
use sextant_core::sessions::SessionStore;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = SessionStore::open_default().context("cannot open the session database")?;
    let rows = store.usage_by_day()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no usage recorded yet (database: {})", store.path());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<10}  {:<10}  {:<28}  {:>8}  {:>8}  {:>12}  {:>12}",
        "day", "provider", "model", "sessions", "requests", "input", "output"
    );
    let (mut input, mut output, mut requests) = (0i64, 0i64, 0i64);
    for row in &rows {
        println!(
            "{:<10}  {:<10}  {:<28}  {:>8}  {:>8}  {:>12}  {:>12}",
            row.day, row.provider, row.model, row.sessions, row.requests, row.input_tokens, row.output_tokens
        );
        input += row.input_tokens;
        output += row.output_tokens;
        requests += row.requests;
    }
    println!("{:<10}  {:<10}  {:<28}  {:>8}  {:>8}  {:>12}  {:>12}", "total", "", "", "", requests, input, output);
    Ok(ExitCode::SUCCESS)
}
