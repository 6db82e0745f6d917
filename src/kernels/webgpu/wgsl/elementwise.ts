/** Elementwise kernels, one thread per element: activations, residual adds, rotary embedding, DeltaNet's gates. */
import { PRELUDE, WG } from "../device.js";

const ENTRY = `@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>)`;
const FNS = /* wgsl */ `
fn sigmoid(a: f32) -> f32 { return 1.0 / (1.0 + exp_f32(-a)); }
fn silu(a: f32) -> f32 { return a / (1.0 + exp_f32(-a)); }
fn softplus(a: f32) -> f32 { return select(log(1.0 + exp_f32(a)), a, a > 20.0); }
`;

/** out = silu(gate) * up. */
export const SILU_MUL = /* wgsl */ `
struct P { gate: u32, up: u32, out: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}${FNS}
${ENTRY} {
  let i = flat(gid, nwg);
  if (i < p.n) { A[p.out + i] = silu(A[p.gate + i]) * A[p.up + i]; }
}`;

/** x = x * sigmoid(gate). */
export const SIGMOID_MUL = /* wgsl */ `
struct P { x: u32, gate: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}${FNS}
${ENTRY} {
  let i = flat(gid, nwg);
  if (i < p.n) { A[p.x + i] = A[p.x + i] * sigmoid(A[p.gate + i]); }
}`;

/**
 * y[i] += a x[i % period] over n elements of y (period = n: a plain axpy; period < n: a row added to every row,
 * as a bias). With `a_at` set, a is read from the arena at a_at (a weight computed on the device).
 */
export const AXPY = /* wgsl */ `
struct P { x: u32, y: u32, n: u32, period: u32, a: f32, a_at: u32, has_a_at: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${ENTRY} {
  let i = flat(gid, nwg);
  if (i < p.n) {
    let a = select(p.a, A[p.a_at], p.has_a_at == 1u);
    A[p.y + i] = A[p.y + i] + a * A[p.x + i % p.period];
  }
}`;

/**
 * The residual stream in two floats (hi + lo, |lo| <= ulp(hi) / 2): (hi, lo) += a x by an exact two-sum, so
 * sums along the depth keep about 48 bits as the CPU backends' float64 residual does.
 */
export const AXPY_DOUBLE = /* wgsl */ `
struct P { x: u32, hi: u32, lo: u32, n: u32, a: f32, a_at: u32, has_a_at: u32, one: f32, zero: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${ENTRY} {
  let i = flat(gid, nwg);
  if (i < p.n) {
    // Every rounding step goes through a multiplication by p.one (1, unknown to the compiler), so that no
    // algebraic simplification (GLSL drivers may reassociate) cancels the error terms; p.zero (= 0) likewise.
    let o = p.one;
    let a = select(p.a, A[p.a_at], p.has_a_at == 1u);
    let b = bitcast<f32>(bitcast<u32>(a * A[p.x + i]) ^ p.zero); // not fused into the sum below
    let h = A[p.hi + i];
    let s = (h + b) * o;
    let bb = (s - h) * o;
    let err = ((h - (s - bb) * o) * o) + ((b - bb) * o);
    let lo = (A[p.lo + i] + err) * o;
    let hi = (s + lo) * o;
    A[p.hi + i] = hi;
    A[p.lo + i] = (lo - (hi - s) * o) * o;
  }
}`;

/** Rotate-half RoPE on the first rd dims of each head, in place: x [T, H, d], cos/sin [T, rd/2]. One thread per pair. */
export const ROPE = /* wgsl */ `
struct P { x: u32, cos: u32, sin: u32, T: u32, H: u32, d: u32, half: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${ENTRY} {
  let idx = flat(gid, nwg);
  if (idx >= p.T * p.H * p.half) { return; }
  let i = idx % p.half;
  let th = idx / p.half;
  let t = th / p.H;
  let base = p.x + th * p.d;
  let c = A[p.cos + t * p.half + i];
  let s = A[p.sin + t * p.half + i];
  let a = A[base + i];
  let b = A[base + i + p.half];
  A[base + i] = a * c - b * s;
  A[base + i + p.half] = b * c + a * s;
}`;

/** DeltaNet's gates per (token, value head): beta = sigmoid(b), g = -exp(A_log[h]) softplus(a + dtBias[h]). */
export const GATES = /* wgsl */ `
struct P { b: u32, a: u32, A_log: u32, dtBias: u32, beta: u32, g: u32, n: u32, Hv: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}${FNS}
${ENTRY} {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let h = i % p.Hv;
  let bv = A[p.b + i];
  let av = A[p.a + i];
  A[p.beta + i] = sigmoid(bv);
  A[p.g + i] = -exp_f32(A[p.A_log + h]) * softplus(av + A[p.dtBias + h]);
}`;

/** A strided block copy: dst[d0 + r ds1 + h ds2 + i] = src[s0 + r ss1 + h ss2 + i], r < R, h < Hb, i < width. */
export const COPY = /* wgsl */ `
struct P { src: u32, dst: u32, R: u32, Hb: u32, width: u32, ss1: u32, ss2: u32, ds1: u32, ds2: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${ENTRY} {
  let idx = flat(gid, nwg);
  if (idx >= p.R * p.Hb * p.width) { return; }
  let i = idx % p.width;
  let h = (idx / p.width) % p.Hb;
  let r = idx / (p.width * p.Hb);
  A[p.dst + r * p.ds1 + h * p.ds2 + i] = A[p.src + r * p.ss1 + h * p.ss2 + i];
}`;

/** Rows by index: dst[j] = src[idx[j]] (rows of width w; idx holds integer bits). */
export const GATHER = /* wgsl */ `
struct P { src: u32, idx: u32, dst: u32, n: u32, w: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${ENTRY} {
  let e = flat(gid, nwg);
  if (e >= p.n * p.w) { return; }
  let j = e / p.w;
  let row = bitcast<u32>(A[p.idx + j]);
  A[p.dst + e] = A[p.src + row * p.w + e % p.w];
}`;

/**
 * Weighted rows added back by index: dst[idx[j]] += weight[wi[j]] src[j] for j < n, rows of width w. Runs one
 * thread per (destination row, column) and walks the n sources in order, so rows sharing a destination add in
 * a fixed order without atomics.
 */
export const SCATTER_ADD = /* wgsl */ `
struct P { src: u32, idx: u32, weight: u32, wi: u32, dst: u32, n: u32, w: u32, rows: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${ENTRY} {
  let e = flat(gid, nwg);
  if (e >= p.rows * p.w) { return; }
  let row = e / p.w;
  let c = e % p.w;
  var acc = A[p.dst + e];
  for (var j = 0u; j < p.n; j++) {
    if (bitcast<u32>(A[p.idx + j]) == row) { acc += A[p.weight + bitcast<u32>(A[p.wi + j])] * A[p.src + j * p.w + c]; }
  }
  A[p.dst + e] = acc;
}`;

/** out = sigmoid(x) (in place allowed). */
export const SIGMOID = /* wgsl */ `
struct P { x: u32, out: u32, n: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}${FNS}
${ENTRY} {
  let i = flat(gid, nwg);
  if (i < p.n) { A[p.out + i] = sigmoid(A[p.x + i]); }
}`;

/** x += c. */
export const ADD_SCALAR = /* wgsl */ `
struct P { x: u32, n: u32, c: f32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${ENTRY} {
  let i = flat(gid, nwg);
  if (i < p.n) { A[p.x + i] = A[p.x + i] + p.c; }
}`;

/** y[i] += a[i / width] x[i]: a scalar per row. */
export const AXPY_ROWS = /* wgsl */ `
struct P { a: u32, x: u32, y: u32, n: u32, width: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${ENTRY} {
  let i = flat(gid, nwg);
  if (i < p.n) { A[p.y + i] = A[p.y + i] + A[p.a + i / p.width] * A[p.x + i]; }
}`;

/**
 * One expert's weight per token from the router's output: coef[t] = sum_j weights[t, j] where experts[t, j] = e
 * (0 when the token did not choose e). Expert ids as integer bits.
 */
export const EXPERT_COEF = /* wgsl */ `
struct P { experts: u32, weights: u32, coef: u32, T: u32, k: u32, e: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${ENTRY} {
  let t = flat(gid, nwg);
  if (t >= p.T) { return; }
  var c = 0.0;
  for (var j = 0u; j < p.k; j++) {
    if (bitcast<u32>(A[p.experts + t * p.k + j]) == p.e) { c += A[p.weights + t * p.k + j]; }
  }
  A[p.coef + t] = c;
}`;

/** y[i] += a[i / width] x[i] where a[i / width] != 0 (an expert's output on the tokens that chose it). */
export const AXPY_ROWS_NONZERO = /* wgsl */ `
struct P { a: u32, x: u32, y: u32, n: u32, width: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${ENTRY} {
  let i = flat(gid, nwg);
  if (i >= p.n) { return; }
  let a = A[p.a + i / p.width];
  if (a != 0.0) { A[p.y + i] = A[p.y + i] + a * A[p.x + i]; }
}`;
