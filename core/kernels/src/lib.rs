//! The numeric kernels of the embedded model: block-quantized weight
//! matrices with their matrix-vector / matrix-matrix products, attention,
//! RMSNorm, RoPE. Pure functions over slices; no I/O, no file formats
//! beyond the ggml block layouts.
//!
//! A crate of its own so it is optimised even in debug builds (see the
//! workspace `Cargo.toml`): unoptimised, these loops are ~100x slower.
//!
//! Weights stay in their GGUF block layout (Q4_1 as shipped, Q8_0 for the
//! embedding table; anything else is re-quantized to Q8_0 at load), so a
//! decoded token streams ~100 MB instead of the ~540 MB of dense f32 weights:
//! decoding one token is memory-bound. Activations stay f32 (llama.cpp
//! quantizes them to 8 bits, which moves greedy output away from the exact
//! weights), and weights are expanded to f32 inside the dot product.
//!
//! Invariant: `matvec`/`matmul` give the same numbers as multiplying by
//! [`QMatrix::dequantize_row`] rows, up to f32 summation order (tested against
//! the scalar reference on every target).

mod ops;

use half::f16;
use rayon::prelude::*;

pub use ops::{
    add_in_place, causal_attention, rms_norm, rope_table, rotate_pairs, silu_gate, AttentionShape, KvLayer,
};

/// A matrix whose bytes or shape do not fit its declared layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

/// Values per quantization block (both supported formats).
pub const BLOCK: usize = 32;

/// On-disk block layouts (ggml's `block_q4_1` and `block_q8_0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockFormat {
    /// f16 scale `d`, f16 minimum `m`, 16 bytes of nibbles: `x = d*q + m`;
    /// low nibbles are values 0..16, high nibbles values 16..32.
    Q4_1,
    /// f16 scale `d`, 32 signed bytes: `x = d*q`.
    Q8_0,
}

impl BlockFormat {
    pub const fn block_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_1 => 20,
            BlockFormat::Q8_0 => 34,
        }
    }
}

/// A `rows x cols` weight matrix, row-major, each row a run of blocks.
#[derive(Debug, Clone)]
pub struct QMatrix {
    format: BlockFormat,
    rows: usize,
    cols: usize,
    data: Vec<u8>,
}

impl QMatrix {
    /// Wraps raw row-major blocks (as stored in a GGUF file).
    pub fn from_blocks(
        format: BlockFormat,
        rows: usize,
        cols: usize,
        data: Vec<u8>,
    ) -> Result<QMatrix, ShapeError> {
        if cols % BLOCK != 0 {
            return Err(ShapeError(format!(
                "{cols} columns is not a multiple of the {BLOCK}-value block"
            )));
        }
        let expected = rows
            .checked_mul(cols / BLOCK)
            .and_then(|blocks| blocks.checked_mul(format.block_bytes()));
        if expected != Some(data.len()) {
            return Err(ShapeError(format!(
                "{rows}x{cols} {format:?} does not take the {} bytes given",
                data.len()
            )));
        }
        Ok(QMatrix {
            format,
            rows,
            cols,
            data,
        })
    }

    /// Quantizes dense row-major values to Q8_0, the way ggml does
    /// (`d = max|x| / 127`).
    pub fn from_dense(values: &[f32], rows: usize, cols: usize) -> Result<QMatrix, ShapeError> {
        if cols % BLOCK != 0 || rows.checked_mul(cols) != Some(values.len()) {
            return Err(ShapeError(format!(
                "{} values do not form a {rows}x{cols} matrix of whole blocks",
                values.len()
            )));
        }
        Ok(QMatrix::quantize_q8_0(values, rows, cols))
    }

    fn quantize_q8_0(values: &[f32], rows: usize, cols: usize) -> QMatrix {
        debug_assert_eq!(values.len(), rows * cols);
        debug_assert_eq!(cols % BLOCK, 0);
        let mut data = Vec::with_capacity(values.len() / BLOCK * BlockFormat::Q8_0.block_bytes());
        for block in values.chunks_exact(BLOCK) {
            let max_abs = block.iter().fold(0f32, |max, v| max.max(v.abs()));
            let scale = max_abs / 127.0;
            let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            data.extend_from_slice(&f16::from_f32(scale).to_bits().to_le_bytes());
            data.extend(
                block
                    .iter()
                    .map(|v| (v * inverse).round().clamp(-127.0, 127.0) as i8 as u8),
            );
        }
        QMatrix {
            format: BlockFormat::Q8_0,
            rows,
            cols,
            data,
        }
    }

    /// Stacks matrices with the same column count on top of each other, so
    /// several projections of one input run as one product. Mixed formats
    /// are all brought to Q8_0.
    pub fn stack(parts: Vec<QMatrix>) -> Result<QMatrix, ShapeError> {
        let Some(first) = parts.first() else {
            return Err(ShapeError("nothing to stack".into()));
        };
        let (cols, format) = (first.cols, first.format);
        if parts.iter().any(|part| part.cols != cols) {
            return Err(ShapeError("stacked matrices differ in width".into()));
        }
        let parts: Vec<QMatrix> = if parts.iter().all(|part| part.format == format) {
            parts
        } else {
            parts.iter().map(QMatrix::to_q8_0).collect()
        };
        let format = parts[0].format;
        let rows = parts.iter().map(|part| part.rows).sum();
        let mut data = Vec::with_capacity(parts.iter().map(|part| part.data.len()).sum());
        for part in &parts {
            data.extend_from_slice(&part.data);
        }
        Ok(QMatrix {
            format,
            rows,
            cols,
            data,
        })
    }

    fn to_q8_0(&self) -> QMatrix {
        if self.format == BlockFormat::Q8_0 {
            return self.clone();
        }
        let mut dense = vec![0f32; self.rows * self.cols];
        for (row, out) in dense.chunks_exact_mut(self.cols).enumerate() {
            self.dequantize_row(row, out);
        }
        QMatrix::quantize_q8_0(&dense, self.rows, self.cols)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    fn row_bytes(&self, row: usize) -> &[u8] {
        let width = self.cols / BLOCK * self.format.block_bytes();
        &self.data[row * width..(row + 1) * width]
    }

    /// Writes row `row` as f32 into `out` (`cols` long).
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let bytes = self.row_bytes(row);
        for (block, out) in bytes
            .chunks_exact(self.format.block_bytes())
            .zip(out.chunks_exact_mut(BLOCK))
        {
            match self.format {
                BlockFormat::Q4_1 => {
                    let (scale, min) = (half_at(block, 0), half_at(block, 2));
                    for (j, &byte) in block[4..20].iter().enumerate() {
                        out[j] = f32::from(byte & 0x0F) * scale + min;
                        out[j + 16] = f32::from(byte >> 4) * scale + min;
                    }
                }
                BlockFormat::Q8_0 => {
                    let scale = half_at(block, 0);
                    for (value, &byte) in out.iter_mut().zip(&block[2..34]) {
                        *value = f32::from(byte as i8) * scale;
                    }
                }
            }
        }
    }

    /// `out = W x` for one activation vector (`x`: `cols`, `out`: `rows`),
    /// split over the rayon pool by rows.
    pub fn matvec(&self, x: &[f32], out: &mut [f32]) {
        // Real checks, not debug ones: the SIMD kernel reads `cols` values of `x`.
        assert_eq!(x.len(), self.cols, "activation length must equal the matrix width");
        assert_eq!(out.len(), self.rows, "output length must equal the matrix height");
        let block_sums: Vec<f32> = x
            .chunks_exact(BLOCK)
            .map(|block| block.iter().sum())
            .collect();
        let kernel = RowKernel::detect();
        let rows_per_task = rows_per_task(self.rows);
        out.par_chunks_mut(rows_per_task)
            .enumerate()
            .for_each(|(task, out)| {
                let first = task * rows_per_task;
                for (offset, value) in out.iter_mut().enumerate() {
                    *value =
                        kernel.dot(self.format, self.row_bytes(first + offset), x, &block_sums);
                }
            });
    }

    /// `out[t] = W xs[t]` for `tokens` activation vectors laid out one after
    /// another (`xs`: `tokens x cols`, `out`: `tokens x rows`). Each task
    /// expands a few rows to f32 once and multiplies them with every token
    /// in one small GEMM.
    pub fn matmul(&self, xs: &[f32], tokens: usize, out: &mut [f32]) {
        assert_eq!(xs.len(), tokens * self.cols, "activations must be tokens x width");
        assert_eq!(out.len(), tokens * self.rows, "output must be tokens x height");
        if tokens == 0 {
            return;
        }
        if tokens == 1 {
            return self.matvec(xs, out);
        }
        // Few enough rows that their f32 copy stays in L2 while reused.
        const ROWS_PER_TASK: usize = 32;
        // Row-major by weight row first, so tasks own disjoint slices.
        let mut by_row = vec![0f32; self.rows * tokens];
        by_row
            .par_chunks_mut(ROWS_PER_TASK * tokens)
            .enumerate()
            .for_each(|(task, by_row)| {
                let first = task * ROWS_PER_TASK;
                let count = by_row.len() / tokens;
                let mut dense = vec![0f32; count * self.cols];
                for (offset, row) in dense.chunks_exact_mut(self.cols).enumerate() {
                    self.dequantize_row(first + offset, row);
                }
                let (cols, tokens_stride) = (self.cols as isize, tokens as isize);
                // SAFETY: the three matrices are exactly their slices: `by_row` is
                // count x tokens (row stride `tokens`), `dense` is count x cols
                // (row stride `cols`), and `xs` read as cols x tokens has column
                // stride `cols` (token t's vector starts at t * cols).
                unsafe {
                    gemm::gemm(
                        count,
                        tokens,
                        self.cols,
                        by_row.as_mut_ptr(),
                        1,
                        tokens_stride,
                        false,
                        dense.as_ptr(),
                        1,
                        cols,
                        xs.as_ptr(),
                        cols,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                }
            });
        for (row, values) in by_row.chunks_exact(tokens).enumerate() {
            for (token, &value) in values.iter().enumerate() {
                out[token * self.rows + row] = value;
            }
        }
    }
}

/// Enough tasks for every thread to take a few (load balance), few enough
/// that scheduling stays cheap next to the work.
fn rows_per_task(rows: usize) -> usize {
    let tasks = rayon::current_num_threads().max(1) * 4;
    rows.div_ceil(tasks).max(16)
}

fn half_at(block: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([block[at], block[at + 1]])).to_f32()
}

/// Dot product of two f32 slices with 32 independent partial sums (four
/// SIMD registers, so consecutive multiply-adds do not wait on each other),
/// a shape LLVM vectorises without fast-math.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [[0f32; 8]; 4];
    let (a_chunks, b_chunks) = (a.chunks_exact(32), b.chunks_exact(32));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for (part, lanes) in lanes.iter_mut().enumerate() {
            for lane in 0..8 {
                lanes[lane] += x[part * 8 + lane] * y[part * 8 + lane];
            }
        }
    }
    let mut total = [0f32; 8];
    for lanes in &lanes {
        for lane in 0..8 {
            total[lane] += lanes[lane];
        }
    }
    total.iter().sum::<f32>() + tail
}

/// The row · vector kernel in use, picked once per product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl RowKernel {
    fn detect() -> RowKernel {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
        {
            return RowKernel::Avx2;
        }
        RowKernel::Scalar
    }

    /// `row · x`, where `block_sums[b]` is the sum of `x` over block `b`
    /// (Q4_1's minimum term factors out to `m * block_sum`).
    fn dot(self, format: BlockFormat, row: &[u8], x: &[f32], block_sums: &[f32]) -> f32 {
        match self {
            RowKernel::Scalar => scalar_row_dot(format, row, x, block_sums),
            // SAFETY: `detect` checked the CPU has AVX2, FMA and F16C; the
            // kernels read only inside `row` and `x`, whose lengths agree
            // (`cols / BLOCK` blocks).
            #[cfg(target_arch = "x86_64")]
            RowKernel::Avx2 => unsafe {
                match format {
                    BlockFormat::Q4_1 => avx2::row_dot::<true>(row, x, block_sums),
                    BlockFormat::Q8_0 => avx2::row_dot::<false>(row, x, block_sums),
                }
            },
        }
    }
}

fn scalar_row_dot(format: BlockFormat, row: &[u8], x: &[f32], block_sums: &[f32]) -> f32 {
    let mut total = 0f32;
    for ((block, x), block_sum) in row
        .chunks_exact(format.block_bytes())
        .zip(x.chunks_exact(BLOCK))
        .zip(block_sums)
    {
        match format {
            BlockFormat::Q4_1 => {
                let mut sum = 0f32;
                for (j, &byte) in block[4..20].iter().enumerate() {
                    sum += f32::from(byte & 0x0F) * x[j] + f32::from(byte >> 4) * x[j + 16];
                }
                total += half_at(block, 0) * sum + half_at(block, 2) * block_sum;
            }
            BlockFormat::Q8_0 => {
                let sum: f32 = block[2..34]
                    .iter()
                    .zip(x)
                    .map(|(&q, &v)| f32::from(q as i8) * v)
                    .sum();
                total += half_at(block, 0) * sum;
            }
        }
    }
    total
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::BLOCK;

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn half_to_f32(bits: *const u8) -> f32 {
        let bits = u16::from_le_bytes([*bits, *bits.add(1)]);
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn horizontal_sum(v: __m256) -> f32 {
        let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pair = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
        _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)))
    }

    /// Eight bytes at the bottom of `bytes`, zero-extended, as f32.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unsigned_bytes_to_f32(bytes: __m128i) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes))
    }

    /// `Σ q·x` over one Q4_1 block (before scaling), as eight lanes.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_1_block(block: *const u8, xs: *const f32) -> __m256 {
        let low_nibbles = _mm_set1_epi8(0x0F);
        let packed = _mm_loadu_si128(block.add(4) as *const __m128i);
        let low = _mm_and_si128(packed, low_nibbles);
        let high = _mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles);
        let mut sum = _mm256_mul_ps(unsigned_bytes_to_f32(low), _mm256_loadu_ps(xs));
        sum = _mm256_fmadd_ps(
            unsigned_bytes_to_f32(_mm_srli_si128(low, 8)),
            _mm256_loadu_ps(xs.add(8)),
            sum,
        );
        sum = _mm256_fmadd_ps(
            unsigned_bytes_to_f32(high),
            _mm256_loadu_ps(xs.add(16)),
            sum,
        );
        _mm256_fmadd_ps(
            unsigned_bytes_to_f32(_mm_srli_si128(high, 8)),
            _mm256_loadu_ps(xs.add(24)),
            sum,
        )
    }

    /// `Σ q·x` over one Q8_0 block (before scaling), as eight lanes.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_0_block(block: *const u8, xs: *const f32) -> __m256 {
        let quants = block.add(2);
        let weights = |part: usize| {
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(
                quants.add(part * 8) as *const __m128i
            )))
        };
        let mut sum = _mm256_mul_ps(weights(0), _mm256_loadu_ps(xs));
        sum = _mm256_fmadd_ps(weights(1), _mm256_loadu_ps(xs.add(8)), sum);
        sum = _mm256_fmadd_ps(weights(2), _mm256_loadu_ps(xs.add(16)), sum);
        _mm256_fmadd_ps(weights(3), _mm256_loadu_ps(xs.add(24)), sum)
    }

    /// Adds one block's `d * Σ q·x` to `scaled` and, for Q4_1, its
    /// `m * Σ x` to `minimums`.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn accumulate_block<const Q4_1: bool>(
        block: *const u8,
        xs: *const f32,
        block_sums: &[f32],
        index: usize,
        scaled: &mut __m256,
        minimums: &mut f32,
    ) {
        let sum = if Q4_1 { q4_1_block(block, xs) } else { q8_0_block(block, xs) };
        *scaled = _mm256_fmadd_ps(_mm256_set1_ps(half_to_f32(block)), sum, *scaled);
        if Q4_1 {
            *minimums += half_to_f32(block.add(2)) * *block_sums.get_unchecked(index);
        }
    }

    /// `row · x` for a Q4_1 (`Q4_1 = true`) or Q8_0 row. Two blocks per step
    /// into separate accumulators: one chain of dependent adds would make the
    /// loop latency-bound.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn row_dot<const Q4_1: bool>(row: &[u8], x: &[f32], block_sums: &[f32]) -> f32 {
        let block_bytes = if Q4_1 { 20 } else { 34 };
        let blocks = row.len() / block_bytes;
        debug_assert!(x.len() >= blocks * BLOCK && (!Q4_1 || block_sums.len() >= blocks));
        let (mut even, mut odd) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (mut even_minimums, mut odd_minimums) = (0f32, 0f32);
        let (row, x) = (row.as_ptr(), x.as_ptr());
        let mut b = 0;
        while b + 1 < blocks {
            let (first, second) = (row.add(b * block_bytes), row.add((b + 1) * block_bytes));
            accumulate_block::<Q4_1>(first, x.add(b * BLOCK), block_sums, b, &mut even, &mut even_minimums);
            accumulate_block::<Q4_1>(second, x.add((b + 1) * BLOCK), block_sums, b + 1, &mut odd, &mut odd_minimums);
            b += 2;
        }
        if b < blocks {
            let last = row.add(b * block_bytes);
            accumulate_block::<Q4_1>(last, x.add(b * BLOCK), block_sums, b, &mut even, &mut even_minimums);
        }
        horizontal_sum(_mm256_add_ps(even, odd)) + even_minimums + odd_minimums
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(count: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn q4_1_matrix(rows: usize, cols: usize, seed: u64) -> QMatrix {
        let mut data = Vec::new();
        for block in values(rows * cols, seed).chunks_exact(BLOCK) {
            let min = block.iter().fold(f32::MAX, |m, v| m.min(*v));
            let max = block.iter().fold(f32::MIN, |m, v| m.max(*v));
            let scale = (max - min) / 15.0;
            data.extend_from_slice(&f16::from_f32(scale).to_bits().to_le_bytes());
            data.extend_from_slice(&f16::from_f32(min).to_bits().to_le_bytes());
            let quant = |v: f32| (((v - min) / scale).round() as u8).min(15);
            for j in 0..16 {
                data.push(quant(block[j]) | (quant(block[j + 16]) << 4));
            }
        }
        QMatrix {
            format: BlockFormat::Q4_1,
            rows,
            cols,
            data,
        }
    }

    fn reference(matrix: &QMatrix, x: &[f32]) -> Vec<f32> {
        let mut row = vec![0f32; matrix.cols()];
        (0..matrix.rows())
            .map(|r| {
                matrix.dequantize_row(r, &mut row);
                row.iter()
                    .zip(x)
                    .map(|(w, v)| f64::from(*w) * f64::from(*v))
                    .sum::<f64>() as f32
            })
            .collect()
    }

    fn assert_close(actual: &[f32], expected: &[f32]) {
        assert_eq!(actual.len(), expected.len());
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!(
                (a - e).abs() <= 1e-4 * (1.0 + e.abs()),
                "element {i}: {a} vs {e}"
            );
        }
    }

    #[test]
    fn q8_0_round_trip_stays_within_half_a_step() {
        let dense = values(4 * 64, 3);
        let matrix = QMatrix::from_dense(&dense, 4, 64).expect("whole blocks");
        let mut row = vec![0f32; 64];
        for r in 0..4 {
            matrix.dequantize_row(r, &mut row);
            for (block, original) in row
                .chunks_exact(BLOCK)
                .zip(dense[r * 64..].chunks_exact(BLOCK))
            {
                let step = original.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                for (a, b) in block.iter().zip(original) {
                    // Half a step, plus the scale's rounding to f16 (2^-11
                    // relative) times the largest quant.
                    assert!((a - b).abs() <= step * (0.5 + 127.0 / 2048.0), "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn every_kernel_matches_the_dequantized_reference() {
        // An even and an odd number of blocks per row (the kernels take two at a time).
        for cols in [576, 608] {
            let x = values(cols, 11);
            let block_sums: Vec<f32> = x.chunks_exact(BLOCK).map(|b| b.iter().sum()).collect();
            for matrix in [
                q4_1_matrix(37, cols, 5),
                QMatrix::quantize_q8_0(&values(37 * cols, 7), 37, cols),
            ] {
                let expected = reference(&matrix, &x);
                let scalar: Vec<f32> = (0..matrix.rows())
                    .map(|r| scalar_row_dot(matrix.format, matrix.row_bytes(r), &x, &block_sums))
                    .collect();
                assert_close(&scalar, &expected);
                let detected = RowKernel::detect();
                let fast: Vec<f32> = (0..matrix.rows())
                    .map(|r| detected.dot(matrix.format, matrix.row_bytes(r), &x, &block_sums))
                    .collect();
                assert_close(&fast, &expected);
                let mut parallel = vec![0f32; matrix.rows()];
                matrix.matvec(&x, &mut parallel);
                assert_close(&parallel, &expected);
            }
        }
    }

    #[test]
    #[should_panic(expected = "activation length must equal the matrix width")]
    fn a_short_activation_vector_is_refused_not_read_past() {
        let matrix = q4_1_matrix(2, 64, 1);
        matrix.matvec(&values(32, 2), &mut [0f32; 2]);
    }

    #[test]
    fn dot_matches_a_plain_sum_at_any_length() {
        for len in [0, 1, 7, 32, 45, 64, 100] {
            let (a, b) = (values(len, 21), values(len, 22));
            let expected: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot(&a, &b)) - expected).abs() < 1e-4, "length {len}");
        }
    }

    #[test]
    fn matmul_equals_one_matvec_per_token() {
        let (rows, cols, tokens) = (45, 96, 5);
        let matrix = q4_1_matrix(rows, cols, 9);
        let xs = values(tokens * cols, 13);
        let mut batched = vec![0f32; tokens * rows];
        matrix.matmul(&xs, tokens, &mut batched);
        for (token, x) in xs.chunks_exact(cols).enumerate() {
            assert_close(
                &batched[token * rows..(token + 1) * rows],
                &reference(&matrix, x),
            );
        }
    }

    #[test]
    fn stacking_keeps_rows_in_order_and_unifies_formats() {
        let (a, b) = (
            q4_1_matrix(3, 64, 1),
            QMatrix::quantize_q8_0(&values(2 * 64, 2), 2, 64),
        );
        let stacked = QMatrix::stack(vec![a.clone(), b.clone()]).expect("same width");
        assert_eq!((stacked.rows(), stacked.format), (5, BlockFormat::Q8_0));
        let x = values(64, 4);
        let mut out = vec![0f32; 5];
        stacked.matvec(&x, &mut out);
        let expected: Vec<f32> = reference(&a, &x)
            .into_iter()
            .chain(reference(&b, &x))
            .collect();
        for (o, e) in out.iter().zip(&expected) {
            // a's rows went through one more rounding (Q4_1 -> Q8_0).
            assert!((o - e).abs() < 0.05 * (1.0 + e.abs()), "{o} vs {e}");
        }
        assert!(QMatrix::stack(vec![a, q4_1_matrix(1, 32, 3)]).is_err());
    }
}
