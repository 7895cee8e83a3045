//! ggml's `block_q6_K`: a 256-value super-block in 210 bytes, sixteen
//! sub-blocks of 16 with a signed 8-bit scale each:
//! `x = d * scale[s] * (q - 32)` with a 6-bit `q`. Layout: 128 bytes `ql`
//! (low 4 bits), 64 bytes `qh` (high 2 bits), 16 int8 scales, f16 `d`.
//!
//! Each 128-value half `n` uses `ql[64n..64n+64]` and `qh[32n..32n+32]`; for
//! `l` in 0..32 the four values `128n + l + 32g` (g = 0..4) take their low
//! bits from the low nibble of `ql[l]`, of `ql[l+32]`, the high nibble of
//! `ql[l]`, of `ql[l+32]`, and their high bits from bits `2g..2g+2` of `qh[l]`.
//! Value `v` of the super-block has scale `v / 16`.

use crate::half_at;

pub(crate) const VALUES: usize = 256;
pub(crate) const BYTES: usize = 210;

/// Calls `each(value, q - 32)` for the super-block's 256 values, four at a
/// time (one `ql`/`qh` byte pair feeds four values 32 apart).
#[inline]
fn for_each_quant(block: &[u8], mut each: impl FnMut(usize, i32)) {
    for half in 0..2 {
        let (low, high) = (&block[64 * half..64 * half + 64], &block[128 + 32 * half..128 + 32 * half + 32]);
        for l in 0..32 {
            let (first, second, bits) = (low[l], low[l + 32], high[l]);
            let base = 128 * half + l;
            each(base, i32::from((first & 0x0F) | ((bits & 0x03) << 4)) - 32);
            each(base + 32, i32::from((second & 0x0F) | (((bits >> 2) & 0x03) << 4)) - 32);
            each(base + 64, i32::from((first >> 4) | (((bits >> 4) & 0x03) << 4)) - 32);
            each(base + 96, i32::from((second >> 4) | ((bits >> 6) << 4)) - 32);
        }
    }
}

/// Writes one super-block's 256 values into `out`.
pub(crate) fn dequantize(block: &[u8], out: &mut [f32]) {
    let d = half_at(block, 208);
    let mut scales = [0f32; 16];
    for (scale, &byte) in scales.iter_mut().zip(&block[192..208]) {
        *scale = d * f32::from(byte as i8);
    }
    for_each_quant(block, |v, q| out[v] = scales[v / 16] * q as f32);
}

/// `row · x`.
pub(crate) fn scalar_dot(row: &[u8], x: &[f32]) -> f32 {
    let mut total = 0f32;
    for (block, x) in row.chunks_exact(BYTES).zip(x.chunks_exact(VALUES)) {
        let mut sub_sums = [0f32; 16];
        for_each_quant(block, |v, q| sub_sums[v / 16] += q as f32 * x[v]);
        let scaled: f32 = sub_sums.iter().zip(&block[192..208]).map(|(sum, &scale)| sum * f32::from(scale as i8)).sum();
        total += half_at(block, 208) * scaled;
    }
    total
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::{BYTES, VALUES};
    use crate::simd::{half_to_f32, horizontal_sum, signed_bytes_dot, WIDENED_UNIT};

    /// The 32 values `q - 32` (signed bytes in value order) of each of the
    /// four groups of one 128-value half.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn half_quants(block: *const u8, half: usize) -> [__m256i; 4] {
        let first = _mm256_loadu_si256(block.add(64 * half) as *const __m256i);
        let second = _mm256_loadu_si256(block.add(64 * half + 32) as *const __m256i);
        let high = _mm256_loadu_si256(block.add(128 + 32 * half) as *const __m256i);
        let nibble = _mm256_set1_epi8(0x0F);
        // Masking before the 16-bit shifts keeps every bit inside its byte.
        let high_bits = |mask: i8| _mm256_and_si256(high, _mm256_set1_epi8(mask));
        let offset = _mm256_set1_epi8(32);
        [
            _mm256_or_si256(_mm256_and_si256(first, nibble), _mm256_slli_epi16(high_bits(0x03), 4)),
            _mm256_or_si256(_mm256_and_si256(second, nibble), _mm256_slli_epi16(high_bits(0x0C), 2)),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(first, 4), nibble), high_bits(0x30)),
            _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(second, 4), nibble),
                _mm256_srli_epi16(high_bits(-64), 2),
            ),
        ]
        .map(|quants| _mm256_sub_epi8(quants, offset))
    }

    /// Eight int8 scales as f32 lanes times `d`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn scales(bytes: *const u8, d: __m256) -> __m256 {
        let bytes = _mm_loadl_epi64(bytes as *const __m128i);
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)), d)
    }

    /// `row · x` with `transposed` = `x` in [`crate::simd::transpose_chunks`]
    /// order.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn row_dot(row: &[u8], transposed: &[f32]) -> f32 {
        let super_blocks = row.len() / BYTES;
        debug_assert!(transposed.len() >= super_blocks * VALUES);
        let (mut even, mut odd) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for index in 0..super_blocks {
            let block = row.as_ptr().add(index * BYTES);
            let xs = transposed.as_ptr().add(index * VALUES);
            let d = _mm256_set1_ps(half_to_f32(block.add(208)) * WIDENED_UNIT);
            let (first_scales, second_scales) = (scales(block.add(192), d), scales(block.add(200), d));
            for half in 0..2 {
                let scales = if half == 0 { first_scales } else { second_scales };
                let quants = half_quants(block, half);
                for (group, &quants) in quants.iter().enumerate() {
                    // Lanes 0..4 hold values 0..16 of the group, lanes 4..8 values 16..32.
                    let lane = 2 * group as i32;
                    let lane_scales = _mm256_permutevar8x32_ps(
                        scales,
                        _mm256_setr_epi32(lane, lane, lane, lane, lane + 1, lane + 1, lane + 1, lane + 1),
                    );
                    let sum = signed_bytes_dot(quants, xs.add(128 * half + 32 * group));
                    if group % 2 == 0 {
                        even = _mm256_fmadd_ps(lane_scales, sum, even);
                    } else {
                        odd = _mm256_fmadd_ps(lane_scales, sum, odd);
                    }
                }
            }
        }
        horizontal_sum(_mm256_add_ps(even, odd))
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    #[test]
    fn a_hand_built_super_block_dequantizes_to_ggml_values() {
        let mut block = [0u8; BYTES];
        // First half, l = 5: low bits in ql[5] and ql[37], high bits in qh[5].
        block[5] = 0x93; // value 5: 3, value 69: 9
        block[37] = 0xB6; // value 37: 6, value 101: 11
        block[128 + 5] = 0b11_10_01_00; // high bits of values 5, 37, 69, 101
                                        // Second half, l = 10: ql[64 + 10], qh[32 + 10].
        block[64 + 10] = 0x21; // value 138: 1, value 202: 2
        block[128 + 32 + 10] = 0b00_11_00_11; // high bits of 138 and 202: 3
        for s in 0..16 {
            block[192 + s] = (2 * s as i8 - 15) as u8;
        }
        block[208..210].copy_from_slice(&f16::from_f32(0.25).to_bits().to_le_bytes());
        let mut out = [0f32; VALUES];
        dequantize(&block, &mut out);
        let scale = |s: i32| 0.25 * (2 * s - 15) as f32;
        assert_eq!(out[5], scale(0) * (3 - 32) as f32);
        assert_eq!(out[37], scale(2) * (6 + 16 - 32) as f32);
        assert_eq!(out[69], scale(4) * (9 + 32 - 32) as f32);
        assert_eq!(out[101], scale(6) * (11 + 48 - 32) as f32);
        assert_eq!(out[138], scale(8) * (1 + 48 - 32) as f32);
        assert_eq!(out[202], scale(12) * (2 + 48 - 32) as f32);
        for untouched in [0, 4, 6, 16, 100, 128, 137, 139, 201, 255] {
            assert_eq!(out[untouched], scale(untouched as i32 / 16) * -32.0, "value {untouched}");
        }
    }
}
