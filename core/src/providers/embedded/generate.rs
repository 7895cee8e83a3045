//! The token loop: prefill, then sample one token at a time, streaming text
//! out and stopping on end-of-turn tokens, stop strings, the token budget or
//! cancellation.

use tokio_util::sync::CancellationToken;

use super::model::Llama;
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub text: String,
    pub prompt_tokens: usize,
    pub output_tokens: usize,
    pub stop_reason: StopReason,
}

/// Sampling keeps only this many most likely tokens: a 135M model's long tail
/// is mostly noise.
const TOP_K: usize = 40;

/// Runs generation on the calling thread. `on_text` receives text as it
/// becomes final and returns false when nobody listens any more (which
/// cancels generation).
pub fn generate(
    model: &Llama,
    tokenizer: &TextTokenizer,
    prompt: &[u32],
    params: &GenerationParams,
    cancel: &CancellationToken,
    on_text: &mut dyn FnMut(&str) -> bool,
) -> Result<Generated, EmbeddedError> {
    let mut cache = model.new_cache(prompt.len() + params.max_new_tokens)?;
    let stops: Vec<&str> = params.stop.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    let mut rng = SplitMix64(params.seed);
    let mut output_ids: Vec<u32> = Vec::new();
    let mut text = String::new();
    let mut emitted = 0usize;

    if cancel.is_cancelled() {
        return Ok(finish(text, prompt.len(), 0, StopReason::Cancelled));
    }
    let mut logits = model.forward(prompt, &mut cache)?;
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
                if !on_text(fresh) {
                    break StopReason::Cancelled;
                }
                emitted = safe;
            }
        }
        if cache.positions() >= model.config.context_length || output_ids.len() >= params.max_new_tokens {
            break StopReason::MaxTokens;
        }
        logits = model.forward(&[next], &mut cache)?;
    };
    // Flush text held back for a stop string that never completed.
    if stop_reason != StopReason::StopSequence && stop_reason != StopReason::Cancelled {
        let end = text.trim_end_matches('\u{FFFD}').len();
        if let Some(rest) = text.get(emitted..end) {
            if !rest.is_empty() {
                on_text(rest);
            }
        }
        text.truncate(end);
    } else if stop_reason == StopReason::Cancelled {
        text.truncate(emitted);
    }
    Ok(finish(text, prompt.len(), output_ids.len(), stop_reason))
}

fn finish(text: String, prompt_tokens: usize, output_tokens: usize, stop_reason: StopReason) -> Generated {
    Generated { text, prompt_tokens, output_tokens, stop_reason }
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

fn sample(logits: &[f32], temperature: f32, rng: &mut SplitMix64) -> u32 {
    let argmax = || {
        logits
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best })
            .0 as u32
    };
    if temperature <= 0.0 || !temperature.is_finite() {
        return argmax();
    }
    let mut candidates: Vec<(usize, f32)> = logits.iter().copied().enumerate().filter(|(_, v)| v.is_finite()).collect();
    if candidates.is_empty() {
        return argmax();
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
    candidates.last().map(|c| c.0 as u32).unwrap_or_else(argmax)
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
}
