//! The element-wise and attention steps of a llama layer.

use rayon::prelude::*;

use crate::dot;

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

/// Causal attention of `count` new queries at positions `start..start+count`
/// over cached keys/values `[position][kv head][head_dim]` (which already
/// hold the new positions). Query `t` starts at `queries[t * query_stride]`
/// with its heads one after another; `out` is `count x heads x head_dim`.
#[allow(clippy::too_many_arguments)] // the layout of two caches and a query batch
pub fn causal_attention(
    shape: AttentionShape,
    queries: &[f32],
    query_stride: usize,
    keys: &[f32],
    values: &[f32],
    start: usize,
    count: usize,
    out: &mut [f32],
) {
    let AttentionShape {
        heads,
        kv_heads,
        head_dim,
    } = shape;
    let kv_width = shape.kv_width();
    let group = heads / kv_heads.max(1);
    let scale = 1.0 / (head_dim as f32).sqrt();
    let one_head = |(index, out): (usize, &mut [f32])| {
        let (t, head) = (index / heads, index % heads);
        let query = &queries[t * query_stride + head * head_dim..][..head_dim];
        let kv_offset = (head / group) * head_dim;
        let visible = start + t + 1;
        let mut weights: Vec<f32> = (0..visible)
            .map(|p| dot(query, &keys[p * kv_width + kv_offset..][..head_dim]) * scale)
            .collect();
        let max = weights.iter().fold(f32::NEG_INFINITY, |m, &w| m.max(w));
        let mut total = 0f32;
        for weight in &mut weights {
            *weight = (*weight - max).exp();
            total += *weight;
        }
        out.fill(0.0);
        for (p, weight) in weights.iter().enumerate() {
            let value = &values[p * kv_width + kv_offset..][..head_dim];
            let weight = weight / total;
            for (o, v) in out.iter_mut().zip(value) {
                *o += weight * v;
            }
        }
    };
    // Below a few thousand multiply-adds, handing heads to other threads
    // costs more than it saves.
    if count * (start + count) * heads * head_dim >= 4096 {
        out.par_chunks_mut(head_dim).enumerate().for_each(one_head);
    } else {
        out.chunks_mut(head_dim).enumerate().for_each(one_head);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_position_attention_returns_its_value() {
        let shape = AttentionShape {
            heads: 2,
            kv_heads: 1,
            head_dim: 2,
        };
        let (keys, values) = (vec![0.3, -0.2], vec![1.5, -4.0]);
        let mut out = vec![0f32; 4];
        causal_attention(
            shape,
            &[1.0, 2.0, -3.0, 0.5],
            4,
            &keys,
            &values,
            0,
            1,
            &mut out,
        );
        assert_eq!(out, vec![1.5, -4.0, 1.5, -4.0]);
    }

    #[test]
    fn later_queries_see_earlier_positions_only() {
        let shape = AttentionShape {
            heads: 1,
            kv_heads: 1,
            head_dim: 1,
        };
        // Equal keys: query 0 sees value 2 only, query 1 averages 2 and 4.
        let (keys, values) = (vec![1.0, 1.0], vec![2.0, 4.0]);
        let mut out = vec![0f32; 2];
        causal_attention(shape, &[1.0, 1.0], 1, &keys, &values, 0, 2, &mut out);
        assert_eq!(out, vec![2.0, 3.0]);
    }

    #[test]
    fn rotation_by_a_quarter_turn_swaps_the_pair() {
        let mut head = vec![1.0, 0.0];
        let table = rope_table(&[std::f32::consts::FRAC_PI_2], 1, 1);
        rotate_pairs(&mut head, &table);
        assert!(
            (head[0]).abs() < 1e-6 && (head[1] - 1.0).abs() < 1e-6,
            "{head:?}"
        );
    }

    #[test]
    fn rms_norm_gives_unit_root_mean_square() {
        let mut out = vec![0f32; 4];
        rms_norm(&[3.0, -3.0, 3.0, -3.0], &[1.0; 4], 0.0, &mut out);
        assert_eq!(out, vec![1.0, -1.0, 1.0, -1.0]);
    }
}
