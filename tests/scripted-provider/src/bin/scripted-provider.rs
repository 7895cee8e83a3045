//! `scripted-provider --script script.json [--port N] [--port-file F] [--requests-log F]`
//!
//! Serves the script (format: see the crate docs) on 127.0.0.1 until killed.
//! Prints `listening on http://127.0.0.1:PORT` to stdout once ready, and writes
//! the URL to `--port-file` (written atomically, so a poller never reads half
//! of it). With `--requests-log`, each received request is appended to that
//! file as one JSON line (method, path, headers, body, raw_body).

use std::path::PathBuf;

use anyhow::Context;
use scripted_provider::{Script, ScriptedServer};

struct Options {
    script: PathBuf,
    port: u16,
    port_file: Option<PathBuf>,
    requests_log: Option<PathBuf>,
}

const USAGE: &str = "usage: scripted-provider --script script.json [--port N] [--port-file FILE] [--requests-log FILE]";

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut script = None;
    let mut port = 0;
    let mut port_file = None;
    let mut requests_log = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--script" => script = Some(PathBuf::from(value("--script")?)),
            "--port" => port = value("--port")?.parse().context("--port must be a number")?,
            "--port-file" => port_file = Some(PathBuf::from(value("--port-file")?)),
            "--requests-log" => requests_log = Some(PathBuf::from(value("--requests-log")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let script = script.with_context(|| format!("--script is required\n{USAGE}"))?;
    Ok(Options { script, port, port_file, requests_log })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = parse_args(std::env::args().skip(1))?;
    let text = std::fs::read_to_string(&options.script)
        .with_context(|| format!("cannot read script {}", options.script.display()))?;
    let script = Script::from_json(&text).with_context(|| format!("invalid script {}", options.script.display()))?;
    let server = ScriptedServer::start_on(script, options.port, options.requests_log).await?;
    let url = server.url();
    if let Some(port_file) = &options.port_file {
        let tmp = port_file.with_extension("tmp");
        std::fs::write(&tmp, &url).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, port_file).with_context(|| format!("cannot write {}", port_file.display()))?;
    }
    println!("listening on {url}");
    tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
    drop(server);
    Ok(())
}
