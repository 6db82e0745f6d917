/**
 * Causal GQA attention, one workgroup per (query head, token): scores into a scratch row of the arena, max and
 * sum reduced in the workgroup, then each thread forms output dims as sum_j p_j v_j.
 */
import { PRELUDE, WG } from "../device.js";

export const ATTENTION = /* wgsl */ `
struct P { q: u32, k: u32, v: u32, out: u32, s: u32, T: u32, L: u32, H: u32, Hkv: u32, d: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let t = wid.y;
  let last = p.L - p.T + t;
  let kvh = h / (p.H / p.Hkv);
  let qb = p.q + (t * p.H + h) * p.d;
  let sb = p.s + (t * p.H + h) * p.L;
  var m = -3.0e38;
  for (var j = lid; j <= last; j += ${WG}u) {
    let kb = p.k + (j * p.Hkv + kvh) * p.d;
    var dot = 0.0;
    for (var i = 0u; i < p.d; i++) { dot += A[qb + i] * A[kb + i]; }
    let sc = dot * p.scale;
    A[sb + j] = sc;
    m = max(m, sc);
  }
  red[lid] = m;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] = max(red[lid], red[lid + k]); }
    workgroupBarrier();
  }
  let mx = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = lid; j <= last; j += ${WG}u) {
    let e = exp_f32(A[sb + j] - mx);
    A[sb + j] = e;
    sum += e;
  }
  red[lid] = sum;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  let total = red[0];
  storageBarrier();
  workgroupBarrier();
  let ob = p.out + (t * p.H + h) * p.d;
  for (var i = lid; i < p.d; i += ${WG}u) {
    var acc = 0.0;
    for (var j = 0u; j <= last; j++) { acc += A[sb + j] * A[p.v + (j * p.Hkv + kvh) * p.d + i]; }
    A[ob + i] = acc / total;
  }
}`;

/** Depthwise causal conv1d with carried state, then SiLU: one thread per channel (state [C, K-1], K <= 16). */
export const CAUSAL_CONV1D = /* wgsl */ `
struct P { x: u32, w: u32, st: u32, out: u32, T: u32, C: u32, K: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
fn at(r: u32, c: u32) -> f32 {
  let P1 = p.K - 1u;
  if (r < P1) { return A[p.st + c * P1 + r]; }
  return A[p.x + (r - P1) * p.C + c];
}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let c = flat(gid, nwg);
  if (c >= p.C) { return; }
  for (var t = 0u; t < p.T; t++) {
    var acc = 0.0;
    for (var j = 0u; j < p.K; j++) { acc += A[p.w + c * p.K + j] * at(t + j, c); }
    A[p.out + t * p.C + c] = acc / (1.0 + exp_f32(-acc));
  }
  let P1 = p.K - 1u;
  var next: array<f32, 16>;
  for (var r = 0u; r < P1; r++) { next[r] = at(p.T + r, c); }
  for (var r = 0u; r < P1; r++) { A[p.st + c * P1 + r] = next[r]; }
}`;

/**
 * The gated delta rule step by step, one thread per (value head h, state column j): column j of S [dk, dv]
 * evolves on its own (S = S exp_f32(g); S += k (beta (v - S^T k))^T touches column j through v_j and S[:, j] only).
 */
export const DELTA_RULE = /* wgsl */ `
struct P { q: u32, k: u32, v: u32, g: u32, beta: u32, st: u32, out: u32, T: u32, Hk: u32, Hv: u32, dk: u32, dv: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat(gid, nwg);
  if (idx >= p.Hv * p.dv) { return; }
  let h = idx / p.dv;
  let j = idx % p.dv;
  let kh = h / (p.Hv / p.Hk);
  let S = p.st + h * p.dk * p.dv + j;
  for (var t = 0u; t < p.T; t++) {
    let base = (t * p.Hk + kh) * p.dk;
    let decay = exp_f32(A[p.g + t * p.Hv + h]);
    let b = A[p.beta + t * p.Hv + h];
    var kv = 0.0;
    for (var i = 0u; i < p.dk; i++) {
      let s = A[S + i * p.dv] * decay;
      A[S + i * p.dv] = s;
      kv += s * A[p.k + base + i];
    }
    let delta = b * (A[p.v + (t * p.Hv + h) * p.dv + j] - kv);
    var o = 0.0;
    for (var i = 0u; i < p.dk; i++) {
      let s = A[S + i * p.dv] + A[p.k + base + i] * delta;
      A[S + i * p.dv] = s;
      o += s * A[p.q + base + i];
    }
    A[p.out + (t * p.Hv + h) * p.dv + j] = o;
  }
}`;

/**
 * MoE routing, one thread per token: softmax over the experts, the k largest by (logit, lower id first), which
 * is the order of the probabilities (exp is monotonic), optionally renormalised. Expert ids stored as integer bits.
 */
export const ROUTER = /* wgsl */ `
struct P { logits: u32, experts: u32, weights: u32, T: u32, E: u32, k: u32, normalize: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = flat(gid, nwg);
  if (t >= p.T) { return; }
  let lb = p.logits + t * p.E;
  var mx = -3.0e38;
  for (var e = 0u; e < p.E; e++) { mx = max(mx, A[lb + e]); }
  var sum = 0.0;
  for (var e = 0u; e < p.E; e++) { sum += exp_f32(A[lb + e] - mx); }
  var prevL = 3.4e38;
  var prevE = -1;
  var chosen = 0.0;
  for (var j = 0u; j < p.k; j++) {
    var best = -1;
    var bestL = -3.4e38;
    for (var e = 0u; e < p.E; e++) {
      let l = A[lb + e];
      let after = l < prevL || (l == prevL && i32(e) > prevE);
      if (after && (best < 0 || l > bestL)) { best = i32(e); bestL = l; }
    }
    prevL = bestL;
    prevE = best;
    let pr = exp_f32(bestL - mx) / sum;
    A[p.experts + t * p.k + j] = bitcast<f32>(best);
    A[p.weights + t * p.k + j] = pr;
    chosen += pr;
  }
  if (p.normalize == 1u) {
    for (var j = 0u; j < p.k; j++) { A[p.weights + t * p.k + j] /= chosen; }
  }
}`;
