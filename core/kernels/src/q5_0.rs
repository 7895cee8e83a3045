//! ggml's `block_q5_0`: 32 values in 22 bytes, `x = d * (q - 16)` with a
//! 5-bit `q`. Layout: f16 `d`, 4 bytes `qh` (bit `j` of the little-endian
//! u32 is the fifth bit of value `j`), 16 bytes `qs` (low nibbles are values
//! 0..16, high nibbles values 16..32).

use crate::half_at;

pub(crate) const VALUES: usize = 32;
pub(crate) const BYTES: usize = 22;

/// Writes one block's 32 values into `out`.
pub(crate) fn dequantize(block: &[u8], out: &mut [f32]) {
    let scale = half_at(block, 0);
    let high_bits = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
    for (j, &byte) in block[6..BYTES].iter().enumerate() {
        let fifth = |value: usize| (((high_bits >> value) & 1) << 4) as i32;
        out[j] = ((i32::from(byte & 0x0F) | fifth(j)) - 16) as f32 * scale;
        out[j + 16] = ((i32::from(byte >> 4) | fifth(j + 16)) - 16) as f32 * scale;
    }
}

/// `row · x`; `block_sums[b]` is the sum of `x` over block `b` (the `- 16`
/// offset factors out to `-16 d Σx`).
pub(crate) fn scalar_dot(row: &[u8], x: &[f32], block_sums: &[f32]) -> f32 {
    let mut total = 0f32;
    for ((block, x), block_sum) in row.chunks_exact(BYTES).zip(x.chunks_exact(VALUES)).zip(block_sums) {
        let high_bits = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
        let mut sum = 0f32;
        for (j, &byte) in block[6..BYTES].iter().enumerate() {
            let low = u32::from(byte & 0x0F) | (((high_bits >> j) & 1) << 4);
            let high = u32::from(byte >> 4) | (((high_bits >> (j + 16)) & 1) << 4);
            sum += low as f32 * x[j] + high as f32 * x[j + 16];
        }
        total += half_at(block, 0) * (sum - 16.0 * block_sum);
    }
    total
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::{BYTES, VALUES};
    use crate::simd::{broadcast_half, horizontal_sum, signed_bytes_dot, WIDENED_UNIT};

    /// The block's 32 values `q - 16` as signed bytes, in value order.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn quants(block: *const u8) -> __m256i {
        // Both halves hold `qs`; the upper half is shifted to its high nibbles.
        let packed = _mm256_broadcastsi128_si256(_mm_loadu_si128(block.add(6) as *const __m128i));
        let nibbles =
            _mm256_and_si256(_mm256_srlv_epi64(packed, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
        // Byte j gets byte j/8 of qh, then all-ones if its bit j%8 is set.
        let high_bits = (block.add(2) as *const i32).read_unaligned();
        let spread = _mm256_shuffle_epi8(
            _mm256_set1_epi32(high_bits),
            _mm256_setr_epi64x(0, 0x0101_0101_0101_0101, 0x0202_0202_0202_0202, 0x0303_0303_0303_0303),
        );
        let all_but_own_bit = _mm256_set1_epi64x(0x7FBF_DFEF_F7FB_FDFE);
        let set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, all_but_own_bit), _mm256_set1_epi8(-1));
        // q - 16 = nibble - 16 where the fifth bit is clear, the nibble where set.
        _mm256_sub_epi8(nibbles, _mm256_andnot_si256(set, _mm256_set1_epi8(0x10)))
    }

    /// `row · x` with `transposed` = `x` in [`crate::simd::transpose_chunks`]
    /// order.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn row_dot(row: &[u8], transposed: &[f32]) -> f32 {
        let blocks = row.len() / BYTES;
        debug_assert!(transposed.len() >= blocks * VALUES);
        let (row, xs) = (row.as_ptr(), transposed.as_ptr());
        let (mut even, mut odd) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut b = 0;
        // Two blocks per step into separate accumulators (latency, not throughput).
        while b + 1 < blocks {
            let (first, second) = (row.add(b * BYTES), row.add((b + 1) * BYTES));
            even = _mm256_fmadd_ps(broadcast_half(first), signed_bytes_dot(quants(first), xs.add(b * VALUES)), even);
            odd = _mm256_fmadd_ps(
                broadcast_half(second),
                signed_bytes_dot(quants(second), xs.add((b + 1) * VALUES)),
                odd,
            );
            b += 2;
        }
        if b < blocks {
            let last = row.add(b * BYTES);
            even = _mm256_fmadd_ps(broadcast_half(last), signed_bytes_dot(quants(last), xs.add(b * VALUES)), even);
        }
        horizontal_sum(_mm256_add_ps(even, odd)) * WIDENED_UNIT
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    #[test]
    fn a_hand_built_block_dequantizes_to_ggml_values() {
        let mut block = [0u8; BYTES];
        block[0..2].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        // Fifth bits of values 0, 17 and 31.
        block[2..6].copy_from_slice(&0x8002_0001u32.to_le_bytes());
        block[6] = 0x3A; // value 0: 10, value 16: 3
        block[6 + 15] = 0xF0; // value 15: 0, value 31: 15
        let mut out = [0f32; VALUES];
        dequantize(&block, &mut out);
        assert_eq!(out[0], (10.0 + 16.0 - 16.0) * 0.5);
        assert_eq!(out[16], (3.0 - 16.0) * 0.5);
        assert_eq!(out[15], -8.0);
        assert_eq!(out[31], (15.0 + 16.0 - 16.0) * 0.5);
        assert_eq!(out[17], 0.0);
        for untouched in [1, 2, 14, 18, 30] {
            assert_eq!(out[untouched], -8.0, "value {untouched}");
        }
    }
}
