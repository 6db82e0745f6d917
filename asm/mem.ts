// Element access on raw float32 addresses.

// @ts-ignore: decorator
@inline export function ld(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline export function st(p: usize, i: i32, v: f32): void {
  store<f32>(p + (<usize>i << 2), v);
}

// @ts-ignore: decorator
@inline export function vld(p: usize, i: i32): v128 {
  return v128.load(p + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline export function vst(p: usize, i: i32, v: v128): void {
  v128.store(p + (<usize>i << 2), v);
}

// Element i as float64; store a float64 rounded once to float32.
// @ts-ignore: decorator
@inline export function ld64(p: usize, i: i32): f64 {
  return <f64>load<f32>(p + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline export function st64(p: usize, i: i32, v: f64): void {
  store<f32>(p + (<usize>i << 2), <f32>v);
}

// Elements i, i + 1 as an f64x2; an f64x2 stored as two float32s, each rounded once.
// @ts-ignore: decorator
@inline export function ld2(p: usize, i: i32): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(p + (<usize>i << 2)));
}

// @ts-ignore: decorator
@inline export function st2(p: usize, i: i32, v: v128): void {
  v128.store64_lane(p + (<usize>i << 2), f32x4.demote_f64x2_zero(v), 0);
}

// @ts-ignore: decorator
@inline export function sigmoid(a: f64): f64 {
  return 1.0 / (1.0 + Math.exp(-a));
}

/** An f32x4 as two f64x2: lanes 0, 1 (promoteLo) and lanes 2, 3 (promoteHi). */
// @ts-ignore: decorator
@inline export function promoteLo(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}

// @ts-ignore: decorator
@inline export function promoteHi(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
}

/** Four f32 lanes added into a pair of f64 accumulators (reductions keep float64 sums: the model
 * amplifies float32 summation noise, and these reductions are cheap next to the weight streaming). */
// @ts-ignore: decorator
@inline export function widenSum(acc: v128, v: v128): v128 {
  return f64x2.add(f64x2.add(acc, f64x2.promote_low_f32x4(v)), f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
}

// @ts-ignore: decorator
@inline export function hsum64(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/** sum_i x[i]^2 over n floats (float64 sum). */
export function sumSquares(x: usize, n: i32): f64 {
  const n4 = n & ~3;
  let acc = f64x2.splat(0);
  for (let i = 0; i < n4; i += 4) {
    const v = vld(x, i);
    acc = widenSum(acc, f32x4.mul(v, v));
  }
  let s = hsum64(acc);
  for (let i = n4; i < n; i++) s += <f64>ld(x, i) * <f64>ld(x, i);
  return s;
}

/** sum_i a[i] b[i] over n floats (float64 sum). */
export function dot(a: usize, b: usize, n: i32): f64 {
  const n4 = n & ~3;
  let acc = f64x2.splat(0);
  for (let i = 0; i < n4; i += 4) acc = widenSum(acc, f32x4.mul(vld(a, i), vld(b, i)));
  let s = hsum64(acc);
  for (let i = n4; i < n; i++) s += <f64>ld(a, i) * <f64>ld(b, i);
  return s;
}

/** y[i] += a x[i] over n floats (each result rounded once from float64). */
export function axpy(a: f64, x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i++) st64(y, i, ld64(y, i) + a * ld64(x, i));
}

/** out[j] = x[rows[j]] for j < n, rows of `width` floats (rows: i32 indices). */
export function gatherRows(x: usize, width: i32, rows: usize, n: i32, out: usize): void {
  const bytes = <usize>width << 2;
  for (let j = 0; j < n; j++) memory.copy(out + <usize>j * bytes, x + <usize>load<i32>(rows + (<usize>j << 2)) * bytes, bytes);
}

/**
 * y[rows[j]] += a[j] x[j] for j < n in order (a repeated row accumulates), rows of `width` floats, each
 * result rounded once from float64 as axpy (four at a time in two f64x2 halves: the same bits).
 */
export function scatterAxpyRows(a: usize, x: usize, width: i32, rows: usize, n: i32, y: usize): void {
  const w4 = width & ~3;
  for (let j = 0; j < n; j++) {
    const s = ld64(a, j);
    const sv = f64x2.splat(s);
    const xr = x + <usize>(j * width) * 4;
    const yr = y + <usize>load<i32>(rows + (<usize>j << 2)) * (<usize>width << 2);
    for (let i = 0; i < w4; i += 4) {
      const xv = vld(xr, i), yv = vld(yr, i);
      const lo = f64x2.add(promoteLo(yv), f64x2.mul(sv, promoteLo(xv)));
      const hi = f64x2.add(promoteHi(yv), f64x2.mul(sv, promoteHi(xv)));
      vst(yr, i, v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5));
    }
    for (let i = w4; i < width; i++) st64(yr, i, ld64(yr, i) + s * ld64(xr, i));
  }
}

/** 1 when the n bytes at a and b are equal, else 0 (16 bytes a step). */
export function sameBytes(a: usize, b: usize, n: i32): i32 {
  const n16 = n & ~15;
  for (let i = 0; i < n16; i += 16) {
    if (!v128.all_true<i8>(i8x16.eq(v128.load(a + <usize>i), v128.load(b + <usize>i)))) return 0;
  }
  for (let i = n16; i < n; i++) if (load<u8>(a + <usize>i) != load<u8>(b + <usize>i)) return 0;
  return 1;
}

/** Copies n bytes from src to dst (memmove). */
export function copyBytes(dst: usize, src: usize, n: i32): void {
  memory.copy(dst, src, <usize>n);
}
