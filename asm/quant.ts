// Matrix-vector and matrix-matrix products over ggml block-quantized weights (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q4_K, Q5_K, Q6_K).
//
//   y[r]    = sum_c W[r, c] x[c]        (matvec)
//   Y[t, r] = sum_c W[r, c] X[t, c]     (matmul: tokens in groups of up to four share each decoded weight)
//
// A row of W is cols / blockSize blocks in ggml's layout (src/io/ggml_quants.ts describes them). Weights
// are decoded sixteen at a time in registers, with the operations of ggml's dequantize_row_* in float32
// (so each weight is bit for bit ggml's value), and never written to memory. x is in natural column order
// (no permute8). Each block is split in sub-blocks that share one scale (and min): 32 values, 16 for Q6_K.
// Two arithmetics, as for the 16-bit weights (matvec.ts):
//   ...       float32 products and sums, folded into float64 after every sub-block;
//   ...Exact  exact products (float32 weight times float32 x) summed in float64, x widened to float64 by the
//             caller (widenF64), one rounding per output.

import { f16 } from "./widen";
import { widenSum, hsum64, promoteLo, promoteHi } from "./mem";
import { Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q4_1, Q5_0, Q5_1, small, hasM, blockSize, typeSize, subSize, blockD, scaleMinK4, signedQ, quants16 } from "./quant_blocks";

/** Quants j*4 .. j*4+3 (j = 0..3) of 16 as 32-bit lanes. */
// @ts-ignore: decorator
@inline function quad32(q: v128, j: i32, dt: i32): v128 {
  if (signedQ(dt)) {
    const h = j < 2 ? i16x8.extend_low_i8x16_s(q) : i16x8.extend_high_i8x16_s(q);
    return (j & 1) == 0 ? i32x4.extend_low_i16x8_s(h) : i32x4.extend_high_i16x8_s(h);
  }
  const h = j < 2 ? i16x8.extend_low_i8x16_u(q) : i16x8.extend_high_i8x16_u(q);
  return (j & 1) == 0 ? i32x4.extend_low_i16x8_u(h) : i32x4.extend_high_i16x8_u(h);
}

/**
 * Four weights as ggml computes them from their quants: q ds, or q ds - ms (Q4_K / Q5_K: ds = d sc, ms = dmin m;
 * Q4_1 / Q5_1: ms = -m, so q d - (-m) = q d + m exactly).
 */
// @ts-ignore: decorator
@inline function weights4(q: v128, j: i32, ds: v128, ms: v128, dt: i32): v128 {
  const w = f32x4.mul(signedQ(dt) ? f32x4.convert_i32x4_s(quad32(q, j, dt)) : f32x4.convert_i32x4_u(quad32(q, j, dt)), ds);
  return signedQ(dt) ? w : f32x4.sub(w, ms);
}

/** Sixteen weights (four f32x4) times float32 x at q: float32 products, summed into one f32x4. */
// @ts-ignore: decorator
@inline function dot16(w0: v128, w1: v128, w2: v128, w3: v128, q: usize): v128 {
  const s01 = f32x4.add(f32x4.mul(w0, v128.load(q)), f32x4.mul(w1, v128.load(q, 16)));
  return f32x4.add(s01, f32x4.add(f32x4.mul(w2, v128.load(q, 32)), f32x4.mul(w3, v128.load(q, 48))));
}

/** Sixteen weights times float64 x at q: exact products summed in float64, a f64x2 partial sum. */
// @ts-ignore: decorator
@inline function sum16(w0: v128, w1: v128, w2: v128, w3: v128, q: usize): v128 {
  const s01 = f64x2.add(exact4(w0, q), exact4(w1, q + 32));
  return f64x2.add(s01, f64x2.add(exact4(w2, q + 64), exact4(w3, q + 96)));
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
      const dsv = f32x4.splat(ds), msv = f32x4.splat(ms);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let grp = 0; grp < (sb >> 4); grp++) {
        const q = quants16(p, s, grp, dt);
        const w0 = weights4(q, 0, dsv, msv, dt), w1 = weights4(q, 1, dsv, msv, dt);
        const w2 = weights4(q, 2, dsv, msv, dt), w3 = weights4(q, 3, dsv, msv, dt);
        const o = (c0 + (<usize>grp << 4)) << es;
        if (exact) {
          d0 = f64x2.add(d0, sum16(w0, w1, w2, w3, x0 + o));
          if (n > 1) d1 = f64x2.add(d1, sum16(w0, w1, w2, w3, x1 + o));
          if (n > 2) d2 = f64x2.add(d2, sum16(w0, w1, w2, w3, x2 + o));
          if (n > 3) d3 = f64x2.add(d3, sum16(w0, w1, w2, w3, x3 + o));
        } else {
          a0 = f32x4.add(a0, dot16(w0, w1, w2, w3, x0 + o));
          if (n > 1) a1 = f32x4.add(a1, dot16(w0, w1, w2, w3, x1 + o));
          if (n > 2) a2 = f32x4.add(a2, dot16(w0, w1, w2, w3, x2 + o));
          if (n > 3) a3 = f32x4.add(a3, dot16(w0, w1, w2, w3, x3 + o));
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
      const dsv = f32x4.splat(ds), msv = f32x4.splat(ms);
      for (let grp = 0; grp < (sb >> 4); grp++) {
        const q = quants16(p, s, grp, dt);
        const o = out + (<usize>(b * bs + s * sb + (grp << 4)) << 2);
        v128.store(o, weights4(q, 0, dsv, msv, dt));
        v128.store(o, weights4(q, 1, dsv, msv, dt), 16);
        v128.store(o, weights4(q, 2, dsv, msv, dt), 32);
        v128.store(o, weights4(q, 3, dsv, msv, dt), 48);
      }
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
