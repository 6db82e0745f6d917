// Integer dot-product steps shared by asm/quant_int.ts (blocks of 32) and asm/quant_k.ts (K-quants).

import { Q8_0 } from "./quant_blocks";

/** Whether type dt's products take the relaxed int8 dot (a relaxed-SIMD build; every type but Q8_0). */
// @ts-ignore: decorator
@inline export function relaxedFor(dt: i32): bool {
  return ASC_FEATURE_RELAXED_SIMD && dt != Q8_0;
}

/** acc + the products of 16 quants widened to 16 bits (lo, hi) with the 16-bit activation quants at a. */
// @ts-ignore: decorator
@inline export function dotWide(lo: v128, hi: v128, a: usize, acc: v128): v128 {
  return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(lo, v128.load(a)), i32x4.dot_i16x8_s(hi, v128.load(a, 16))));
}

/**
 * acc + the products of 16 quants q (0..127) with the byte activation quants at a: pairs summed to 16 bits
 * (|sum| <= 2 * 128 * 127, no saturation), then pairs of those to 32. Not `i32x4.relaxed_dot_i8x16_i7x16_add_s`:
 * Node 20's V8 (11.3) returns twice the dot product from it on x64 (measured: [-3, 5, -100, 127] . [1, 2, 3, 4]
 * gives 430, not 215), while the 16-bit form is right.
 */
// @ts-ignore: decorator
@inline export function dotBytes(q: v128, a: usize, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(a), q)));
  } else {
    unreachable();
    return acc;
  }
}

// @ts-ignore: decorator
@inline export function hsumI32(v: v128): i32 {
  const s = i32x4.add(v, i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1);
}
