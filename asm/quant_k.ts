// Integer dot products of the K-quants (Q4_K, Q5_K, Q6_K: blocks of 256) with Q8_K activations, the layouts and
// block terms of asm/quant_int.ts's header.
//
// Every sub-block's sum is taken in two steps, the same in both builds:
//   1. 16-bit sums of products of the weights' raw quants (Q4_K 0..15, Q5_K 0..31, Q6_K 0..63: Q6_K's offset 32
//      is taken off at the block's end as 32 sum_j sc_j bsum_j) with the activation quants (|q_a| <= 127):
//        relaxed build: i16x8.relaxed_dot_i8x16_i7x16_s, pairs of neighbours (the quant is the 7-bit operand);
//        plain build:   the quants widened to 16 bits, i16x8.mul with the 16-bit activations, values i and i + 8
//                       added.
//      A lane holds at most 4 products of 31 * 127 (Q4_K / Q5_K: the 32 values of a sub-block) or 2 of 63 * 127
//      (Q6_K: 16 values): below 2^15, no wrap.
//   2. i32x4.dot_i16x8_s of those sums with the sub-block's scale in every 16-bit lane: widened, paired and
//      scaled in one instruction.
// The lanes are grouped differently in the two builds, but the integer sums are the same, so the outputs are too.
// Tokens (n = 1..4, a constant) share each block's decoded quants and scales.

import { f16 } from "./widen";
import { Q4_K, Q5_K, Q6_K, typeSize, blockD } from "./quant_blocks";
import { hsumI32 } from "./quant_dot";

/**
 * Byte masks 15, 16, 48 (16 bytes each), loaded from memory: TurboFan rebuilds a splatted constant at each use in a
 * loop (3 instructions).
 */
const KC = memory.data<u8>([15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48, 48], 16);

/**
 * 16-bit sums of the products of 16 unsigned quants q (0..63) with one token's activation quants from value c
 * (bytes at a + q8, 16-bit at a): pairs of neighbours (relaxed) or values i, i + 8 (plain).
 */
// @ts-ignore: decorator
@inline function pairs(q: v128, a: usize, q8: usize, c: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(a + q8 + c), q);
  } else {
    const ac = a + (c << 1);
    return i16x8.add(i16x8.mul(i16x8.extend_low_i8x16_u(q), v128.load(ac)), i16x8.mul(i16x8.extend_high_i8x16_u(q), v128.load(ac, 16)));
  }
}

/** k + the 16-bit lanes x times the scale in every 16-bit lane of sc: i32 lanes. */
// @ts-ignore: decorator
@inline function scaled(k: v128, x: v128, sc: v128): v128 {
  return i32x4.add(k, i32x4.dot_i16x8_s(x, sc));
}

/** A Q4_K / Q5_K block's contribution: d_w d_a k - dmin_w d_a m. */
// @ts-ignore: decorator
@inline function kBlock(k: v128, m: v128, meta: usize, dw: f64, dmin: f64): f64 {
  const da = <f64>load<f32>(meta);
  return dw * da * <f64>hsumI32(k) - dmin * da * <f64>hsumI32(m);
}

/**
 * The quants of sub-block 2c + par (par a constant) of the Q4_K / Q5_K block at p, values 16 grp.. (16 bytes):
 * the low (par 0) or high nibbles of qs (at 16 for Q4_K, 48 for Q5_K) from 32 c; Q5_K adds 16 where bit 2c + par of
 * qh (the 32 bytes at 16) is set, hb being qh's 16 bytes shifted right by 2c in 16-bit lanes.
 */
// @ts-ignore: decorator
@inline function quantsK(p: usize, c: usize, par: i32, grp: usize, hb: v128, dt: i32): v128 {
  const b = v128.load(p + (dt == Q4_K ? 16 : 48) + (c << 5) + (grp << 4));
  let q = par == 0 ? v128.and(b, v128.load(KC)) : v128.and(i16x8.shr_u(b, 4), v128.load(KC));
  // (hb << (4 - par)) & 16: bit 2c + par of each byte lands on its bit 4 (bits that cross into the next byte land
  // on its bits 0-3 and are masked off).
  if (dt == Q5_K) q = v128.or(q, v128.and(i16x8.shl(hb, 4 - par), v128.load(KC, 16)));
  return q;
}

/**
 * The raw quants (0..63) of 16 Q6_K values of quarter qd (a constant) of a half: the low 4 bits are the low (qd < 2)
 * or high nibbles of lo (their 16 bytes of ql), the top 2 bits are bits 2 qd, 2 qd + 1 of qh (their 16 bytes of qh)
 * moved to bits 4, 5.
 */
// @ts-ignore: decorator
@inline function quants6(lo: v128, qh: v128, qd: i32): v128 {
  const lo4 = qd < 2 ? v128.and(lo, v128.load(KC)) : v128.and(i16x8.shr_u(lo, 4), v128.load(KC));
  // (qh >> 2 qd) << 4 per byte, in one 16-bit lane shift (the bits crossing bytes are masked off).
  const hi = qd == 0 ? i16x8.shl(qh, 4) : qd == 1 ? i16x8.shl(qh, 2) : qd == 2 ? qh : i16x8.shr_u(qh, 2);
  return v128.or(lo4, v128.and(hi, v128.load(KC, 32)));
}

/** 16-bit lane j (a constant: the branches fold away) of v in every lane. */
// @ts-ignore: decorator
@inline function lane16(v: v128, j: i32): v128 {
  if (j == 0) return i8x16.shuffle(v, v, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1);
  if (j == 1) return i8x16.shuffle(v, v, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  if (j == 2) return i8x16.shuffle(v, v, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5);
  if (j == 3) return i8x16.shuffle(v, v, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7);
  if (j == 4) return i8x16.shuffle(v, v, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9);
  if (j == 5) return i8x16.shuffle(v, v, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11);
  if (j == 6) return i8x16.shuffle(v, v, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13);
  return i8x16.shuffle(v, v, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15);
}

/**
 * Orders the code (as asm/quant_int.ts's fence): TurboFan keeps loads and stores in program order but floats
 * arithmetic down to its use, so the products of all n tokens would wait until all their activations were loaded
 * (spills). A token's sums updated, one lane is stored to its output (overwritten at the end), so the next
 * token's loads come after them. Q6_K: after every two sub-blocks, token by token (fenced after all n tokens'
 * two sub-blocks, the earlier order, it was 1.08x slower in the relaxed build and 1.16-1.25x in the plain one at
 * T = 4, 10). Q4_K / Q5_K: in the plain build only (there 1.2-1.3x faster at T = 4, 10 and 1.04x at T = 1; in the
 * relaxed build the same speed at T = 4, 10 and a 1.17x slower decode, T = 1).
 */
const FENCE_K: bool = !ASC_FEATURE_RELAXED_SIMD;

/** One token's Q6_K sums k plus two sub-blocks (quants qa, qb, scales sa, sb; values c.. and c + 16..), fenced. */
// @ts-ignore: decorator
@inline function tok6(k: v128, qa: v128, sa: v128, qb: v128, sb: v128, a: usize, q8: usize, c: usize, yp: usize): v128 {
  const r = scaled(scaled(k, pairs(qa, a, q8, c), sa), pairs(qb, a, q8, c + 16), sb);
  store<i32>(yp, i32x4.extract_lane(r, 0));
  return r;
}

/**
 * One token's Q4_K / Q5_K sums k plus one sub-block (values c..c + 31: quants qa for the first 16, qb for the
 * rest; scale sc), fenced where FENCE_K.
 */
// @ts-ignore: decorator
@inline function tokK(k: v128, qa: v128, qb: v128, sc: v128, a: usize, q8: usize, c: usize, yp: usize): v128 {
  const r = scaled(k, i16x8.add(pairs(qa, a, q8, c), pairs(qb, a, q8, c + 16)), sc);
  if (FENCE_K) store<i32>(yp, i32x4.extract_lane(r, 0));
  return r;
}

/**
 * Row wr of a K-quant weight times n tokens (n = 1..4, a constant where inlined): token 0's quantized activations
 * at a0, the others as apart; outputs at yp, ys apart. Each block's quants and scales are decoded once for the n
 * tokens; each output is the float64 sum over blocks, in block order, of its block terms (asm/quant_int.ts).
 * Tokens go one after the other through each group of sub-blocks (`tok6`, `tokK`).
 */
// @ts-ignore: decorator
@inline export function rowK(wr: usize, a0: usize, as: usize, yp: usize, ys: usize, cols: i32, n: i32, dt: i32): void {
  const ts = typeSize(dt);
  const q8 = <usize>cols << 1, meta = <usize>cols * 3;
  const a1 = a0 + as, a2 = a1 + as, a3 = a2 + as;
  let s0: f64 = 0, s1: f64 = 0, s2: f64 = 0, s3: f64 = 0;
  for (let b = 0; b < (cols >> 8); b++) {
    const p = wr + <usize>b * ts;
    const mb = meta + (<usize>b << 6);
    const col = <usize>(b << 8);
    const dw = <f64>blockD(p, dt);
    const z = i32x4.splat(0);
    let k0 = z, k1 = z, k2 = z, k3 = z;
    if (dt == Q6_K) {
      const scs = v128.load(p + 192);
      const scLo = i16x8.extend_low_i8x16_s(scs), scHi = i16x8.extend_high_i8x16_s(scs);
      for (let half: usize = 0; half < 2; half++) {
        // Sub-blocks 8 half + 2 qd + l / 16 (16 values each, from value 128 half + 32 qd + l).
        const sv = half == 0 ? scLo : scHi;
        const ql = p + (half << 6), qh = p + 128 + (half << 5), c = col + (half << 7);
        // qd 0: ql bytes 0..31 low nibbles; 1: 32..63 low; 2: 0..31 high; 3: 32..63 high. Sub-blocks two at a
        // time, token by token (`tok6`).
        let qa = quants6(v128.load(ql), v128.load(qh), 0), qb = quants6(v128.load(ql, 16), v128.load(qh, 16), 0);
        let sa = lane16(sv, 0), sb = lane16(sv, 1);
        k0 = tok6(k0, qa, sa, qb, sb, a0, q8, c, yp);
        if (n > 1) k1 = tok6(k1, qa, sa, qb, sb, a1, q8, c, yp + ys);
        if (n > 2) k2 = tok6(k2, qa, sa, qb, sb, a2, q8, c, yp + 2 * ys);
        if (n > 3) k3 = tok6(k3, qa, sa, qb, sb, a3, q8, c, yp + 3 * ys);
        qa = quants6(v128.load(ql, 32), v128.load(qh), 1); qb = quants6(v128.load(ql, 48), v128.load(qh, 16), 1);
        sa = lane16(sv, 2); sb = lane16(sv, 3);
        k0 = tok6(k0, qa, sa, qb, sb, a0, q8, c + 32, yp);
        if (n > 1) k1 = tok6(k1, qa, sa, qb, sb, a1, q8, c + 32, yp + ys);
        if (n > 2) k2 = tok6(k2, qa, sa, qb, sb, a2, q8, c + 32, yp + 2 * ys);
        if (n > 3) k3 = tok6(k3, qa, sa, qb, sb, a3, q8, c + 32, yp + 3 * ys);
        qa = quants6(v128.load(ql), v128.load(qh), 2); qb = quants6(v128.load(ql, 16), v128.load(qh, 16), 2);
        sa = lane16(sv, 4); sb = lane16(sv, 5);
        k0 = tok6(k0, qa, sa, qb, sb, a0, q8, c + 64, yp);
        if (n > 1) k1 = tok6(k1, qa, sa, qb, sb, a1, q8, c + 64, yp + ys);
        if (n > 2) k2 = tok6(k2, qa, sa, qb, sb, a2, q8, c + 64, yp + 2 * ys);
        if (n > 3) k3 = tok6(k3, qa, sa, qb, sb, a3, q8, c + 64, yp + 3 * ys);
        qa = quants6(v128.load(ql, 32), v128.load(qh), 3); qb = quants6(v128.load(ql, 48), v128.load(qh, 16), 3);
        sa = lane16(sv, 6); sb = lane16(sv, 7);
        k0 = tok6(k0, qa, sa, qb, sb, a0, q8, c + 96, yp);
        if (n > 1) k1 = tok6(k1, qa, sa, qb, sb, a1, q8, c + 96, yp + ys);
        if (n > 2) k2 = tok6(k2, qa, sa, qb, sb, a2, q8, c + 96, yp + 2 * ys);
        if (n > 3) k3 = tok6(k3, qa, sa, qb, sb, a3, q8, c + 96, yp + 3 * ys);
      }
      // The offset 32: sum_j sc_j sum (q + 32) q_a = the sum wanted + 32 sum_j sc_j bsum_j.
      k0 = q6Offset(k0, scLo, scHi, a0 + mb);
      s0 += dw * <f64>load<f32>(a0 + mb) * <f64>hsumI32(k0);
      if (n > 1) {
        k1 = q6Offset(k1, scLo, scHi, a1 + mb);
        s1 += dw * <f64>load<f32>(a1 + mb) * <f64>hsumI32(k1);
      }
      if (n > 2) {
        k2 = q6Offset(k2, scLo, scHi, a2 + mb);
        s2 += dw * <f64>load<f32>(a2 + mb) * <f64>hsumI32(k2);
      }
      if (n > 3) {
        k3 = q6Offset(k3, scLo, scHi, a3 + mb);
        s3 += dw * <f64>load<f32>(a3 + mb) * <f64>hsumI32(k3);
      }
    } else {
      // The eight 6-bit scales and mins from their 12 bytes (ggml's kmask shuffle) as 16-bit lanes.
      const w0 = load<u32>(p + 4), w1 = load<u32>(p + 8), w2 = load<u32>(p + 12);
      const u0 = w0 & 0x3f3f3f3f;
      const u1 = (w2 & 0x0f0f0f0f) | (((w0 >> 6) & 0x03030303) << 4);
      const u2 = w1 & 0x3f3f3f3f;
      const u3 = ((w2 >> 4) & 0x0f0f0f0f) | (((w1 >> 6) & 0x03030303) << 4);
      const sm = i32x4(<i32>u0, <i32>u1, <i32>u2, <i32>u3);
      let sv = i16x8.extend_low_i8x16_u(sm);
      const mins = i16x8.extend_high_i8x16_u(sm);
      const qh0 = v128.load(p + 16), qh1 = v128.load(p + 32);
      for (let c: usize = 0; c < 4; c++) {
        // Chunk c: sub-blocks 2c (low nibbles), 2c + 1 (high), scales in sv's lanes 0, 1.
        const sh = <i32>c << 1;
        const hb0 = i16x8.shr_u(qh0, sh), hb1 = i16x8.shr_u(qh1, sh);
        const cc = col + (c << 6);
        let qa = quantsK(p, c, 0, 0, hb0, dt), qb = quantsK(p, c, 0, 1, hb1, dt);
        let sc = lane16(sv, 0);
        k0 = tokK(k0, qa, qb, sc, a0, q8, cc, yp);
        if (n > 1) k1 = tokK(k1, qa, qb, sc, a1, q8, cc, yp + ys);
        if (n > 2) k2 = tokK(k2, qa, qb, sc, a2, q8, cc, yp + 2 * ys);
        if (n > 3) k3 = tokK(k3, qa, qb, sc, a3, q8, cc, yp + 3 * ys);
        qa = quantsK(p, c, 1, 0, hb0, dt);
        qb = quantsK(p, c, 1, 1, hb1, dt);
        sc = lane16(sv, 1);
        k0 = tokK(k0, qa, qb, sc, a0, q8, cc + 32, yp);
        if (n > 1) k1 = tokK(k1, qa, qb, sc, a1, q8, cc + 32, yp + ys);
        if (n > 2) k2 = tokK(k2, qa, qb, sc, a2, q8, cc + 32, yp + 2 * ys);
        if (n > 3) k3 = tokK(k3, qa, qb, sc, a3, q8, cc + 32, yp + 3 * ys);
        sv = i8x16.shuffle(sv, sv, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3);
      }
      // sum_j m_j (bsum_2j + bsum_2j+1): the mins times the sums of 32.
      const dmin = <f64>f16(<u32>load<u16>(p + 2));
      s0 += kBlock(k0, i32x4.dot_i16x8_s(mins, v128.load(a0 + mb, 48)), a0 + mb, dw, dmin);
      if (n > 1) s1 += kBlock(k1, i32x4.dot_i16x8_s(mins, v128.load(a1 + mb, 48)), a1 + mb, dw, dmin);
      if (n > 2) s2 += kBlock(k2, i32x4.dot_i16x8_s(mins, v128.load(a2 + mb, 48)), a2 + mb, dw, dmin);
      if (n > 3) s3 += kBlock(k3, i32x4.dot_i16x8_s(mins, v128.load(a3 + mb, 48)), a3 + mb, dw, dmin);
    }
  }
  store<f32>(yp, <f32>s0);
  if (n > 1) store<f32>(yp + ys, <f32>s1);
  if (n > 2) store<f32>(yp + 2 * ys, <f32>s2);
  if (n > 3) store<f32>(yp + 3 * ys, <f32>s3);
}

/** k - 32 sum_j sc_j bsum_j (Q6_K's offset; the 16 scales as 16-bit lanes lo, hi, the token's bsums at mb + 16). */
// @ts-ignore: decorator
@inline function q6Offset(k: v128, lo: v128, hi: v128, mb: usize): v128 {
  const m = i32x4.add(i32x4.dot_i16x8_s(lo, v128.load(mb, 16)), i32x4.dot_i16x8_s(hi, v128.load(mb, 32)));
  return i32x4.sub(k, i32x4.shl(m, 5));
}
