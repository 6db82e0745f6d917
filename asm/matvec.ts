// Matrix-vector and matrix-matrix products over BF16 / F16 / F32 weights.
//
//   y[r]      = sum_c W[r, c] x[c]            (matvec, one token: decode)
//   Y[t, r]   = sum_c W[r, c] X[t, c]         (matmul, T tokens: prefill, batched decode, speculative
//                                             verify; tokens go in groups of up to three sharing each
//                                             widened weight block, BF16 beyond five tokens two rows by
//                                             two tokens; exact: two rows by four tokens per register tile)
//
// W is row-major [rows, cols] in its checkpoint dtype. Each call computes rows r0..r1 so that threads can
// split the rows. For 16-bit weights x must be `permute8`-ed (see widen.ts); F32 weights take x as is.
// Columns go eight at a time as two f32x4 halves (a, b) matched with x halves (xa, xb); the cols % 8 tail
// is scalar. Two arithmetics:
//   matvecBF16 ...       float32 products and sums, folded into float64 every ROW_BLOCK / BLOCK columns
//                        (fastest); up to AS_ONE_TOKENS tokens, each token's output has the bits of its
//                        one-token product, beyond that the sums go in another order;
//   matvecBF16Exact ...  exact products summed in float64, one rounding per output (the reference's
//                        accuracy, about twice the instructions).
// Sums are multiply-adds (fma.ts): fused in the relaxed build, a multiply then an add in the plain one.

import { bf16Even, bf16Odd, f16Even, f16Odd, bf16, f16, hsum, DT_BF16, DT_F16 } from "./widen";
import { widenSum, hsum64, promoteLo, promoteHi } from "./mem";
import { madd, madd64 } from "./fma";

/** Columns summed in float32 before folding into the float64 total: one-row products (`dotRow`). */
const ROW_BLOCK: i32 = 128;
/** Columns summed in float32 before folding into the float64 total: the faster row-by-tokens products
 * (`rowTokensFast`: two chains per token). */
const BLOCK: i32 = 64;
/**
 * Products of at most this many tokens give each token `dotRow`'s bits (`rowTokensAsOne`): speculative
 * decoding's verify step (K + 1 <= 5 tokens) then computes what plain decoding computes. Measured (one
 * thread, BF16, relaxed build, `REPS=150 node bench/wasm_builds.mjs matmulBF16 256 2048 T`): T tokens cost
 * 1.3-1.45x (T = 2), 2.4x (3), 3.2x (4), 3.8x (5) one token's `dotRow` in cache (the all-chains order this
 * replaced: 2.0x, 3.0x, 4.3x, 5.0x); from memory (65536x2048 in 8192-row matrices) 1.9-2.0x at T = 2.
 * Beyond 5 tokens (prefill) the faster order is kept.
 */
const AS_ONE_TOKENS: i32 = 5;
/** Exact matvec: rows of at most this many bytes go four at a time (`matvecExact4`), longer ones one by one. */
const EXACT_GROUP_BYTES: usize = 2048;

/**
 * Software prefetch for the exact four-row matvec (`matvecExact4`): while rows r..r+3 stream, each step of
 * eight columns reads one cache line (two for F32) of rows r+4..r+7, which lie right after them: 4 rows *
 * 8 columns * esize bytes per step cover the next group exactly once. The hardware prefetcher stops at 4 KiB
 * pages, so each new group would start with misses that the float64 arithmetic, the bottleneck there,
 * cannot hide (measured +10-15% when it also read 2048-column BF16 rows). The value read is unused (a load may trap, so the compilers keep it). The last group of
 * the range touches its own rows (never past r1).
 */
// @ts-ignore: decorator
@inline function touchBase(w0: usize, stride: usize, r: i32, r1: i32): usize {
  return r + 8 <= r1 ? w0 + (stride << 2) : w0;
}

// @ts-ignore: decorator
@inline function touch(p: usize, dt: i32): void {
  v128.load(p);
  if (dt != DT_BF16 && dt != DT_F16) v128.load(p, 64);
}

// @ts-ignore: decorator
@inline function lo(p: usize, dt: i32): v128 {
  if (dt == DT_BF16) return bf16Even(v128.load(p));
  if (dt == DT_F16) return f16Even(v128.load(p));
  return v128.load(p);
}

// @ts-ignore: decorator
@inline function hi(p: usize, dt: i32): v128 {
  if (dt == DT_BF16) return bf16Odd(v128.load(p));
  if (dt == DT_F16) return f16Odd(v128.load(p));
  return v128.load(p, 16);
}

// @ts-ignore: decorator
@inline function scalar(p: usize, c: i32, dt: i32): f32 {
  if (dt == DT_BF16) return bf16(<u32>load<u16>(p + (<usize>c << 1)));
  if (dt == DT_F16) return f16(<u32>load<u16>(p + (<usize>c << 1)));
  return load<f32>(p + (<usize>c << 2));
}

// @ts-ignore: decorator
@inline function esize(dt: i32): usize {
  return dt == DT_BF16 || dt == DT_F16 ? 2 : 4;
}

/**
 * Eight columns k (0..3) of a 32-column step at weights p: `wRaw` loads the block (16-bit: the eight
 * columns; F32: the first four), `wEven` / `wOdd` give its halves wa, wb as f32x4; `xStep` adds wa xa + wb xb
 * (x at q + 32 k bytes) into acc (two multiply-adds). Offsets are immediates, so no address arithmetic per load.
 */
// @ts-ignore: decorator
@inline function wRaw(p: usize, dt: i32, k: i32): v128 {
  if (dt == DT_BF16 || dt == DT_F16) return k == 0 ? v128.load(p) : k == 1 ? v128.load(p, 16) : k == 2 ? v128.load(p, 32) : v128.load(p, 48);
  return k == 0 ? v128.load(p) : k == 1 ? v128.load(p, 32) : k == 2 ? v128.load(p, 64) : v128.load(p, 96);
}

// @ts-ignore: decorator
@inline function wEven(v: v128, dt: i32): v128 {
  if (dt == DT_BF16) return bf16Even(v);
  if (dt == DT_F16) return f16Even(v);
  return v;
}

// @ts-ignore: decorator
@inline function wOdd(v: v128, p: usize, dt: i32, k: i32): v128 {
  if (dt == DT_BF16) return bf16Odd(v);
  if (dt == DT_F16) return f16Odd(v);
  return k == 0 ? v128.load(p, 16) : k == 1 ? v128.load(p, 48) : k == 2 ? v128.load(p, 80) : v128.load(p, 112);
}

// @ts-ignore: decorator
@inline function xStep(wa: v128, wb: v128, q: usize, k: i32, acc: v128): v128 {
  const xa = k == 0 ? v128.load(q) : k == 1 ? v128.load(q, 32) : k == 2 ? v128.load(q, 64) : v128.load(q, 96);
  const xb = k == 0 ? v128.load(q, 16) : k == 1 ? v128.load(q, 48) : k == 2 ? v128.load(q, 80) : v128.load(q, 112);
  return madd(wb, xb, madd(wa, xa, acc));
}

/** `dotRow`'s step: eight columns k of weights p and x q added into acc. */
// @ts-ignore: decorator
@inline function step8(p: usize, q: usize, dt: i32, k: i32, acc: v128): v128 {
  const v = wRaw(p, dt, k);
  return xStep(wEven(v, dt), wOdd(v, p, dt, k), q, k, acc);
}

/**
 * Dot product of one weight row with x (one token) in float32, folded into float64 every ROW_BLOCK
 * columns: 32 columns a step in four independent multiply-add chains (ROW_BLOCK/16 products each), the four
 * summed pairwise at the fold, so a lane's float32 sum holds at most ROW_BLOCK/4 = 32 products, each rounded
 * at most ROW_BLOCK/16 + 3 = 11 times (the multiply, the chain, two pairwise sums; the four-row kernel this
 * replaced: 16 products, 10 roundings). Then eight columns a step, then the scalar cols % 8 tail in float64.
 */
// @ts-ignore: decorator
@inline function dotRow(w: usize, x: usize, cols: i32, dt: i32): f32 {
  const es = esize(dt);
  const n32 = cols & ~31, n8 = cols & ~7;
  let d = f64x2.splat(0);
  for (let c0 = 0; c0 < n32; c0 += ROW_BLOCK) {
    const cEnd = min(c0 + ROW_BLOCK, n32);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let c = c0; c < cEnd; c += 32) {
      const p = w + <usize>c * es;
      const q = x + (<usize>c << 2);
      a0 = step8(p, q, dt, 0, a0);
      a1 = step8(p, q, dt, 1, a1);
      a2 = step8(p, q, dt, 2, a2);
      a3 = step8(p, q, dt, 3, a3);
    }
    d = widenSum(d, f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  }
  if (n32 < n8) {
    let a = f32x4.splat(0);
    for (let c = n32; c < n8; c += 8) a = step8(w + <usize>c * es, x + (<usize>c << 2), dt, 0, a);
    d = widenSum(d, a);
  }
  let s = hsum64(d);
  for (let c = n8; c < cols; c++) s += <f64>scalar(w, c, dt) * <f64>load<f32>(x + (<usize>c << 2));
  return <f32>s;
}

/**
 * Rows r0..r1 of y = W x in float32 sums (`dotRow`), one row at a time. One row is one sequential stream of
 * weights, which the hardware prefetchers follow across rows; reading four rows at once (x loaded once for
 * four rows: less arithmetic) was faster in cache but slower from memory, where decode reads its weights:
 * 1.2x on 2048-column rows, 2-3x on 512-column rows (4 rows of 1 KiB: four streams too short to prefetch).
 */
// @ts-ignore: decorator
@inline function matvecBody(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32, dt: i32): void {
  const stride = <usize>cols * esize(dt);
  for (let r = r0; r < r1; r++) store<f32>(y + (<usize>r << 2), dotRow(w + <usize>r * stride, x, cols, dt));
}

/**
 * The end of a row-by-tokens product (n = 1..4 tokens, a constant where inlined): each token's float64 partial
 * sums d reduced, the scalar tail of columns n8..cols added in float64, the outputs stored (yp, ys apart).
 */
// @ts-ignore: decorator
@inline function finishTokens(wr: usize, x0: usize, xs: usize, yp: usize, ys: usize, n8: i32, cols: i32, dt: i32, n: i32, d0: v128, d1: v128, d2: v128, d3: v128): void {
  const x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs;
  let s0 = hsum64(d0), s1 = hsum64(d1), s2 = hsum64(d2), s3 = hsum64(d3);
  for (let c = n8; c < cols; c++) {
    const wc = <f64>scalar(wr, c, dt);
    const o = <usize>c << 2;
    s0 += wc * <f64>load<f32>(x0 + o);
    if (n > 1) s1 += wc * <f64>load<f32>(x1 + o);
    if (n > 2) s2 += wc * <f64>load<f32>(x2 + o);
    if (n > 3) s3 += wc * <f64>load<f32>(x3 + o);
  }
  store<f32>(yp, <f32>s0);
  if (n > 1) store<f32>(yp + ys, <f32>s1);
  if (n > 2) store<f32>(yp + 2 * ys, <f32>s2);
  if (n > 3) store<f32>(yp + 3 * ys, <f32>s3);
}

/**
 * Row wr of W times n tokens (n = 2..4, a constant where inlined: the unused token slots fold away), each
 * token summed exactly as `dotRow` sums it alone, so a token's output has the same bits whatever the number
 * of tokens that share the product (speculative decoding's verify step equals plain decoding). x0 is token
 * 0's x (tokens xs bytes apart), yp token 0's output (outputs ys bytes apart).
 *
 * dotRow's chain k (0..3) of a ROW_BLOCK-column block sums only columns 8k..8k+7 of each 32-column step, so
 * the chains can run one after another: the block goes in passes over its columns, each pass running g
 * chains for all n tokens (g = 1; F16 weights, whose widening is the larger cost: 2 for three tokens;
 * measured fastest; two BF16 / F32 tokens go through `rowTwoTokensAsOne`, the same order with g = 2),
 * widening each weight block once for the n tokens; the passes' sums are then added as dotRow adds them, (a0 + a1) + (a2 + a3), and folded into
 * the float64 total. The same for the eight-column and scalar tails. All four chains of every token at once
 * (the earlier order: 4n accumulators, 12 for three tokens) ran out of V8's 16 vector registers and spilled:
 * two tokens then cost as much as two `dotRow`s. Measured against that order (one thread, 256x2048, F32
 * 256x1024, in cache, relaxed build): BF16 T = 2 (rowTwoTokensAsOne) 0.72x, 3 0.78x, 4 0.72x, 5 (three,
 * then two) 0.85x; F32 0.76-0.81x; F16 0.93x, 1.04x, 0.78x, 0.97x; plain build BF16 0.83-0.87x. Keeping all of a token's
 * chains in one pass over the block but two blocks at once, or a block fully unrolled, was slower.
 */
// @ts-ignore: decorator
@inline function rowTokensAsOne(wr: usize, x0: usize, xs: usize, yp: usize, ys: usize, cols: i32, dt: i32, n: i32): void {
  const es = esize(dt);
  const g = dt == DT_F16 && n == 3 ? 2 : 1;
  const n32 = cols & ~31, n8 = cols & ~7;
  const x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs;
  const z = f32x4.splat(0);
  let d0 = f64x2.splat(0), d1 = f64x2.splat(0), d2 = f64x2.splat(0), d3 = f64x2.splat(0);
  for (let c0 = 0; c0 < n32; c0 += ROW_BLOCK) {
    const cEnd = min(c0 + ROW_BLOCK, n32);
    // Per token: p = a0 + a1, q = a2 + a3 (g = 1: a0, then p + a1, a2, then q + a3).
    let p0 = z, p1 = z, p2 = z, p3 = z, q0 = z, q1 = z, q2 = z, q3 = z;
    for (let k = 0; k < 4; k += g) {
      // Chains k (a) and, g = 2, k + 1 (b): columns 8k.. of each 32-column step.
      let a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
      for (let c = c0 + (k << 3); c < cEnd; c += 32) {
        const p = wr + <usize>c * es, o = <usize>c << 2;
        let v = wRaw(p, dt, 0), wa = wEven(v, dt), wb = wOdd(v, p, dt, 0);
        a0 = xStep(wa, wb, x0 + o, 0, a0);
        if (n > 1) a1 = xStep(wa, wb, x1 + o, 0, a1);
        if (n > 2) a2 = xStep(wa, wb, x2 + o, 0, a2);
        if (n > 3) a3 = xStep(wa, wb, x3 + o, 0, a3);
        if (g == 2) {
          v = wRaw(p, dt, 1); wa = wEven(v, dt); wb = wOdd(v, p, dt, 1);
          b0 = xStep(wa, wb, x0 + o, 1, b0);
          if (n > 1) b1 = xStep(wa, wb, x1 + o, 1, b1);
          if (n > 2) b2 = xStep(wa, wb, x2 + o, 1, b2);
          if (n > 3) b3 = xStep(wa, wb, x3 + o, 1, b3);
        }
      }
      if (g == 2) {
        a0 = f32x4.add(a0, b0); a1 = f32x4.add(a1, b1); a2 = f32x4.add(a2, b2); a3 = f32x4.add(a3, b3);
      } else if (k == 1 || k == 3) {
        // Chain k - 1's sum (p or q) plus chain k's.
        const f = k == 1;
        a0 = f32x4.add(f ? p0 : q0, a0); a1 = f32x4.add(f ? p1 : q1, a1); a2 = f32x4.add(f ? p2 : q2, a2); a3 = f32x4.add(f ? p3 : q3, a3);
      }
      if (k < 2) { p0 = a0; p1 = a1; p2 = a2; p3 = a3; } else { q0 = a0; q1 = a1; q2 = a2; q3 = a3; }
    }
    d0 = widenSum(d0, f32x4.add(p0, q0));
    if (n > 1) d1 = widenSum(d1, f32x4.add(p1, q1));
    if (n > 2) d2 = widenSum(d2, f32x4.add(p2, q2));
    if (n > 3) d3 = widenSum(d3, f32x4.add(p3, q3));
  }
  if (n32 < n8) {
    let a0 = z, a1 = z, a2 = z, a3 = z;
    for (let c = n32; c < n8; c += 8) {
      const p = wr + <usize>c * es;
      const o = <usize>c << 2;
      const v = wRaw(p, dt, 0), wa = wEven(v, dt), wb = wOdd(v, p, dt, 0);
      a0 = xStep(wa, wb, x0 + o, 0, a0);
      if (n > 1) a1 = xStep(wa, wb, x1 + o, 0, a1);
      if (n > 2) a2 = xStep(wa, wb, x2 + o, 0, a2);
      if (n > 3) a3 = xStep(wa, wb, x3 + o, 0, a3);
    }
    d0 = widenSum(d0, a0);
    if (n > 1) d1 = widenSum(d1, a1);
    if (n > 2) d2 = widenSum(d2, a2);
    if (n > 3) d3 = widenSum(d3, a3);
  }
  finishTokens(wr, x0, xs, yp, ys, n8, cols, dt, n, d0, d1, d2, d3);
}

/**
 * `rowTokensAsOne` for two tokens of BF16 or F32 weights, its two passes written out: chains 0 and 1 of both
 * tokens (four accumulators), then chains 2 and 3, each pass its own loop with its weights and x at
 * immediate offsets. Same operations in the same order as `dotRow` for each token, so the same bits.
 * Measured against the generic pass loop (one loop run per pass, offsets from the pass index): 0.84-0.86x
 * in cache (BF16 256x2048, F32 0.94x), 0.89x from memory (BF16 65536x2048): the two-token verify step
 * (K = 1) is the common one.
 */
// @ts-ignore: decorator
@inline function rowTwoTokensAsOne(wr: usize, x0: usize, xs: usize, yp: usize, ys: usize, cols: i32, dt: i32): void {
  const es = esize(dt);
  const n32 = cols & ~31, n8 = cols & ~7;
  const x1 = x0 + xs;
  const z = f32x4.splat(0);
  let d0 = f64x2.splat(0), d1 = f64x2.splat(0);
  for (let c0 = 0; c0 < n32; c0 += ROW_BLOCK) {
    const cEnd = min(c0 + ROW_BLOCK, n32);
    // Token 0's chains a0..a3, token 1's b0..b3.
    let a0 = z, a1 = z, b0 = z, b1 = z;
    for (let c = c0; c < cEnd; c += 32) {
      const p = wr + <usize>c * es, o = <usize>c << 2;
      let v = wRaw(p, dt, 0), wa = wEven(v, dt), wb = wOdd(v, p, dt, 0);
      a0 = xStep(wa, wb, x0 + o, 0, a0);
      b0 = xStep(wa, wb, x1 + o, 0, b0);
      v = wRaw(p, dt, 1); wa = wEven(v, dt); wb = wOdd(v, p, dt, 1);
      a1 = xStep(wa, wb, x0 + o, 1, a1);
      b1 = xStep(wa, wb, x1 + o, 1, b1);
    }
    const pa = f32x4.add(a0, a1), pb = f32x4.add(b0, b1);
    let a2 = z, a3 = z, b2 = z, b3 = z;
    for (let c = c0; c < cEnd; c += 32) {
      const p = wr + <usize>c * es, o = <usize>c << 2;
      let v = wRaw(p, dt, 2), wa = wEven(v, dt), wb = wOdd(v, p, dt, 2);
      a2 = xStep(wa, wb, x0 + o, 2, a2);
      b2 = xStep(wa, wb, x1 + o, 2, b2);
      v = wRaw(p, dt, 3); wa = wEven(v, dt); wb = wOdd(v, p, dt, 3);
      a3 = xStep(wa, wb, x0 + o, 3, a3);
      b3 = xStep(wa, wb, x1 + o, 3, b3);
    }
    d0 = widenSum(d0, f32x4.add(pa, f32x4.add(a2, a3)));
    d1 = widenSum(d1, f32x4.add(pb, f32x4.add(b2, b3)));
  }
  if (n32 < n8) {
    let a = z, b = z;
    for (let c = n32; c < n8; c += 8) {
      const p = wr + <usize>c * es, o = <usize>c << 2;
      const v = wRaw(p, dt, 0), wa = wEven(v, dt), wb = wOdd(v, p, dt, 0);
      a = xStep(wa, wb, x0 + o, 0, a);
      b = xStep(wa, wb, x1 + o, 0, b);
    }
    d0 = widenSum(d0, a);
    d1 = widenSum(d1, b);
  }
  finishTokens(wr, x0, xs, yp, ys, n8, cols, dt, 2, d0, d1, d1, d1);
}

/**
 * Row wr of W times n tokens (n = 1..3, a constant where inlined: the unused token slots fold away): each
 * weight block is widened once and used n times. x0 is token 0's x (tokens xs bytes apart), yp token 0's
 * output (outputs ys bytes apart). Two accumulators per token (the block's halves a and b), so six
 * independent multiply-add chains hide the multiply-add latency; a lane's float32 sum holds BLOCK/4 = 16
 * products, each rounded at most BLOCK/8 + 2 = 10 times. (Four tokens, eight chains, run out of V8's vector
 * registers and were slower; four tokens in four chains, the earlier kernel, wait on the latency: groups of
 * three were 1.0-1.3x faster at every T in 2..64.)
 */
// @ts-ignore: decorator
@inline function rowTokensFast(wr: usize, x0: usize, xs: usize, yp: usize, ys: usize, cols: i32, dt: i32, n: i32): void {
  const es = esize(dt);
  const n8 = cols & ~7;
  const x1 = x0 + xs, x2 = x1 + xs;
  let d0 = f64x2.splat(0), d1 = f64x2.splat(0), d2 = f64x2.splat(0);
  for (let c0 = 0; c0 < n8; c0 += BLOCK) {
    const cEnd = min(c0 + BLOCK, n8);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0);
    let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0);
    for (let c = c0; c < cEnd; c += 8) {
      const p = wr + <usize>c * es;
      const wa = lo(p, dt), wb = hi(p, dt);
      const o = <usize>c << 2;
      a0 = madd(wa, v128.load(x0 + o), a0);
      b0 = madd(wb, v128.load(x0 + o, 16), b0);
      if (n > 1) {
        a1 = madd(wa, v128.load(x1 + o), a1);
        b1 = madd(wb, v128.load(x1 + o, 16), b1);
      }
      if (n > 2) {
        a2 = madd(wa, v128.load(x2 + o), a2);
        b2 = madd(wb, v128.load(x2 + o, 16), b2);
      }
    }
    d0 = widenSum(d0, f32x4.add(a0, b0));
    if (n > 1) d1 = widenSum(d1, f32x4.add(a1, b1));
    if (n > 2) d2 = widenSum(d2, f32x4.add(a2, b2));
  }
  finishTokens(wr, x0, xs, yp, ys, n8, cols, dt, n, d0, d1, d2, f64x2.splat(0));
}

/**
 * Row wr of W times four tokens, one chain per token (both halves summed into it): for F16 weights, whose
 * widening (f16Bits, about eight operations) costs more than the multiply-add latency, one widening per
 * four tokens beats one per three (1.1-1.2x at T = 16). A lane's float32 sum holds 16 products, each rounded
 * at most 17 times.
 */
// @ts-ignore: decorator
@inline function rowTokens4(wr: usize, x0: usize, xs: usize, yp: usize, ys: usize, cols: i32, dt: i32): void {
  const es = esize(dt);
  const n8 = cols & ~7;
  const x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs;
  let d0 = f64x2.splat(0), d1 = f64x2.splat(0), d2 = f64x2.splat(0), d3 = f64x2.splat(0);
  for (let c0 = 0; c0 < n8; c0 += BLOCK) {
    const cEnd = min(c0 + BLOCK, n8);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    for (let c = c0; c < cEnd; c += 8) {
      const p = wr + <usize>c * es;
      const wa = lo(p, dt), wb = hi(p, dt);
      const o = <usize>c << 2;
      a0 = madd(wb, v128.load(x0 + o, 16), madd(wa, v128.load(x0 + o), a0));
      a1 = madd(wb, v128.load(x1 + o, 16), madd(wa, v128.load(x1 + o), a1));
      a2 = madd(wb, v128.load(x2 + o, 16), madd(wa, v128.load(x2 + o), a2));
      a3 = madd(wb, v128.load(x3 + o, 16), madd(wa, v128.load(x3 + o), a3));
    }
    d0 = widenSum(d0, a0);
    d1 = widenSum(d1, a1);
    d2 = widenSum(d2, a2);
    d3 = widenSum(d3, a3);
  }
  finishTokens(wr, x0, xs, yp, ys, n8, cols, dt, 4, d0, d1, d2, d3);
}

/**
 * BF16 odd half without a mask constant: two shifts instead of `bf16Odd`'s and, whose all-ones mask would hold
 * a vector register (`rowsPair` needs all fifteen of V8's).
 */
// @ts-ignore: decorator
@inline function bf16OddShifts(v: v128): v128 {
  return i32x4.shl(i32x4.shr_u(v, 16), 16);
}

/**
 * Two rows (w0 and w0 + stride) of BF16 W times two tokens: a 2 x 2 register tile of `rowTokensFast`'s chains
 * (two per row and token, the block's halves a and b), so each x block is loaded once for both rows and each
 * widened weight block used for both tokens: per eight columns 2 weight loads, 4 x loads, 8 multiply-adds
 * (`rowTokensFast`, three tokens: 7 loads for 6). Eight independent chains hide the multiply-add latency, which
 * bounds three tokens' six (measured at that bound: 6 MAC/cycle); 8 accumulators + 6 loaded vectors + 1
 * temporary are V8's 15 usable vector registers (V8 issues an iteration's loads first), so the odd half is
 * widened by shifts (with the and's mask register, one chain spilled and the tile was 0.9x). Each token's sums
 * have `rowTokensFast`'s order, so its output has the same bits. x0 is token 0's x (tokens xs bytes apart), yp
 * row 0's output of token 0 (tokens ys bytes apart, rows 4 bytes apart).
 */
// @ts-ignore: decorator
@inline function rowsPair(w0: usize, stride: usize, x0: usize, xs: usize, yp: usize, ys: usize, cols: i32, dt: i32): void {
  const n8 = cols & ~7;
  const w1 = w0 + stride, x1 = x0 + xs;
  let d00 = f64x2.splat(0), d01 = f64x2.splat(0), d10 = f64x2.splat(0), d11 = f64x2.splat(0);
  for (let c0 = 0; c0 < n8; c0 += BLOCK) {
    const cEnd = min(c0 + BLOCK, n8);
    let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
    let b00 = f32x4.splat(0), b01 = f32x4.splat(0), b10 = f32x4.splat(0), b11 = f32x4.splat(0);
    for (let c = c0; c < cEnd; c += 8) {
      const v0 = v128.load(w0 + (<usize>c << 1)), v1 = v128.load(w1 + (<usize>c << 1));
      const wa0 = bf16Even(v0), wb0 = bf16OddShifts(v0), wa1 = bf16Even(v1), wb1 = bf16OddShifts(v1);
      const o = <usize>c << 2;
      let xa = v128.load(x0 + o), xb = v128.load(x0 + o, 16);
      a00 = madd(wa0, xa, a00); b00 = madd(wb0, xb, b00);
      a10 = madd(wa1, xa, a10); b10 = madd(wb1, xb, b10);
      xa = v128.load(x1 + o); xb = v128.load(x1 + o, 16);
      a01 = madd(wa0, xa, a01); b01 = madd(wb0, xb, b01);
      a11 = madd(wa1, xa, a11); b11 = madd(wb1, xb, b11);
    }
    d00 = widenSum(d00, f32x4.add(a00, b00));
    d01 = widenSum(d01, f32x4.add(a01, b01));
    d10 = widenSum(d10, f32x4.add(a10, b10));
    d11 = widenSum(d11, f32x4.add(a11, b11));
  }
  const z = f64x2.splat(0);
  finishTokens(w0, x0, xs, yp, ys, n8, cols, dt, 2, d00, d01, z, z);
  finishTokens(w1, x0, xs, yp + 4, ys, n8, cols, dt, 2, d10, d11, z, z);
}

// @ts-ignore: decorator
@inline function matmulBody(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32, dt: i32): void {
  const stride = <usize>cols * esize(dt);
  const xs = <usize>cols << 2;
  const ys = <usize>rows << 2;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * stride;
    const yr = y + (<usize>r << 2);
    let tk = 0;
    if (t <= AS_ONE_TOKENS) {
      // Each token's bits as alone: up to four tokens together (five: three, then two), one alone.
      if (t == 5) {
        rowTokensAsOne(wr, x, xs, yr, ys, cols, dt, 3);
        tk = 3;
      }
      const xt = x + <usize>tk * xs, yt = yr + <usize>tk * ys;
      if (t - tk == 4) rowTokensAsOne(wr, xt, xs, yt, ys, cols, dt, 4);
      else if (t - tk == 3) rowTokensAsOne(wr, xt, xs, yt, ys, cols, dt, 3);
      else if (t - tk == 2) {
        if (dt == DT_F16) rowTokensAsOne(wr, xt, xs, yt, ys, cols, dt, 2);
        else rowTwoTokensAsOne(wr, xt, xs, yt, ys, cols, dt);
      }
      else store<f32>(yt, dotRow(wr, xt, cols, dt));
      continue;
    }
    if (dt == DT_BF16 && r + 1 < r1) {
      // BF16, two rows: the first two or three tokens (leaving an even count) row by row, so that the
      // weights come from memory in one sequential stream (the two rows' streams at once, 1 KiB rows, were
      // 0.87x from memory), then the two rows (now in L1) by two tokens at a time (`rowsPair`).
      const yr1 = yr + 4, wr1 = wr + stride;
      if (t & 1) {
        rowTokensFast(wr, x, xs, yr, ys, cols, dt, 3);
        rowTokensFast(wr1, x, xs, yr1, ys, cols, dt, 3);
        tk = 3;
      } else {
        rowTokensFast(wr, x, xs, yr, ys, cols, dt, 2);
        rowTokensFast(wr1, x, xs, yr1, ys, cols, dt, 2);
        tk = 2;
      }
      for (; tk < t; tk += 2) rowsPair(wr, stride, x + <usize>tk * xs, xs, yr + <usize>tk * ys, ys, cols, dt);
      r++;
      continue;
    }
    // Three tokens at a time (F16: four, then up to one three), then the last two together or the last one
    // alone: each weight block is widened once per group, and the row (one sequential stream from memory)
    // stays in L1 for the later groups. (F16 and F32 in `rowsPair`'s 2 x 2 tiles: F16's widening needs more
    // registers, F32's four weight loads too: 0.84x and 0.9x in cache.)
    if (dt == DT_F16) for (; tk + 4 <= t; tk += 4) rowTokens4(wr, x + <usize>tk * xs, xs, yr + <usize>tk * ys, ys, cols, dt);
    for (; tk + 3 <= t; tk += 3) rowTokensFast(wr, x + <usize>tk * xs, xs, yr + <usize>tk * ys, ys, cols, dt, 3);
    const xt = x + <usize>tk * xs, yt = yr + <usize>tk * ys;
    if (t - tk == 2) rowTokensFast(wr, xt, xs, yt, ys, cols, dt, 2);
    else if (t - tk == 1) store<f32>(yt, dotRow(wr, xt, cols, dt));
  }
}

/** Streaming read of n floats (n % 16 == 0 fast path): the memory-bandwidth probe. */
export function sumF32(p: usize, n: i32): f32 {
  const n16 = n & ~15;
  let a = f32x4.splat(0), b = f32x4.splat(0), c = f32x4.splat(0), d = f32x4.splat(0);
  for (let i = 0; i < n16; i += 16) {
    const q = p + (<usize>i << 2);
    a = f32x4.add(a, v128.load(q));
    b = f32x4.add(b, v128.load(q, 16));
    c = f32x4.add(c, v128.load(q, 32));
    d = f32x4.add(d, v128.load(q, 48));
  }
  let s = hsum(f32x4.add(f32x4.add(a, b), f32x4.add(c, d)));
  for (let i = n16; i < n; i++) s += load<f32>(p + (<usize>i << 2));
  return s;
}

/** out[b] = sum of block b (blockFloats floats each) for blocks b0..b1: the bandwidth probe, split by threads. */
export function sumBlocks(p: usize, out: usize, blockFloats: i32, b0: i32, b1: i32): void {
  const bytes = <usize>blockFloats << 2;
  for (let b = b0; b < b1; b++) store<f32>(out + (<usize>b << 2), sumF32(p + <usize>b * bytes, blockFloats));
}

// ---------------------------------------------------------------------------------------------------------
// Exact-product variants: float64 arithmetic throughout. A 16-bit weight times a float32 x is exact in
// float64 (8 or 11 + 24 significant bits), and the sums are float64, so each output is rounded once, as
// the TypeScript reference kernels do. x comes widened to float64 (`widenF64`, after permute8 for 16-bit
// weights): the eight columns of a block are then four f64x2 [xa.lo, xa.hi, xb.lo, xb.hi].

/** xd[i] = x[i] as float64. */
export function widenF64(x: usize, xd: usize, n: i32): void {
  for (let i = 0; i < n; i++) store<f64>(xd + (<usize>i << 3), <f64>load<f32>(x + (<usize>i << 2)));
}

/**
 * One block of eight weights (widened halves a, b) times x block [x0 x1 x2 x3] (float64), added into the
 * two accumulators d (columns of a) and e (columns of b): two multiply-add chains, so that a fused
 * multiply-add's latency is hidden by the other chain and the other rows. Every product is exact, so fused
 * (relaxed build) and unfused (plain build) give the same bits.
 */
// @ts-ignore: decorator
@inline function maddBlockA(a: v128, x0: v128, x1: v128, d: v128): v128 {
  return madd64(promoteHi(a), x1, madd64(promoteLo(a), x0, d));
}

/**
 * Exact dot product of one weight row with x (float64): per output the order of every exact-kernel matvec,
 * d = ((d + lo.lo x0) + lo.hi x1) and e likewise for the hi half, block after block, then hsum64(d + e),
 * then the cols % 8 tail. The products are exact, so this multiply then add gives the bits of a fused
 * multiply-add (`maddBlockA`); it is written unfused because with one row the two chains are the bottleneck
 * and an add's latency is shorter than a fused multiply-add's (relaxed build 1.2x on 2048-column rows).
 */
// @ts-ignore: decorator
@inline function dotRowExact(w: usize, x: usize, cols: i32, dt: i32): f64 {
  const es = esize(dt);
  const n8 = cols & ~7;
  let d = f64x2.splat(0), e = f64x2.splat(0);
  for (let c = 0; c < n8; c += 8) {
    const p = w + <usize>c * es;
    const q = x + (<usize>c << 3);
    const a = lo(p, dt), b = hi(p, dt);
    d = f64x2.add(f64x2.add(d, f64x2.mul(promoteLo(a), v128.load(q))), f64x2.mul(promoteHi(a), v128.load(q, 16)));
    e = f64x2.add(f64x2.add(e, f64x2.mul(promoteLo(b), v128.load(q, 32))), f64x2.mul(promoteHi(b), v128.load(q, 48)));
  }
  let s = hsum64(f64x2.add(d, e));
  for (let c = n8; c < cols; c++) s += <f64>scalar(w, c, dt) * load<f64>(x + (<usize>c << 3));
  return s;
}

/** Rows r0..r1 four at a time (x loaded once for four rows), each row in `dotRowExact`'s order. */
// @ts-ignore: decorator
@inline function matvecExact4(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32, dt: i32): void {
  const es = esize(dt);
  const stride = <usize>cols * es;
  const n8 = cols & ~7;
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize>r * stride, w1 = w0 + stride, w2 = w1 + stride, w3 = w2 + stride;
    const tp = touchBase(w0, stride, r, r1);
    let d0 = f64x2.splat(0), d1 = f64x2.splat(0), d2 = f64x2.splat(0), d3 = f64x2.splat(0);
    let e0 = f64x2.splat(0), e1 = f64x2.splat(0), e2 = f64x2.splat(0), e3 = f64x2.splat(0);
    for (let c = 0; c < n8; c += 8) {
      const o = <usize>c * es;
      const q = x + (<usize>c << 3);
      touch(tp + (o << 2), dt);
      // x loaded once for the four rows, half a block at a time.
      const x0 = v128.load(q), x1 = v128.load(q, 16);
      d0 = maddBlockA(lo(w0 + o, dt), x0, x1, d0);
      d1 = maddBlockA(lo(w1 + o, dt), x0, x1, d1);
      d2 = maddBlockA(lo(w2 + o, dt), x0, x1, d2);
      d3 = maddBlockA(lo(w3 + o, dt), x0, x1, d3);
      const x2 = v128.load(q, 32), x3 = v128.load(q, 48);
      e0 = maddBlockA(hi(w0 + o, dt), x2, x3, e0);
      e1 = maddBlockA(hi(w1 + o, dt), x2, x3, e1);
      e2 = maddBlockA(hi(w2 + o, dt), x2, x3, e2);
      e3 = maddBlockA(hi(w3 + o, dt), x2, x3, e3);
    }
    let s0 = hsum64(f64x2.add(d0, e0)), s1 = hsum64(f64x2.add(d1, e1)), s2 = hsum64(f64x2.add(d2, e2)), s3 = hsum64(f64x2.add(d3, e3));
    for (let c = n8; c < cols; c++) {
      const xc = load<f64>(x + (<usize>c << 3));
      s0 += <f64>scalar(w0, c, dt) * xc;
      s1 += <f64>scalar(w1, c, dt) * xc;
      s2 += <f64>scalar(w2, c, dt) * xc;
      s3 += <f64>scalar(w3, c, dt) * xc;
    }
    const yp = y + (<usize>r << 2);
    store<f32>(yp, <f32>s0);
    store<f32>(yp, <f32>s1, 4);
    store<f32>(yp, <f32>s2, 8);
    store<f32>(yp, <f32>s3, 12);
  }
  for (; r < r1; r++) store<f32>(y + (<usize>r << 2), <f32>dotRowExact(w + <usize>r * stride, x, cols, dt));
}

/**
 * Rows r0..r1 of y = W x in exact arithmetic. Each output's operations do not depend on how many rows share
 * a pass, so both ways give the same bits. Long rows go one at a time (`dotRowExact`): one sequential
 * weight stream, which the hardware prefetchers follow, where four rows are four streams a page or more
 * apart (1.4x on 2048-column BF16 rows from memory). Short rows (up to EXACT_GROUP_BYTES, e.g. the experts'
 * 512-column down_proj) go four at a time (`matvecExact4`): four such rows lie within one or two pages, so
 * the four streams prefetch as one, and eight chains beat one row's two (relaxed build 1.5x over one row at a time).
 */
// @ts-ignore: decorator
@inline function matvecExactBody(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32, dt: i32): void {
  const stride = <usize>cols * esize(dt);
  if (stride <= EXACT_GROUP_BYTES) {
    matvecExact4(w, x, y, cols, r0, r1, dt);
    return;
  }
  for (let r = r0; r < r1; r++) store<f32>(y + (<usize>r << 2), <f32>dotRowExact(w + <usize>r * stride, x, cols, dt));
}

/**
 * `tile` in exact arithmetic (x widened to float64): nr rows (1 or 2) by n tokens (1..4), one float64
 * accumulator per output, fed by fused (relaxed build) or unfused multiply-adds of exact products. Half a
 * block (four weights of each row, promoted to float64 once) at a time, for every token.
 */
// @ts-ignore: decorator
@inline function tileExact(w0: usize, stride: usize, x0: usize, xs: usize, yp: usize, ys: usize, cols: i32, dt: i32, nr: i32, n: i32): void {
  const es = esize(dt);
  const n8 = cols & ~7;
  const w1 = w0 + stride;
  const x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs;
  let d0 = f64x2.splat(0), d1 = f64x2.splat(0), d2 = f64x2.splat(0), d3 = f64x2.splat(0);
  let e0 = f64x2.splat(0), e1 = f64x2.splat(0), e2 = f64x2.splat(0), e3 = f64x2.splat(0);
  for (let c = 0; c < n8; c += 8) {
    const p = <usize>c * es;
    const o = <usize>c << 3;
    {
      // The lo half: columns paired with x block bytes [0, 32).
      const u = lo(w0 + p, dt), v = nr > 1 ? lo(w1 + p, dt) : u;
      const ul = promoteLo(u), uh = promoteHi(u), vl = promoteLo(v), vh = promoteHi(v);
      const h = o;
      const xl = v128.load(x0 + h), xh = v128.load(x0 + h, 16);
      d0 = madd64(uh, xh, madd64(ul, xl, d0));
      if (nr > 1) e0 = madd64(vh, xh, madd64(vl, xl, e0));
      if (n > 1) {
        const xl = v128.load(x1 + h), xh = v128.load(x1 + h, 16);
        d1 = madd64(uh, xh, madd64(ul, xl, d1));
        if (nr > 1) e1 = madd64(vh, xh, madd64(vl, xl, e1));
      }
      if (n > 2) {
        const xl = v128.load(x2 + h), xh = v128.load(x2 + h, 16);
        d2 = madd64(uh, xh, madd64(ul, xl, d2));
        if (nr > 1) e2 = madd64(vh, xh, madd64(vl, xl, e2));
      }
      if (n > 3) {
        const xl = v128.load(x3 + h), xh = v128.load(x3 + h, 16);
        d3 = madd64(uh, xh, madd64(ul, xl, d3));
        if (nr > 1) e3 = madd64(vh, xh, madd64(vl, xl, e3));
      }
    }
    {
      // The hi half: columns paired with x block bytes [32, 64).
      const u = hi(w0 + p, dt), v = nr > 1 ? hi(w1 + p, dt) : u;
      const ul = promoteLo(u), uh = promoteHi(u), vl = promoteLo(v), vh = promoteHi(v);
      const h = o + 32;
      const xl = v128.load(x0 + h), xh = v128.load(x0 + h, 16);
      d0 = madd64(uh, xh, madd64(ul, xl, d0));
      if (nr > 1) e0 = madd64(vh, xh, madd64(vl, xl, e0));
      if (n > 1) {
        const xl = v128.load(x1 + h), xh = v128.load(x1 + h, 16);
        d1 = madd64(uh, xh, madd64(ul, xl, d1));
        if (nr > 1) e1 = madd64(vh, xh, madd64(vl, xl, e1));
      }
      if (n > 2) {
        const xl = v128.load(x2 + h), xh = v128.load(x2 + h, 16);
        d2 = madd64(uh, xh, madd64(ul, xl, d2));
        if (nr > 1) e2 = madd64(vh, xh, madd64(vl, xl, e2));
      }
      if (n > 3) {
        const xl = v128.load(x3 + h), xh = v128.load(x3 + h, 16);
        d3 = madd64(uh, xh, madd64(ul, xl, d3));
        if (nr > 1) e3 = madd64(vh, xh, madd64(vl, xl, e3));
      }
    }
  }
  // Lane sums, two outputs per f64x2, for tileStore.
  const d01 = f64x2.add(v128.shuffle<f64>(d0, d1, 0, 2), v128.shuffle<f64>(d0, d1, 1, 3));
  const d23 = f64x2.add(v128.shuffle<f64>(d2, d3, 0, 2), v128.shuffle<f64>(d2, d3, 1, 3));
  const e01 = f64x2.add(v128.shuffle<f64>(e0, e1, 0, 2), v128.shuffle<f64>(e0, e1, 1, 3));
  const e23 = f64x2.add(v128.shuffle<f64>(e2, e3, 0, 2), v128.shuffle<f64>(e2, e3, 1, 3));
  tileStore(w0, stride, x0, xs, yp, ys, cols, dt, nr, n, 3, d01, d23, e01, e23);
}

/**
 * The end of a tileExact: the cols % 8 tail added to the float64 totals (d01, d23 row 0's tokens 0-1 and 2-3;
 * e01, e23 row 1's) in scalar float64, and each output rounded once to float32. x elements are
 * 1 << xshift bytes (float32 or float64).
 */
// @ts-ignore: decorator
@inline function tileStore(w0: usize, stride: usize, x0: usize, xs: usize, yp: usize, ys: usize, cols: i32, dt: i32, nr: i32, n: i32, xshift: i32, d01: v128, d23: v128, e01: v128, e23: v128): void {
  const w1 = w0 + stride;
  let s0 = f64x2.extract_lane(d01, 0), s1 = f64x2.extract_lane(d01, 1), s2 = f64x2.extract_lane(d23, 0), s3 = f64x2.extract_lane(d23, 1);
  let t0 = f64x2.extract_lane(e01, 0), t1 = f64x2.extract_lane(e01, 1), t2 = f64x2.extract_lane(e23, 0), t3 = f64x2.extract_lane(e23, 1);
  for (let c = cols & ~7; c < cols; c++) {
    const u = <f64>scalar(w0, c, dt), v = nr > 1 ? <f64>scalar(w1, c, dt) : 0;
    const o = <usize>c << xshift;
    for (let k = 0; k < n; k++) {
      const xk = x0 + <usize>k * xs + o;
      const xc = xshift == 3 ? load<f64>(xk) : <f64>load<f32>(xk);
      if (k == 0) { s0 += u * xc; t0 += v * xc; }
      else if (k == 1) { s1 += u * xc; t1 += v * xc; }
      else if (k == 2) { s2 += u * xc; t2 += v * xc; }
      else { s3 += u * xc; t3 += v * xc; }
    }
  }
  store<f32>(yp, <f32>s0);
  if (n > 1) store<f32>(yp + ys, <f32>s1);
  if (n > 2) store<f32>(yp + 2 * ys, <f32>s2);
  if (n > 3) store<f32>(yp + 3 * ys, <f32>s3);
  if (nr > 1) {
    store<f32>(yp, <f32>t0, 4);
    if (n > 1) store<f32>(yp + ys, <f32>t1, 4);
    if (n > 2) store<f32>(yp + 2 * ys, <f32>t2, 4);
    if (n > 3) store<f32>(yp + 3 * ys, <f32>t3, 4);
  }
}

/**
 * Rows r0..r1 of Y[t] = W X[t] in exact arithmetic: rows in pairs, tokens in fours (then the last one to
 * three together), each pair-by-four a register tile (`tileExact`): x is loaded once for two rows and each
 * weight block widened once for four tokens. A pair's weights (8 KiB at 2048 BF16 columns) stay in L1 while
 * the token groups pass over them.
 */
// @ts-ignore: decorator
@inline function matmulExactBody(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32, dt: i32): void {
  const stride = <usize>cols * esize(dt);
  const xs = <usize>cols << 3;
  const ys = <usize>rows << 2;
  const t4 = t & ~3, rest = t - t4;
  let r = r0;
  for (; r + 2 <= r1; r += 2) {
    const wr = w + <usize>r * stride;
    const yr = y + (<usize>r << 2);
    for (let tk = 0; tk < t4; tk += 4) tileExact(wr, stride, x + <usize>tk * xs, xs, yr + <usize>tk * ys, ys, cols, dt, 2, 4);
    const xt = x + <usize>t4 * xs, yt = yr + <usize>t4 * ys;
    if (rest == 3) tileExact(wr, stride, xt, xs, yt, ys, cols, dt, 2, 3);
    else if (rest == 2) tileExact(wr, stride, xt, xs, yt, ys, cols, dt, 2, 2);
    else if (rest == 1) tileExact(wr, stride, xt, xs, yt, ys, cols, dt, 2, 1);
  }
  if (r < r1) {
    // The odd last row: one row by four tokens.
    const wr = w + <usize>r * stride;
    const yr = y + (<usize>r << 2);
    for (let tk = 0; tk < t; tk += 4) {
      const xt = x + <usize>tk * xs, yt = yr + <usize>tk * ys, m = t - tk;
      if (m >= 4) tileExact(wr, stride, xt, xs, yt, ys, cols, dt, 1, 4);
      else if (m == 3) tileExact(wr, stride, xt, xs, yt, ys, cols, dt, 1, 3);
      else if (m == 2) tileExact(wr, stride, xt, xs, yt, ys, cols, dt, 1, 2);
      else tileExact(wr, stride, xt, xs, yt, ys, cols, dt, 1, 1);
    }
  }
}

// Entry points, one per dtype and arithmetic: each is its own copy of the loop with the dtype folded in.
// (One entry with a dtype switch inlines all six loops into one huge function, which V8 compiles to
// markedly slower code.) Rows r0..r1 of y = W x, or of Y[t] = W X[t] for t tokens.
export function matvecBF16(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void {
  matvecBody(w, x, y, cols, r0, r1, DT_BF16);
}
export function matvecF16(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void {
  matvecBody(w, x, y, cols, r0, r1, DT_F16);
}
export function matvecF32(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void {
  matvecBody(w, x, y, cols, r0, r1, 0);
}
export function matmulBF16(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulBody(w, x, y, t, rows, cols, r0, r1, DT_BF16);
}
export function matmulF16(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulBody(w, x, y, t, rows, cols, r0, r1, DT_F16);
}
export function matmulF32(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulBody(w, x, y, t, rows, cols, r0, r1, 0);
}
export function matvecBF16Exact(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void {
  matvecExactBody(w, x, y, cols, r0, r1, DT_BF16);
}
export function matvecF16Exact(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void {
  matvecExactBody(w, x, y, cols, r0, r1, DT_F16);
}
export function matvecF32Exact(w: usize, x: usize, y: usize, cols: i32, r0: i32, r1: i32): void {
  matvecExactBody(w, x, y, cols, r0, r1, 0);
}
export function matmulBF16Exact(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulExactBody(w, x, y, t, rows, cols, r0, r1, DT_BF16);
}
export function matmulF16Exact(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulExactBody(w, x, y, t, rows, cols, r0, r1, DT_F16);
}
export function matmulF32Exact(w: usize, x: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void {
  matmulExactBody(w, x, y, t, rows, cols, r0, r1, 0);
}
