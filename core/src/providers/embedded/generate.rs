//! The token loop: prefill, then sample one token at a time, streaming text
//! out and stopping on end-of-turn tokens, stop strings, the token budget, a
//! listener that has what it needs, a repetition loop or cancellation.
//!
//! Requests share one [`Session`]: the KV cache of the previous request and
//! the tokens it holds. A new request keeps the longest common token prefix
//! and forwards only the rest (llama.cpp's server calls it `cache_prompt`),
//! so the next keystroke of a completion, or the next turn of a
//! conversation, costs only its new tokens. The rest of the prompt is
//! forwarded in chunks of 128 with cancellation checked before every layer:
//! a superseded request stops within a layer's work, dropping only the
//! chunk in progress; the chunks it completed stay for the next request.
//!
//! Greedy decoding speculates with prompt-lookup drafts: the tokens that
//! followed the latest earlier occurrence of the context's last n-gram
//! (completions copy their surroundings often) are verified in one pass
//! whose products are bit-identical to decoding one token at a time
//! ([`Llama::forward_each`]), so the output is exactly plain greedy's.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use super::model::{KvCache, Llama};
use super::tokenizer::TextTokenizer;
use super::EmbeddedError;
use crate::providers::StopReason;

#[derive(Debug, Clone)]
pub struct GenerationParams {
    pub max_new_tokens: usize,
    /// 0 = greedy argmax.
    pub temperature: f32,
    pub seed: u64,
    pub stop: Vec<String>,
    /// Token ids that end generation besides the tokenizer's end-of-turn
    /// ones (FIM's `<|fim_pad|>`, `<|file_sep|>`, ...: decoding drops
    /// control tokens, so they cannot be stop strings).
    pub end_tokens: Vec<u32>,
    /// Most prompt-lookup draft tokens verified per step (greedy only;
    /// 0 = no speculation). The output is the same either way.
    pub draft_tokens: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub text: String,
    /// The generated token ids (end-of-turn tokens excluded).
    pub tokens: Vec<u32>,
    pub prompt_tokens: usize,
    pub output_tokens: usize,
    pub stop_reason: StopReason,
    /// Leading prompt tokens whose keys and values were already cached by
    /// the previous request (not forwarded again).
    pub reused_prompt_tokens: usize,
    /// Prompt tokens run through the model for this request.
    pub forwarded_prompt_tokens: usize,
    /// Sequential forward passes while decoding (one per generated token
    /// without speculation; fewer when drafts are accepted).
    pub decode_steps: usize,
    /// Draft tokens proposed and accepted by the verification.
    pub drafted_tokens: usize,
    pub accepted_draft_tokens: usize,
}

/// The KV cache kept from one request to the next, and the tokens it holds.
#[derive(Default)]
pub struct Session {
    cache: Option<KvCache>,
    /// The token of every cached position, in order
    /// (`tokens.len() == cache.positions()`).
    tokens: Vec<u32>,
}

/// A fresh cache is made at least this large, so growing requests (typing,
/// agent turns) keep reusing it. Its memory is mapped only as it fills.
const MIN_CACHE_POSITIONS: usize = 4096;

impl Session {
    /// Forgets the cached tokens (the next request starts cold).
    pub fn clear(&mut self) {
        self.tokens.clear();
        if let Some(cache) = &mut self.cache {
            cache.truncate(0);
        }
    }

    /// Makes the cache ready for `prompt` plus `extra` more positions and
    /// returns how many leading prompt tokens it already holds: the longest
    /// common prefix, but never the whole prompt (the last prompt token is
    /// always forwarded: its logits predict the first new token).
    fn prepare(&mut self, model: &Llama, prompt: &[u32], extra: usize) -> Result<usize, EmbeddedError> {
        let needed = (prompt.len() + extra).min(model.config.context_length);
        let usable = self.cache.as_ref().filter(|cache| cache.positions() == self.tokens.len());
        match usable {
            Some(cache) if cache.capacity() >= needed => {}
            _ => {
                let old_capacity = self.cache.as_ref().map_or(0, KvCache::capacity);
                self.tokens.clear();
                // Freed before the new one is allocated.
                self.cache = None;
                self.cache = Some(model.new_cache(needed.max(MIN_CACHE_POSITIONS).max(2 * old_capacity))?);
            }
        }
        let common = common_prefix(&self.tokens, prompt).min(prompt.len().saturating_sub(1));
        self.tokens.truncate(common);
        if let Some(cache) = &mut self.cache {
            cache.truncate(common);
        }
        Ok(common)
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Sampling keeps only this many most likely tokens: a 135M model's long tail
/// is mostly noise.
const TOP_K: usize = 40;

/// Runs generation on the calling thread, continuing from what `session`
/// holds. `on_text` receives text as it becomes final and returns false
/// when the listener has what it needs: generation stops at once with
/// `StopSequence`, and the text ends with that piece. `progress` follows
/// the prompt tokens forwarded so far.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    model: &Llama,
    tokenizer: &TextTokenizer,
    session: &mut Session,
    progress: &AtomicUsize,
    prompt: &[u32],
    params: &GenerationParams,
    cancel: &CancellationToken,
    on_text: &mut dyn FnMut(&str) -> bool,
) -> Result<Generated, EmbeddedError> {
    if prompt.is_empty() {
        return Err(EmbeddedError::Format("generation needs at least one prompt token".into()));
    }
    let mut run = Generated {
        text: String::new(),
        tokens: Vec::new(),
        prompt_tokens: prompt.len(),
        output_tokens: 0,
        stop_reason: StopReason::Cancelled,
        reused_prompt_tokens: 0,
        forwarded_prompt_tokens: 0,
        decode_steps: 0,
        drafted_tokens: 0,
        accepted_draft_tokens: 0,
    };
    if cancel.is_cancelled() {
        return Ok(run);
    }
    let greedy = params.temperature <= 0.0 || !params.temperature.is_finite();
    let draft_limit = if greedy { params.draft_tokens } else { 0 };
    run.reused_prompt_tokens = session.prepare(model, prompt, params.max_new_tokens + draft_limit + 1)?;
    let Session { cache, tokens: cached } = session;
    let cache = cache.as_mut().ok_or_else(|| EmbeddedError::Format("the KV cache was not prepared".into()))?;

    let fresh = &prompt[run.reused_prompt_tokens..];
    let before = cache.positions();
    let prefilled = model.forward_interruptible(fresh, cache, &mut |done| {
        progress.store(done, Ordering::Relaxed);
        !cancel.is_cancelled()
    });
    // Whatever was forwarded stays cached, cancelled or not.
    let done = cache.positions() - before;
    cached.extend_from_slice(&fresh[..done]);
    run.forwarded_prompt_tokens = done;
    progress.store(done, Ordering::Relaxed);
    let Some(mut logits) = prefilled? else {
        return Ok(run);
    };

    let stops: Vec<&str> = params.stop.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    let mut rng = SplitMix64(params.seed);
    let mut output_ids: Vec<u32> = Vec::new();
    let mut text = String::new();
    let mut emitted = 0usize;
    // Logits already computed by a verification for the tokens after the
    // next ones (accepted drafts), in order.
    let mut verified: VecDeque<Vec<f32>> = VecDeque::new();
    // Drafts proposed per step: halved after a step accepting none (each
    // rejected draft costs a share of a forward pass), doubled after a step
    // accepting all.
    let mut draft_cap = draft_limit;
    let stop_reason = loop {
        if cancel.is_cancelled() {
            break StopReason::Cancelled;
        }
        if output_ids.len() >= params.max_new_tokens {
            break StopReason::MaxTokens;
        }
        let next = sample(&logits, params.temperature, &mut rng);
        if tokenizer.end_of_turn.contains(&next) || params.end_tokens.contains(&next) {
            break StopReason::EndTurn;
        }
        output_ids.push(next);
        text = tokenizer.decode(&output_ids)?;
        if let Some(at) = find_stop(&text, &stops, emitted) {
            text.truncate(at);
            if let Some(rest) = text.get(emitted..) {
                if !rest.is_empty() {
                    on_text(rest);
                }
            }
            emitted = text.len();
            break StopReason::StopSequence;
        }
        let safe = stable_len(&text, &stops);
        if safe > emitted {
            if let Some(fresh) = text.get(emitted..safe) {
                let wanted = on_text(fresh);
                emitted = safe;
                if !wanted {
                    break StopReason::StopSequence;
                }
            }
        }
        if ends_in_token_loop(&output_ids) || ends_in_repeated_line(&text) {
            break StopReason::Repetition;
        }
        if output_ids.len() >= params.max_new_tokens {
            break StopReason::MaxTokens;
        }
        if let Some(next_logits) = verified.pop_front() {
            logits = next_logits;
            continue;
        }
        let room = cache.capacity().saturating_sub(cache.positions());
        if room == 0 {
            break StopReason::MaxTokens;
        }
        run.decode_steps += 1;
        let wanted = draft_cap.min(room - 1).min(params.max_new_tokens - output_ids.len());
        cached.push(next);
        let drafts = if wanted > 0 { lookup_draft(cached, wanted) } else { Vec::new() };
        if drafts.is_empty() {
            logits = model.forward(&[next], cache)?;
            continue;
        }
        let mut batch = Vec::with_capacity(1 + drafts.len());
        batch.push(next);
        batch.extend_from_slice(&drafts);
        let all = model.forward_each(&batch, cache)?;
        let rows: Vec<&[f32]> = all.chunks_exact(all.len() / batch.len()).collect();
        let accepted = drafts.iter().zip(&rows).take_while(|(&draft, row)| argmax(row) == draft).count();
        run.drafted_tokens += drafts.len();
        run.accepted_draft_tokens += accepted;
        if accepted == drafts.len() {
            draft_cap = (draft_cap * 2).min(draft_limit);
        } else if accepted == 0 {
            draft_cap = (draft_cap / 2).max(1);
        }
        // Roll back past the rejected drafts.
        cache.truncate(cache.positions() - (drafts.len() - accepted));
        cached.extend_from_slice(&drafts[..accepted]);
        logits = rows[0].to_vec();
        verified.extend(rows[1..=accepted].iter().map(|row| row.to_vec()));
    };
    match stop_reason {
        // The listener's or a stop string's end: exactly what was passed on.
        StopReason::StopSequence | StopReason::Cancelled => text.truncate(emitted),
        // Flush text held back for a stop string that never completed.
        _ => {
            let end = text.trim_end_matches('\u{FFFD}').len();
            if let Some(rest) = text.get(emitted..end) {
                if !rest.is_empty() {
                    on_text(rest);
                }
            }
            text.truncate(end);
        }
    }
    run.text = text;
    run.output_tokens = output_ids.len();
    run.tokens = output_ids;
    run.stop_reason = stop_reason;
    Ok(run)
}

/// The longest n-gram looked up for drafts, and the shortest (a single
/// token recurs too often to predict what follows).
const DRAFT_NGRAM: std::ops::RangeInclusive<usize> = 2..=3;

/// Prompt-lookup drafting: up to `max` tokens that followed the latest
/// earlier occurrence of the context's last n tokens, for the longest n in
/// [`DRAFT_NGRAM`] that occurs earlier (none when no suffix recurs).
fn lookup_draft(context: &[u32], max: usize) -> Vec<u32> {
    let len = context.len();
    for n in DRAFT_NGRAM.rev() {
        if len <= n {
            continue;
        }
        let tail = &context[len - n..];
        // Latest first: code near the cursor is the likeliest to be copied.
        if let Some(start) = (0..len - n).rev().find(|&start| &context[start..start + n] == tail) {
            let from = start + n;
            return context[from..len.min(from + max)].to_vec();
        }
    }
    Vec::new()
}

/// A period repeated back to back this many times is a loop...
const LOOP_COPIES: usize = 3;
/// ... when the copies span at least this many tokens (shorter periods need
/// more copies: `0, 0, 0,` is an array, not a loop) ...
const LOOP_MIN_TOKENS: usize = 24;
/// ... for periods up to this long.
const LOOP_MAX_PERIOD: usize = 32;

/// Whether `tokens` ends in a loop: its last `n` tokens repeated back to
/// back at least [`LOOP_COPIES`] times, over [`LOOP_MIN_TOKENS`] or more.
fn ends_in_token_loop(tokens: &[u32]) -> bool {
    (1..=LOOP_MAX_PERIOD).any(|period| {
        let copies = LOOP_COPIES.max(LOOP_MIN_TOKENS.div_ceil(period));
        let span = period * copies;
        if tokens.len() < span {
            return false;
        }
        let tail = &tokens[tokens.len() - span..];
        tail.chunks_exact(period).all(|copy| copy == &tail[span - period..])
    })
}

/// Whether the last [`LOOP_COPIES`] complete lines of `text` are the same
/// line with some content (a brace or `pass` repeats legitimately).
fn ends_in_repeated_line(text: &str) -> bool {
    let Some(complete) = text.strip_suffix('\n') else {
        return false;
    };
    let mut lines = complete.rsplit('\n');
    let Some(last) = lines.next() else {
        return false;
    };
    let content = last.trim();
    if content.chars().filter(|c| c.is_alphanumeric()).count() < 4 {
        return false;
    }
    lines.take(LOOP_COPIES - 1).filter(|line| *line == last).count() == LOOP_COPIES - 1
}

/// Byte offset of the first stop string in `text`, searching only where a new
/// match can start (stops wholly inside emitted text were already checked).
fn find_stop(text: &str, stops: &[&str], emitted: usize) -> Option<usize> {
    stops
        .iter()
        .filter_map(|stop| {
            let mut from = emitted.saturating_sub(stop.len());
            while !text.is_char_boundary(from) {
                from -= 1;
            }
            text[from..].find(stop).map(|at| from + at)
        })
        .min()
}

/// How much of `text` can be shown now: everything except a trailing partial
/// UTF-8 character and a suffix that could still grow into a stop string.
fn stable_len(text: &str, stops: &[&str]) -> usize {
    let end = text.trim_end_matches('\u{FFFD}').len();
    let head = &text[..end];
    let mut keep = end;
    for stop in stops {
        // Every proper prefix of the stop string that ends the text.
        for (prefix_end, _) in stop.char_indices().skip(1) {
            if head.ends_with(&stop[..prefix_end]) {
                keep = keep.min(end - prefix_end);
            }
        }
    }
    keep
}

/// The first largest logit (greedy decoding and draft verification agree
/// on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    logits
        .iter()
        .enumerate()
        .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best })
        .0 as u32
}

fn sample(logits: &[f32], temperature: f32, rng: &mut SplitMix64) -> u32 {
    if temperature <= 0.0 || !temperature.is_finite() {
        return argmax(logits);
    }
    let mut candidates: Vec<(usize, f32)> = logits.iter().copied().enumerate().filter(|(_, v)| v.is_finite()).collect();
    if candidates.is_empty() {
        return argmax(logits);
    }
    let k = TOP_K.min(candidates.len());
    candidates.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
    candidates.truncate(k);
    let max = candidates.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = candidates.iter().map(|c| f64::from((c.1 - max) / temperature).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut target = rng.next_f64() * total;
    for (candidate, weight) in candidates.iter().zip(&weights) {
        target -= weight;
        if target <= 0.0 {
            return candidate.0 as u32;
        }
    }
    candidates.last().map(|c| c.0 as u32).unwrap_or_else(|| argmax(logits))
}

/// Small deterministic PRNG: the same seed gives the same sampled text.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_prefix_is_held_back() {
        assert_eq!(stable_len("hello EN", &["END"]), "hello ".len());
        assert_eq!(stable_len("hello", &["END"]), 5);
        assert_eq!(stable_len("ab\u{FFFD}", &[]), 2);
    }

    #[test]
    fn stop_is_found_across_the_emitted_boundary() {
        assert_eq!(find_stop("abcEND", &["END"], 4), Some(3));
        assert_eq!(find_stop("abcdef", &["END"], 4), None);
    }

    #[test]
    fn greedy_picks_the_largest_logit() {
        let mut rng = SplitMix64(1);
        assert_eq!(sample(&[0.1, 3.0, -1.0], 0.0, &mut rng), 1);
        assert_eq!(argmax(&[2.0, 5.0, 5.0]), 1, "the first of equal logits");
    }

    #[test]
    fn seeded_sampling_repeats() {
        let logits: Vec<f32> = (0..100).map(|i| (i % 7) as f32).collect();
        let draw = |seed| {
            let mut rng = SplitMix64(seed);
            (0..20).map(|_| sample(&logits, 1.0, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
    }

    #[test]
    fn longest_common_prefix_is_counted() {
        assert_eq!(common_prefix(&[1, 2, 3, 4], &[1, 2, 5]), 2);
        assert_eq!(common_prefix(&[], &[1]), 0);
        assert_eq!(common_prefix(&[1, 2], &[1, 2, 3]), 2);
    }

    #[test]
    fn token_loops_are_detected() {
        // A 5-token period three times over (15 tokens) is short of the
        // minimum span; five copies (25 tokens) are a loop.
        let period = [7, 8, 9, 10, 11];
        let three: Vec<u32> = [1, 2].iter().chain(period.iter().cycle().take(15)).copied().collect();
        assert!(!ends_in_token_loop(&three));
        let five: Vec<u32> = [1, 2].iter().chain(period.iter().cycle().take(25)).copied().collect();
        assert!(ends_in_token_loop(&five));
        // Long periods need only three copies.
        let long: Vec<u32> = (0..12).cycle().take(36).collect();
        assert!(ends_in_token_loop(&long));
        assert!(!ends_in_token_loop(&long[..35]), "the third copy is incomplete");
        // An array of zeros, `0, 0, 0, 0` (period 2), is not a loop yet.
        let zeros: Vec<u32> = [15, 11].iter().cycle().take(16).copied().collect();
        assert!(!ends_in_token_loop(&zeros));
        assert!(ends_in_token_loop(&[15u32, 11].repeat(12)));
        // Periods longer than 32 are not looked for; distinct tokens never loop.
        assert!(!ends_in_token_loop(&(0..40).cycle().take(120).collect::<Vec<u32>>()));
        assert!(!ends_in_token_loop(&(0..200).collect::<Vec<u32>>()));
    }

    #[test]
    fn repeated_lines_are_detected() {
        assert!(ends_in_repeated_line("x = 1\n    print(x)\n    print(x)\n    print(x)\n"));
        assert!(!ends_in_repeated_line("    print(x)\n    print(x)\n    print(x)"), "the last line is not complete");
        assert!(!ends_in_repeated_line("    print(x)\n    print(y)\n    print(x)\n"));
        assert!(!ends_in_repeated_line("print(x)\n    print(x)\n    print(x)\n"), "indentation differs");
        assert!(!ends_in_repeated_line("}\n}\n}\n"), "closing braces repeat legitimately");
        assert!(!ends_in_repeated_line("\n\n\n"));
    }

    #[test]
    fn drafts_follow_the_latest_occurrence_of_the_longest_suffix() {
        // `2 3` occurs at 1 and 4: the latest (4) is followed by 9 8 2.
        let context = [4, 2, 3, 5, 2, 3, 9, 8, 2, 3];
        assert_eq!(lookup_draft(&context, 3), vec![9, 8, 2]);
        assert_eq!(lookup_draft(&context, 8), vec![9, 8, 2, 3], "drafts stop at the end of the context");
        // The 3-gram `1 2 3` wins over the later 2-gram `2 3`.
        let context = [1, 2, 3, 7, 8, 2, 3, 6, 1, 2, 3];
        assert_eq!(lookup_draft(&context, 2), vec![7, 8]);
        assert_eq!(lookup_draft(&[1, 2, 3], 4), Vec::<u32>::new(), "no suffix recurs");
        assert_eq!(lookup_draft(&[3, 4, 1, 3], 4), Vec::<u32>::new(), "a single recurring token is no draft");
        assert_eq!(lookup_draft(&[5], 4), Vec::<u32>::new());
    }
}

#[cfg(test)]
mod costs {
    use std::time::Instant;

    use super::super::{model_path, EmbeddedProvider, DEFAULT_MODEL_ID};

    /// Figures, not a test: the time of one forward pass of k tokens with
    /// each product kind, against k = 1 (run in release, `--ignored --nocapture`).
    #[test]
    #[ignore]
    fn batch_forward_costs() {
        let Some(spec) = super::super::find_model(DEFAULT_MODEL_ID) else { return };
        let Ok(provider) = EmbeddedProvider::load(&model_path(spec)) else {
            eprintln!("the default model is not installed: skipped");
            return;
        };
        let model = &provider.engine.model;
        let prompt: Vec<u32> = (0..64).map(|i| 1000 + i).collect();
        let mut cache = model.new_cache(256).expect("cache");
        model.forward(&prompt, &mut cache).expect("prefill");
        for _ in 0..3 {
            for k in [1usize, 2, 4, 8, 16] {
                let tokens: Vec<u32> = (0..k as u32).map(|i| 2000 + i).collect();
                let started = Instant::now();
                for _ in 0..3 {
                    model.forward_each(&tokens, &mut cache).expect("forward");
                    cache.truncate(64);
                }
                let each = started.elapsed().as_secs_f64() / 3.0;
                let started = Instant::now();
                for _ in 0..3 {
                    model.forward(&tokens, &mut cache).expect("forward");
                    cache.truncate(64);
                }
                let gemm = started.elapsed().as_secs_f64() / 3.0;
                println!("k = {k}: per-token kernels {:.0} ms, prefill products {:.0} ms", each * 1e3, gemm * 1e3);
            }
        }
    }
}
