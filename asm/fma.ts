// Multiply-add, a * b + c, per lane. The relaxed build (build/kernels-relaxed.wasm, compiled with
// `--enable relaxed-simd`) emits `relaxed_madd`, one fused instruction on a CPU with FMA (relaxed semantics
// let the engine fuse or not); the plain build multiplies, then adds.
//
// Where a * b is exact (a 16-bit weight times a float32 in float64: at most 11 + 24 significant bits), fused
// and unfused give the same bits, so the exact float64 kernels agree bit for bit across the two builds.

// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// @ts-ignore: decorator
@inline export function madd64(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f64x2.relaxed_madd(a, b, c);
  return f64x2.add(f64x2.mul(a, b), c);
}
