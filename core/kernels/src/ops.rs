//! The element-wise and attention steps of a llama layer.

use rayon::prelude::*;

/// `out = x / rms(x) * weight`.
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mean_square = x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32;
    let inverse = 1.0 / (mean_square + eps).sqrt();
    for ((out, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *out = v * inverse * w;
    }
}

/// `(cos, sin)` of every rotated pair, `2 * inverse_frequencies.len()`
/// values per position, for positions `start..start + count`.
pub fn rope_table(inverse_frequencies: &[f32], start: usize, count: usize) -> Vec<f32> {
    let mut table = Vec::with_capacity(count * inverse_frequencies.len() * 2);
    for position in start..start + count {
        for &frequency in inverse_frequencies {
            let angle = position as f32 * frequency;
            table.push(angle.cos());
            table.push(angle.sin());
        }
    }
    table
}

/// RoPE on adjacent pairs `(x[2i], x[2i+1])`, the layout GGUF llama weights
/// use; `rotation` is one position's row of [`rope_table`].
pub fn rotate_pairs(head: &mut [f32], rotation: &[f32]) {
    for (pair, cos_sin) in head.chunks_exact_mut(2).zip(rotation.chunks_exact(2)) {
        let (even, odd, cos, sin) = (pair[0], pair[1], cos_sin[0], cos_sin[1]);
        pair[0] = even * cos - odd * sin;
        pair[1] = even * sin + odd * cos;
    }
}

/// The gated MLP activation: `out = silu(gate) * up`.
pub fn silu_gate(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((out, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *out = g / (1.0 + (-g).exp()) * u;
    }
}

pub fn add_in_place(x: &mut [f32], delta: &[f32]) {
    for (x, d) in x.iter_mut().zip(delta) {
        *x += d;
    }
}

/// Head layout of a grouped-query attention layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl AttentionShape {
    pub fn kv_width(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

/// One layer's attention cache. Keys are stored transposed, one run of
/// positions per (key/value head, dimension), so a query's scores over all
/// positions are contiguous multiply-adds rather than one short dot product
/// (and horizontal sum) per position; values stay one row per position.
#[derive(Debug, Clone)]
pub struct KvLayer {
    shape: AttentionShape,
    capacity: usize,
    /// `[kv head][dimension][position]`.
    keys: Vec<f32>,
    /// `[position][kv head][dimension]`.
    values: Vec<f32>,
}

impl KvLayer {
    /// Room for `capacity` positions. The zeroed allocations are mapped
    /// lazily, so an unused tail costs no memory.
    pub fn new(shape: AttentionShape, capacity: usize) -> KvLayer {
        let size = capacity * shape.kv_width();
        KvLayer { shape, capacity, keys: vec![0f32; size], values: vec![0f32; size] }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Stores the keys and values (each `kv_heads x head_dim`) of `position`.
    pub fn store(&mut self, position: usize, key: &[f32], value: &[f32]) {
        let kv_width = self.shape.kv_width();
        assert!(position < self.capacity, "position {position} is past the cache capacity {}", self.capacity);
        assert!(key.len() == kv_width && value.len() == kv_width, "key/value rows must be kv_heads x head_dim");
        for (row, &k) in key.iter().enumerate() {
            self.keys[row * self.capacity + position] = k;
        }
        self.values[position * kv_width..(position + 1) * kv_width].copy_from_slice(value);
    }

    /// `scores[p] = query · key(kv_head, p)` for positions `0..scores.len()`.
    fn scores(&self, kv_head: usize, query: &[f32], scores: &mut [f32]) {
        let (head_dim, capacity, visible) = (self.shape.head_dim, self.capacity, scores.len());
        let keys = &self.keys[kv_head * head_dim * capacity..(kv_head + 1) * head_dim * capacity];
        let row = |dim: usize| &keys[dim * capacity..dim * capacity + visible];
        scores.fill(0.0);
        let mut dim = 0;
        // Four dimensions per pass: a quarter of the passes over `scores`.
        while dim + 4 <= head_dim {
            let (q0, q1, q2, q3) = (query[dim], query[dim + 1], query[dim + 2], query[dim + 3]);
            let rows = row(dim).iter().zip(row(dim + 1)).zip(row(dim + 2)).zip(row(dim + 3));
            for (score, (((k0, k1), k2), k3)) in scores.iter_mut().zip(rows) {
                *score += q0 * k0 + q1 * k1 + q2 * k2 + q3 * k3;
            }
            dim += 4;
        }
        for (dim, &q) in query.iter().enumerate().take(head_dim).skip(dim) {
            for (score, k) in scores.iter_mut().zip(row(dim)) {
                *score += q * k;
            }
        }
    }
}

/// Causal attention of `count` new queries at positions `start..start+count`
/// over `cache` (which already holds the new positions). Query `t` starts at
/// `queries[t * query_stride]` with its heads one after another; `out` is
/// `count x heads x head_dim`.
pub fn causal_attention(
    queries: &[f32],
    query_stride: usize,
    cache: &KvLayer,
    start: usize,
    count: usize,
    out: &mut [f32],
) {
    let AttentionShape { heads, kv_heads, head_dim } = cache.shape;
    let kv_width = cache.shape.kv_width();
    let group = heads / kv_heads.max(1);
    let scale = 1.0 / (head_dim as f32).sqrt();
    let one_head = |(index, out): (usize, &mut [f32])| {
        let (t, head) = (index / heads, index % heads);
        let query = &queries[t * query_stride + head * head_dim..][..head_dim];
        let kv_head = head / group;
        let mut weights = vec![0f32; start + t + 1];
        cache.scores(kv_head, query, &mut weights);
        let max = weights.iter().fold(f32::NEG_INFINITY, |m, &w| m.max(w * scale));
        let mut total = 0f32;
        for weight in &mut weights {
            *weight = (*weight * scale - max).exp();
            total += *weight;
        }
        let values = &cache.values[kv_head * head_dim..];
        match head_dim {
            64 => weighted_sum::<64>(&weights, values, kv_width, out),
            128 => weighted_sum::<128>(&weights, values, kv_width, out),
            _ => weighted_sum_any(&weights, values, kv_width, out),
        }
        let normalise = 1.0 / total;
        out.iter_mut().for_each(|o| *o *= normalise);
    };
    // Below a few thousand multiply-adds, handing heads to other threads
    // costs more than it saves.
    if count * (start + count) * heads * head_dim >= 4096 {
        out.par_chunks_mut(head_dim).enumerate().for_each(one_head);
    } else {
        out.chunks_mut(head_dim).enumerate().for_each(one_head);
    }
}

/// `out = Σ_p weights[p] * values[p * stride..][..D]`, with the sum held in
/// registers (a fixed-size accumulator) instead of re-read from `out`.
fn weighted_sum<const D: usize>(weights: &[f32], values: &[f32], stride: usize, out: &mut [f32]) {
    let mut sum = [0f32; D];
    for (p, &weight) in weights.iter().enumerate() {
        let value = &values[p * stride..p * stride + D];
        for (s, v) in sum.iter_mut().zip(value) {
            *s += weight * v;
        }
    }
    out.copy_from_slice(&sum);
}

fn weighted_sum_any(weights: &[f32], values: &[f32], stride: usize, out: &mut [f32]) {
    out.fill(0.0);
    let width = out.len();
    for (p, &weight) in weights.iter().enumerate() {
        for (o, v) in out.iter_mut().zip(&values[p * stride..p * stride + width]) {
            *o += weight * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_position_attention_returns_its_value() {
        let shape = AttentionShape { heads: 2, kv_heads: 1, head_dim: 2 };
        let mut cache = KvLayer::new(shape, 4);
        cache.store(0, &[0.3, -0.2], &[1.5, -4.0]);
        let mut out = vec![0f32; 4];
        causal_attention(&[1.0, 2.0, -3.0, 0.5], 4, &cache, 0, 1, &mut out);
        assert_eq!(out, vec![1.5, -4.0, 1.5, -4.0]);
    }

    #[test]
    fn later_queries_see_earlier_positions_only() {
        let shape = AttentionShape { heads: 1, kv_heads: 1, head_dim: 1 };
        let mut cache = KvLayer::new(shape, 2);
        // Equal keys: query 0 sees value 2 only, query 1 averages 2 and 4.
        cache.store(0, &[1.0], &[2.0]);
        cache.store(1, &[1.0], &[4.0]);
        let mut out = vec![0f32; 2];
        causal_attention(&[1.0, 1.0], 1, &cache, 0, 2, &mut out);
        assert_eq!(out, vec![2.0, 3.0]);
    }

    #[test]
    fn transposed_key_scores_equal_plain_dot_products() {
        // 2 kv heads of 6 dimensions: one pass of four plus two leftover dimensions.
        let shape = AttentionShape { heads: 2, kv_heads: 2, head_dim: 6 };
        let mut cache = KvLayer::new(shape, 8);
        let key = |p: usize| -> Vec<f32> { (0..12).map(|i| ((p * 12 + i) as f32 * 0.37).sin()).collect() };
        for p in 0..5 {
            cache.store(p, &key(p), &[0.0; 12]);
        }
        let query: Vec<f32> = (0..6).map(|i| (i as f32 * 0.9).cos()).collect();
        for kv_head in 0..2 {
            let mut scores = vec![0f32; 5];
            cache.scores(kv_head, &query, &mut scores);
            for (p, score) in scores.iter().enumerate() {
                let expected: f32 = query.iter().zip(&key(p)[kv_head * 6..][..6]).map(|(q, k)| q * k).sum();
                assert!((score - expected).abs() < 1e-5, "head {kv_head} position {p}: {score} vs {expected}");
            }
        }
    }

    #[test]
    fn fixed_width_weighted_sum_equals_the_general_one() {
        let weights: Vec<f32> = (0..7).map(|p| (p as f32 * 0.3).exp()).collect();
        let values: Vec<f32> = (0..7 * 80).map(|i| (i as f32 * 0.11).sin()).collect();
        let (mut fixed, mut general) = (vec![0f32; 64], vec![0f32; 64]);
        weighted_sum::<64>(&weights, &values[8..], 80, &mut fixed);
        weighted_sum_any(&weights, &values[8..], 80, &mut general);
        for (a, b) in fixed.iter().zip(&general) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    #[should_panic(expected = "past the cache capacity")]
    fn storing_past_the_capacity_is_refused() {
        let shape = AttentionShape { heads: 1, kv_heads: 1, head_dim: 2 };
        KvLayer::new(shape, 1).store(1, &[0.0; 2], &[0.0; 2]);
    }

    #[test]
    fn rotation_by_a_quarter_turn_swaps_the_pair() {
        let mut head = vec![1.0, 0.0];
        let table = rope_table(&[std::f32::consts::FRAC_PI_2], 1, 1);
        rotate_pairs(&mut head, &table);
        assert!((head[0]).abs() < 1e-6 && (head[1] - 1.0).abs() < 1e-6, "{head:?}");
    }

    #[test]
    fn rms_norm_gives_unit_root_mean_square() {
        let mut out = vec![0f32; 4];
        rms_norm(&[3.0, -3.0, 3.0, -3.0], &[1.0; 4], 0.0, &mut out);
        assert_eq!(out, vec![1.0, -1.0, 1.0, -1.0]);
    }
}
