/**
 * ggml's block layouts read one value at a time from its index (which byte, which bits, which scale), from the
 * documented layout alone: the independent reading the quantized-weight tests compare the code with.
 */
import { f16ToF32 } from "../../src/io/dtype.js";
import type { QuantDType } from "../../src/kernels/types.js";

/**
 * Value i of the block at b[o..] in parts: its quant q (offset subtracted: Q4_0 -8, Q5_0 -16, Q6_K -32), the
 * integer scale sc of its sub-block (K-quants: 6 bits; Q6_K: signed 8 bits; 1 for the others) and integer min mn
 * (Q4_K / Q5_K; else 0), the block's f16 scale d and second f16 dm (dmin of Q4_K / Q5_K, m of Q4_1 / Q5_1; else 0).
 * The value is d sc q (Q8_0, Q4_0, Q5_0, Q6_K), d q + dm (Q4_1, Q5_1), d sc q - dm mn (Q4_K, Q5_K).
 */
export function valueParts(dt: QuantDType, b: Uint8Array, o: number, i: number): { q: number; sc: number; mn: number; d: number; dm: number } {
  const h = (p: number) => f16ToF32(b[o + p] + 256 * b[o + p + 1]);
  const s8 = (v: number) => (v >= 128 ? v - 256 : v);
  if (dt === "Q8_0") return { q: s8(b[o + 2 + i]), sc: 1, mn: 0, d: h(0), dm: 0 };
  if (dt === "Q4_0") {
    const byte = b[o + 2 + (i % 16)];
    return { q: (i < 16 ? byte % 16 : Math.floor(byte / 16)) - 8, sc: 1, mn: 0, d: h(0), dm: 0 };
  }
  if (dt === "Q4_1" || dt === "Q5_0" || dt === "Q5_1") {
    // d, then m (Q4_1, Q5_1), then the 32-bit qh (Q5_*), then 16 bytes of nibbles.
    const qhAt = dt === "Q5_0" ? 2 : 4;
    const qsAt = dt === "Q4_1" ? 4 : dt === "Q5_0" ? 6 : 8;
    const byte = b[o + qsAt + (i % 16)];
    let q = i < 16 ? byte % 16 : Math.floor(byte / 16);
    if (dt !== "Q4_1") {
      const qh = b[o + qhAt] + 256 * b[o + qhAt + 1] + 65536 * b[o + qhAt + 2] + 16777216 * b[o + qhAt + 3];
      q += 16 * (Math.floor(qh / 2 ** i) % 2);
    }
    return dt === "Q5_0" ? { q: q - 16, sc: 1, mn: 0, d: h(0), dm: 0 } : { q, sc: 1, mn: 0, d: h(0), dm: h(2) };
  }
  if (dt === "Q4_K" || dt === "Q5_K") {
    const j = Math.floor(i / 32); // sub-block
    // The twelve scale bytes as 6-bit fields: scales of sub-blocks 0-3 and mins of 0-3 whole in the low
    // six bits of bytes 0-7; for 4-7, low four bits in byte 8+(j-4) (scale low nibble, min high nibble),
    // top two bits in the top bits of byte j-4 (scale) and byte j (min).
    const sc = (k: number) => b[o + 4 + k];
    let scale: number, min: number;
    if (j < 4) {
      scale = sc(j) % 64;
      min = sc(j + 4) % 64;
    } else {
      scale = (sc(j + 4) % 16) + 16 * Math.floor(sc(j - 4) / 64);
      min = Math.floor(sc(j + 4) / 16) + 16 * Math.floor(sc(j) / 64);
    }
    const qsAt = dt === "Q4_K" ? 16 : 48;
    const byte = b[o + qsAt + 32 * Math.floor(i / 64) + (i % 32)];
    let q = j % 2 === 0 ? byte % 16 : Math.floor(byte / 16);
    if (dt === "Q5_K" && Math.floor(b[o + 16 + (i % 32)] / 2 ** j) % 2 === 1) q += 16;
    return { q, sc: scale, mn: min, d: h(0), dm: h(2) };
  }
  // Q6_K: value i = 128 half + 32 quarter + l; scale index i / 16.
  const half = Math.floor(i / 128), quarter = Math.floor((i % 128) / 32), l = i % 32;
  const lowByte = b[o + 64 * half + 32 * (quarter % 2) + l];
  const low = quarter < 2 ? lowByte % 16 : Math.floor(lowByte / 16);
  const high = Math.floor(b[o + 128 + 32 * half + l] / 4 ** quarter) % 4;
  return { q: low + 16 * high - 32, sc: s8(b[o + 192 + Math.floor(i / 16)]), mn: 0, d: h(208), dm: 0 };
}
