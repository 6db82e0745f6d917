/**
 * y[t, row0 + r] = sum_i W[r, i] x[t, i] over the rows r of one weight chunk, in two forms: a workgroup of 64
 * per (row, tile of 8 tokens), each thread summing a stride of i, then a tree reduction; or a thread per
 * (row, tile), summing the whole row. Both sum exact products in two floats (hi + lo) and round once at the
 * end, as the CPU backends' float64 sums do: a deep model amplifies the rounding of plain float32 sums past the
 * fixtures' tolerance. And the embedding row lookup.
 */
import type { WeightDType } from "../../types.js";
import { PRELUDE, WG } from "../device.js";
import { weightReader } from "./weights.js";

/** Tokens per workgroup (or thread) of the matrix product. */
export const TOKEN_TILE = 8;

/**
 * Double-float arithmetic: the exact product of two floats as hi + lo (Dekker's split) and the exact sum of two
 * (Knuth's two-sum). p.one (= 1) and p.zero (= 0) are unknown to the compiler: multiplying by one keeps it from
 * simplifying the error terms away, and a product's bits xor zero keep it from fusing the product into a sum
 * (llvmpipe compiles with fast math; a fused w * x + h breaks the two-sum).
 */
const DOUBLE_FLOAT = /* wgsl */ `
fn split(a: f32) -> vec2<f32> {
  let o = p.one;
  let c = (4097.0 * a) * o;
  let h = (c - (c - a) * o) * o;
  return vec2<f32>(h, (a - h) * o);
}
fn two_prod(a: f32, b: f32) -> vec2<f32> {
  let o = p.one;
  let pr = bitcast<f32>(bitcast<u32>(a * b) ^ p.zero);
  let sa = split(a);
  let sb = split(b);
  return vec2<f32>(pr, ((((sa.x * sb.x - pr) * o + sa.x * sb.y) * o + sa.y * sb.x) * o + sa.y * sb.y) * o);
}
// (hi, lo) + (b.x, b.y): hi + b.x exactly by two-sum, the low parts added in float.
fn df_add(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let o = p.one;
  let s = (a.x + b.x) * o;
  let bb = (s - a.x) * o;
  let e = ((a.x - (s - bb) * o) * o + (b.x - bb) * o) * o;
  return vec2<f32>(s, ((a.y + b.y) * o + e) * o);
}`;

const PARAMS = "struct P { x: u32, y: u32, T: u32, cols: u32, rb: u32, rows: u32, outDim: u32, row0: u32, one: f32, zero: u32 }";

export function linearShader(dtype: WeightDType): string {
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${weightReader(dtype)}
${DOUBLE_FLOAT}
const TT = ${TOKEN_TILE}u;
var<workgroup> red: array<vec2<f32>, ${TOKEN_TILE * WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                                       @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= p.rows) { return; }
  let t0 = wid.z * TT;
  let nt = min(TT, p.T - t0);
  var acc: array<vec2<f32>, ${TOKEN_TILE}>;
  for (var i = lid; i < p.cols; i += ${WG}u) {
    let w = wv(r, i);
    for (var t = 0u; t < nt; t++) { acc[t] = df_add(acc[t], two_prod(w, A[p.x + (t0 + t) * p.cols + i])); }
  }
  for (var t = 0u; t < TT; t++) { red[t * ${WG}u + lid] = acc[t]; }
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) {
      for (var t = 0u; t < TT; t++) { red[t * ${WG}u + lid] = df_add(red[t * ${WG}u + lid], red[t * ${WG}u + lid + s]); }
    }
    workgroupBarrier();
  }
  if (lid < nt) {
    let v = red[lid * ${WG}u];
    A[p.y + (t0 + lid) * p.outDim + p.row0 + r] = v.x + v.y;
  }
}`;
}

/**
 * The thread-per-row form: no workgroup memory, no barriers. On a CPU rasteriser (llvmpipe runs a workgroup's
 * threads as SIMD lanes) a workgroup per row pays its barriers and reduction on every row and is about 40x
 * slower; on a GPU, rows of many columns prefer the workgroup form.
 */
export function linearRowsShader(dtype: WeightDType): string {
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
${weightReader(dtype)}
${DOUBLE_FLOAT}
const TT = ${TOKEN_TILE}u;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let r = gid.x + gid.y * nwg.x * ${WG}u;
  if (r >= p.rows) { return; }
  let t0 = gid.z * TT;
  let nt = min(TT, p.T - t0);
  var acc: array<vec2<f32>, ${TOKEN_TILE}>;
  for (var i = 0u; i < p.cols; i++) {
    let w = wv(r, i);
    for (var t = 0u; t < nt; t++) { acc[t] = df_add(acc[t], two_prod(w, A[p.x + (t0 + t) * p.cols + i])); }
  }
  for (var t = 0u; t < nt; t++) { A[p.y + (t0 + t) * p.outDim + p.row0 + r] = acc[t].x + acc[t].y; }
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
