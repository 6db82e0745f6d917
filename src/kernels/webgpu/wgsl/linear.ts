/**
 * y[t, row0 + r] = sum_i W[r, i] x[t, i] over the rows r of one weight chunk: one workgroup of 64 per (row,
 * tile of 8 tokens), each thread summing a stride of i, then a tree reduction. And the embedding row lookup.
 */
import type { WeightDType } from "../../types.js";
import { PRELUDE, WG } from "../device.js";
import { weightReader } from "./weights.js";

/** Tokens per workgroup of the matrix product. */
export const TOKEN_TILE = 8;

export function linearShader(dtype: WeightDType): string {
  return /* wgsl */ `
struct P { x: u32, y: u32, T: u32, cols: u32, rb: u32, rows: u32, outDim: u32, row0: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${weightReader(dtype)}
const TT = ${TOKEN_TILE}u;
var<workgroup> red: array<f32, ${TOKEN_TILE * WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                       @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let t0 = wid.z * TT;
  let nt = min(TT, p.T - t0);
  var acc: array<f32, ${TOKEN_TILE}>;
  for (var i = lid; i < p.cols; i += ${WG}u) {
    let w = wv(r, i);
    for (var t = 0u; t < nt; t++) { acc[t] += w * A[p.x + (t0 + t) * p.cols + i]; }
  }
  for (var t = 0u; t < TT; t++) { red[t * ${WG}u + lid] = acc[t]; }
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) {
      for (var t = 0u; t < TT; t++) { red[t * ${WG}u + lid] += red[t * ${WG}u + lid + s]; }
    }
    workgroupBarrier();
  }
  if (lid < nt) { A[p.y + (t0 + lid) * p.outDim + p.row0 + r] = red[lid * ${WG}u]; }
}`;
}

/** out[i] = W[r, i] for one row r of a chunk. */
export function embeddingShader(dtype: WeightDType): string {
  return /* wgsl */ `
struct P { out: u32, r: u32, cols: u32, rb: u32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${weightReader(dtype)}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.cols) { A[p.out + i] = wv(p.r, i); }
}`;
}
