/**
 * The gated delta rule by chunks (prefill), as src/kernels/ts/delta_rule.ts `deltaRuleChunked` (transformers'
 * torch_chunk_gated_delta_rule): one workgroup per value head, chunks of c <= 64 steps. Per chunk, with
 * G the cumulative log decay: A = (I + L)^-1 - I by forward substitution (workgroup memory, one thread per
 * column), U = (A + I) (beta v), W = (A + I) (beta exp(G) k), v' = U - W S0, o = exp(G) q S0 + (q k^T * decay) v',
 * S = exp(G_c) S0 + sum_j exp(G_c - G_j) k_j v'_j^T. U, W, v' and G live in a scratch area of the arena. Two
 * dispatches per chunk: the chunk's outputs (a workgroup per head), then the state (a thread per element).
 * (Mesa's llvmpipe gave wrong states for 128 x 128 heads when one workgroup also did the state update in a loop
 * of 256 x c steps per thread, from c = 58 on; spread over threads it is exact.)
 */
import { PRELUDE, WG } from "../device.js";

/** The largest chunk: one forward-substitution column per thread. */
export const MAX_CHUNK = WG;

export const DELTA_RULE_CHUNKED = /* wgsl */ `
struct P { q: u32, k: u32, v: u32, g: u32, beta: u32, st: u32, out: u32, sc: u32, T: u32, Hk: u32, Hv: u32, dk: u32, dv: u32, C: u32, t0: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
const M = ${MAX_CHUNK}u;
var<workgroup> Am: array<f32, ${MAX_CHUNK * MAX_CHUNK}>;
var<workgroup> G: array<f32, ${MAX_CHUNK}>;
fn kq(base: u32, t: u32, kh: u32) -> u32 { return base + (t * p.Hk + kh) * p.dk; }
fn sync() { storageBarrier(); workgroupBarrier(); }
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let kh = h / (p.Hv / p.Hk);
  let dk = p.dk;
  let dv = p.dv;
  let S = p.st + h * dk * dv;
  let U = p.sc + h * p.C * (2u * dv + dk + 1u);
  let W = U + p.C * dv;
  let VN = W + p.C * dk;
  let GS = VN + p.C * dv;
  {
    let t0 = p.t0;
    let c = min(p.C, p.T - t0);
    if (lid == 0u) {
      var acc = 0.0;
      for (var i = 0u; i < c; i++) { acc += A[p.g + (t0 + i) * p.Hv + h]; G[i] = acc; }
    }
    workgroupBarrier();
    // A <- -L: -beta_i k_i.k_j exp(G_i - G_j) below the diagonal.
    for (var idx = lid; idx < c * c; idx += ${WG}u) {
      let i = idx / c;
      let j = idx % c;
      var val = 0.0;
      if (j < i) {
        var dot = 0.0;
        let ki = kq(p.k, t0 + i, kh);
        let kj = kq(p.k, t0 + j, kh);
        for (var d = 0u; d < dk; d++) { dot += A[ki + d] * A[kj + d]; }
        val = -A[p.beta + (t0 + i) * p.Hv + h] * dot * exp_f32(G[i] - G[j]);
      }
      Am[i * M + j] = val;
    }
    workgroupBarrier();
    // Forward substitution: row i <- row i + row i @ A[:i, :i] (rows above final; row i's own old values).
    for (var i = 1u; i < c; i++) {
      var nv = 0.0;
      if (lid < i) {
        nv = Am[i * M + lid];
        for (var m = lid + 1u; m < i; m++) { nv += Am[i * M + m] * Am[m * M + lid]; }
      }
      workgroupBarrier();
      if (lid < i) { Am[i * M + lid] = nv; }
      workgroupBarrier();
    }
    // U = (A + I) beta v;  W = (A + I) beta exp(G) k.
    for (var idx = lid; idx < c * dv; idx += ${WG}u) {
      let i = idx / dv;
      let e = idx % dv;
      var s = A[p.beta + (t0 + i) * p.Hv + h] * A[p.v + ((t0 + i) * p.Hv + h) * dv + e];
      for (var j = 0u; j < i; j++) { s += Am[i * M + j] * A[p.beta + (t0 + j) * p.Hv + h] * A[p.v + ((t0 + j) * p.Hv + h) * dv + e]; }
      A[U + i * dv + e] = s;
    }
    for (var idx = lid; idx < c * dk; idx += ${WG}u) {
      let i = idx / dk;
      let d = idx % dk;
      var s = A[p.beta + (t0 + i) * p.Hv + h] * exp_f32(G[i]) * A[kq(p.k, t0 + i, kh) + d];
      for (var j = 0u; j < i; j++) { s += Am[i * M + j] * A[p.beta + (t0 + j) * p.Hv + h] * exp_f32(G[j]) * A[kq(p.k, t0 + j, kh) + d]; }
      A[W + i * dk + d] = s;
    }
    sync();
    // v' = U - W S0.
    for (var idx = lid; idx < c * dv; idx += ${WG}u) {
      let i = idx / dv;
      let e = idx % dv;
      var s = A[U + i * dv + e];
      for (var d = 0u; d < dk; d++) { s -= A[W + i * dk + d] * A[S + d * dv + e]; }
      A[VN + i * dv + e] = s;
    }
    // Am <- (q_i . k_j) exp(G_i - G_j) for j <= i.
    for (var idx = lid; idx < c * c; idx += ${WG}u) {
      let i = idx / c;
      let j = idx % c;
      var val = 0.0;
      if (j <= i) {
        var dot = 0.0;
        let qi = kq(p.q, t0 + i, kh);
        let kj = kq(p.k, t0 + j, kh);
        for (var d = 0u; d < dk; d++) { dot += A[qi + d] * A[kj + d]; }
        val = dot * exp_f32(G[i] - G[j]);
      }
      Am[i * M + j] = val;
    }
    sync();
    // o_i = exp(G_i) q_i S0 + sum_{j <= i} Am[i, j] v'_j.
    for (var idx = lid; idx < c * dv; idx += ${WG}u) {
      let i = idx / dv;
      let e = idx % dv;
      let qi = kq(p.q, t0 + i, kh);
      var s = 0.0;
      for (var d = 0u; d < dk; d++) { s += A[qi + d] * A[S + d * dv + e]; }
      s *= exp_f32(G[i]);
      for (var j = 0u; j <= i; j++) { s += Am[i * M + j] * A[VN + j * dv + e]; }
      A[p.out + ((t0 + i) * p.Hv + h) * dv + e] = s;
    }
    // The cumulative decays for the state update (the next dispatch).
    if (lid == 0u) {
      for (var i = 0u; i < c; i++) { A[GS + i] = G[i]; }
    }
  }
}`;

/**
 * The chunk's state update, one thread per state element (h, d, e):
 * S = exp(G_c) S0 + sum_j exp(G_c - G_j) k_j v'_j^T, reading v' and G from the scratch area.
 */
export const DELTA_RULE_CHUNK_STATE = /* wgsl */ `
struct P { k: u32, st: u32, sc: u32, T: u32, Hk: u32, Hv: u32, dk: u32, dv: u32, C: u32, t0: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idx = flat(gid, nwg);
  if (idx >= p.Hv * p.dk * p.dv) { return; }
  let h = idx / (p.dk * p.dv);
  let d = (idx / p.dv) % p.dk;
  let e = idx % p.dv;
  let kh = h / (p.Hv / p.Hk);
  let c = min(p.C, p.T - p.t0);
  let U = p.sc + h * p.C * (2u * p.dv + p.dk + 1u);
  let VN = U + p.C * (p.dv + p.dk);
  let GS = VN + p.C * p.dv;
  let gl = A[GS + c - 1u];
  var s = A[p.st + idx] * exp_f32(gl);
  for (var j = 0u; j < c; j++) {
    s += exp_f32(gl - A[GS + j]) * A[p.k + ((p.t0 + j) * p.Hk + kh) * p.dk + d] * A[VN + j * p.dv + e];
  }
  A[p.st + idx] = s;
}`;
