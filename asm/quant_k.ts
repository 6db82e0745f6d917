// Integer dot products of the K-quants (Q4_K, Q5_K, Q6_K: blocks of 256) with Q8_K activations, the layouts and
// block terms of asm/quant_int.ts's header.

import { f16 } from "./widen";
import { Q4_K, Q5_K, Q6_K, typeSize, blockD, nibbles } from "./quant_blocks";
import { relaxedFor, dotWide, dotBytes, hsumI32 } from "./quant_dot";

/**
 * Sub-block 2c + par (32 values, par a constant: the low or high nibbles) of the Q4_K / Q5_K block at p times one
 * token's activations (values from col): i32 lanes.
 */
// @ts-ignore: decorator
@inline function subK(p: usize, c: usize, par: i32, a: usize, q8: usize, col: usize, dt: i32): v128 {
  const R = relaxedFor(dt);
  const at: usize = dt == Q4_K ? 16 : 48;
  let j = i32x4.splat(0);
  for (let grp = 0; grp < 2; grp++) {
    const g = <usize>grp << 4;
    let q = nibbles(v128.load(p + at + (c << 5) + g), par << 2);
    if (dt == Q5_K) {
      const h = v128.and(v128.load(p + 16 + g), i8x16.splat(<i8>(<i32>1 << ((<i32>c << 1) + par))));
      q = v128.or(q, v128.andnot(i8x16.splat(16), i8x16.eq(h, i8x16.splat(0))));
    }
    if (R) j = dotBytes(q, a + q8 + col + g, j);
    else j = dotWide(i16x8.extend_low_i8x16_u(q), i16x8.extend_high_i8x16_u(q), a + ((col + g) << 1), j);
  }
  return j;
}

/**
 * Sub-block 8 half + 2 qd + l / 16 (16 values; qd and l constants) of the Q6_K block at p times one token's
 * activations (values from col), the quant's offset 32 left in when relaxed: i32 lanes.
 */
// @ts-ignore: decorator
@inline function sub6(p: usize, half: usize, qd: i32, l: usize, a: usize, q8: usize, col: usize, dt: i32): v128 {
  const R = relaxedFor(dt);
  const lo4 = nibbles(v128.load(p + (half << 6) + (<usize>(qd & 1) << 5) + l), (qd >> 1) << 2);
  const hi2 = v128.and(i16x8.shl(i16x8.shr_u(v128.load(p + 128 + (half << 5) + l), qd << 1), 4), i8x16.splat(48));
  const q = v128.or(lo4, hi2);
  if (R) return dotBytes(q, a + q8 + col, i32x4.splat(0));
  const qs = i8x16.sub(q, i8x16.splat(32));
  return dotWide(i16x8.extend_low_i8x16_s(qs), i16x8.extend_high_i8x16_s(qs), a + (col << 1), i32x4.splat(0));
}

/** k + j times the sub-block scale sc. */
// @ts-ignore: decorator
@inline function scaled(k: v128, j: v128, sc: i32): v128 {
  return i32x4.add(k, i32x4.mul(j, i32x4.splat(sc)));
}

/**
 * Row wr times one token (decode) for the K-quants: the sub-block loops written out so that every shift and offset
 * within a block is a constant.
 */
// @ts-ignore: decorator
@inline export function rowKOne(wr: usize, a: usize, yp: usize, cols: i32, dt: i32): void {
  const R = relaxedFor(dt);
  const ts = typeSize(dt);
  const q8 = <usize>cols << 1, meta = a + <usize>cols * 3;
  let sum: f64 = 0;
  for (let b = 0; b < (cols >> 8); b++) {
    const p = wr + <usize>b * ts;
    const mb = meta + (<usize>b << 6);
    const col = <usize>(b << 8);
    const dw = <f64>blockD(p, dt);
    const da = <f64>load<f32>(mb);
    let k = i32x4.splat(0);
    if (dt == Q6_K) {
      for (let half: usize = 0; half < 2; half++) {
        const sc = p + 192 + (half << 3), c = col + (half << 7);
        k = scaled(k, sub6(p, half, 0, 0, a, q8, c, dt), <i32>load<i8>(sc));
        k = scaled(k, sub6(p, half, 0, 16, a, q8, c + 16, dt), <i32>load<i8>(sc, 1));
        k = scaled(k, sub6(p, half, 1, 0, a, q8, c + 32, dt), <i32>load<i8>(sc, 2));
        k = scaled(k, sub6(p, half, 1, 16, a, q8, c + 48, dt), <i32>load<i8>(sc, 3));
        k = scaled(k, sub6(p, half, 2, 0, a, q8, c + 64, dt), <i32>load<i8>(sc, 4));
        k = scaled(k, sub6(p, half, 2, 16, a, q8, c + 80, dt), <i32>load<i8>(sc, 5));
        k = scaled(k, sub6(p, half, 3, 0, a, q8, c + 96, dt), <i32>load<i8>(sc, 6));
        k = scaled(k, sub6(p, half, 3, 16, a, q8, c + 112, dt), <i32>load<i8>(sc, 7));
      }
      let m: i32 = 0;
      if (R) {
        const scs = v128.load(p + 192);
        m = hsumI32(dotWide(i16x8.extend_low_i8x16_s(scs), i16x8.extend_high_i8x16_s(scs), mb + 16, i32x4.splat(0)));
      }
      sum += dw * da * <f64>(hsumI32(k) - (m << 5));
    } else {
      // Scales 0-3, 4-7 in the bytes of u0, u1; mins in u2, u3 (ggml's kmask shuffle).
      const w0 = load<u32>(p + 4), w1 = load<u32>(p + 8), w2 = load<u32>(p + 12);
      const u0 = w0 & 0x3f3f3f3f;
      const u1 = (w2 & 0x0f0f0f0f) | (((w0 >> 6) & 0x03030303) << 4);
      const u2 = w1 & 0x3f3f3f3f;
      const u3 = ((w2 >> 4) & 0x0f0f0f0f) | (((w1 >> 6) & 0x03030303) << 4);
      for (let c: usize = 0; c < 4; c++) {
        const sw = (c < 2 ? u0 : u1) >> (<u32>(c & 1) << 4);
        k = scaled(k, subK(p, c, 0, a, q8, col + (c << 6), dt), <i32>(sw & 0xff));
        k = scaled(k, subK(p, c, 1, a, q8, col + (c << 6) + 32, dt), <i32>((sw >> 8) & 0xff));
      }
      const mins = i16x8.extend_low_i8x16_u(i32x4(<i32>u2, <i32>u3, 0, 0));
      const m = hsumI32(i32x4.dot_i16x8_s(mins, v128.load(mb, 48)));
      sum += kBlock(k, m, mb, dw, <f64>f16(<u32>load<u16>(p + 2)));
    }
  }
  store<f32>(yp, <f32>sum);
}

/** A Q4_K / Q5_K block's contribution: d_w d_a k - dmin_w d_a m. */
// @ts-ignore: decorator
@inline export function kBlock(k: v128, m: i32, meta: usize, dw: f64, dmin: f64): f64 {
  const da = <f64>load<f32>(meta);
  return dw * da * <f64>hsumI32(k) - dmin * da * <f64>m;
}
