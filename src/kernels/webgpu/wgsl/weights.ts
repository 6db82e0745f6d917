/**
 * WGSL readers of a weight chunk (binding 2, raw words): `wv(r, i)`, value i of chunk row r as float32, for each
 * stored dtype. Quantized values follow src/io/ggml_quants.ts (ggml's dequantize_row_*), the block layouts
 * read byte by byte from the words (blocks are not 4-byte aligned). `p.cols` is the row length in values,
 * `p.rb` the row length in bytes.
 */
import type { WeightDType } from "../../types.js";

const BYTES = /* wgsl */ `
@group(0) @binding(2) var<storage, read> W: array<u32>;
fn wbyte(b: u32) -> u32 { return (W[b >> 2u] >> ((b & 3u) * 8u)) & 255u; }
fn whalf(b: u32) -> f32 { return unpack2x16float(wbyte(b) | (wbyte(b + 1u) << 8u)).x; }
fn wi8(b: u32) -> f32 { return f32(bitcast<i32>(wbyte(b) << 24u) >> 24u); }
fn wu32(b: u32) -> u32 { return wbyte(b) | (wbyte(b + 1u) << 8u) | (wbyte(b + 2u) << 16u) | (wbyte(b + 3u) << 24u); }
// The 6-bit scale (.x) and min (.y) of sub-block j of a Q4_K / Q5_K block whose 12 scale bytes start at o.
fn scale_min_k4(o: u32, j: u32) -> vec2<f32> {
  if (j < 4u) { return vec2<f32>(f32(wbyte(o + j) & 63u), f32(wbyte(o + j + 4u) & 63u)); }
  return vec2<f32>(f32((wbyte(o + j + 4u) & 15u) | ((wbyte(o + j - 4u) >> 6u) << 4u)),
                   f32((wbyte(o + j + 4u) >> 4u) | ((wbyte(o + j) >> 6u) << 4u)));
}`;

const READERS: Record<WeightDType, string> = {
  F32: `@group(0) @binding(2) var<storage, read> W: array<u32>;
fn wv(r: u32, i: u32) -> f32 { return bitcast<f32>(W[r * p.cols + i]); }`,
  F64: "", // uploaded as float32: same reader as F32
  BF16: `@group(0) @binding(2) var<storage, read> W: array<u32>;
fn wv(r: u32, i: u32) -> f32 {
  let e = r * p.cols + i;
  let w = W[e >> 1u];
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (e & 1u) == 1u));
}`,
  F16: `@group(0) @binding(2) var<storage, read> W: array<u32>;
fn wv(r: u32, i: u32) -> f32 {
  let e = r * p.cols + i;
  return unpack2x16float(W[e >> 1u])[e & 1u];
}`,
  Q8_0: `${BYTES}
fn wv(r: u32, i: u32) -> f32 {
  let o = r * p.rb + (i / 32u) * 34u;
  return wi8(o + 2u + i % 32u) * whalf(o);
}`,
  Q4_0: `${BYTES}
fn wv(r: u32, i: u32) -> f32 {
  let o = r * p.rb + (i / 32u) * 18u;
  let j = i % 32u;
  let q = wbyte(o + 2u + j % 16u);
  let n = select(q & 15u, q >> 4u, j >= 16u);
  return (f32(n) - 8.0) * whalf(o);
}`,
  Q4_1: `${BYTES}
fn wv(r: u32, i: u32) -> f32 {
  let o = r * p.rb + (i / 32u) * 20u;
  let j = i % 32u;
  let q = wbyte(o + 4u + j % 16u);
  let n = select(q & 15u, q >> 4u, j >= 16u);
  return f32(n) * whalf(o) + whalf(o + 2u);
}`,
  Q5_0: `${BYTES}
fn wv(r: u32, i: u32) -> f32 {
  let o = r * p.rb + (i / 32u) * 22u;
  let j = i % 32u;
  let qh = wu32(o + 2u);
  let q = wbyte(o + 6u + j % 16u);
  let n = select(q & 15u, q >> 4u, j >= 16u) | (((qh >> j) & 1u) << 4u);
  return (f32(n) - 16.0) * whalf(o);
}`,
  Q5_1: `${BYTES}
fn wv(r: u32, i: u32) -> f32 {
  let o = r * p.rb + (i / 32u) * 24u;
  let j = i % 32u;
  let qh = wu32(o + 4u);
  let q = wbyte(o + 8u + j % 16u);
  let n = select(q & 15u, q >> 4u, j >= 16u) | (((qh >> j) & 1u) << 4u);
  return f32(n) * whalf(o) + whalf(o + 2u);
}`,
  Q4_K: `${BYTES}
fn wv(r: u32, i: u32) -> f32 {
  let o = r * p.rb + (i / 256u) * 144u;
  let c = (i % 256u) / 64u;
  let l = i % 64u;
  let sm = scale_min_k4(o + 4u, 2u * c + l / 32u);
  let q = wbyte(o + 16u + 32u * c + l % 32u);
  let n = select(q & 15u, q >> 4u, l >= 32u);
  return (whalf(o) * sm.x) * f32(n) - whalf(o + 2u) * sm.y;
}`,
  Q5_K: `${BYTES}
fn wv(r: u32, i: u32) -> f32 {
  let o = r * p.rb + (i / 256u) * 176u;
  let c = (i % 256u) / 64u;
  let l = i % 64u;
  let sub = 2u * c + l / 32u;
  let sm = scale_min_k4(o + 4u, sub);
  let q = wbyte(o + 48u + 32u * c + l % 32u);
  let hi = (wbyte(o + 16u + l % 32u) >> sub) & 1u;
  let n = select(q & 15u, q >> 4u, l >= 32u) + 16u * hi;
  return (whalf(o) * sm.x) * f32(n) - whalf(o + 2u) * sm.y;
}`,
  Q6_K: `${BYTES}
fn wv(r: u32, i: u32) -> f32 {
  let o = r * p.rb + (i / 256u) * 210u;
  let h = (i % 256u) / 128u;
  let quarter = (i % 128u) / 32u;
  let l = i % 32u;
  let ql = wbyte(o + 64u * h + l + 32u * (quarter & 1u));
  let nib = select(ql & 15u, ql >> 4u, quarter >= 2u);
  let hb = (wbyte(o + 128u + 32u * h + l) >> (2u * quarter)) & 3u;
  let q = f32(nib | (hb << 4u)) - 32.0;
  let sc = wi8(o + 192u + 8u * h + l / 16u + 2u * quarter);
  return (whalf(o + 208u) * sc) * q;
}`,
};

/** The reader of weights stored as `dtype`. */
export function weightReader(dtype: WeightDType): string {
  return READERS[dtype === "F64" ? "F32" : dtype];
}
