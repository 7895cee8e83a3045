//! `sextant bench embedded`: prompt-processing and decode speed of the
//! embedded engine, beside llama.cpp's `llama-bench` on the same GGUF file.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::Context;
use sextant_core::providers::embedded::{
    default_model_path, find_model, missing_model_message, model_path, BenchFigures, EmbeddedProvider,
};

#[derive(clap::Args)]
pub struct Args {
    /// A model id (qwen2.5-coder-0.5b, smollm2-135m, ...) or a GGUF file
    /// (default: the installed default model).
    #[arg(long, value_name = "ID|FILE")]
    model: Option<String>,
    /// Prompt length for the prompt-processing figure.
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// Tokens generated for the decode figure.
    #[arg(long, default_value_t = 64)]
    decode_tokens: usize,
    /// Repetitions; the median run is reported (and the best beside it).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// llama.cpp's llama-bench binary (default: $SEXTANT_LLAMA_BENCH, then PATH,
    /// then target/tools/llama.cpp/bin/llama-bench).
    #[arg(long, value_name = "FILE")]
    llama_bench: Option<PathBuf>,
}

struct Speeds {
    prompt_tps: f64,
    decode_tps: f64,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let model = match &args.model {
        Some(name) => find_model(name).map(model_path).unwrap_or_else(|| PathBuf::from(name)),
        None => default_model_path(),
    };
    if !model.is_file() {
        anyhow::bail!("{}", missing_model_message(&model));
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("model: {}", model.display());
    println!(
        "prompt: {} tokens, decode: {} tokens, median of {} runs, {threads} threads\n",
        args.prompt_tokens, args.decode_tokens, args.runs
    );

    let ours = {
        let (model, prompt, decode, runs) = (model.clone(), args.prompt_tokens, args.decode_tokens, args.runs.max(1));
        tokio::task::spawn_blocking(move || measure_ours(&model, prompt, decode, runs))
            .await
            .context("benchmark task failed")??
    };
    let peer = measure_llama_cpp(&args, &model, threads);

    println!("{:<22} {:>12} {:>16} {:>16}", "engine", "load", "prompt tok/s", "decode tok/s");
    println!(
        "{:<22} {:>12} {:>16.1} {:>16.1}",
        "sextant",
        format!("{:.0} ms", ours.1.as_secs_f64() * 1000.0),
        ours.0.prompt_tps,
        ours.0.decode_tps
    );
    println!("{:<22} {:>12} {:>16.1} {:>16.1}", "sextant (best run)", "", ours.2.prompt_tps, ours.2.decode_tps);
    match resident_memory() {
        Some((now, peak)) => println!("sextant resident memory: {:.0} MB (peak {:.0} MB)", now / 1e6, peak / 1e6),
        None => println!("sextant resident memory: unavailable on this platform"),
    }
    match peer {
        Ok(peer) => {
            println!("{:<22} {:>12} {:>16.1} {:>16.1}", "llama.cpp", "-", peer.prompt_tps, peer.decode_tps);
            println!(
                "\nsextant (median) / llama.cpp: prompt {:.2}x, decode {:.2}x",
                ours.0.prompt_tps / peer.prompt_tps,
                ours.0.decode_tps / peer.decode_tps
            );
        }
        Err(why) => println!("llama.cpp              peer unavailable: {why:#}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Median and best speeds over `runs`, and the load time.
fn measure_ours(model: &Path, prompt: usize, decode: usize, runs: usize) -> anyhow::Result<(Speeds, Duration, Speeds)> {
    let provider = EmbeddedProvider::load(model)?;
    // Warm-up: first-touch page faults and thread-pool start-up.
    provider.benchmark(16, 4)?;
    let mut prompt_tps = Vec::with_capacity(runs);
    let mut decode_tps = Vec::with_capacity(runs);
    for _ in 0..runs {
        let figures: BenchFigures = provider.benchmark(prompt, decode)?;
        prompt_tps.push(figures.prompt_tokens as f64 / figures.prompt_time.as_secs_f64());
        decode_tps.push(figures.decode_tokens as f64 / figures.decode_time.as_secs_f64());
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let best = Speeds {
        prompt_tps: prompt_tps.iter().copied().fold(0.0, f64::max),
        decode_tps: decode_tps.iter().copied().fold(0.0, f64::max),
    };
    let median = Speeds { prompt_tps: median(&mut prompt_tps), decode_tps: median(&mut decode_tps) };
    Ok((median, provider.load_time(), best))
}

/// Resident set size now and at its peak, in bytes (Linux `/proc`).
fn resident_memory() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        let kb: f64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn find_llama_bench(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.llama_bench {
        return Ok(path.clone());
    }
    if let Some(path) = std::env::var_os("SEXTANT_LLAMA_BENCH").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    if let Some(dirs) = std::env::var_os("PATH") {
        if let Some(found) = std::env::split_paths(&dirs).map(|dir| dir.join("llama-bench")).find(|p| p.is_file()) {
            return Ok(found);
        }
    }
    let local = PathBuf::from("target/tools/llama.cpp/bin/llama-bench");
    if local.is_file() {
        return Ok(local);
    }
    anyhow::bail!(
        "no llama-bench binary (not on PATH, $SEXTANT_LLAMA_BENCH unset, no target/tools/llama.cpp); \
         Debian 12 packages no llama.cpp and the registry's prebuilt wheels need a newer glibc, so build it \
         from the llama-cpp-python source package and pass --llama-bench"
    )
}

fn measure_llama_cpp(args: &Args, model: &Path, threads: usize) -> anyhow::Result<Speeds> {
    let binary = find_llama_bench(args)?;
    let output = Command::new(&binary)
        .arg("-m")
        .arg(model)
        .args(["-p", &args.prompt_tokens.to_string(), "-n", &args.decode_tokens.to_string()])
        .args(["-t", &threads.to_string(), "-r", &args.runs.max(1).to_string(), "-o", "json"])
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        anyhow::bail!(
            "{} failed ({}): {}",
            binary.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("")
        );
    }
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).context("llama-bench printed no JSON")?;
    let speed = |prompt: bool| {
        rows.iter()
            .find(|row| {
                let n_prompt = row.get("n_prompt").and_then(|v| v.as_u64()).unwrap_or(0);
                let n_gen = row.get("n_gen").and_then(|v| v.as_u64()).unwrap_or(0);
                if prompt {
                    n_prompt > 0 && n_gen == 0
                } else {
                    n_gen > 0 && n_prompt == 0
                }
            })
            .and_then(|row| row.get("avg_ts").and_then(|v| v.as_f64()))
            .context("llama-bench JSON lacks a prompt or generation row")
    };
    Ok(Speeds { prompt_tps: speed(true)?, decode_tps: speed(false)? })
}
