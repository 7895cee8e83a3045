//! Server-side latency of inline-completion prompt building on a 10k-line
//! file: p50/p95 over many cursor positions, beside a naive peer approach.
//!
//! - `sextant window`: `prompt::prefix_window` + `suffix_window` on the rope
//!   (walks lines outward from the cursor, stops at the token budget).
//! - `naive window (llm-ls style)`: copies the whole document into a String
//!   per request, splits it into lines and windows with String operations,
//!   using the same token counter and budgets.
//! - `sextant full prompt`: window + identifiers near the cursor + repo-map
//!   context (definitions of those identifiers, then the file's ranked
//!   definitions) rendered as signatures, with the file's ranking cached as
//!   the server does between keystrokes. The map is this repository's own
//!   `core/` + `lsp/` sources.
//! - `ranking refresh`: the personalised PageRank the server reruns when the
//!   current file changes, or at most every 2 s while the map changes.
//!
//! Run: `cargo bench -p sextant-lsp` (release profile).

use std::path::Path;
use std::time::{Duration, Instant};

use ropey::Rope;
use sextant_core::repomap::{self, RepoMap, SourceFile};
use sextant_core::tokens;
use sextant_lsp::prompt::{build_prompt, prefix_window, rank_for_file, suffix_window, PromptBudget};

const LINES: usize = 10_000;
const SAMPLES: usize = 400;

/// A deterministic 10k-line Rust file with realistic line lengths.
fn synthetic_file() -> String {
    let mut text = String::new();
    let mut line = 0;
    let mut item = 0;
    while line < LINES {
        text.push_str(&format!("/// Computes the value of item {item} from its inputs.\n"));
        text.push_str(&format!("pub fn compute_item_{item}(input: &[u64], scale: f64) -> Result<f64, Error> {{\n"));
        text.push_str("    let mut total = 0.0;\n");
        text.push_str("    for (index, value) in input.iter().enumerate() {\n");
        text.push_str(&format!("        total += (*value as f64) * scale / (index as f64 + {item}.0);\n"));
        text.push_str("    }\n");
        text.push_str("    if total.is_nan() { return Err(Error::Invalid(format!(\"item produced NaN\"))); }\n");
        text.push_str("    Ok(total)\n");
        text.push_str("}\n\n");
        line += 10;
        item += 1;
    }
    text
}

/// The peer: whole-document String copy, then line-based windowing.
fn naive_window(rope: &Rope, cursor: usize, budget: &PromptBudget) -> (String, String) {
    let text = rope.to_string();
    let byte = rope.char_to_byte(cursor);
    let (before, after) = text.split_at(byte);
    let mut prefix_lines: Vec<&str> = before.split_inclusive('\n').collect();
    let mut prefix = String::new();
    let mut used = 0;
    let mut taken = Vec::new();
    while let Some(line) = prefix_lines.pop() {
        let cost = tokens::count(line);
        if used + cost > budget.prefix_tokens {
            break;
        }
        used += cost;
        taken.push(line);
    }
    for line in taken.iter().rev() {
        prefix.push_str(line);
    }
    let mut suffix = String::new();
    let mut used = 0;
    for line in after.split_inclusive('\n') {
        let cost = tokens::count(line);
        if used + cost > budget.suffix_tokens {
            break;
        }
        used += cost;
        suffix.push_str(line);
    }
    (prefix, suffix)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn measure(name: &str, positions: &[usize], mut run: impl FnMut(usize) -> usize) {
    // Warm up caches and allocators.
    let mut sink = 0usize;
    for &position in positions.iter().take(20) {
        sink = sink.wrapping_add(run(position));
    }
    let mut times: Vec<Duration> = positions
        .iter()
        .map(|&position| {
            let started = Instant::now();
            sink = sink.wrapping_add(run(position));
            started.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "{name:<34} p50 {:>9.3} ms   p95 {:>9.3} ms   max {:>9.3} ms   (n={}, checksum {})",
        percentile(&times, 0.50).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        times.len(),
        sink % 1000
    );
}

fn repository_map() -> RepoMap {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for dir in ["core", "lsp"] {
        for (relative, absolute) in repomap::walk(&workspace.join(dir)).files {
            if let Ok(contents) = std::fs::read(&absolute) {
                files.push(SourceFile::new(format!("{dir}/{relative}"), contents));
            }
        }
    }
    RepoMap::build(files).0
}

fn main() {
    let text = synthetic_file();
    let rope = Rope::from_str(&text);
    let budget = PromptBudget::default();
    let map = repository_map();
    println!(
        "prompt building on a {}-line file ({} KiB); repo map: {} files, {} tags; budgets {}/{}/{} tokens",
        rope.len_lines() - 1,
        text.len() / 1024,
        map.file_count(),
        map.tag_count(),
        budget.prefix_tokens,
        budget.suffix_tokens,
        budget.context_tokens
    );
    // Cursor positions spread over the file (mid-line, deterministic).
    let positions: Vec<usize> = (0..SAMPLES)
        .map(|i| {
            let line = (i * 7919) % (rope.len_lines() - 1);
            rope.line_to_char(line) + rope.line(line).len_chars() / 2
        })
        .collect();

    measure("sextant window (rope)", &positions, |cursor| {
        let (prefix, _) = prefix_window(&rope, cursor, budget.prefix_tokens);
        let (suffix, _) = suffix_window(&rope, cursor, budget.suffix_tokens);
        prefix.len() + suffix.len()
    });
    measure("naive window (llm-ls style)", &positions, |cursor| {
        let (prefix, suffix) = naive_window(&rope, cursor, &budget);
        prefix.len() + suffix.len()
    });
    let path = Some("lsp/src/synthetic.rs");
    let ranked = rank_for_file(&map, path);
    measure("sextant full prompt (+ repo map)", &positions, |cursor| {
        let prompt = build_prompt(&rope, cursor, path, Some(&map), Some(&ranked), &budget);
        prompt.prefix.len() + prompt.context.len()
    });
    let refresh_positions: Vec<usize> = positions.iter().copied().take(60).collect();
    measure("ranking refresh (rare, see docs)", &refresh_positions, |_| rank_for_file(&map, path).len());
}
