// Integer dot products for quantized weights, as llama.cpp's CPU backend takes them (ggml-cpu's
// ggml_vec_dot_<type>_q8_<0|1|K>): the activation row is quantized once per product, per block, and each block's
// dot product is a sum of integer products scaled once.
//
// Activations (quantizeActs), ggml's reference quantizers on each token's row of n values:
//   Q8_0 / Q8_1 (blocks of 32; for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 weights): d = amax / 127, q = roundf(x / d),
//         d kept as f16; Q8_1 adds s = f16(d * sum q) (float32 d, before its f16 rounding);
//   Q8_K (blocks of 256; for Q4_K, Q5_K, Q6_K weights): the value of largest magnitude max, iscale = -127 / max,
//         q = min(127, nearest_int(iscale x)), d = 1 / iscale (float32), bsums = the sums of each 16 quants.
// One block's contribution to y[r] (q_w the weight's quants, offsets subtracted):
//   Q8_0, Q4_0, Q5_0:  d_w d_a sum q_w q_a
//   Q4_1, Q5_1:        d_w d_a sum q_w q_a + m_w s_a
//   Q4_K, Q5_K:        d_w d_a sum_j sc_j sum_{i in j} q_w q_a - dmin_w d_a sum_j m_j (bsum_2j + bsum_2j+1)
//   Q6_K:              d_w d_a sum_j sc_j sum_{i in j} q_w q_a          (16 sub-blocks of 16, q_w in -32..31)
// The integer sums are exact, so they equal llama.cpp's; the scaling and the sum over blocks are float64 here
// (llama.cpp: float32), one rounding per output.
//
// Products: `i32x4.dot_i16x8_s` on quants widened to 16 bits (the activations are stored widened too). In a build
// with relaxed SIMD, `i16x8.relaxed_dot_i8x16_i7x16_s` takes sixteen byte products at once; its second operand
// must fit in 7 bits, so the weights' quants go there without their offset (Q4_0 0..15, Q5_0 0..31, Q6_K 0..63;
// the others are unsigned already) and the offset times the activations' sum is taken off afterwards (the sum per
// block of 32, or bsums). Q8_0 weights are full signed bytes: always the 16-bit path.
//
// One token's quantized row of n values (n % 32 == 0; tokens actBytes(n) apart):
//   +0     i16[n]   the quants, widened
//   +2n    i8[n]    the quants
//   +3n    Q8_0 / Q8_1: f32 d[nb], then f32 s[nb], then i32 sums of each block's quants [nb] (nb = n / 32)
//          Q8_K:        block b's f32 d at +3n + 64 b, its bsums (sums of 16 quants) as i16[16] at +3n + 64 b + 16,
//                       the sums of 32 (bsum_2j + bsum_2j+1) as i16[8] at +3n + 64 b + 48

import { f16 } from "./widen";
import { promoteLo, promoteHi, hsum64 } from "./mem";
import { Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q4_1, Q5_0, Q5_1, small, hasM, blockSize, typeSize, blockD, signedQ, quants16 } from "./quant_blocks";
import { relaxedFor, dotBytes, hsumI32 } from "./quant_dot";
import { rowK } from "./quant_k";

/** Activation kinds (quantizeActs). */
const ACT_Q8_0: i32 = 0;

/** Bytes of one token's quantized activation row of n values. */
export function actBytes(n: i32): i32 {
  return 3 * n + (n >> 1);
}

/** float32 -> f16 bits, rounding to nearest even (as ggml's GGML_FP32_TO_FP16); overflow gives inf. */
function toF16(f: f32): u32 {
  const bits = reinterpret<u32>(f);
  const sign = (bits >> 16) & 0x8000;
  const a = bits & 0x7fffffff;
  if (a >= 0x7f800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00);
  if (a >= 0x477ff000) return sign | 0x7c00; // 65520: halfway above the largest finite f16
  if (a < 0x38800000) return sign | <u32>nearest<f32>(reinterpret<f32>(a) * <f32>16777216); // subnormal: units of 2^-24
  return sign | (((a + 0x0fff + ((a >> 13) & 1)) >> 13) - 0x1c000);
}

/**
 * C's roundf (halfway cases away from zero) on four float32 lanes (|v| < 2^31): i32 lanes. float64 arithmetic,
 * exact for float32 v: trunc(v + 0.5 with v's sign).
 */
// @ts-ignore: decorator
@inline function roundAway4(v: v128): v128 {
  const sign = i64x2.splat(0x8000000000000000);
  const half = f64x2.splat(0.5);
  const lo = promoteLo(v), hi = promoteHi(v);
  const tl = f64x2.trunc(f64x2.add(lo, v128.or(half, v128.and(lo, sign))));
  const th = f64x2.trunc(f64x2.add(hi, v128.or(half, v128.and(hi, sign))));
  return v128.shuffle<i32>(i32x4.trunc_sat_f64x2_s_zero(tl), i32x4.trunc_sat_f64x2_s_zero(th), 0, 1, 4, 5);
}

/**
 * One block of 32 as quantize_row_q8_1_ref (and q8_0_ref, which is the same but for s); its d, s and sum go to
 * meta, meta + 4 nb and meta + 8 nb.
 */
function quantBlock32(x: usize, q16: usize, q8: usize, meta: usize, nb: usize): void {
  let m = f32x4.splat(0);
  for (let j = 0; j < 32; j += 4) m = f32x4.max(m, f32x4.abs(v128.load(x + (<usize>j << 2))));
  const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  const d: f32 = amax / <f32>127;
  const id: f32 = d != 0 ? <f32>1 / d : <f32>0;
  // q = roundf(x id), x id in float32 as ggml.
  const idv = f32x4.splat(id);
  let sv = i32x4.splat(0);
  for (let j = 0; j < 32; j += 8) {
    const q0 = roundAway4(f32x4.mul(v128.load(x + (<usize>j << 2)), idv));
    const q1 = roundAway4(f32x4.mul(v128.load(x + (<usize>j << 2), 16), idv));
    const h = i16x8.narrow_i32x4_s(q0, q1);
    v128.store(q16 + (<usize>j << 1), h);
    v128.store64_lane(q8 + j, i8x16.narrow_i16x8_s(h, h), 0);
    sv = i32x4.add(sv, i32x4.add(q0, q1));
  }
  const sum = hsumI32(sv);
  store<f32>(meta, f16(toF16(d)));
  store<f32>(meta + (nb << 2), f16(toF16(<f32>sum * d)));
  store<i32>(meta + (nb << 3), sum);
}

/** One block of 256 as quantize_row_q8_K_ref. */
function quantBlock256(x: usize, q16: usize, q8: usize, meta: usize): void {
  // The largest magnitude, then the first value having it (ggml keeps the first on ties), with its sign.
  let m = f32x4.splat(0);
  for (let j = 0; j < 256; j += 4) m = f32x4.max(m, f32x4.abs(v128.load(x + (<usize>j << 2))));
  const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  let mx: f32 = 0;
  if (amax != 0) {
    for (let j = 0; j < 256; j++) {
      const v = load<f32>(x + (<usize>j << 2));
      if (abs(v) == amax) {
        mx = v;
        break;
      }
    }
  }
  const iscale: f32 = amax != 0 ? <f32>-127 / mx : <f32>0;
  const isv = f32x4.splat(iscale), cap = i32x4.splat(127);
  for (let g = 0; g < 16; g++) {
    const xg = x + (<usize>g << 6);
    // q = min(127, nearest_int(iscale x)): float32 product, rounded to nearest even.
    const q0 = i32x4.min_s(cap, i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg), isv))));
    const q1 = i32x4.min_s(cap, i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg, 16), isv))));
    const q2 = i32x4.min_s(cap, i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg, 32), isv))));
    const q3 = i32x4.min_s(cap, i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xg, 48), isv))));
    const h0 = i16x8.narrow_i32x4_s(q0, q1), h1 = i16x8.narrow_i32x4_s(q2, q3);
    v128.store(q16 + (<usize>g << 5), h0);
    v128.store(q16 + (<usize>g << 5), h1, 16);
    v128.store(q8 + (<usize>g << 4), i8x16.narrow_i16x8_s(h0, h1));
    const sum = hsumI32(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)));
    store<i16>(meta + 16 + (<usize>g << 1), <i16>sum);
    if (g & 1) store<i16>(meta + 48 + (<usize>g & ~1), <i16>(sum + <i32>load<i16>(meta + 16 + (<usize>(g - 1) << 1))));
  }
  store<f32>(meta, amax != 0 ? <f32>1 / iscale : <f32>0);
}

/**
 * Quantizes t token rows of n float32 values at x (n apart) into a (actBytes(n) apart): kind 0 Q8_0 / Q8_1
 * (n % 32 == 0), 1 Q8_K (n % 256 == 0).
 */
export function quantizeActs(x: usize, a: usize, n: i32, t: i32, kind: i32): void {
  const stride = <usize>actBytes(n);
  const bs = kind == ACT_Q8_0 ? 32 : 256;
  for (let tk = 0; tk < t; tk++) {
    const xr = x + <usize>tk * (<usize>n << 2), ar = a + <usize>tk * stride;
    for (let b = 0; b < n / bs; b++) {
      const c = <usize>(b * bs);
      if (kind == ACT_Q8_0) quantBlock32(xr + (c << 2), ar + (c << 1), ar + (<usize>n << 1) + c, ar + 3 * <usize>n + (<usize>b << 2), <usize>(n >> 5));
      else quantBlock256(xr + (c << 2), ar + (c << 1), ar + (<usize>n << 1) + c, ar + 3 * <usize>n + (<usize>b << 6));
    }
  }
}

/**
 * Orders the code: TurboFan keeps loads and stores in program order but floats arithmetic down to its use, so
 * written-out blocks would load everything first and spill. A store of one lane of this block's sums to the
 * output (overwritten at the end) makes them computed before the next loads. `row32Tokens` fences each token's
 * block right after its products, so only one token's activations are loaded at a time (fenced after all four
 * tokens of a block, the 16-bit path's 16 activation vectors and 4 weight vectors spilled: Q8_0 prefill 1.1x
 * slower).
 */
// @ts-ignore: decorator
@inline function fence(yp: usize, j: v128): void {
  store<i32>(yp, i32x4.extract_lane(j, 0));
}

/** dotBytes's products alone, the activation quants already loaded (xb). */
// @ts-ignore: decorator
@inline function dotBytesV(q: v128, xb: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(xb, q));
  } else {
    unreachable();
    return q;
  }
}

/**
 * One block of 32 (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): its contribution for the token whose d of this block is at
 * meta (s and the sum of quants 4 nb and 8 nb bytes on).
 */
// @ts-ignore: decorator
@inline function block32(acc: v128, meta: usize, nb: usize, dw: f64, mw: f64, dt: i32): f64 {
  let sumi = hsumI32(acc);
  if (relaxedFor(dt) && dt == Q4_0) sumi -= load<i32>(meta + (nb << 3)) << 3;
  if (relaxedFor(dt) && dt == Q5_0) sumi -= load<i32>(meta + (nb << 3)) << 4;
  const r = dw * <f64>load<f32>(meta) * <f64>sumi;
  return hasM(dt) ? r + mw * <f64>load<f32>(meta + (nb << 2)) : r;
}

/** [a0 + a1, a2 + a3, b0 + b1, b2 + b3]: pairSums(pairSums(a, b), pairSums(c, d)) is [sum of a, of b, of c, of d]. */
// @ts-ignore: decorator
@inline function pairSums(a: v128, b: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(a, b, 0, 2, 4, 6), v128.shuffle<i32>(a, b, 1, 3, 5, 7));
}

/**
 * Four consecutive blocks of 32 at once for one token: their integer sums si (one lane each; below 2^24, so exact
 * in float32), the weights' d (dw) and m (mw) as float32 lanes, the token's d, s and sums at meta (4 nb, 8 nb on).
 * d_w d_a and m_w s_a are exact in float32 (11-bit f16 values); times si in float64, exact; a f64x2 partial sum.
 */
// @ts-ignore: decorator
@inline function blocks4(si: v128, meta: usize, nb: usize, dw: v128, mw: v128, dt: i32): v128 {
  let s = si;
  if (relaxedFor(dt) && dt == Q4_0) s = i32x4.sub(s, i32x4.shl(v128.load(meta + (nb << 3)), 3));
  if (relaxedFor(dt) && dt == Q5_0) s = i32x4.sub(s, i32x4.shl(v128.load(meta + (nb << 3)), 4));
  const sf = f32x4.convert_i32x4_s(s);
  const dd = f32x4.mul(dw, v128.load(meta));
  let r = f64x2.add(f64x2.mul(promoteLo(dd), promoteLo(sf)), f64x2.mul(promoteHi(dd), promoteHi(sf)));
  if (hasM(dt)) {
    const ms = f32x4.mul(mw, v128.load(meta + (nb << 2)));
    r = f64x2.add(r, f64x2.add(promoteLo(ms), promoteHi(ms)));
  }
  return r;
}

/** F16 -> f32 constants (f16Lanes): 2^112, the largest em << 13 below inf (0x7c00 << 13), the f32 inf exponent. */
const F16C = memory.data<u32>([0x77800000, 0x77800000, 0x77800000, 0x77800000, 0x0f7fffff, 0x0f7fffff, 0x0f7fffff, 0x0f7fffff, 0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000], 16);

/**
 * F16 bits h (i32 lanes below 2^16) -> f32, the algorithm of asm/widen.ts's f16 (exact for zero, subnormals, inf,
 * NaN): (h & 0x7fff) << 13 times 2^112, the inf exponent forced where the f16's is all ones, h's sign to bit 31.
 * Its constants are loaded from F16C: TurboFan rebuilds a splatted constant at each use in a loop (3 instructions).
 */
// @ts-ignore: decorator
@inline function f16Lanes(h: v128): v128 {
  const em13 = i32x4.shr_u(i32x4.shl(h, 17), 4);
  const mag = f32x4.mul(em13, v128.load(F16C));
  const fixed = v128.or(mag, v128.and(i32x4.gt_s(em13, v128.load(F16C, 16)), v128.load(F16C, 32)));
  return v128.or(fixed, i32x4.shl(i32x4.shr_u(h, 15), 31));
}

/** The f16 at byte o of four consecutive blocks (ts bytes apart) from p, as float32 lanes. */
// @ts-ignore: decorator
@inline function f16x4(p: usize, o: usize, ts: usize): v128 {
  let h = v128.load16_lane(p + o, i32x4.splat(0), 0);
  h = v128.load16_lane(p + ts + o, h, 2);
  h = v128.load16_lane(p + 2 * ts + o, h, 4);
  h = v128.load16_lane(p + 3 * ts + o, h, 6);
  return f16Lanes(h);
}

/**
 * The products of 16 quants q of a block with one token's activations for the same 16 values, pairs and pairs
 * of those summed (i32 lanes): x0, x1 its 16-bit quants (the 16-bit path), or xb its byte quants (relaxed: q
 * without offset, 0..127).
 */
// @ts-ignore: decorator
@inline function dot16(q: v128, x0: v128, x1: v128, xb: v128, dt: i32): v128 {
  if (relaxedFor(dt)) return dotBytesV(q, xb);
  const sg = signedQ(dt);
  const lo = sg ? i16x8.extend_low_i8x16_s(q) : i16x8.extend_low_i8x16_u(q);
  const hi = sg ? i16x8.extend_high_i8x16_s(q) : i16x8.extend_high_i8x16_u(q);
  return i32x4.add(i32x4.dot_i16x8_s(lo, x0), i32x4.dot_i16x8_s(hi, x1));
}

/**
 * The integer sum (i32 lanes) of block p (32 values; Q8_0-kind types) times one token's activations for its 32
 * columns: 16-bit quants at x16 (the 16-bit path) or byte quants at x8 (relaxed). Both groups of 16 written out.
 */
// @ts-ignore: decorator
@inline function dot32(p: usize, x16: usize, x8: usize, dt: i32): v128 {
  const R = relaxedFor(dt);
  const z = i32x4.splat(0);
  const j = dot16(quants16(p, 0, 0, dt, R), R ? z : v128.load(x16), R ? z : v128.load(x16, 16), R ? v128.load(x8) : z, dt);
  return i32x4.add(j, dot16(quants16(p, 0, 1, dt, R), R ? z : v128.load(x16, 32), R ? z : v128.load(x16, 48), R ? v128.load(x8, 16) : z, dt));
}

/**
 * One block's integer sums (i32 lanes) for one token: w0..w3 the block's quants (values 0-7, 8-15, 16-23, 24-31,
 * widened to 16 bits; relaxed: w0 = w1 = values 0-15 and w2 = w3 = values 16-31 as bytes, without offset), the
 * token's activation quants at x16 (16-bit) or x8 (bytes).
 */
// @ts-ignore: decorator
@inline function tokDot(w0: v128, w1: v128, w2: v128, w3: v128, x16: usize, x8: usize, dt: i32): v128 {
  if (relaxedFor(dt)) return i32x4.add(dotBytesV(w0, v128.load(x8)), dotBytesV(w2, v128.load(x8, 16)));
  return i32x4.add(i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(x16)), i32x4.dot_i16x8_s(w1, v128.load(x16, 16))),
    i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(x16, 32)), i32x4.dot_i16x8_s(w3, v128.load(x16, 48))));
}

/**
 * Row wr times n tokens (n = 1..4, a constant where inlined; token 0's quantized activations at a0, the others as
 * apart; outputs at yp, ys apart) for the types with blocks of 32: four blocks at a time, written out, each
 * block's quants decoded once for the n tokens; per token the four blocks' integer sums transposed into one
 * vector (pairSums of pairSums) and scaled together (blocks4), so each token's output has the same bits
 * whatever n is (decode n = 1, prefill and verify n = 4 then the rest); each token's block sums fenced as soon as
 * computed (`fence`). The blocks past the last four one by one
 * (block32). Two rows per pass, sharing each activation load, took 0.95x the time with the weights in cache but
 * 1.8x with them streamed from memory (measured [512, 2048] Q8_0 decode, 60 copies cycled): not taken.
 */
// @ts-ignore: decorator
@inline function row32Tokens(wr: usize, a0: usize, as: usize, yp: usize, ys: usize, cols: i32, n: i32, dt: i32): void {
  const R = relaxedFor(dt);
  const sg = signedQ(dt) && !R;
  const ts = typeSize(dt);
  const q8 = <usize>cols << 1, meta = <usize>cols * 3;
  const a1 = a0 + as, a2 = a1 + as, a3 = a2 + as;
  const nb = cols >> 5, nbu = <usize>nb;
  const z = i32x4.splat(0);
  let c0 = f64x2.splat(0), c1 = f64x2.splat(0), c2 = f64x2.splat(0), c3 = f64x2.splat(0);
  let b = 0;
  for (; b + 4 <= nb; b += 4) {
    const p = wr + <usize>b * ts;
    const o16 = <usize>b << 6, o8 = q8 + (<usize>b << 5), mo = meta + (<usize>b << 2);
    const q00 = quants16(p + 0 * ts, 0, 0, dt, R), q01 = quants16(p + 0 * ts, 0, 1, dt, R);
    const w00 = R ? q00 : sg ? i16x8.extend_low_i8x16_s(q00) : i16x8.extend_low_i8x16_u(q00);
    const w01 = R ? q00 : sg ? i16x8.extend_high_i8x16_s(q00) : i16x8.extend_high_i8x16_u(q00);
    const w02 = R ? q01 : sg ? i16x8.extend_low_i8x16_s(q01) : i16x8.extend_low_i8x16_u(q01);
    const w03 = R ? q01 : sg ? i16x8.extend_high_i8x16_s(q01) : i16x8.extend_high_i8x16_u(q01);
    const j00 = tokDot(w00, w01, w02, w03, a0 + o16 + 0, a0 + o8 + 0, dt);
    fence(yp + 0 * ys, j00);
    const j10 = n <= 1 ? z : tokDot(w00, w01, w02, w03, a1 + o16 + 0, a1 + o8 + 0, dt);
    if (n > 1) fence(yp + 1 * ys, j10);
    const j20 = n <= 2 ? z : tokDot(w00, w01, w02, w03, a2 + o16 + 0, a2 + o8 + 0, dt);
    if (n > 2) fence(yp + 2 * ys, j20);
    const j30 = n <= 3 ? z : tokDot(w00, w01, w02, w03, a3 + o16 + 0, a3 + o8 + 0, dt);
    if (n > 3) fence(yp + 3 * ys, j30);
    const q10 = quants16(p + 1 * ts, 0, 0, dt, R), q11 = quants16(p + 1 * ts, 0, 1, dt, R);
    const w10 = R ? q10 : sg ? i16x8.extend_low_i8x16_s(q10) : i16x8.extend_low_i8x16_u(q10);
    const w11 = R ? q10 : sg ? i16x8.extend_high_i8x16_s(q10) : i16x8.extend_high_i8x16_u(q10);
    const w12 = R ? q11 : sg ? i16x8.extend_low_i8x16_s(q11) : i16x8.extend_low_i8x16_u(q11);
    const w13 = R ? q11 : sg ? i16x8.extend_high_i8x16_s(q11) : i16x8.extend_high_i8x16_u(q11);
    const j01 = tokDot(w10, w11, w12, w13, a0 + o16 + 64, a0 + o8 + 32, dt);
    fence(yp + 0 * ys, j01);
    const j11 = n <= 1 ? z : tokDot(w10, w11, w12, w13, a1 + o16 + 64, a1 + o8 + 32, dt);
    if (n > 1) fence(yp + 1 * ys, j11);
    const j21 = n <= 2 ? z : tokDot(w10, w11, w12, w13, a2 + o16 + 64, a2 + o8 + 32, dt);
    if (n > 2) fence(yp + 2 * ys, j21);
    const j31 = n <= 3 ? z : tokDot(w10, w11, w12, w13, a3 + o16 + 64, a3 + o8 + 32, dt);
    if (n > 3) fence(yp + 3 * ys, j31);
    const e0 = pairSums(j00, j01);
    const e1 = pairSums(j10, j11);
    const e2 = pairSums(j20, j21);
    const e3 = pairSums(j30, j31);
    const q20 = quants16(p + 2 * ts, 0, 0, dt, R), q21 = quants16(p + 2 * ts, 0, 1, dt, R);
    const w20 = R ? q20 : sg ? i16x8.extend_low_i8x16_s(q20) : i16x8.extend_low_i8x16_u(q20);
    const w21 = R ? q20 : sg ? i16x8.extend_high_i8x16_s(q20) : i16x8.extend_high_i8x16_u(q20);
    const w22 = R ? q21 : sg ? i16x8.extend_low_i8x16_s(q21) : i16x8.extend_low_i8x16_u(q21);
    const w23 = R ? q21 : sg ? i16x8.extend_high_i8x16_s(q21) : i16x8.extend_high_i8x16_u(q21);
    const j02 = tokDot(w20, w21, w22, w23, a0 + o16 + 128, a0 + o8 + 64, dt);
    fence(yp + 0 * ys, j02);
    const j12 = n <= 1 ? z : tokDot(w20, w21, w22, w23, a1 + o16 + 128, a1 + o8 + 64, dt);
    if (n > 1) fence(yp + 1 * ys, j12);
    const j22 = n <= 2 ? z : tokDot(w20, w21, w22, w23, a2 + o16 + 128, a2 + o8 + 64, dt);
    if (n > 2) fence(yp + 2 * ys, j22);
    const j32 = n <= 3 ? z : tokDot(w20, w21, w22, w23, a3 + o16 + 128, a3 + o8 + 64, dt);
    if (n > 3) fence(yp + 3 * ys, j32);
    const q30 = quants16(p + 3 * ts, 0, 0, dt, R), q31 = quants16(p + 3 * ts, 0, 1, dt, R);
    const w30 = R ? q30 : sg ? i16x8.extend_low_i8x16_s(q30) : i16x8.extend_low_i8x16_u(q30);
    const w31 = R ? q30 : sg ? i16x8.extend_high_i8x16_s(q30) : i16x8.extend_high_i8x16_u(q30);
    const w32 = R ? q31 : sg ? i16x8.extend_low_i8x16_s(q31) : i16x8.extend_low_i8x16_u(q31);
    const w33 = R ? q31 : sg ? i16x8.extend_high_i8x16_s(q31) : i16x8.extend_high_i8x16_u(q31);
    const j03 = tokDot(w30, w31, w32, w33, a0 + o16 + 192, a0 + o8 + 96, dt);
    fence(yp + 0 * ys, j03);
    const j13 = n <= 1 ? z : tokDot(w30, w31, w32, w33, a1 + o16 + 192, a1 + o8 + 96, dt);
    if (n > 1) fence(yp + 1 * ys, j13);
    const j23 = n <= 2 ? z : tokDot(w30, w31, w32, w33, a2 + o16 + 192, a2 + o8 + 96, dt);
    if (n > 2) fence(yp + 2 * ys, j23);
    const j33 = n <= 3 ? z : tokDot(w30, w31, w32, w33, a3 + o16 + 192, a3 + o8 + 96, dt);
    if (n > 3) fence(yp + 3 * ys, j33);
    const dw = f16x4(p, 0, ts), mw = hasM(dt) ? f16x4(p, 2, ts) : z;
    c0 = f64x2.add(c0, blocks4(pairSums(e0, pairSums(j02, j03)), a0 + mo, nbu, dw, mw, dt));
    if (n > 1) c1 = f64x2.add(c1, blocks4(pairSums(e1, pairSums(j12, j13)), a1 + mo, nbu, dw, mw, dt));
    if (n > 2) c2 = f64x2.add(c2, blocks4(pairSums(e2, pairSums(j22, j23)), a2 + mo, nbu, dw, mw, dt));
    if (n > 3) c3 = f64x2.add(c3, blocks4(pairSums(e3, pairSums(j32, j33)), a3 + mo, nbu, dw, mw, dt));
  }
  let s0 = hsum64(c0), s1 = hsum64(c1), s2 = hsum64(c2), s3 = hsum64(c3);
  for (; b < nb; b++) {
    const p = wr + <usize>b * ts;
    const dw = <f64>blockD(p, dt), mw = hasM(dt) ? <f64>f16(<u32>load<u16>(p + 2)) : <f64>0;
    const o16 = <usize>b << 6, o8 = q8 + (<usize>b << 5), mo = meta + (<usize>b << 2);
    s0 += block32(dot32(p, a0 + o16, a0 + o8, dt), a0 + mo, nbu, dw, mw, dt);
    if (n > 1) s1 += block32(dot32(p, a1 + o16, a1 + o8, dt), a1 + mo, nbu, dw, mw, dt);
    if (n > 2) s2 += block32(dot32(p, a2 + o16, a2 + o8, dt), a2 + mo, nbu, dw, mw, dt);
    if (n > 3) s3 += block32(dot32(p, a3 + o16, a3 + o8, dt), a3 + mo, nbu, dw, mw, dt);
  }
  store<f32>(yp, <f32>s0);
  if (n > 1) store<f32>(yp + ys, <f32>s1);
  if (n > 2) store<f32>(yp + 2 * ys, <f32>s2);
  if (n > 3) store<f32>(yp + 3 * ys, <f32>s3);
}

// @ts-ignore: decorator
@inline function matvecBody(w: usize, a: usize, y: usize, cols: i32, r0: i32, r1: i32, dt: i32): void {
  const stride = <usize>(cols / blockSize(dt)) * typeSize(dt);
  for (let r = r0; r < r1; r++) {
    if (small(dt)) row32Tokens(w + <usize>r * stride, a, 0, y + (<usize>r << 2), 0, cols, 1, dt);
    else rowK(w + <usize>r * stride, a, 0, y + (<usize>r << 2), 0, cols, 1, dt);
  }
}

// @ts-ignore: decorator
@inline function matmulBody(w: usize, a: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32, dt: i32): void {
  const stride = <usize>(cols / blockSize(dt)) * typeSize(dt);
  const as = <usize>actBytes(cols);
  const ys = <usize>rows << 2;
  const t4 = t & ~3, rest = t - t4;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * stride;
    const yr = y + (<usize>r << 2);
    for (let tk = 0; tk < t4; tk += 4) {
      if (small(dt)) row32Tokens(wr, a + <usize>tk * as, as, yr + <usize>tk * ys, ys, cols, 4, dt);
      else rowK(wr, a + <usize>tk * as, as, yr + <usize>tk * ys, ys, cols, 4, dt);
    }
    const at = a + <usize>t4 * as, yt = yr + <usize>t4 * ys;
    if (small(dt)) {
      if (rest == 3) row32Tokens(wr, at, as, yt, ys, cols, 3, dt);
      else if (rest == 2) row32Tokens(wr, at, as, yt, ys, cols, 2, dt);
      else if (rest == 1) row32Tokens(wr, at, as, yt, ys, cols, 1, dt);
    } else {
      if (rest == 3) rowK(wr, at, as, yt, ys, cols, 3, dt);
      else if (rest == 2) rowK(wr, at, as, yt, ys, cols, 2, dt);
      else if (rest == 1) rowK(wr, at, as, yt, ys, cols, 1, dt);
    }
  }
}

// Entry points, one per type: rows r0..r1 of y = W x (matvec) or Y[t] = W X[t] (matmul), x quantized by quantizeActs.
export function matvecQ8_0Int(w: usize, a: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, a, y, cols, r0, r1, Q8_0); }
export function matvecQ4_0Int(w: usize, a: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, a, y, cols, r0, r1, Q4_0); }
export function matvecQ4_1Int(w: usize, a: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, a, y, cols, r0, r1, Q4_1); }
export function matvecQ5_0Int(w: usize, a: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, a, y, cols, r0, r1, Q5_0); }
export function matvecQ5_1Int(w: usize, a: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, a, y, cols, r0, r1, Q5_1); }
export function matvecQ4_KInt(w: usize, a: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, a, y, cols, r0, r1, Q4_K); }
export function matvecQ5_KInt(w: usize, a: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, a, y, cols, r0, r1, Q5_K); }
export function matvecQ6_KInt(w: usize, a: usize, y: usize, cols: i32, r0: i32, r1: i32): void { matvecBody(w, a, y, cols, r0, r1, Q6_K); }
export function matmulQ8_0Int(w: usize, a: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, a, y, t, rows, cols, r0, r1, Q8_0); }
export function matmulQ4_0Int(w: usize, a: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, a, y, t, rows, cols, r0, r1, Q4_0); }
export function matmulQ4_1Int(w: usize, a: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, a, y, t, rows, cols, r0, r1, Q4_1); }
export function matmulQ5_0Int(w: usize, a: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, a, y, t, rows, cols, r0, r1, Q5_0); }
export function matmulQ5_1Int(w: usize, a: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, a, y, t, rows, cols, r0, r1, Q5_1); }
export function matmulQ4_KInt(w: usize, a: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, a, y, t, rows, cols, r0, r1, Q4_K); }
export function matmulQ5_KInt(w: usize, a: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, a, y, t, rows, cols, r0, r1, Q5_K); }
export function matmulQ6_KInt(w: usize, a: usize, y: usize, t: i32, rows: i32, cols: i32, r0: i32, r1: i32): void { matmulBody(w, a, y, t, rows, cols, r0, r1, Q6_K); }
