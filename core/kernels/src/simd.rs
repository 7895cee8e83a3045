//! AVX2 pieces shared by the block kernels.
//!
//! The Q5_0 and K-quant kernels turn a block's quants into 32 bytes in value
//! order, then widen them to f32 with 32-bit shifts and masks rather than
//! byte shuffles (which all compete for one execution port). That leaves
//! lane `i` of the `k`-th widened vector holding value `4i + k`, so the
//! activations are reordered once per product to match ([`transpose_chunks`]).

use std::arch::x86_64::*;

/// `x` with each aligned run of 32 values reordered so that position
/// `8k + i` holds value `4i + k` (a 4x8 transpose). `x.len()` must be a
/// multiple of 32.
pub(crate) fn transpose_chunks(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for (out, x) in out.chunks_exact_mut(32).zip(x.chunks_exact(32)) {
        for k in 0..4 {
            for i in 0..8 {
                out[8 * k + i] = x[4 * i + k];
            }
        }
    }
    out
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn half_to_f32(bits: *const u8) -> f32 {
    let bits = u16::from_le_bytes([*bits, *bits.add(1)]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn horizontal_sum(v: __m256) -> f32 {
    let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let pair = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
    _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)))
}

/// `Σ q·x` over 32 unsigned byte quants (value order) and 32 activations in
/// [`transpose_chunks`] order, as eight lanes: lane `i` sums values `4i..4i+4`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn unsigned_bytes_dot(quants: __m256i, xs: *const f32) -> __m256 {
    let byte = _mm256_set1_epi32(0xFF);
    let first = _mm256_cvtepi32_ps(_mm256_and_si256(quants, byte));
    let second = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(quants, 8), byte));
    let third = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(quants, 16), byte));
    let fourth = _mm256_cvtepi32_ps(_mm256_srli_epi32(quants, 24));
    let mut sum = _mm256_mul_ps(first, _mm256_loadu_ps(xs));
    sum = _mm256_fmadd_ps(second, _mm256_loadu_ps(xs.add(8)), sum);
    sum = _mm256_fmadd_ps(third, _mm256_loadu_ps(xs.add(16)), sum);
    _mm256_fmadd_ps(fourth, _mm256_loadu_ps(xs.add(24)), sum)
}
