// Widening 16-bit weights to float32, eight at a time.
//
// A v128 of eight 16-bit words w0..w7 is read as four 32-bit lanes [w1:w0, w3:w2, w5:w4, w7:w6].
// BF16 is the top half of a float32, so
//   even words w0,w2,w4,w6 -> f32 = lane << 16
//   odd  words w1,w3,w5,w7 -> f32 = lane & 0xFFFF0000
// one instruction each. The lanes come out de-interleaved, so every kernel that uses them reads x
// in the same order: `permute8` rewrites x blocks of eight as [x0 x2 x4 x6 | x1 x3 x5 x7] once per call.

// @ts-ignore: decorator
@inline export function bf16Even(v: v128): v128 {
  return i32x4.shl(v, 16);
}

// @ts-ignore: decorator
@inline export function bf16Odd(v: v128): v128 {
  return v128.and(v, i32x4.splat(0xffff0000));
}

// F16 -> F32 exactly (zero, subnormals, inf, NaN): move sign to bit 31, exponent+mantissa to bits 13..27,
// multiply by 2^112 to rebias the exponent (15 -> 127; subnormals come out right because float32
// subnormals are kept), and force an all-ones exponent for inf/NaN.
// @ts-ignore: decorator
@inline function f16Bits(h: v128): v128 {
  const em = v128.and(h, i32x4.splat(0x7fff));
  const infnan = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  const mag = f32x4.mul(i32x4.shl(em, 13), f32x4.splat(5.192296858534828e33)); // 2^112
  const fixed = v128.or(mag, v128.and(infnan, i32x4.splat(0x7f800000)));
  return v128.or(fixed, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

// @ts-ignore: decorator
@inline export function f16Even(v: v128): v128 {
  return f16Bits(v128.and(v, i32x4.splat(0xffff)));
}

// @ts-ignore: decorator
@inline export function f16Odd(v: v128): v128 {
  return f16Bits(i32x4.shr_u(v, 16));
}

/** Scalar BF16 -> f32. */
// @ts-ignore: decorator
@inline export function bf16(bits: u32): f32 {
  return reinterpret<f32>(bits << 16);
}

/**
 * Scalar F16 -> f32, the vector form's values without its float32 multiply: subnormal F16 as the integer times
 * 2^-24, the others by rebiasing the exponent (+112). A subnormal float32 operand (em << 13 of a subnormal F16, as
 * the vector form multiplies) costs a slow assist on this CPU, and the block scales of K-quants are often subnormal
 * F16 (Q6_K's d whenever a block's largest weight is below about 0.25): Q6_K's integer products took 1.8x the time.
 */
export function f16(h: u32): f32 {
  const em = h & 0x7fff;
  let f: f32 = em < 0x400 ? <f32><i32>em * <f32>5.9604644775390625e-8 : reinterpret<f32>((em << 13) + 0x38000000);
  if ((em & 0x7c00) == 0x7c00) f = reinterpret<f32>(reinterpret<u32>(f) | 0x7f800000);
  return reinterpret<f32>(reinterpret<u32>(f) | ((h & 0x8000) << 16));
}

/** Weight dtype codes shared with the host (DT in src/kernels/wasm/kernels.ts); 0 is F32. */
export const DT_BF16: i32 = 1;
export const DT_F16: i32 = 2;

/** x blocks of eight -> [x0 x2 x4 x6 | x1 x3 x5 x7]; the tail (n % 8) is copied as is. */
export function permute8(x: usize, xp: usize, n: i32): void {
  const n8 = n & ~7;
  for (let i = 0; i < n8; i += 8) {
    const p = x + (<usize>i << 2);
    const a = v128.load(p);
    const b = v128.load(p, 16);
    const q = xp + (<usize>i << 2);
    v128.store(q, v128.shuffle<u32>(a, b, 0, 2, 4, 6));
    v128.store(q, v128.shuffle<u32>(a, b, 1, 3, 5, 7), 16);
  }
  for (let i = n8; i < n; i++) store<f32>(xp + (<usize>i << 2), load<f32>(x + (<usize>i << 2)));
}

/** permute8 for T rows of n. */
export function permute8Rows(x: usize, xp: usize, n: i32, t: i32): void {
  const stride = <usize>n << 2;
  for (let r = 0; r < t; r++) permute8(x + <usize>r * stride, xp + <usize>r * stride, n);
}

// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}
