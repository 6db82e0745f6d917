// Matrix-vector and matrix-matrix products over ggml block-quantized weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q4_K, Q5_K, Q6_K).
//
//   y[r]    = sum_c W[r, c] x[c]        (matvec)
//   Y[t, r] = sum_c W[r, c] X[t, c]     (matmul: tokens in groups of up to four share each decoded weight)
//
// A row of W is cols / blockSize blocks in ggml's layout (src/io/ggml_quants.ts describes them). Weights
// are decoded four at a time in registers, with the operations of ggml's dequantize_row_* in float32
// (so each weight is bit for bit ggml's value), and never written to memory. x is in natural column order
// (no permute8). Each block is split in sub-blocks that share one scale (and min): 32 values, 16 for Q6_K.
// Two arithmetics, as for the 16-bit weights (matvec.ts):
//   ...       float32 products and sums, folded into float64 after every sub-block;
//   ...Exact  exact products (float32 weight times float32 x) summed in float64, x widened to float64 by the
//             caller (widenF64), one rounding per output.

import { f16 } from "./widen";
import { widenSum, hsum64, promoteLo, promoteHi } from "./mem";

const Q8_0: i32 = 0;
const Q4_0: i32 = 1;
const Q4_K: i32 = 2;
const Q5_K: i32 = 3;
const Q6_K: i32 = 4;
const Q4_1: i32 = 5;
const Q5_0: i32 = 6;
const Q5_1: i32 = 7;

/** Blocks of 32 with one scale (and, for Q4_1 / Q5_1, one offset m). */
// @ts-ignore: decorator
@inline function small(dt: i32): bool {
  return dt == Q8_0 || dt == Q4_0 || dt == Q4_1 || dt == Q5_0 || dt == Q5_1;
}

/** Types whose values are d q + m: the block's m at byte 2. */
// @ts-ignore: decorator
@inline function hasM(dt: i32): bool {
  return dt == Q4_1 || dt == Q5_1;
}

// @ts-ignore: decorator
@inline function blockSize(dt: i32): i32 {
  return small(dt) ? 32 : 256;
}

// @ts-ignore: decorator
@inline function typeSize(dt: i32): usize {
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
@inline function subSize(dt: i32): i32 {
  return dt == Q6_K ? 16 : 32;
}

/** Four bytes at p as unsigned 32-bit lanes. */
// @ts-ignore: decorator
@inline function u8x4(p: usize): v128 {
  return i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(p)));
}

/** The block's first scale: d (f16) of Q8_0 / Q4_0 / Q4_K / Q5_K, at the end for Q6_K. */
// @ts-ignore: decorator
@inline function blockD(p: usize, dt: i32): f32 {
  return f16(<u32>load<u16>(p + (dt == Q6_K ? 208 : 0)));
}

/** 6-bit scale (sel 0) or min (sel 1) of sub-block j of a Q4_K / Q5_K block (ggml's get_scale_min_k4). */
// @ts-ignore: decorator
@inline function scaleMinK4(sc: usize, j: i32, sel: i32): u32 {
  if (j < 4) return <u32>load<u8>(sc + j + (sel << 2)) & 63;
  const lo = <u32>load<u8>(sc + j + 4);
  const hi = <u32>load<u8>(sc + j - 4 + (sel << 2)) >> 6;
  return (sel == 0 ? lo & 0xf : lo >> 4) | (hi << 4);
}

/**
 * Weights 4g..4g+3 of sub-block s of the block at p, as ggml computes them: ds is the sub-block's scale
 * (d, d * sc), ms its min (dmin * m) for Q4_K / Q5_K, or -m for Q4_1 / Q5_1 (x = q d - (-m) = q d + m exactly).
 */
// @ts-ignore: decorator
@inline function quad(p: usize, s: i32, g: i32, ds: f32, ms: f32, dt: i32): v128 {
  if (dt == Q8_0) {
    const q = i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(p + 2 + (<usize>g << 2))));
    return f32x4.mul(f32x4.convert_i32x4_s(q), f32x4.splat(ds));
  }
  if (dt == Q4_0) {
    // Values 0..15 are the low nibbles of bytes 0..15, values 16..31 their high nibbles.
    const b = u8x4(p + 2 + (<usize>(g & 3) << 2));
    const q = i32x4.sub(v128.and(i32x4.shr_u(b, (g >> 2) << 2), i32x4.splat(15)), i32x4.splat(8));
    return f32x4.mul(f32x4.convert_i32x4_s(q), f32x4.splat(ds));
  }
  if (dt == Q4_1 || dt == Q5_0 || dt == Q5_1) {
    // As Q4_0 (nibbles at 4, 6, 8); Q5_*: value e adds 16 when bit e of the 32-bit qh (at 2, 4) is set.
    const qs: usize = dt == Q4_1 ? 4 : dt == Q5_0 ? 6 : 8;
    const b = u8x4(p + qs + (<usize>(g & 3) << 2));
    let q = v128.and(i32x4.shr_u(b, (g >> 2) << 2), i32x4.splat(15));
    if (dt != Q4_1) {
      const qh = load<u32>(p + (dt == Q5_0 ? 2 : 4)) >> (<u32>g << 2);
      const bit = v128.and(i32x4.splat(qh), i32x4(1, 2, 4, 8));
      q = v128.or(q, v128.andnot(i32x4.splat(16), i32x4.eq(bit, i32x4.splat(0))));
    }
    if (dt == Q5_0) return f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(q, i32x4.splat(16))), f32x4.splat(ds));
    return f32x4.sub(f32x4.mul(f32x4.convert_i32x4_u(q), f32x4.splat(ds)), f32x4.splat(ms));
  }
  if (dt == Q4_K) {
    // Sub-blocks 2c, 2c+1: low, high nibbles of bytes 32c..32c+31.
    const b = u8x4(p + 16 + (<usize>(s >> 1) << 5) + (<usize>g << 2));
    const q = v128.and(i32x4.shr_u(b, (s & 1) << 2), i32x4.splat(15));
    return f32x4.sub(f32x4.mul(f32x4.convert_i32x4_u(q), f32x4.splat(ds)), f32x4.splat(ms));
  }
  if (dt == Q5_K) {
    // As Q4_K (nibbles at 48), plus 16 where bit s of qh[i] (at 16) is set.
    const b = u8x4(p + 48 + (<usize>(s >> 1) << 5) + (<usize>g << 2));
    const h = u8x4(p + 16 + (<usize>g << 2));
    const q = v128.or(v128.and(i32x4.shr_u(b, (s & 1) << 2), i32x4.splat(15)), i32x4.shl(v128.and(i32x4.shr_u(h, s), i32x4.splat(1)), 4));
    return f32x4.sub(f32x4.mul(f32x4.convert_i32x4_u(q), f32x4.splat(ds)), f32x4.splat(ms));
  }
  // Q6_K: sub-block s is in half s >> 3, quarter qd = (s >> 1) & 3, positions l = 16 (s & 1) + i of 32:
  // low 4 bits from the low (qd < 2) or high nibble of ql[64 half + 32 (qd & 1) + l], top 2 bits from
  // bits 2 qd of qh[32 half + l]; minus 32.
  const half = <usize>(s >> 3), qd = (s >> 1) & 3;
  const l = <usize>(((s & 1) << 4) + (g << 2));
  const b = u8x4(p + (half << 6) + (<usize>(qd & 1) << 5) + l);
  const h = u8x4(p + 128 + (half << 5) + l);
  const lo4 = v128.and(i32x4.shr_u(b, (qd >> 1) << 2), i32x4.splat(15));
  const hi2 = i32x4.shl(v128.and(i32x4.shr_u(h, qd << 1), i32x4.splat(3)), 4);
  const q = i32x4.sub(v128.or(lo4, hi2), i32x4.splat(32));
  return f32x4.mul(f32x4.convert_i32x4_s(q), f32x4.splat(ds));
}

/** w (four float32 weights) times float64 x at q (four values): a f64x2 partial sum. */
// @ts-ignore: decorator
@inline function exact4(w: v128, q: usize): v128 {
  return f64x2.add(f64x2.mul(promoteLo(w), v128.load(q)), f64x2.mul(promoteHi(w), v128.load(q, 16)));
}

/**
 * Row wr of W times n tokens (n = 1..4, a constant where inlined). x0 is token 0's x (tokens xs bytes
 * apart; float64 when exact), yp token 0's output (outputs ys bytes apart).
 */
// @ts-ignore: decorator
@inline function rowTokens(wr: usize, x0: usize, xs: usize, yp: usize, ys: usize, cols: i32, n: i32, exact: bool, dt: i32): void {
  const bs = blockSize(dt), sb = subSize(dt), ns = bs / sb;
  const es: usize = exact ? 3 : 2; // log2 bytes per x element
  const x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs;
  let d0 = f64x2.splat(0), d1 = f64x2.splat(0), d2 = f64x2.splat(0), d3 = f64x2.splat(0);
  const nb = cols / bs;
  for (let b = 0; b < nb; b++) {
    const p = wr + <usize>b * typeSize(dt);
    const d = blockD(p, dt);
    const dmin = dt == Q4_K || dt == Q5_K ? f16(<u32>load<u16>(p + 2)) : <f32>0;
    for (let s = 0; s < ns; s++) {
      let ds: f32 = d, ms: f32 = 0;
      if (hasM(dt)) {
        ms = -f16(<u32>load<u16>(p + 2));
      } else if (dt == Q4_K || dt == Q5_K) {
        ds = d * <f32>scaleMinK4(p + 4, s, 0);
        ms = dmin * <f32>scaleMinK4(p + 4, s, 1);
      } else if (dt == Q6_K) {
        ds = d * <f32>load<i8>(p + 192 + s);
      }
      const c0 = <usize>(b * bs + s * sb);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let g = 0; g < (sb >> 2); g++) {
        const w = quad(p, s, g, ds, ms, dt);
        const o = (c0 + (<usize>g << 2)) << es;
        if (exact) {
          d0 = f64x2.add(d0, exact4(w, x0 + o));
          if (n > 1) d1 = f64x2.add(d1, exact4(w, x1 + o));
          if (n > 2) d2 = f64x2.add(d2, exact4(w, x2 + o));
          if (n > 3) d3 = f64x2.add(d3, exact4(w, x3 + o));
        } else {
          a0 = f32x4.add(a0, f32x4.mul(w, v128.load(x0 + o)));
          if (n > 1) a1 = f32x4.add(a1, f32x4.mul(w, v128.load(x1 + o)));
          if (n > 2) a2 = f32x4.add(a2, f32x4.mul(w, v128.load(x2 + o)));
          if (n > 3) a3 = f32x4.add(a3, f32x4.mul(w, v128.load(x3 + o)));
        }
      }
      if (!exact) {
        d0 = widenSum(d0, a0);
        if (n > 1) d1 = widenSum(d1, a1);
        if (n > 2) d2 = widenSum(d2, a2);
        if (n > 3) d3 = widenSum(d3, a3);
      }
    }
  }
  store<f32>(yp, <f32>hsum64(d0));
  if (n > 1) store<f32>(yp + ys, <f32>hsum64(d1));
  if (n > 2) store<f32>(yp + 2 * ys, <f32>hsum64(d2));
  if (n > 3) store<f32>(yp + 3 * ys, <f32>hsum64(d3));
}

// @ts-ignore: decorator
@inline function matvecBody(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32, exact: bool, dt: i32): void {
  const stride = <usize>(cols / blockSize(dt)) * typeSize(dt);
  for (let r = r0; r < r1; r++) rowTokens(w + <usize>r * stride, x, 0, y + (<usize>r << 2), 0, cols, 1, exact, dt);
}

// @ts-ignore: decorator
@inline function matmulBody(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32, exact: bool, dt: i32): void {
  const stride = <usize>(cols / blockSize(dt)) * typeSize(dt);
  const xs = <usize>cols << (exact ? 3 : 2);
  const ys = <usize>rows << 2;
  const t4 = t & ~3, rest = t - t4;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * stride;
    const yr = y + (<usize>r << 2);
    for (let tk = 0; tk < t4; tk += 4) rowTokens(wr, x + <usize>tk * xs, xs, yr + <usize>tk * ys, ys, cols, 4, exact, dt);
    const xt = x + <usize>t4 * xs, yt = yr + <usize>t4 * ys;
    if (rest == 3) rowTokens(wr, xt, xs, yt, ys, cols, 3, exact, dt);
    else if (rest == 2) rowTokens(wr, xt, xs, yt, ys, cols, 2, exact, dt);
    else if (rest == 1) rowTokens(wr, xt, xs, yt, ys, cols, 1, exact, dt);
  }
}

/** Row `row` of a quantized table [*, n] dequantized into out (float32, ggml's values). */
// @ts-ignore: decorator
@inline function dequantRowBody(w: usize, row: i32, n: i32, out: usize, dt: i32): void {
  const bs = blockSize(dt), sb = subSize(dt), ns = bs / sb;
  const base = w + <usize>row * <usize>(n / bs) * typeSize(dt);
  for (let b = 0; b < n / bs; b++) {
    const p = base + <usize>b * typeSize(dt);
    const d = blockD(p, dt);
    const dmin = dt == Q4_K || dt == Q5_K ? f16(<u32>load<u16>(p + 2)) : <f32>0;
    for (let s = 0; s < ns; s++) {
      let ds: f32 = d, ms: f32 = 0;
      if (hasM(dt)) {
        ms = -f16(<u32>load<u16>(p + 2));
      } else if (dt == Q4_K || dt == Q5_K) {
        ds = d * <f32>scaleMinK4(p + 4, s, 0);
        ms = dmin * <f32>scaleMinK4(p + 4, s, 1);
      } else if (dt == Q6_K) {
        ds = d * <f32>load<i8>(p + 192 + s);
      }
      for (let g = 0; g < (sb >> 2); g++) v128.store(out + (<usize>(b * bs + s * sb + (g << 2)) << 2), quad(p, s, g, ds, ms, dt));
    }
  }
}

// Entry points, one per type and arithmetic (each its own copy of the loop, as in matvec.ts).
export function matvecQ8_0(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, false, Q8_0); }
export function matvecQ4_0(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, false, Q4_0); }
export function matvecQ4_K(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, false, Q4_K); }
export function matvecQ5_K(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, false, Q5_K); }
export function matvecQ6_K(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, false, Q6_K); }
export function matvecQ8_0Exact(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, true, Q8_0); }
export function matvecQ4_0Exact(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, true, Q4_0); }
export function matvecQ4_KExact(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, true, Q4_K); }
export function matvecQ5_KExact(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, true, Q5_K); }
export function matvecQ6_KExact(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, true, Q6_K); }
export function matmulQ8_0(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, false, Q8_0); }
export function matmulQ4_0(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, false, Q4_0); }
export function matmulQ4_K(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, false, Q4_K); }
export function matmulQ5_K(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, false, Q5_K); }
export function matmulQ6_K(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, false, Q6_K); }
export function matmulQ8_0Exact(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, true, Q8_0); }
export function matmulQ4_0Exact(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, true, Q4_0); }
export function matmulQ4_KExact(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, true, Q4_K); }
export function matmulQ5_KExact(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, true, Q5_K); }
export function matmulQ6_KExact(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, true, Q6_K); }
export function dequantRowQ8_0(w: usize, row: i32, n: i32, out: usize): void { dequantRowBody(w, row, n, out, Q8_0); }
export function dequantRowQ4_0(w: usize, row: i32, n: i32, out: usize): void { dequantRowBody(w, row, n, out, Q4_0); }
export function dequantRowQ4_K(w: usize, row: i32, n: i32, out: usize): void { dequantRowBody(w, row, n, out, Q4_K); }
export function dequantRowQ5_K(w: usize, row: i32, n: i32, out: usize): void { dequantRowBody(w, row, n, out, Q5_K); }
export function dequantRowQ6_K(w: usize, row: i32, n: i32, out: usize): void { dequantRowBody(w, row, n, out, Q6_K); }
export function matvecQ4_1(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, false, Q4_1); }
export function matvecQ4_1Exact(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, true, Q4_1); }
export function matmulQ4_1(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, false, Q4_1); }
export function matmulQ4_1Exact(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, true, Q4_1); }
export function dequantRowQ4_1(w: usize, row: i32, n: i32, out: usize): void { dequantRowBody(w, row, n, out, Q4_1); }
export function matvecQ5_0(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, false, Q5_0); }
export function matvecQ5_0Exact(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, true, Q5_0); }
export function matmulQ5_0(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, false, Q5_0); }
export function matmulQ5_0Exact(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, true, Q5_0); }
export function dequantRowQ5_0(w: usize, row: i32, n: i32, out: usize): void { dequantRowBody(w, row, n, out, Q5_0); }
export function matvecQ5_1(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, false, Q5_1); }
export function matvecQ5_1Exact(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, x, y, cols, r0, r1, true, Q5_1); }
export function matmulQ5_1(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, false, Q5_1); }
export function matmulQ5_1Exact(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, x, y, t, rows, cols, r0, r1, true, Q5_1); }
export function dequantRowQ5_1(w: usize, row: i32, n: i32, out: usize): void { dequantRowBody(w, row, n, out, Q5_1); }
