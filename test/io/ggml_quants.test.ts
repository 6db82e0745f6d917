/**
 * ggml block formats against an independent reading of their documented layout.
 *
 * The reference below decodes one value at a time from its index (which byte, which bits, which scale),
 * in float64, and rounds once to float32. That equals ggml's float32 sequence of operations bit for bit
 * because every intermediate product in ggml's order is exact in float32 (an f16 scale has 11 significant
 * bits, a 6-bit scale 6, a quant 4-6: at most 23 bits) so ggml rounds only once, at its last operation;
 * for Q4_K / Q5_K (Q4_1 / Q5_1) that last operation is a difference (a sum), which float64 computes exactly
 * when the two scales' exponents are not too far apart (the random blocks keep them within 2^-6..2^6).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { f16ToF32, f32ToF16 } from "../../src/io/dtype.js";
import { dequantizeRow, nearestInt, QUANT_DTYPES, quantBlock, quantizeRow } from "../../src/io/ggml_quants.js";
import type { QuantDType } from "../../src/kernels/types.js";
import { valueParts } from "../helpers/ggml_layout.js";
import { rng } from "../helpers/random.js";

/** Value i of the block at b[o..] from the layout alone (float64, one rounding). */
function refValue(dt: QuantDType, b: Uint8Array, o: number, i: number): number {
  const { q, sc, mn, d, dm } = valueParts(dt, b, o, i);
  if (dt === "Q4_1" || dt === "Q5_1") return Math.fround(d * q + dm);
  if (dt === "Q4_K" || dt === "Q5_K") return Math.fround(d * sc * q - dm * mn);
  return Math.fround(d * sc * q);
}

/** An f16 (bits) with exponent in 2^-6..2^6, random sign unless positive. */
function f16Mid(rand: () => number, positive = false): number {
  const e = 15 - 6 + Math.floor(rand() * 13);
  return (positive || rand() < 0.5 ? 0 : 0x8000) | (e << 10) | Math.floor(rand() * 1024);
}

/** A random block: random bytes, scales in the middle of the f16 range. */
function randomBlock(dt: QuantDType, rand: () => number): Uint8Array {
  const b = Uint8Array.from({ length: quantBlock(dt).typeSize }, () => Math.floor(rand() * 256));
  const put = (p: number, v: number) => ((b[p] = v & 0xff), (b[p + 1] = v >> 8));
  if (dt === "Q6_K") put(208, f16Mid(rand));
  else put(0, f16Mid(rand, dt === "Q4_K" || dt === "Q5_K"));
  if (dt === "Q4_K" || dt === "Q5_K") put(2, f16Mid(rand, true));
  if (dt === "Q4_1" || dt === "Q5_1") put(2, f16Mid(rand));
  return b;
}

const bits = (v: ArrayLike<number>) => Array.from(new Uint32Array(Float32Array.from(v).buffer));

describe("dequantization", () => {
  it("is bit for bit the layout's values, for every type", () => {
    for (const dt of QUANT_DTYPES) {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 3 }), fc.integer(), (blocks, seed) => {
          const rand = rng(seed);
          const { blockSize, typeSize } = quantBlock(dt);
          const bytes = new Uint8Array(blocks * typeSize);
          for (let k = 0; k < blocks; k++) bytes.set(randomBlock(dt, rand), k * typeSize);
          const got = new Float32Array(blocks * blockSize);
          dequantizeRow(dt, bytes, 0, got, got.length);
          const want = Array.from({ length: got.length }, (_, i) =>
            refValue(dt, bytes, Math.floor(i / blockSize) * typeSize, i % blockSize),
          );
          expect(bits(got)).toEqual(bits(want));
        }),
        { numRuns: 25 },
      );
    }
  });

  it("hand-built Q4_K block: sub-block j has scale j+1 and min j, quants count up", () => {
    const b = new Uint8Array(144);
    b.set([0x00, 0x3c], 0); // d = 1
    b.set([0x00, 0x38], 2); // dmin = 0.5
    // Scales 1..8 and mins 0..7, packed by hand: j < 4 whole; j >= 4 split into nibbles of bytes 8..11.
    b.set([1, 2, 3, 4, 0, 1, 2, 3, 0x45, 0x56, 0x67, 0x78], 4); // scale 5..8 = 0x5..0x8, min 4..7
    for (let l = 0; l < 32; l++) for (let c = 0; c < 4; c++) b[16 + 32 * c + l] = (l % 16) | ((15 - (l % 16)) << 4);
    const y = new Float32Array(256);
    dequantizeRow("Q4_K", b, 0, y, 256);
    for (let i = 0; i < 256; i++) {
      const j = Math.floor(i / 32), l = i % 32;
      const q = j % 2 === 0 ? l % 16 : 15 - (l % 16);
      expect(y[i]).toBe((j + 1) * q - 0.5 * j);
    }
  });

  it("hand-built Q4_K scales above 15 use the top bits of bytes 0-7", () => {
    const b = new Uint8Array(144);
    b.set([0x00, 0x3c], 0); // d = 1
    b.set([0x00, 0x3c], 2); // dmin = 1
    b[4 + 0] = 0xc0 | 1; // scale 0 = 1, top bits (3) go to scale 4
    b[4 + 4] = 0x40 | 2; // min 0 = 2, top bits (1) go to min 4
    b[4 + 8] = 0x25; // scale 4 low nibble 5, min 4 low nibble 2
    for (let k = 0; k < 128; k++) b[16 + k] = 0x11; // every quant 1
    const y = new Float32Array(256);
    dequantizeRow("Q4_K", b, 0, y, 256);
    expect(y[0]).toBe(1 * 1 - 2); // sub-block 0
    expect(y[128]).toBe((5 + 16 * 3) * 1 - (2 + 16 * 1)); // sub-block 4: scale 53, min 18
  });

  it("hand-built Q6_K block: quarter q of each half takes ql nibbles and qh bit pairs in order", () => {
    const b = new Uint8Array(210);
    b.set([0x00, 0x3c], 208); // d = 1
    for (let k = 0; k < 16; k++) b[192 + k] = k % 2 === 0 ? 1 : 0xff; // scales 1, -1, 1, -1, ...
    for (let l = 0; l < 32; l++) {
      for (const hf of [0, 1]) {
        b[64 * hf + l] = 0x21; // quarter 0: 1, quarter 2: 2
        b[64 * hf + 32 + l] = 0x43; // quarter 1: 3, quarter 3: 4
        b[128 + 32 * hf + l] = 0b11_10_01_00; // high bits 0, 1, 2, 3 for quarters 0..3
      }
    }
    const y = new Float32Array(256);
    dequantizeRow("Q6_K", b, 0, y, 256);
    const quarterQ = [1 + 0 - 32, 3 + 16 - 32, 2 + 32 - 32, 4 + 48 - 32];
    for (let i = 0; i < 256; i++) {
      const sc = Math.floor(i / 16) % 2 === 0 ? 1 : -1;
      expect(y[i]).toBe(sc * quarterQ[Math.floor((i % 128) / 32)]);
    }
  });

  it("hand-built Q5_K block: bit j of qh[l] adds 16 to value l of sub-block j", () => {
    const b = new Uint8Array(176);
    b.set([0x00, 0x3c], 0); // d = 1, dmin = 0
    b.set([1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1], 4); // every scale 1, every min 0
    for (let l = 0; l < 32; l++) b[16 + l] = 1 << (l % 8);
    for (let k = 0; k < 128; k++) b[48 + k] = 0x73; // low nibble 3, high 7
    const y = new Float32Array(256);
    dequantizeRow("Q5_K", b, 0, y, 256);
    for (let i = 0; i < 256; i++) {
      const j = Math.floor(i / 32), l = i % 32;
      expect(y[i]).toBe((j % 2 === 0 ? 3 : 7) + (l % 8 === j ? 16 : 0));
    }
  });
});

/** Normal-ish values (sum of uniforms) times a scale, with an occasional outlier. */
function sample(rand: () => number, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => {
    const g = (rand() + rand() + rand() + rand() - 2) * 1.7;
    return scale * (rand() < 0.01 ? 6 * g : g);
  });
}

function roundTrip(dt: QuantDType, x: Float32Array): Float32Array {
  const { blockSize, typeSize } = quantBlock(dt);
  const bytes = new Uint8Array((x.length / blockSize) * typeSize);
  quantizeRow(dt, x, 0, bytes, 0, x.length);
  const y = new Float32Array(x.length);
  dequantizeRow(dt, bytes, 0, y, x.length);
  return y;
}

describe("reference quantization", () => {
  it("nearest_int rounds half to even like the float32 trick it mirrors", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999999, 3.7, -3.7].map(nearestInt)).toEqual([0, 2, 2, 0, -2, 2, 4, -4]);
  });

  // RMS error relative to the values' RMS: a uniform quantizer of step s has RMS error s / sqrt(12); the
  // bounds are about 1.7x that for each type's step on these values (measured: Q8_0 0.008, Q4_0 0.12,
  // Q4_K 0.075, Q5_K 0.038, Q6_K 0.024 on a first run).
  const bound: Record<QuantDType, number> = { Q8_0: 0.015, Q4_0: 0.2, Q4_1: 0.15, Q5_0: 0.1, Q5_1: 0.08, Q4_K: 0.13, Q5_K: 0.065, Q6_K: 0.045 };
  it("round trip stays within each type's step", () => {
    for (const dt of QUANT_DTYPES) {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 3 }), fc.double({ min: 1e-3, max: 1e3, noNaN: true }), fc.integer(), (blocks, scale, seed) => {
          const x = sample(rng(seed), blocks * 256, scale);
          const y = roundTrip(dt, x);
          let se = 0, sx = 0;
          for (let i = 0; i < x.length; i++) {
            se += (x[i] - y[i]) ** 2;
            sx += x[i] ** 2;
          }
          expect(Math.sqrt(se / sx)).toBeLessThan(bound[dt]);
        }),
        { numRuns: 10 },
      );
    }
  });

  // Q8_0's grid is symmetric (-127..127 steps): half a step. Q4_0 (Q5_0) puts the largest magnitude at -8
  // (-16) steps and reaches only +7 (+15) on the other side: a value of the opposite sign near that magnitude
  // is clamped, one step.
  it("Q8_0 within half a step, Q4_0 and Q5_0 within one (step = amax / levels, its f16 rounding included)", () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const x = sample(rng(seed), 256, 0.02);
        for (const [dt, levels, steps] of [["Q8_0", 127, 0.5], ["Q4_0", 8, 1], ["Q5_0", 16, 1]] as const) {
          const y = roundTrip(dt, x);
          for (let k = 0; k < 256; k += 32) {
            let amax = 0;
            for (let i = k; i < k + 32; i++) amax = Math.max(amax, Math.abs(x[i]));
            // step amax/levels, rounded to f16 (relative 2^-11), over at most `levels` steps
            const step = amax / levels;
            for (let i = k; i < k + 32; i++) expect(Math.abs(x[i] - y[i])).toBeLessThanOrEqual(step * (steps + 1e-6) + levels * step * 2 ** -11);
          }
        }
      }),
      { numRuns: 20 },
    );
  });

  it("Q4_1 and Q5_1 (min + steps of (max - min) / levels) within half a step, f16 rounding of d and m included", () => {
    fc.assert(
      fc.property(fc.integer(), fc.double({ min: -1, max: 1, noNaN: true }), (seed, shift) => {
        const x = sample(rng(seed), 256, 0.02).map((v) => v + shift * 0.02);
        for (const [dt, levels] of [["Q4_1", 15], ["Q5_1", 31]] as const) {
          const y = roundTrip(dt, x);
          for (let k = 0; k < 256; k += 32) {
            let min = Infinity, max = -Infinity;
            for (let i = k; i < k + 32; i++) [min, max] = [Math.min(min, x[i]), Math.max(max, x[i])];
            const step = (max - min) / levels;
            const tol = step * (0.5 + 1e-6) + levels * step * 2 ** -11 + Math.abs(min) * 2 ** -11;
            for (let i = k; i < k + 32; i++) expect(Math.abs(x[i] - y[i])).toBeLessThanOrEqual(tol);
          }
        }
      }),
      { numRuns: 20 },
    );
  });

  it("Q8_0, Q4_0 and Q5_0 quantize their own dequantized values back to the same bytes", () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const x = sample(rng(seed), 256, 0.05);
        for (const dt of ["Q8_0", "Q4_0", "Q5_0"] as const) {
          const once = roundTrip(dt, x);
          expect(bits(roundTrip(dt, once))).toEqual(bits(once));
        }
      }),
      { numRuns: 20 },
    );
  });

  it("a constant block of 1 is exact in Q6_K: every sub-block scale -128, d = 2^-12, quants 0", () => {
    const x = new Float32Array(256).fill(1);
    const b = new Uint8Array(210);
    quantizeRow("Q6_K", x, 0, b, 0, 256);
    // make_qx_quants gives each group scale -1/32 (l = -32); iscale = -128 / (-1/32) = 4096.
    expect(b[208] | (b[209] << 8)).toBe(f32ToF16(2 ** -12));
    expect(Array.from(b.subarray(192, 208))).toEqual(new Array(16).fill(0x80));
    expect(Array.from(b.subarray(0, 192))).toEqual(new Array(192).fill(0));
    expect(Array.from(roundTrip("Q6_K", x))).toEqual(Array.from(x));
  });

  it("Q4_K of integer ramps 0..15: scales 63 over d = f16(1/63), mins 0, quants the integers", () => {
    const x = Float32Array.from({ length: 256 }, (_, i) => i % 16);
    const b = new Uint8Array(144);
    quantizeRow("Q4_K", x, 0, b, 0, 256);
    const d = f16ToF32(f32ToF16(Math.fround(1 / 63)));
    expect(b[0] | (b[1] << 8)).toBe(f32ToF16(Math.fround(1 / 63)));
    expect(b[2] | (b[3] << 8)).toBe(0); // dmin
    // Scales 0-3 in the low six bits of bytes 0-3, scales 4-7's top bits (3) above them, their low bits (15)
    // in the low nibbles of bytes 8-11; all mins 0.
    expect(Array.from(b.subarray(4, 16))).toEqual([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x0f, 0x0f, 0x0f, 0x0f]);
    const y = roundTrip("Q4_K", x);
    for (let i = 0; i < 256; i++) expect(y[i]).toBe(Math.fround(Math.fround(d * 63) * (i % 16)));
  });

  it("all-zero blocks: zero bytes, except Q4_0 / Q5_0: d = 0 / -8 = -0 (f16 0x8000) and quants at the offset 8 / 16", () => {
    for (const dt of QUANT_DTYPES) {
      const b = new Uint8Array(quantBlock(dt).typeSize * (256 / quantBlock(dt).blockSize)).fill(0xaa);
      quantizeRow(dt, new Float32Array(256), 0, b, 0, 256);
      if (dt === "Q4_0") for (let k = 0; k < 8; k++) expect(Array.from(b.subarray(18 * k, 18 * k + 18))).toEqual([0, 0x80, ...new Array(16).fill(0x88)]);
      else if (dt === "Q5_0") for (let k = 0; k < 8; k++) expect(Array.from(b.subarray(22 * k, 22 * k + 22))).toEqual([0, 0x80, 0xff, 0xff, 0xff, 0xff, ...new Array(16).fill(0)]);
      else expect(b.every((v) => v === 0)).toBe(true);
    }
  });

  it("refuses a non-finite value or a partial block with one line", () => {
    const x = new Float32Array(256);
    x[7] = NaN;
    expect(() => quantizeRow("Q8_0", x, 0, new Uint8Array(272), 0, 256)).toThrow(/cannot quantize NaN to Q8_0 \(value 7/);
    expect(() => quantizeRow("Q4_K", x, 0, new Uint8Array(272), 0, 100)).toThrow(/whole blocks of 256, got 100/);
  });
});
