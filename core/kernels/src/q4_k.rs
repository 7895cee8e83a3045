//! ggml's `block_q4_K`: a 256-value super-block in 144 bytes, eight
//! sub-blocks of 32 with their own 6-bit scale and minimum:
//! `x = d * scale[s] * q - dmin * min[s]`. Layout: f16 `d`, f16 `dmin`,
//! 12 bytes of packed scales/minimums, 128 bytes of nibbles. Each run of 32
//! nibble bytes holds two sub-blocks: low nibbles are the first 32 values,
//! high nibbles the next 32.

use crate::half_at;

pub(crate) const VALUES: usize = 256;
pub(crate) const BYTES: usize = 144;

/// The eight 6-bit scales and eight 6-bit minimums, packed in 12 bytes as
/// ggml's `get_scale_min_k4` reads them, each as 8 bytes of a u64 (sub-block
/// `s` in byte `s`). Bytes 0..4 hold scales 0..4 in their low 6 bits, bytes
/// 4..8 minimums 0..4; sub-blocks 4..8 take their low 4 bits from bytes
/// 8..12 (scale: low nibble, minimum: high nibble) and their top 2 bits from
/// the spare top bits of bytes 0..4 (scale) and 4..8 (minimum).
pub(crate) fn scales_and_mins(packed: &[u8]) -> (u64, u64) {
    let word = |at: usize| u32::from_le_bytes([packed[at], packed[at + 1], packed[at + 2], packed[at + 3]]);
    let (first, second, third) = (word(0), word(4), word(8));
    let six_bits = 0x3F3F_3F3F;
    // Bits 6..8 of each byte moved to bits 4..6 of the same byte.
    let top_two = |w: u32| (w >> 2) & 0x3030_3030;
    let scales_low = first & six_bits;
    let scales_high = (third & 0x0F0F_0F0F) | top_two(first);
    let mins_low = second & six_bits;
    let mins_high = ((third >> 4) & 0x0F0F_0F0F) | top_two(second);
    (u64::from(scales_low) | u64::from(scales_high) << 32, u64::from(mins_low) | u64::from(mins_high) << 32)
}

/// Writes one super-block's 256 values into `out`.
pub(crate) fn dequantize(block: &[u8], out: &mut [f32]) {
    let (d, dmin) = (half_at(block, 0), half_at(block, 2));
    let (scales, mins) = scales_and_mins(&block[4..16]);
    for (pair, (quants, out)) in block[16..BYTES].chunks_exact(32).zip(out.chunks_exact_mut(64)).enumerate() {
        let sub_block = |s: usize| {
            let shift = 8 * (2 * pair + s);
            (d * ((scales >> shift) & 0x3F) as f32, dmin * ((mins >> shift) & 0x3F) as f32)
        };
        let ((scale_low, min_low), (scale_high, min_high)) = (sub_block(0), sub_block(1));
        for (l, &byte) in quants.iter().enumerate() {
            out[l] = scale_low * f32::from(byte & 0x0F) - min_low;
            out[l + 32] = scale_high * f32::from(byte >> 4) - min_high;
        }
    }
}

/// `row · x`; `block_sums[b]` is the sum of `x` over 32-value block `b` (a
/// sub-block's minimum factors out to `dmin * min * Σx`).
pub(crate) fn scalar_dot(row: &[u8], x: &[f32], block_sums: &[f32]) -> f32 {
    let mut total = 0f32;
    for ((block, x), sums) in row.chunks_exact(BYTES).zip(x.chunks_exact(VALUES)).zip(block_sums.chunks_exact(8)) {
        let (d, dmin) = (half_at(block, 0), half_at(block, 2));
        let (scales, mins) = scales_and_mins(&block[4..16]);
        for (pair, (quants, x)) in block[16..BYTES].chunks_exact(32).zip(x.chunks_exact(64)).enumerate() {
            let (mut low, mut high) = (0f32, 0f32);
            for (l, &byte) in quants.iter().enumerate() {
                low += f32::from(byte & 0x0F) * x[l];
                high += f32::from(byte >> 4) * x[l + 32];
            }
            for (s, sum) in [(2 * pair, low), (2 * pair + 1, high)] {
                let (scale, min) = ((scales >> (8 * s)) & 0x3F, (mins >> (8 * s)) & 0x3F);
                total += d * scale as f32 * sum - dmin * min as f32 * sums[s];
            }
        }
    }
    total
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::{scales_and_mins, BYTES, VALUES};
    use crate::simd::{half_to_f32, horizontal_sum, signed_bytes_dot, WIDENED_UNIT};

    /// Eight bytes (one per sub-block) as f32 lanes times `factor`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn scaled_lanes(bytes: u64, factor: f32) -> __m256 {
        let lanes = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(bytes as i64)));
        _mm256_mul_ps(lanes, _mm256_set1_ps(factor))
    }

    /// `row · x` with `transposed` = `x` in [`crate::simd::transpose_chunks`]
    /// order and `block_sums` its per-32-value sums.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn row_dot(row: &[u8], transposed: &[f32], block_sums: &[f32]) -> f32 {
        let super_blocks = row.len() / BYTES;
        debug_assert!(transposed.len() >= super_blocks * VALUES && block_sums.len() >= super_blocks * 8);
        let low_nibbles = _mm256_set1_epi8(0x0F);
        let (mut low_sum, mut high_sum, mut min_sum) = (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
        let mut sub_scales = [0f32; 8];
        for index in 0..super_blocks {
            let block = row.as_ptr().add(index * BYTES);
            let xs = transposed.as_ptr().add(index * VALUES);
            let (scales, mins) = scales_and_mins(std::slice::from_raw_parts(block.add(4), 12));
            _mm256_storeu_ps(sub_scales.as_mut_ptr(), scaled_lanes(scales, half_to_f32(block) * WIDENED_UNIT));
            let sums = _mm256_loadu_ps(block_sums.as_ptr().add(index * 8));
            min_sum = _mm256_fmadd_ps(scaled_lanes(mins, half_to_f32(block.add(2))), sums, min_sum);
            for pair in 0..4 {
                let packed = _mm256_loadu_si256(block.add(16 + 32 * pair) as *const __m256i);
                let low = _mm256_and_si256(packed, low_nibbles);
                let high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
                let xs = xs.add(64 * pair);
                let (scale_low, scale_high) = (&sub_scales[2 * pair], &sub_scales[2 * pair + 1]);
                low_sum = _mm256_fmadd_ps(_mm256_broadcast_ss(scale_low), signed_bytes_dot(low, xs), low_sum);
                high_sum =
                    _mm256_fmadd_ps(_mm256_broadcast_ss(scale_high), signed_bytes_dot(high, xs.add(32)), high_sum);
            }
        }
        horizontal_sum(_mm256_add_ps(low_sum, high_sum)) - horizontal_sum(min_sum)
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    const SCALES: [u8; 8] = [1, 2, 3, 63, 17, 33, 48, 5];
    const MINS: [u8; 8] = [0, 1, 2, 3, 60, 20, 36, 7];

    /// Sub-block scales and minimums packed as ggml's `get_scale_min_k4`
    /// unpacks them, with 4-bit ramps of quants (`l % 16` in the low nibbles,
    /// `15 - l % 16` in the high ones).
    fn hand_built_block() -> [u8; BYTES] {
        let mut block = [0u8; BYTES];
        block[0..2].copy_from_slice(&f16::from_f32(1.0).to_bits().to_le_bytes());
        block[2..4].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        for j in 0..4 {
            block[4 + j] = SCALES[j] | ((SCALES[j + 4] >> 4) << 6);
            block[8 + j] = MINS[j] | ((MINS[j + 4] >> 4) << 6);
            block[12 + j] = (SCALES[j + 4] & 0x0F) | ((MINS[j + 4] & 0x0F) << 4);
        }
        for l in 0..128 {
            let ramp = (l % 16) as u8;
            block[16 + l] = ramp | ((15 - ramp) << 4);
        }
        block
    }

    #[test]
    fn packed_scales_and_minimums_unpack_as_ggml_does() {
        let (scales, mins) = scales_and_mins(&hand_built_block()[4..16]);
        assert_eq!(scales.to_le_bytes(), SCALES);
        assert_eq!(mins.to_le_bytes(), MINS);
    }

    #[test]
    fn a_hand_built_super_block_dequantizes_to_ggml_values() {
        let mut out = [0f32; VALUES];
        dequantize(&hand_built_block(), &mut out);
        // Value 64c + l: low nibble of byte 32c + l; value 64c + 32 + l: its high nibble.
        assert_eq!(out[0], 0.0);
        assert_eq!(out[33], 2.0 * 14.0 - 0.5 * 1.0);
        assert_eq!(out[96], 63.0 * 15.0 - 0.5 * 3.0);
        assert_eq!(out[133], 17.0 * 5.0 - 0.5 * 60.0);
        assert_eq!(out[163], 33.0 * 12.0 - 0.5 * 20.0);
        assert_eq!(out[255], 5.0 * 0.0 - 0.5 * 7.0);
        for (v, &value) in out.iter().enumerate() {
            let (sub_block, l) = (v / 32, (v % 32) as f32 % 16.0);
            let quant = if sub_block % 2 == 0 { l } else { 15.0 - l };
            let expected = f32::from(SCALES[sub_block]) * quant - 0.5 * f32::from(MINS[sub_block]);
            assert_eq!(value, expected, "value {v}");
        }
    }
}
