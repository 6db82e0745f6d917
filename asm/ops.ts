// Row normalisations, elementwise activations, softmax and RoPE, rows of width n. Operands are float32;
// each result is computed in float64 and rounded once (the model amplifies float32 rounding noise, and
// these kernels are cheap next to the matrix products).
import { ld2, ld64, st2, st64, sigmoid, sumSquares } from "./mem";
import { sigmoidPair } from "./exp2";
import { f16 } from "./widen";

/** out = x / sqrt(mean(x^2) + eps) * w, per row. In place allowed. */
export function rmsNorm(x: usize, w: usize, out: usize, n: i32, rows: i32, eps: f64): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    const inv = 1.0 / Math.sqrt(sumSquares(x + (<usize>o << 2), n) / <f64>n + eps);
    for (let i = 0; i < n; i++) st64(out, o + i, ld64(x, o + i) * inv * ld64(w, i));
  }
}

/** out = x / sqrt(mean(x^2) + eps) * w * silu(z), per row. In place allowed. */
export function gatedRmsNorm(x: usize, z: usize, w: usize, out: usize, n: i32, rows: i32, eps: f64): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    const inv = 1.0 / Math.sqrt(sumSquares(x + (<usize>o << 2), n) / <f64>n + eps);
    const iv = f64x2.splat(inv);
    let i = 0;
    for (; i + 2 <= n; i += 2) {
      const zi = ld2(z, o + i);
      st2(out, o + i, f64x2.mul(f64x2.mul(f64x2.mul(f64x2.mul(ld2(x, o + i), iv), ld2(w, i)), zi), sigmoidPair(zi)));
    }
    for (; i < n; i++) {
      const zi = ld64(z, o + i);
      st64(out, o + i, ld64(x, o + i) * inv * ld64(w, i) * zi * sigmoid(zi));
    }
  }
}

/** x = x / sqrt(sum(x^2) + eps) * scale, per row, in place. */
export function l2Normalize(x: usize, n: i32, rows: i32, eps: f64, scale: f64): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    const f = scale / Math.sqrt(sumSquares(x + (<usize>o << 2), n) + eps);
    for (let i = 0; i < n; i++) st64(x, o + i, ld64(x, o + i) * f);
  }
}

/** out = silu(gate) * up. */
export function siluMul(gate: usize, up: usize, out: usize, n: i32): void {
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const g = ld2(gate, i);
    st2(out, i, f64x2.mul(f64x2.mul(g, sigmoidPair(g)), ld2(up, i)));
  }
  for (; i < n; i++) {
    const g = ld64(gate, i);
    st64(out, i, g * sigmoid(g) * ld64(up, i));
  }
}

/** x = x * sigmoid(gate). */
export function sigmoidMul(x: usize, gate: usize, n: i32): void {
  let i = 0;
  for (; i + 2 <= n; i += 2) st2(x, i, f64x2.mul(ld2(x, i), sigmoidPair(ld2(gate, i))));
  for (; i < n; i++) st64(x, i, ld64(x, i) * sigmoid(ld64(gate, i)));
}

/** Per row, in place: x = exp(x - max) / sum(exp(x - max)). `tmp`: scratch [n] f64. */
export function softmax(x: usize, n: i32, rows: i32, tmp: usize): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, ld64(x, o + i));
    let sum = 0.0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp(ld64(x, o + i) - max);
      store<f64>(tmp + (<usize>i << 3), e);
      sum += e;
    }
    for (let i = 0; i < n; i++) st64(x, o + i, load<f64>(tmp + (<usize>i << 3)) / sum);
  }
}

/**
 * Rotate-half RoPE on the first rd dims of each head, in place. x [T, H, D]; cos, sin [T, rd / 2].
 * (x_i, x_{i+h}) = (x_i cos - x_{i+h} sin, x_{i+h} cos + x_i sin), h = rd / 2.
 */
export function rope(x: usize, t: i32, heads: i32, d: i32, rd: i32, cos: usize, sin: usize): void {
  const half = rd >> 1;
  for (let tk = 0; tk < t; tk++) {
    for (let h = 0; h < heads; h++) {
      const a = (tk * heads + h) * d;
      for (let i = 0; i < half; i++) {
        const c = ld64(cos, tk * half + i), s = ld64(sin, tk * half + i);
        const av = ld64(x, a + i), bv = ld64(x, a + half + i);
        st64(x, a + i, av * c - bv * s);
        st64(x, a + half + i, bv * c + av * s);
      }
    }
  }
}

/** out[i] = W[row, i] widened, for an embedding table of dtype code dt (0 F32, 1 BF16, 2 F16). */
export function embeddingRow(w: usize, row: i32, n: i32, dt: i32, out: usize): void {
  const es: usize = dt == 0 ? 4 : 2;
  const base = w + <usize>row * <usize>n * es;
  for (let i = 0; i < n; i++) {
    let v: f32;
    if (dt == 1) v = reinterpret<f32>(<u32>load<u16>(base + (<usize>i << 1)) << 16);
    else if (dt == 2) v = f16(<u32>load<u16>(base + (<usize>i << 1)));
    else v = load<f32>(base + (<usize>i << 2));
    store<f32>(out + (<usize>i << 2), v);
  }
}
