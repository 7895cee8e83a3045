//! The numeric kernels of the embedded model: block-quantized weight
//! matrices with their matrix-vector / matrix-matrix products, attention,
//! RMSNorm, RoPE. Pure functions over slices; no I/O, no file formats
//! beyond the ggml block layouts.
//!
//! A crate of its own so it is optimised even in debug builds (see the
//! workspace `Cargo.toml`): unoptimised, these loops are ~100x slower.
//!
//! Weights stay in their GGUF block layout (Q4_1, Q8_0, Q5_0 and the
//! K-quants Q4_K and Q6_K, one file per newer format; the loader re-quantizes
//! any other type to Q8_0), so a decoded token streams a few hundred MB
//! instead of gigabytes of dense f32 weights: decoding one token is
//! memory-bound. Activations stay f32 (llama.cpp quantizes them to 8 bits,
//! which moves greedy output away from the exact weights), and weights are
//! expanded to f32 inside the dot product.
//!
//! Invariant: `matvec`/`matmul` give the same numbers as multiplying by
//! [`QMatrix::dequantize_row`] rows, up to f32 summation order (tested against
//! the scalar reference on every target).

mod ops;
mod q4_k;
mod q5_0;
mod q6_k;
#[cfg(target_arch = "x86_64")]
mod simd;

use half::f16;
use rayon::prelude::*;

pub use ops::{add_in_place, causal_attention, rms_norm, rope_table, rotate_pairs, silu_gate, AttentionShape, KvLayer};

/// A matrix whose bytes or shape do not fit its declared layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

/// Values per quantization block of Q4_1, Q8_0 and Q5_0 (the K-quants'
/// super-blocks hold [`SUPER_BLOCK`]).
pub const BLOCK: usize = 32;

/// Values per K-quant super-block.
pub const SUPER_BLOCK: usize = 256;

/// On-disk block layouts, exactly ggml's `block_*` structs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockFormat {
    /// f16 scale `d`, f16 minimum `m`, 16 bytes of nibbles: `x = d*q + m`;
    /// low nibbles are values 0..16, high nibbles values 16..32.
    Q4_1,
    /// f16 scale `d`, 32 signed bytes: `x = d*q`.
    Q8_0,
    /// f16 `d`, 4 bytes of fifth bits, 16 bytes of nibbles: `x = d*(q - 16)`.
    Q5_0,
    /// 256 values: f16 `d`, f16 `dmin`, 12 bytes of 6-bit sub-block scales
    /// and minimums, 128 bytes of nibbles: `x = d*scale*q - dmin*min`.
    Q4K,
    /// 256 values: 128 bytes of low nibbles, 64 of high 2 bits, 16 int8
    /// sub-block scales, f16 `d`: `x = d*scale*(q - 32)`.
    Q6K,
}

impl BlockFormat {
    /// Bytes per block (super-block for the K-quants).
    pub const fn block_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_1 => 20,
            BlockFormat::Q8_0 => 34,
            BlockFormat::Q5_0 => q5_0::BYTES,
            BlockFormat::Q4K => q4_k::BYTES,
            BlockFormat::Q6K => q6_k::BYTES,
        }
    }

    /// Values per block (super-block for the K-quants).
    pub const fn block_values(self) -> usize {
        match self {
            BlockFormat::Q4_1 | BlockFormat::Q8_0 => BLOCK,
            BlockFormat::Q5_0 => q5_0::VALUES,
            BlockFormat::Q4K => q4_k::VALUES,
            BlockFormat::Q6K => q6_k::VALUES,
        }
    }

    /// Bytes of a `rows x cols` matrix in this layout, or why it has none
    /// (`cols` not a whole number of blocks, or a size that overflows).
    pub fn matrix_bytes(self, rows: usize, cols: usize) -> Result<usize, ShapeError> {
        let values = self.block_values();
        if !cols.is_multiple_of(values) {
            return Err(ShapeError(format!("{cols} columns is not a multiple of the {values}-value {self:?} block")));
        }
        rows.checked_mul(cols / values)
            .and_then(|blocks| blocks.checked_mul(self.block_bytes()))
            .ok_or_else(|| ShapeError(format!("{rows}x{cols} {self:?} is too large")))
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
    /// Wraps raw row-major blocks (as stored in a GGUF file). `cols` must be
    /// a multiple of the format's block (32 values, 256 for the K-quants).
    pub fn from_blocks(format: BlockFormat, rows: usize, cols: usize, data: Vec<u8>) -> Result<QMatrix, ShapeError> {
        if format.matrix_bytes(rows, cols)? != data.len() {
            return Err(ShapeError(format!("{rows}x{cols} {format:?} does not take the {} bytes given", data.len())));
        }
        Ok(QMatrix { format, rows, cols, data })
    }

    /// Quantizes dense row-major values to Q8_0, the way ggml does
    /// (`d = max|x| / 127`).
    pub fn from_dense(values: &[f32], rows: usize, cols: usize) -> Result<QMatrix, ShapeError> {
        if !cols.is_multiple_of(BLOCK) || rows.checked_mul(cols) != Some(values.len()) {
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
            data.extend(block.iter().map(|v| (v * inverse).round().clamp(-127.0, 127.0) as i8 as u8));
        }
        QMatrix { format: BlockFormat::Q8_0, rows, cols, data }
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
        Ok(QMatrix { format, rows, cols, data })
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

    pub fn format(&self) -> BlockFormat {
        self.format
    }

    fn row_bytes(&self, row: usize) -> &[u8] {
        let width = self.cols / self.format.block_values() * self.format.block_bytes();
        &self.data[row * width..(row + 1) * width]
    }

    /// Writes row `row` as f32 into `out` (`cols` long).
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let bytes = self.row_bytes(row);
        for (block, out) in
            bytes.chunks_exact(self.format.block_bytes()).zip(out.chunks_exact_mut(self.format.block_values()))
        {
            match self.format {
                BlockFormat::Q5_0 => q5_0::dequantize(block, out),
                BlockFormat::Q4K => q4_k::dequantize(block, out),
                BlockFormat::Q6K => q6_k::dequantize(block, out),
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
        let kernel = RowKernel::detect();
        let activation = Activation::new(x, kernel, self.format);
        let rows_per_task = rows_per_task(self.rows);
        out.par_chunks_mut(rows_per_task).enumerate().for_each(|(task, out)| {
            let first = task * rows_per_task;
            for (offset, value) in out.iter_mut().enumerate() {
                *value = kernel.dot(self.format, self.row_bytes(first + offset), &activation);
            }
        });
    }

    /// `out[t] = W xs[t]` for a few tokens (`xs`: `tokens x cols`, `out`:
    /// `tokens x rows`), each value computed exactly as [`QMatrix::matvec`]
    /// computes it (the same row kernel, bit for bit), while each weight row
    /// is read from memory once for all tokens. For verifying speculative
    /// drafts: decoding is memory-bound, so a few tokens cost little more
    /// than one, and the result equals decoding them one at a time.
    pub fn matvec_batch(&self, xs: &[f32], tokens: usize, out: &mut [f32]) {
        assert_eq!(xs.len(), tokens * self.cols, "activations must be tokens x width");
        assert_eq!(out.len(), tokens * self.rows, "output must be tokens x height");
        if tokens <= 1 {
            return self.matvec(xs, out);
        }
        let kernel = RowKernel::detect();
        let activations: Vec<Activation> =
            xs.chunks_exact(self.cols).map(|x| Activation::new(x, kernel, self.format)).collect();
        let rows_per_task = rows_per_task(self.rows);
        // Row-major by weight row first, so tasks own disjoint slices.
        let mut by_row = vec![0f32; self.rows * tokens];
        by_row.par_chunks_mut(rows_per_task * tokens).enumerate().for_each(|(task, by_row)| {
            let first = task * rows_per_task;
            for (offset, values) in by_row.chunks_exact_mut(tokens).enumerate() {
                let row = self.row_bytes(first + offset);
                for (value, activation) in values.iter_mut().zip(&activations) {
                    *value = kernel.dot(self.format, row, activation);
                }
            }
        });
        for (row, values) in by_row.chunks_exact(tokens).enumerate() {
            for (token, &value) in values.iter().enumerate() {
                out[token * self.rows + row] = value;
            }
        }
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
        by_row.par_chunks_mut(ROWS_PER_TASK * tokens).enumerate().for_each(|(task, by_row)| {
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

/// One activation vector and what the row kernels precompute from it once
/// per product.
struct Activation<'a> {
    x: &'a [f32],
    /// Σx over each 32-value block (Q4_1's and Q4_K's minimum terms, Q5_0's
    /// offset in the scalar kernel).
    block_sums: Vec<f32>,
    /// `x` in the order the SIMD Q5_0 / K-quant kernels read it (else empty).
    transposed: Vec<f32>,
}

impl<'a> Activation<'a> {
    fn new(x: &'a [f32], kernel: RowKernel, format: BlockFormat) -> Activation<'a> {
        let simd = kernel != RowKernel::Scalar;
        let reordered = simd && matches!(format, BlockFormat::Q5_0 | BlockFormat::Q4K | BlockFormat::Q6K);
        Activation {
            x,
            block_sums: x.chunks_exact(BLOCK).map(|block| block.iter().sum()).collect(),
            #[cfg(target_arch = "x86_64")]
            transposed: if reordered { simd::transpose_chunks(x) } else { Vec::new() },
            #[cfg(not(target_arch = "x86_64"))]
            transposed: if reordered { x.to_vec() } else { Vec::new() },
        }
    }
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
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c") {
            return RowKernel::Avx2;
        }
        RowKernel::Scalar
    }

    /// `row · x` for an `activation` built for this kernel and format.
    fn dot(self, format: BlockFormat, row: &[u8], activation: &Activation) -> f32 {
        let (x, block_sums) = (activation.x, activation.block_sums.as_slice());
        match self {
            RowKernel::Scalar => scalar_row_dot(format, row, x, block_sums),
            // SAFETY: `detect` checked the CPU has AVX2, FMA and F16C; the
            // kernels read only inside `row` and the activation's vectors,
            // whose lengths agree (`cols` values, `cols / 32` block sums;
            // `Activation::new` filled `transposed` for the formats that read it).
            #[cfg(target_arch = "x86_64")]
            RowKernel::Avx2 => unsafe {
                let transposed = activation.transposed.as_slice();
                match format {
                    BlockFormat::Q4_1 => avx2::row_dot::<true>(row, x, block_sums),
                    BlockFormat::Q8_0 => avx2::row_dot::<false>(row, x, block_sums),
                    BlockFormat::Q5_0 => q5_0::avx2::row_dot(row, transposed),
                    BlockFormat::Q4K => q4_k::avx2::row_dot(row, transposed, block_sums),
                    BlockFormat::Q6K => q6_k::avx2::row_dot(row, transposed),
                }
            },
        }
    }
}

/// The portable kernels, also the reference the SIMD ones are tested against.
fn scalar_row_dot(format: BlockFormat, row: &[u8], x: &[f32], block_sums: &[f32]) -> f32 {
    let blocks = || row.chunks_exact(format.block_bytes()).zip(x.chunks_exact(BLOCK)).zip(block_sums);
    match format {
        BlockFormat::Q4_1 => blocks()
            .map(|((block, x), block_sum)| {
                let mut sum = 0f32;
                for (j, &byte) in block[4..20].iter().enumerate() {
                    sum += f32::from(byte & 0x0F) * x[j] + f32::from(byte >> 4) * x[j + 16];
                }
                half_at(block, 0) * sum + half_at(block, 2) * block_sum
            })
            .sum(),
        BlockFormat::Q8_0 => blocks()
            .map(|((block, x), _)| {
                let sum: f32 = block[2..34].iter().zip(x).map(|(&q, &v)| f32::from(q as i8) * v).sum();
                half_at(block, 0) * sum
            })
            .sum(),
        BlockFormat::Q5_0 => q5_0::scalar_dot(row, x, block_sums),
        BlockFormat::Q4K => q4_k::scalar_dot(row, x, block_sums),
        BlockFormat::Q6K => q6_k::scalar_dot(row, x),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::BLOCK;
    use crate::simd::{half_to_f32, horizontal_sum};

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
        sum = _mm256_fmadd_ps(unsigned_bytes_to_f32(_mm_srli_si128(low, 8)), _mm256_loadu_ps(xs.add(8)), sum);
        sum = _mm256_fmadd_ps(unsigned_bytes_to_f32(high), _mm256_loadu_ps(xs.add(16)), sum);
        _mm256_fmadd_ps(unsigned_bytes_to_f32(_mm_srli_si128(high, 8)), _mm256_loadu_ps(xs.add(24)), sum)
    }

    /// `Σ q·x` over one Q8_0 block (before scaling), as eight lanes.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_0_block(block: *const u8, xs: *const f32) -> __m256 {
        let quants = block.add(2);
        let weights = |part: usize| {
            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(quants.add(part * 8) as *const __m128i)))
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
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
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
        QMatrix { format: BlockFormat::Q4_1, rows, cols, data }
    }

    fn reference(matrix: &QMatrix, x: &[f32]) -> Vec<f32> {
        let mut row = vec![0f32; matrix.cols()];
        (0..matrix.rows())
            .map(|r| {
                matrix.dequantize_row(r, &mut row);
                row.iter().zip(x).map(|(w, v)| f64::from(*w) * f64::from(*v)).sum::<f64>() as f32
            })
            .collect()
    }

    fn assert_close(actual: &[f32], expected: &[f32]) {
        assert_eq!(actual.len(), expected.len());
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() <= 1e-4 * (1.0 + e.abs()), "element {i}: {a} vs {e}");
        }
    }

    #[test]
    fn q8_0_round_trip_stays_within_half_a_step() {
        let dense = values(4 * 64, 3);
        let matrix = QMatrix::from_dense(&dense, 4, 64).expect("whole blocks");
        let mut row = vec![0f32; 64];
        for r in 0..4 {
            matrix.dequantize_row(r, &mut row);
            for (block, original) in row.chunks_exact(BLOCK).zip(dense[r * 64..].chunks_exact(BLOCK)) {
                let step = original.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                for (a, b) in block.iter().zip(original) {
                    // Half a step, plus the scale's rounding to f16 (2^-11
                    // relative) times the largest quant.
                    assert!((a - b).abs() <= step * (0.5 + 127.0 / 2048.0), "{a} vs {b}");
                }
            }
        }
    }

    /// A matrix of random bytes (every bit pattern a block can hold) whose
    /// f16 scales are overwritten with modest values of either sign.
    fn random_matrix(format: BlockFormat, rows: usize, cols: usize, seed: u64) -> QMatrix {
        let mut state = seed;
        let size = format.matrix_bytes(rows, cols).expect("whole blocks");
        let mut data: Vec<u8> = (0..size)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        let scale_offsets: &[usize] = match format {
            BlockFormat::Q4_1 | BlockFormat::Q4K => &[0, 2],
            BlockFormat::Q8_0 | BlockFormat::Q5_0 => &[0],
            BlockFormat::Q6K => &[208],
        };
        for (index, block) in data.chunks_exact_mut(format.block_bytes()).enumerate() {
            for (n, &at) in scale_offsets.iter().enumerate() {
                let magnitude = 0.002 + 0.01 * ((index * 7 + n * 3) % 13) as f32 / 13.0;
                let scale = if (index + n) % 3 == 0 { -magnitude } else { magnitude };
                block[at..at + 2].copy_from_slice(&f16::from_f32(scale).to_bits().to_le_bytes());
            }
        }
        QMatrix::from_blocks(format, rows, cols, data).expect("sized for its format")
    }

    /// The scalar kernel, the detected (SIMD where the CPU has it) kernel and
    /// the parallel `matvec` all equal the f64 product of dequantized rows.
    fn assert_every_kernel_matches(matrix: &QMatrix, x: &[f32]) {
        let expected = reference(matrix, x);
        let detected = RowKernel::detect();
        if detected == RowKernel::Scalar {
            println!("notice: no AVX2/FMA/F16C on this CPU; only the scalar kernel is checked");
        }
        for kernel in [RowKernel::Scalar, detected] {
            let activation = Activation::new(x, kernel, matrix.format);
            let rows: Vec<f32> =
                (0..matrix.rows()).map(|r| kernel.dot(matrix.format, matrix.row_bytes(r), &activation)).collect();
            assert_close(&rows, &expected);
        }
        let mut parallel = vec![0f32; matrix.rows()];
        matrix.matvec(x, &mut parallel);
        assert_close(&parallel, &expected);
    }

    #[test]
    fn every_kernel_matches_the_dequantized_reference() {
        // An even and an odd number of blocks per row (the kernels take two at a time).
        for cols in [576, 608] {
            let x = values(cols, 11);
            for matrix in [q4_1_matrix(37, cols, 5), QMatrix::quantize_q8_0(&values(37 * cols, 7), 37, cols)] {
                assert_every_kernel_matches(&matrix, &x);
            }
        }
    }

    #[test]
    fn q5_0_kernels_match_the_dequantized_reference() {
        // 18, 19 and 28 blocks per row (896 is the model's width).
        for (cols, seed) in [(576, 1), (608, 2), (896, 3)] {
            assert_every_kernel_matches(&random_matrix(BlockFormat::Q5_0, 37, cols, seed), &values(cols, seed + 10));
        }
    }

    #[test]
    fn k_quant_kernels_match_the_dequantized_reference() {
        // 2, 3 and 19 super-blocks per row (4864 is the model's MLP width).
        for format in [BlockFormat::Q4K, BlockFormat::Q6K] {
            for (cols, seed) in [(512, 4), (768, 5), (4864, 6)] {
                assert_every_kernel_matches(&random_matrix(format, 21, cols, seed), &values(cols, seed + 10));
            }
        }
    }

    #[test]
    fn new_formats_batched_matmul_equals_one_matvec_per_token() {
        let tokens = 3;
        for (format, cols) in [(BlockFormat::Q5_0, 96), (BlockFormat::Q4K, 512), (BlockFormat::Q6K, 512)] {
            let (rows, matrix) = (45, random_matrix(format, 45, cols, 8));
            let xs = values(tokens * cols, 9);
            let mut batched = vec![0f32; tokens * rows];
            matrix.matmul(&xs, tokens, &mut batched);
            for (token, x) in xs.chunks_exact(cols).enumerate() {
                let mut single = vec![0f32; rows];
                matrix.matvec(x, &mut single);
                assert_close(&batched[token * rows..(token + 1) * rows], &single);
            }
        }
    }

    #[test]
    fn batched_matvec_is_bit_identical_to_one_matvec_per_token() {
        let tokens = 5;
        for (format, cols) in [
            (BlockFormat::Q4_1, 96),
            (BlockFormat::Q8_0, 96),
            (BlockFormat::Q5_0, 96),
            (BlockFormat::Q4K, 512),
            (BlockFormat::Q6K, 512),
        ] {
            let (rows, matrix) = (45, random_matrix(format, 45, cols, 11));
            let xs = values(tokens * cols, 12);
            let mut batched = vec![0f32; tokens * rows];
            matrix.matvec_batch(&xs, tokens, &mut batched);
            for (token, x) in xs.chunks_exact(cols).enumerate() {
                let mut single = vec![0f32; rows];
                matrix.matvec(x, &mut single);
                assert_eq!(&batched[token * rows..(token + 1) * rows], &single[..], "{format:?} token {token}");
                assert_close(&single, &reference(&matrix, x));
            }
        }
    }

    #[test]
    fn stacking_one_format_keeps_its_blocks_and_mixed_formats_become_q8_0() {
        for format in [BlockFormat::Q5_0, BlockFormat::Q4K, BlockFormat::Q6K] {
            let (a, b) = (random_matrix(format, 3, 256, 1), random_matrix(format, 2, 256, 2));
            let stacked = QMatrix::stack(vec![a.clone(), b.clone()]).expect("same width");
            assert_eq!((stacked.rows(), stacked.format()), (5, format));
            let (mut row, mut part) = (vec![0f32; 256], vec![0f32; 256]);
            for r in 0..5 {
                stacked.dequantize_row(r, &mut row);
                if r < 3 {
                    a.dequantize_row(r, &mut part)
                } else {
                    b.dequantize_row(r - 3, &mut part)
                }
                assert_eq!(row, part, "row {r} of {format:?}");
            }
        }
        let (a, b) = (random_matrix(BlockFormat::Q5_0, 3, 256, 3), random_matrix(BlockFormat::Q8_0, 2, 256, 4));
        let stacked = QMatrix::stack(vec![a.clone(), b.clone()]).expect("same width");
        assert_eq!((stacked.rows(), stacked.format()), (5, BlockFormat::Q8_0));
        let x = values(256, 5);
        let mut out = vec![0f32; 5];
        stacked.matvec(&x, &mut out);
        let expected: Vec<f32> = reference(&a, &x).into_iter().chain(reference(&b, &x)).collect();
        for (o, e) in out.iter().zip(&expected) {
            // a's rows went through one more rounding (Q5_0 -> Q8_0).
            assert!((o - e).abs() < 0.05 * (1.0 + e.abs()), "{o} vs {e}");
        }
        assert!(QMatrix::stack(vec![a, random_matrix(BlockFormat::Q5_0, 1, 32, 6)]).is_err());
    }

    #[test]
    fn bytes_that_do_not_fit_the_format_are_refused() {
        for format in [BlockFormat::Q5_0, BlockFormat::Q4K, BlockFormat::Q6K] {
            let (rows, cols) = (3, 512);
            let size = rows * cols / format.block_values() * format.block_bytes();
            assert!(QMatrix::from_blocks(format, rows, cols, vec![0; size]).is_ok(), "{format:?}");
            for wrong in [size - 1, size + 1, size - format.block_bytes(), 0] {
                let refused = QMatrix::from_blocks(format, rows, cols, vec![0; wrong]);
                assert!(matches!(refused, Err(ShapeError(_))), "{format:?} took {wrong} bytes");
            }
        }
        // Whole 32-value blocks but not whole 256-value super-blocks.
        assert!(matches!(QMatrix::from_blocks(BlockFormat::Q4K, 1, 128, vec![0; 72]), Err(ShapeError(_))));
        assert!(matches!(QMatrix::from_blocks(BlockFormat::Q6K, 2, 896, vec![0; 735]), Err(ShapeError(_))));
        assert!(matches!(QMatrix::from_blocks(BlockFormat::Q5_0, 1, 48, vec![0; 33]), Err(ShapeError(_))));
        assert!(matches!(QMatrix::from_blocks(BlockFormat::Q4K, usize::MAX, 256, Vec::new()), Err(ShapeError(_))));
    }

    /// CPU seconds used so far by the calling thread (or, with `process`, by
    /// every thread: summed over /proc/self/task), from the kernel's
    /// nanosecond `schedstat`, so figures hold when other jobs share the cores.
    fn cpu_seconds(process: bool) -> f64 {
        let run_time = |path: &std::path::Path| -> f64 {
            let text = std::fs::read_to_string(path).expect("schedstat is readable");
            text.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()).expect("schedstat run time") * 1e-9
        };
        if !process {
            return run_time("/proc/thread-self/schedstat".as_ref());
        }
        std::fs::read_dir("/proc/self/task")
            .expect("task list")
            .filter_map(|task| task.ok())
            .map(|task| run_time(&task.path().join("schedstat")))
            .sum()
    }

    /// Decode throughput of `matvec` on the model's shapes, in GB of weights
    /// per second: hot (one matrix, in cache) and cold (cycling through more
    /// than the L3 holds), by wall clock and per CPU-second, one thread's
    /// kernel alone per CPU-second, and one 64-token prefill product (wall
    /// clock). Prints figures only; run with
    /// `cargo test -p sextant-kernels --release -- --ignored --nocapture decode_throughput`.
    #[test]
    #[ignore = "a benchmark: prints GB/s, asserts nothing about speed"]
    fn decode_throughput() {
        use std::time::Instant;
        println!("kernel {:?}, {} threads", RowKernel::detect(), rayon::current_num_threads());
        for (format, rows, cols) in [
            (BlockFormat::Q5_0, 4864, 896),
            (BlockFormat::Q8_0, 4864, 896),
            (BlockFormat::Q4_1, 4864, 896),
            (BlockFormat::Q4K, 896, 4864),
            (BlockFormat::Q6K, 896, 4864),
        ] {
            let x = values(cols, 1);
            let mut out = vec![0f32; rows];
            let one = random_matrix(format, rows, cols, 2);
            let bytes = one.data.len();
            let copies = (256 << 20) / bytes + 1;
            let many: Vec<QMatrix> = (0..copies).map(|_| one.clone()).collect();
            // (wall-clock GB/s, GB per CPU-second)
            let time = |matrices: &[QMatrix], rounds: usize, out: &mut [f32]| {
                let (start, cpu) = (Instant::now(), cpu_seconds(true));
                for _ in 0..rounds {
                    for matrix in matrices {
                        matrix.matvec(&x, out);
                    }
                }
                let gigabytes = (rounds * matrices.len() * bytes) as f64 / 1e9;
                (gigabytes / start.elapsed().as_secs_f64(), gigabytes / (cpu_seconds(true) - cpu))
            };
            time(std::slice::from_ref(&one), 20, &mut out);
            let hot = time(std::slice::from_ref(&one), 400, &mut out);
            let cold = time(&many, 4, &mut out);
            let kernel = RowKernel::detect();
            let activation = Activation::new(&x, kernel, format);
            // One thread over the whole matrix (from L3), then over rows that fit in L2.
            let single = |rows: usize, rounds: usize, out: &mut [f32]| {
                let cpu = cpu_seconds(false);
                for _ in 0..rounds {
                    for (r, out) in out[..rows].iter_mut().enumerate() {
                        *out = kernel.dot(format, one.row_bytes(r), &activation);
                    }
                }
                (rounds * rows * (bytes / one.rows)) as f64 / 1e9 / (cpu_seconds(false) - cpu)
            };
            let single_l2 = single((256 << 10) / (bytes / one.rows), 2000, &mut out);
            let single = single(rows, 200, &mut out);
            // Prefill: one 64-token product (rows expanded to f32 + gemm).
            let tokens = 64;
            let (xs, mut outs) = (values(tokens * cols, 3), vec![0f32; tokens * rows]);
            let start = Instant::now();
            one.matmul(&xs, tokens, &mut outs);
            let prefill_ms = start.elapsed().as_secs_f64() * 1e3;
            println!(
                "{format:?} {rows}x{cols} ({:.2} MB): matvec hot {:.1} GB/s ({:.1}/CPU-s), cold {:.1} GB/s ({:.1}/CPU-s); \
                 one thread's kernel {single:.1} GB/CPU-s ({single_l2:.1} from L2); 64-token matmul {prefill_ms:.1} ms",
                bytes as f64 / 1e6,
                hot.0,
                hot.1,
                cold.0,
                cold.1
            );
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
            assert_close(&batched[token * rows..(token + 1) * rows], &reference(&matrix, x));
        }
    }

    #[test]
    fn stacking_keeps_rows_in_order_and_unifies_formats() {
        let (a, b) = (q4_1_matrix(3, 64, 1), QMatrix::quantize_q8_0(&values(2 * 64, 2), 2, 64));
        let stacked = QMatrix::stack(vec![a.clone(), b.clone()]).expect("same width");
        assert_eq!((stacked.rows(), stacked.format), (5, BlockFormat::Q8_0));
        let x = values(64, 4);
        let mut out = vec![0f32; 5];
        stacked.matvec(&x, &mut out);
        let expected: Vec<f32> = reference(&a, &x).into_iter().chain(reference(&b, &x)).collect();
        for (o, e) in out.iter().zip(&expected) {
            // a's rows went through one more rounding (Q4_1 -> Q8_0).
            assert!((o - e).abs() < 0.05 * (1.0 + e.abs()), "{o} vs {e}");
        }
        assert!(QMatrix::stack(vec![a, q4_1_matrix(1, 32, 3)]).is_err());
    }
}
