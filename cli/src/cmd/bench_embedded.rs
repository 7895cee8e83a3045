//! `sextant bench embedded`: prompt-processing and decode speed of the
//! embedded engine, beside llama.cpp's `llama-bench` on the same GGUF file.
//!
//! Like with like: both sides run the same number of repetitions, prompt
//! length, decode length and thread count, and both report the median run
//! (llama-bench's per-run `samples_ts`, not its mean). Sextant decodes right
//! after its prompt, so the peer's decode runs at the same depth (`-d`).
//! The machine, date and load average are printed so figures taken on a
//! busy machine are recognisable as such.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use sextant_core::providers::embedded::{
    default_model_path, find_model, missing_model_message, model_path, BenchFigures, EmbeddedProvider,
};

use super::bench::{cpu_model, load_average};

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
    /// Repetitions on each side; the median run is reported (and Sextant's
    /// best beside it).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// llama.cpp's llama-bench binary (default: $SEXTANT_LLAMA_BENCH, then PATH,
    /// then target/tools/llama.cpp/bin/llama-bench, built by
    /// `cargo xtask peer llama-cpp`).
    #[arg(long, value_name = "FILE")]
    llama_bench: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
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
    let runs = args.runs.max(1);
    let threads = engine_threads();
    println!("machine: {}, {} (nproc)", cpu_model(), nproc());
    println!("date: {}", utc_now());
    println!("model: {}", model.display());
    println!(
        "prompt: {} tokens, decode: {} tokens after the prompt, median of {runs} runs, threads: {threads}\n",
        args.prompt_tokens, args.decode_tokens
    );

    println!("load average before sextant: {}", load_average());
    let ours = {
        let (model, prompt, decode) = (model.clone(), args.prompt_tokens, args.decode_tokens);
        tokio::task::spawn_blocking(move || measure_ours(&model, prompt, decode, runs))
            .await
            .context("benchmark task failed")??
    };
    let memory = resident_memory();
    println!("load average before llama.cpp: {}", load_average());
    let peer = match find_llama_bench(&args) {
        Ok(binary) => {
            let shape = PeerShape { prompt: args.prompt_tokens, decode: args.decode_tokens, runs, threads };
            let peer = measure_llama_cpp(&binary, &model, shape);
            for line in peer_commands(&binary, &model, shape) {
                println!("peer command: {line}");
            }
            peer
        }
        Err(why) => Err(why),
    };
    println!("load average after: {}\n", load_average());

    println!("{:<22} {:>12} {:>16} {:>16}", "engine", "load", "prompt tok/s", "decode tok/s");
    println!(
        "{:<22} {:>12} {:>16.1} {:>16.1}",
        "sextant (median)",
        format!("{:.0} ms", ours.1.as_secs_f64() * 1000.0),
        ours.0.prompt_tps,
        ours.0.decode_tps
    );
    println!("{:<22} {:>12} {:>16.1} {:>16.1}", "sextant (best run)", "", ours.2.prompt_tps, ours.2.decode_tps);
    match &peer {
        Ok(peer) => {
            println!("{:<22} {:>12} {:>16.1} {:>16.1}", "llama.cpp (median)", "-", peer.prompt_tps, peer.decode_tps);
            println!(
                "\nsextant / llama.cpp, median against median: prompt {:.2}x, decode {:.2}x",
                ours.0.prompt_tps / peer.prompt_tps,
                ours.0.decode_tps / peer.decode_tps
            );
        }
        Err(why) => println!("llama.cpp              peer unavailable: {why:#}"),
    }
    match memory {
        Some((now, peak)) => println!("sextant resident memory: {:.0} MB (peak {:.0} MB)", now / 1e6, peak / 1e6),
        None => println!("sextant resident memory: unavailable on this platform"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Median and best speeds over `runs`, and the load time.
fn measure_ours(model: &Path, prompt: usize, decode: usize, runs: usize) -> anyhow::Result<(Speeds, Duration, Speeds)> {
    let provider = EmbeddedProvider::load(model)?;
    // Warm-up, as llama-bench does one: first-touch page faults and
    // thread-pool start-up.
    provider.benchmark(16, 4)?;
    let mut prompt_tps = Vec::with_capacity(runs);
    let mut decode_tps = Vec::with_capacity(runs);
    for _ in 0..runs {
        let figures: BenchFigures = provider.benchmark(prompt, decode)?;
        prompt_tps.push(figures.prompt_tokens as f64 / figures.prompt_time.as_secs_f64());
        decode_tps.push(figures.decode_tokens as f64 / figures.decode_time.as_secs_f64());
    }
    let best = Speeds {
        prompt_tps: prompt_tps.iter().copied().fold(0.0, f64::max),
        decode_tps: decode_tps.iter().copied().fold(0.0, f64::max),
    };
    let median = Speeds {
        prompt_tps: median(&prompt_tps).context("no prompt runs")?,
        decode_tps: median(&decode_tps).context("no decode runs")?,
    };
    Ok((median, provider.load_time(), best))
}

/// The median (the mean of the middle two for an even count); None when empty
/// or when a value is not a number.
fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || values.iter().any(|value| value.is_nan()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 { sorted[middle] } else { (sorted[middle - 1] + sorted[middle]) / 2.0 })
}

/// The threads the engine computes on: rayon's global pool, which follows
/// RAYON_NUM_THREADS and otherwise takes one thread per available CPU.
fn engine_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|&threads| threads > 0)
        .unwrap_or_else(nproc)
}

fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn utc_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    format!("{} UTC", sextant_core::sessions::format_utc(now as i64))
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
         `cargo xtask peer llama-cpp` builds one from pinned sources (about half an hour on 2 cores), \
         or pass --llama-bench"
    )
}

/// What both sides run.
#[derive(Debug, Clone, Copy)]
struct PeerShape {
    prompt: usize,
    decode: usize,
    runs: usize,
    threads: usize,
}

/// The two llama-bench invocations: the prompt alone from an empty cache,
/// and the decode after a prompt of the same length (`-d`), as Sextant's
/// benchmark does both.
fn peer_arguments(model: &Path, shape: PeerShape) -> [Vec<String>; 2] {
    let test = |prompt: usize, generate: usize, depth: usize| -> Vec<String> {
        let mut arguments = vec!["-m".to_string(), model.display().to_string()];
        for (flag, value) in
            [("-p", prompt), ("-n", generate), ("-d", depth), ("-t", shape.threads), ("-r", shape.runs)]
        {
            arguments.extend([flag.to_string(), value.to_string()]);
        }
        arguments.extend(["-o".to_string(), "json".to_string()]);
        arguments
    };
    [test(shape.prompt, 0, 0), test(0, shape.decode, shape.prompt)]
}

/// The exact command lines, as a shell would take them.
fn peer_commands(binary: &Path, model: &Path, shape: PeerShape) -> Vec<String> {
    let quote = |word: &str| {
        let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c));
        if plain {
            word.to_string()
        } else {
            format!("'{}'", word.replace('\'', r"'\''"))
        }
    };
    peer_arguments(model, shape)
        .iter()
        .map(|arguments| {
            let words = std::iter::once(binary.display().to_string()).chain(arguments.iter().cloned());
            words.map(|word| quote(&word)).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn measure_llama_cpp(binary: &Path, model: &Path, shape: PeerShape) -> anyhow::Result<Speeds> {
    let [prompt_arguments, decode_arguments] = peer_arguments(model, shape);
    let run = |arguments: &[String]| -> anyhow::Result<Vec<LlamaBenchRow>> {
        let output = Command::new(binary)
            .args(arguments)
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
        parse_llama_bench(&output.stdout)
    };
    let prompt_rows = run(&prompt_arguments)?;
    let decode_rows = run(&decode_arguments)?;
    let expect = |rows: &[LlamaBenchRow], what: Test| peer_median(rows, what, shape.threads, shape.runs);
    Ok(Speeds {
        prompt_tps: expect(&prompt_rows, Test { prompt: shape.prompt, generate: 0, depth: 0 })?,
        decode_tps: expect(&decode_rows, Test { prompt: 0, generate: shape.decode, depth: shape.prompt })?,
    })
}

/// One result row of `llama-bench -o json` (the fields used here).
#[derive(Debug, Deserialize)]
struct LlamaBenchRow {
    n_prompt: usize,
    n_gen: usize,
    /// Absent before llama-bench learned `-d`: those builds ran at depth 0.
    #[serde(default)]
    n_depth: usize,
    n_threads: usize,
    /// Tokens per second of each repetition.
    samples_ts: Vec<f64>,
}

fn parse_llama_bench(json: &[u8]) -> anyhow::Result<Vec<LlamaBenchRow>> {
    serde_json::from_slice(json).context("llama-bench printed no JSON result list")
}

/// A llama-bench test: `pp<prompt>` or `tg<generate>`, at a cache depth.
#[derive(Debug, Clone, Copy)]
struct Test {
    prompt: usize,
    generate: usize,
    depth: usize,
}

/// The median tokens/s of the row for `test`, checked to have run with the
/// thread count and repetitions asked for (so the comparison is like with like).
fn peer_median(rows: &[LlamaBenchRow], test: Test, threads: usize, runs: usize) -> anyhow::Result<f64> {
    let row = rows
        .iter()
        .find(|row| row.n_prompt == test.prompt && row.n_gen == test.generate && row.n_depth == test.depth)
        .with_context(|| {
            format!(
                "llama-bench JSON has no row for {} prompt and {} generated tokens at depth {}",
                test.prompt, test.generate, test.depth
            )
        })?;
    if row.n_threads != threads {
        anyhow::bail!("llama-bench ran {} threads, {threads} asked for", row.n_threads);
    }
    if row.samples_ts.len() != runs {
        anyhow::bail!("llama-bench reported {} runs, {runs} asked for", row.samples_ts.len());
    }
    median(&row.samples_ts).context("llama-bench reported a sample that is not a number")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real output of `llama-bench -m qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    /// -p 32 -n 8 -d 0,32 -t 2 -r 3 -o json` (llama-cpp-python 0.3.36's
    /// llama.cpp, built by `cargo xtask peer llama-cpp`; taken on a loaded
    /// machine, so the speeds are low): four rows, pp32 and tg8 at depths 0
    /// and 32, three samples each.
    const FIXTURE: &str = include_str!("../../../tests/fixtures/llama-bench/qwen2.5-coder-0.5b-p32-n8-d0-32-r3.json");

    fn rows() -> Vec<LlamaBenchRow> {
        parse_llama_bench(FIXTURE.as_bytes()).expect("the fixture parses")
    }

    #[test]
    fn median_of_odd_and_even_counts_ignores_order() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[10.0, 1.0, 4.0, 2.0]), Some(3.0));
        assert_eq!(median(&[7.5]), Some(7.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN, 2.0]), None);
    }

    #[test]
    fn llama_bench_json_parses_every_row_with_its_samples() {
        let rows = rows();
        let shapes: Vec<(usize, usize, usize)> =
            rows.iter().map(|row| (row.n_prompt, row.n_gen, row.n_depth)).collect();
        assert_eq!(shapes, [(32, 0, 0), (0, 8, 0), (32, 0, 32), (0, 8, 32)]);
        assert!(rows.iter().all(|row| row.n_threads == 2 && row.samples_ts.len() == 3));
        assert_eq!(rows[3].samples_ts, [1.73929, 0.435542, 1.72274]);
    }

    #[test]
    fn peer_median_is_the_median_sample_of_the_matching_row_not_the_mean() {
        let rows = rows();
        let decode = peer_median(&rows, Test { prompt: 0, generate: 8, depth: 32 }, 2, 3).expect("tg8 at depth 32");
        assert_eq!(decode, 1.72274);
        // llama-bench's own avg_ts for that row, which the comparison used to take.
        let mean: f64 = rows[3].samples_ts.iter().sum::<f64>() / 3.0;
        assert!((decode - mean).abs() > 0.3, "median {decode} vs mean {mean}");
        let prompt = peer_median(&rows, Test { prompt: 32, generate: 0, depth: 0 }, 2, 3).expect("pp32 at depth 0");
        assert_eq!(prompt, 7.79733);
        let at_depth = peer_median(&rows, Test { prompt: 32, generate: 0, depth: 32 }, 2, 3).expect("pp32 at depth 32");
        assert_eq!(at_depth, 9.65107);
    }

    #[test]
    fn peer_median_refuses_rows_that_are_not_like_with_like() {
        let rows = rows();
        let tg8 = Test { prompt: 0, generate: 8, depth: 0 };
        let missing = peer_median(&rows, Test { prompt: 64, generate: 0, depth: 0 }, 2, 3).unwrap_err();
        assert!(missing.to_string().contains("no row for 64 prompt"), "{missing}");
        let threads = peer_median(&rows, tg8, 4, 3).unwrap_err();
        assert!(threads.to_string().contains("ran 2 threads, 4 asked for"), "{threads}");
        let runs = peer_median(&rows, tg8, 2, 5).unwrap_err();
        assert!(runs.to_string().contains("reported 3 runs, 5 asked for"), "{runs}");
    }

    #[test]
    fn llama_bench_errors_instead_of_json_are_reported() {
        assert!(parse_llama_bench(b"error: failed to load model").is_err());
        assert!(parse_llama_bench(b"[{\"n_prompt\": 32}]").is_err(), "a row without samples is refused");
    }

    #[test]
    fn peer_runs_the_prompt_alone_and_the_decode_after_a_prompt_of_the_same_length() {
        let shape = PeerShape { prompt: 128, decode: 64, runs: 5, threads: 2 };
        let commands = peer_commands(Path::new("/opt/llama-bench"), Path::new("/m/my model.gguf"), shape);
        assert_eq!(
            commands,
            [
                "/opt/llama-bench -m '/m/my model.gguf' -p 128 -n 0 -d 0 -t 2 -r 5 -o json",
                "/opt/llama-bench -m '/m/my model.gguf' -p 0 -n 64 -d 128 -t 2 -r 5 -o json",
            ]
        );
    }
}
