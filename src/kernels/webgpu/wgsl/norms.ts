/** Row normalisations, one workgroup per row: RMSNorm, gated RMSNorm, L2 normalisation (sums of squares reduced in the workgroup). */
import { PRELUDE, WG } from "../device.js";

const SUM_SQUARES = /* wgsl */ `
var<workgroup> red: array<f32, ${WG}>;
fn row_sum_squares(base: u32, n: u32, lid: u32) -> f32 {
  var s = 0.0;
  for (var i = lid; i < n; i += ${WG}u) { let v = A[base + i]; s += v * v; }
  red[lid] = s;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}
fn silu(a: f32) -> f32 { return a / (1.0 + exp_f32(-a)); }
`;

const ROW = "let row = wid.x + wid.y * nwg.x;\n  if (row >= p.rows) { return; }";
const ENTRY = `@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32)`;

/** out = x / sqrt(mean(x^2) + eps) * w. */
export const RMS_NORM = /* wgsl */ `
struct P { x: u32, w: u32, out: u32, n: u32, rows: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${SUM_SQUARES}
${ENTRY} {
  ${ROW}
  let r = 1.0 / sqrt(row_sum_squares(p.x + row * p.n, p.n, lid) / f32(p.n) + p.eps);
  for (var i = lid; i < p.n; i += ${WG}u) { A[p.out + row * p.n + i] = A[p.x + row * p.n + i] * r * A[p.w + i]; }
}`;

/** out = x / sqrt(mean(x^2) + eps) * w * silu(z). */
export const GATED_RMS_NORM = /* wgsl */ `
struct P { x: u32, z: u32, w: u32, out: u32, n: u32, rows: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${SUM_SQUARES}
${ENTRY} {
  ${ROW}
  let r = 1.0 / sqrt(row_sum_squares(p.x + row * p.n, p.n, lid) / f32(p.n) + p.eps);
  for (var i = lid; i < p.n; i += ${WG}u) {
    A[p.out + row * p.n + i] = A[p.x + row * p.n + i] * r * A[p.w + i] * silu(A[p.z + row * p.n + i]);
  }
}`;

/** x = x / sqrt(sum(x^2) + eps) * scale. */
export const L2_NORMALIZE = /* wgsl */ `
struct P { x: u32, n: u32, rows: u32, eps: f32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${SUM_SQUARES}
${ENTRY} {
  ${ROW}
  let r = p.scale / sqrt(row_sum_squares(p.x + row * p.n, p.n, lid) + p.eps);
  for (var i = lid; i < p.n; i += ${WG}u) { A[p.x + row * p.n + i] *= r; }
}`;

/** Per row of width n: x = exp(x - max) / sum(exp(x - max)). */
export const SOFTMAX = /* wgsl */ `
struct P { x: u32, n: u32, rows: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
var<workgroup> red: array<f32, ${WG}>;
${ENTRY} {
  ${ROW}
  let base = p.x + row * p.n;
  var m = -3.4e38;
  for (var i = lid; i < p.n; i += ${WG}u) { m = max(m, A[base + i]); }
  red[lid] = m;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] = max(red[lid], red[lid + k]); }
    workgroupBarrier();
  }
  let mx = red[0];
  workgroupBarrier();
  var s = 0.0;
  for (var i = lid; i < p.n; i += ${WG}u) { let e = exp_f32(A[base + i] - mx); A[base + i] = e; s += e; }
  red[lid] = s;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { red[lid] += red[lid + k]; }
    workgroupBarrier();
  }
  let total = red[0];
  for (var i = lid; i < p.n; i += ${WG}u) { A[base + i] = A[base + i] / total; }
}`;
