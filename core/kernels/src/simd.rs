//! AVX2 pieces shared by the block kernels.
//!
//! The Q5_0 and K-quant kernels turn a block's quants into 32 bytes in value
//! order, then widen them to f32 four bytes per 128-bit half at a time, one
//! byte shuffle each (no cross-half moves, which would cost one more shuffle
//! per group). The widened lanes are not in value order, so the activations
//! are reordered once per product to match ([`transpose_chunks`]).

use std::arch::x86_64::*;

/// `x` with each aligned run of 32 values reordered the way
/// [`signed_bytes_dot`] widens quants: position `8k + i` holds value
/// `4k + i` for `i < 4` and value `16 + 4k + (i - 4)` above. `x.len()` must
/// be a multiple of 32.
pub(crate) fn transpose_chunks(x: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for (out, x) in out.chunks_exact_mut(32).zip(x.chunks_exact(32)) {
        for k in 0..4 {
            for i in 0..4 {
                out[8 * k + i] = x[4 * k + i];
                out[8 * k + 4 + i] = x[16 + 4 * k + i];
            }
        }
    }
    out
}

/// The f16 at `bits` (little-endian) in all eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn broadcast_half(bits: *const u8) -> __m256 {
    _mm256_cvtph_ps(_mm_set1_epi16((bits as *const i16).read_unaligned()))
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

/// What [`signed_bytes_dot`] results are multiplied by: it widens each quant
/// `q` to the 32-bit integer `q << 24` (its byte on top), which converts to
/// the f32 `q * 2^24` exactly and sign-extends for free. Scaling by a power
/// of two changes no rounding.
pub(crate) const WIDENED_UNIT: f32 = 1.0 / (1u32 << 24) as f32;

/// `2^24 Σ q·x` over 32 signed byte quants (value order) and 32 activations
/// in [`transpose_chunks`] order, as eight lanes: lanes 0..4 sum values of
/// 0..16, lanes 4..8 values of 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn signed_bytes_dot(quants: __m256i, xs: *const f32) -> __m256 {
    // One byte shuffle per four bytes of each 128-bit half, each byte into
    // the top of a 32-bit lane (index 0x80 writes a zero byte).
    let widen = |k: i8| {
        let pick = |i: i8| i32::from_le_bytes([0x80, 0x80, 0x80, (4 * k + i) as u8]);
        let pattern = _mm256_setr_epi32(pick(0), pick(1), pick(2), pick(3), pick(0), pick(1), pick(2), pick(3));
        _mm256_cvtepi32_ps(_mm256_shuffle_epi8(quants, pattern))
    };
    let mut sum = _mm256_mul_ps(widen(0), _mm256_loadu_ps(xs));
    sum = _mm256_fmadd_ps(widen(1), _mm256_loadu_ps(xs.add(8)), sum);
    sum = _mm256_fmadd_ps(widen(2), _mm256_loadu_ps(xs.add(16)), sum);
    _mm256_fmadd_ps(widen(3), _mm256_loadu_ps(xs.add(24)), sum)
}
