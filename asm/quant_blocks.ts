// ggml's quantized blocks in registers: type codes, block geometry, scales, and the quants of sixteen values at
// a time (asm/quant.ts decodes them to float32 weights, asm/quant_int.ts takes integer dot products with them).
// src/io/ggml_quants.ts describes each layout.

import { f16 } from "./widen";

export const Q8_0: i32 = 0;
export const Q4_0: i32 = 1;
export const Q4_K: i32 = 2;
export const Q5_K: i32 = 3;
export const Q6_K: i32 = 4;
export const Q4_1: i32 = 5;
export const Q5_0: i32 = 6;
export const Q5_1: i32 = 7;

/** Blocks of 32 with one scale (and, for Q4_1 / Q5_1, one offset m). */
// @ts-ignore: decorator
@inline export function small(dt: i32): bool {
  return dt == Q8_0 || dt == Q4_0 || dt == Q4_1 || dt == Q5_0 || dt == Q5_1;
}

/** Types whose values are d q + m: the block's m at byte 2. */
// @ts-ignore: decorator
@inline export function hasM(dt: i32): bool {
  return dt == Q4_1 || dt == Q5_1;
}

// @ts-ignore: decorator
@inline export function blockSize(dt: i32): i32 {
  return small(dt) ? 32 : 256;
}

// @ts-ignore: decorator
@inline export function typeSize(dt: i32): usize {
  if (dt == Q8_0) return 34;
  if (dt == Q4_0) return 18;
  if (dt == Q4_1) return 20;
  if (dt == Q5_0) return 22;
  if (dt == Q5_1) return 24;
  if (dt == Q4_K) return 144;
  if (dt == Q5_K) return 176;
  return 210;
}

/** Values sharing one scale. */
// @ts-ignore: decorator
@inline export function subSize(dt: i32): i32 {
  return dt == Q6_K ? 16 : 32;
}

/** The block's first scale: d (f16) of Q8_0 / Q4_0 / Q4_K / Q5_K, at the end for Q6_K. */
// @ts-ignore: decorator
@inline export function blockD(p: usize, dt: i32): f32 {
  return f16(<u32>load<u16>(p + (dt == Q6_K ? 208 : 0)));
}

/** 6-bit scale (sel 0) or min (sel 1) of sub-block j of a Q4_K / Q5_K block (ggml's get_scale_min_k4). */
// @ts-ignore: decorator
@inline export function scaleMinK4(sc: usize, j: i32, sel: i32): u32 {
  if (j < 4) return <u32>load<u8>(sc + j + (sel << 2)) & 63;
  const lo = <u32>load<u8>(sc + j + 4);
  const hi = <u32>load<u8>(sc + j - 4 + (sel << 2)) >> 6;
  return (sel == 0 ? lo & 0xf : lo >> 4) | (hi << 4);
}

/** Quants are signed bytes (offset already subtracted) for these types, unsigned for the others. */
// @ts-ignore: decorator
@inline export function signedQ(dt: i32): bool {
  return dt == Q8_0 || dt == Q4_0 || dt == Q5_0 || dt == Q6_K;
}

/**
 * Nibbles of 16 bytes: the low ones (shift 0) or the high ones (shift 4). Shifted as 16-bit lanes, then masked per
 * byte: one shift and one mask whether or not the shift is a constant (an i8x16 shift by a count that is not a
 * constant costs several instructions in V8's lowering, and a select between two constant-shift forms computes both).
 */
// @ts-ignore: decorator
@inline export function nibbles(b: v128, shift: i32): v128 {
  return v128.and(i16x8.shr_u(b, shift), i8x16.splat(15));
}

/** 16 in each byte where bit k of the 16-bit `bits` is set, byte k (Q5_0 / Q5_1's fifth bits). */
// @ts-ignore: decorator
@inline export function bitsTo16(bits: u32): v128 {
  const v = i8x16.swizzle(i16x8.splat(<i16>bits), i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1));
  const set = v128.and(v, i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128));
  return v128.andnot(i8x16.splat(16), i8x16.eq(set, i8x16.splat(0)));
}

/**
 * The quants of values 16 grp .. 16 grp + 15 of sub-block s of the block at p, one per byte: signed with the
 * type's offset subtracted (Q8_0, Q4_0, Q5_0, Q6_K) or unsigned (Q4_1, Q5_1, Q4_K, Q5_K). `raw`: Q4_0, Q5_0
 * and Q6_K without their offset (8, 16, 32), so unsigned and below 64.
 */
// @ts-ignore: decorator
@inline export function quants16(p: usize, s: i32, grp: i32, dt: i32, raw: bool = false): v128 {
  if (dt == Q8_0) return v128.load(p + 2 + (<usize>grp << 4));
  if (dt == Q4_0 || dt == Q4_1 || dt == Q5_0 || dt == Q5_1) {
    // Values 0..15 are the low nibbles of the 16 bytes, values 16..31 their high nibbles; Q5_*: bit v of the
    // 32-bit qh is value v's fifth bit.
    const qs: usize = dt == Q4_0 ? 2 : dt == Q4_1 ? 4 : dt == Q5_0 ? 6 : 8;
    let q = nibbles(v128.load(p + qs), grp << 2);
    if (dt == Q5_0 || dt == Q5_1) q = v128.or(q, bitsTo16(load<u32>(p + (dt == Q5_0 ? 2 : 4)) >> (<u32>grp << 4)));
    if (dt == Q4_0 && !raw) return i8x16.sub(q, i8x16.splat(8));
    if (dt == Q5_0 && !raw) return i8x16.sub(q, i8x16.splat(16));
    return q;
  }
  if (dt == Q4_K || dt == Q5_K) {
    // Sub-blocks 2c, 2c+1: the low, high nibbles of the 32 bytes of chunk c (at 16 for Q4_K, 48 for Q5_K);
    // Q5_K adds 16 where bit s of qh[i] (the 32 bytes at 16) is set.
    const at: usize = dt == Q4_K ? 16 : 48;
    const off = (<usize>(s >> 1) << 5) + (<usize>grp << 4);
    const q = nibbles(v128.load(p + at + off), (s & 1) << 2);
    if (dt == Q4_K) return q;
    const h = v128.and(v128.load(p + 16 + (<usize>grp << 4)), i8x16.splat(<i8>(<i32>1 << s)));
    return v128.or(q, v128.andnot(i8x16.splat(16), i8x16.eq(h, i8x16.splat(0))));
  }
  // Q6_K: sub-block s (16 values) is in half s >> 3, quarter qd = (s >> 1) & 3, positions l = 16 (s & 1) + i
  // of 32: low 4 bits from the low (qd < 2) or high nibble of ql[64 half + 32 (qd & 1) + l], top 2 bits from
  // bits 2 qd of qh[32 half + l]; minus 32.
  const half = <usize>(s >> 3), qd = (s >> 1) & 3;
  const l = <usize>((s & 1) << 4);
  const lo4 = nibbles(v128.load(p + (half << 6) + (<usize>(qd & 1) << 5) + l), (qd >> 1) << 2);
  // ((qh >> 2 qd) & 3) << 4 per byte, shifting 16-bit lanes (the bits that cross bytes are masked off).
  const h = v128.load(p + 128 + (half << 5) + l);
  const hi2 = v128.and(i16x8.shl(i16x8.shr_u(h, qd << 1), 4), i8x16.splat(48));
  return raw ? v128.or(lo4, hi2) : i8x16.sub(v128.or(lo4, hi2), i8x16.splat(32));
}

