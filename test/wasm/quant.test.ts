/**
 * Quantized weights (ggml blocks) in every kernel that reads weights: the WASM kernels against the
 * TypeScript ones, and both against a float64 dot product over the dequantized values (which
 * `dequantizeRow` gives bit for bit as ggml; test/io/ggml_quants.test.ts checks that).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dequantizeRow, QUANT_DTYPES, quantBlock, quantizeRow, quantRowBytes } from "../../src/io/ggml_quants.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { HostKernels as Kernels, QuantDType, Weight } from "../../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/kernels.js";
import { PAGE } from "../../src/kernels/wasm/module.js";
import { rng, uniform } from "../helpers/random.js";

let one: WasmKernels; // exact sums
let fast: WasmKernels; // float32 sums
let two: WasmKernels; // exact sums, two threads, every product split
beforeAll(async () => {
  one = await createWasmKernels({ threads: 1 });
  fast = await createWasmKernels({ threads: 1, accumulate: "f32" });
  two = await createWasmKernels({ threads: 2, minParallelBytes: 0, maxInstanceBytes: 16 * PAGE });
});
afterAll(async () => {
  await one.close();
  await fast.close();
  await two.close();
});

/** A [rows, cols] weight of type dt in kernels k from random values (quantized with ggml's reference). */
function quantWeight(k: Kernels, dt: QuantDType, rows: number, cols: number, values: Float64Array): Weight {
  const w = k.allocWeight("w", dt, [rows, cols]);
  const rowBytes = quantRowBytes(dt, cols);
  const f32 = Float32Array.from(values);
  for (let r = 0; r < rows; r++) quantizeRow(dt, f32, r * cols, w.data as Uint8Array, r * rowBytes, cols);
  return w;
}

/** f16 fields (byte offsets) of each block: scales and mins. */
const SCALES: Record<QuantDType, number[]> = { Q8_0: [0], Q4_0: [0], Q5_0: [0], Q4_1: [0, 2], Q5_1: [0, 2], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208] };

/** A [rows, cols] weight of random blocks: random bytes, each f16 scale a random finite value of moderate size. */
function randomBlocks(k: Kernels, dt: QuantDType, rows: number, cols: number, rand: () => number): Weight {
  const w = k.allocWeight("w", dt, [rows, cols]);
  const b = w.data as Uint8Array;
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
  const { typeSize } = quantBlock(dt);
  for (let o = 0; o < b.length; o += typeSize) {
    for (const at of SCALES[dt]) {
      const h = (rand() < 0.5 ? 0x8000 : 0) | ((8 + Math.floor(rand() * 14)) << 10) | Math.floor(rand() * 1024);
      b[o + at] = h & 0xff;
      b[o + at + 1] = h >> 8;
    }
  }
  return w;
}

/** The dequantized matrix, float32 values. */
function dense(w: Weight): Float32Array {
  const [rows, cols] = w.shape;
  const out = new Float32Array(rows * cols);
  const rowBytes = quantRowBytes(w.dtype as QuantDType, cols);
  for (let r = 0; r < rows; r++) dequantizeRow(w.dtype as QuantDType, w.data as Uint8Array, r * rowBytes, out, cols, r * cols);
  return out;
}

/** y = x W^T in float64 over the dequantized values (no rounding but the sums'). */
function reference(W: Float32Array, rows: number, cols: number, x: ArrayLike<number>, T: number): Float64Array {
  const y = new Float64Array(T * rows);
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += W[r * cols + c] * x[t * cols + c];
      y[t * rows + r] = s;
    }
  }
  return y;
}

const typeArb = fc.constantFrom<QuantDType>(...QUANT_DTYPES);
/** Row lengths of 1-20 blocks of 32, or 1-3 blocks of 256. */
const colsOf = (dt: QuantDType, k: number): number => (quantBlock(dt).blockSize === 32 ? 32 * k : 256 * (1 + (k % 3)));

describe("quantized linear", () => {
  it("WASM (exact sums, 1 and 2 threads) and TypeScript f64 equal a float64 dot over ggml's values, rounded once", () => {
    fc.assert(
      fc.property(typeArb, fc.integer({ min: 1, max: 19 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 6 }), fc.integer(), (dt, rows, nb, T, seed) => {
        const rand = rng(seed);
        const cols = colsOf(dt, nb);
        const values = uniform(rand, rows * cols);
        const x = Float32Array.from(uniform(rand, T * cols));
        const wOne = quantWeight(one, dt, rows, cols, values);
        const want = reference(dense(wOne), rows, cols, x, T);
        // TypeScript float64 kernel: the exact values' sums in float64 (different order: ~1e-16 relative).
        const y64 = new Float64Array(T * rows);
        createTsKernels("f64").linear(wOne, Float64Array.from(x), T, y64);
        for (let i = 0; i < y64.length; i++) expect(Math.abs(y64[i] - want[i])).toBeLessThanOrEqual(1e-13 * (1 + Math.abs(want[i])));
        for (const k of [one, two]) {
          const w = k === one ? wOne : quantWeight(k, dt, rows, cols, values);
          const xv = k.vec(T * cols);
          xv.set(x);
          const y = k.vec(T * rows);
          k.linear(w, xv, T, y);
          for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] - want[i])).toBeLessThanOrEqual(Math.abs(want[i]) * 2 ** -23 + 1e-30);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("two threads give the same bits as one", () => {
    fc.assert(
      fc.property(typeArb, fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 5 }), fc.boolean(), fc.integer(), (dt, rows, T, f32sums, seed) => {
        const rand = rng(seed);
        const cols = 2 * quantBlock(dt).blockSize;
        const values = uniform(rand, rows * cols);
        const x = uniform(rand, T * cols);
        const outs = [one, two].map((k) => {
          k.accumulate = f32sums ? "f32" : "f64";
          const w = quantWeight(k, dt, rows, cols, values);
          const xv = k.vec(T * cols);
          xv.set(x);
          const y = k.vec(T * rows);
          k.linear(w, xv, T, y);
          return Array.from(y);
        });
        one.accumulate = two.accumulate = "f64";
        expect(outs[1]).toEqual(outs[0]);
      }),
      { numRuns: 25 },
    );
  });

  it("float32 sums stay within float32 rounding of the TypeScript kernel, weights staged from JS memory too", () => {
    fc.assert(
      fc.property(typeArb, fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 7 }), fc.boolean(), fc.integer(), (dt, rows, T, resident, seed) => {
        const rand = rng(seed);
        const cols = 2 * 256;
        const values = uniform(rand, rows * cols);
        const x = Float32Array.from(uniform(rand, T * cols));
        const w = quantWeight(resident ? fast : createTsKernels("f32"), dt, rows, cols, values);
        const want = new Float32Array(T * rows);
        createTsKernels("f32").linear(w, x, T, want);
        const got = new Float32Array(T * rows);
        fast.linear(w, x, T, got);
        // sum |w x| bounds the size of the rounding; float32 sums of at most 32 terms per lane, then float64.
        const W = dense(w);
        for (let t = 0; t < T; t++) {
          for (let r = 0; r < rows; r++) {
            let mag = 0;
            for (let c = 0; c < cols; c++) mag += Math.abs(W[r * cols + c] * x[t * cols + c]);
            expect(Math.abs(got[t * rows + r] - want[t * rows + r])).toBeLessThanOrEqual(mag * 16 * 2 ** -24 + 1e-30);
          }
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe("random blocks (any bytes, finite scales)", () => {
  it("WASM equals the TypeScript kernels: exact sums to one rounding, float32 sums within rounding, 1 and 2 threads", () => {
    fc.assert(
      fc.property(typeArb, fc.integer({ min: 1, max: 13 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 6 }), fc.integer(), (dt, rows, nb, T, seed) => {
        const rand = rng(seed);
        const cols = colsOf(dt, nb);
        const w = randomBlocks(one, dt, rows, cols, rand);
        const x = Float32Array.from(uniform(rand, T * cols));
        const want = new Float64Array(T * rows);
        createTsKernels("f64").linear(w, Float64Array.from(x), T, want);
        const W = dense(w);
        for (const k of [one, two, fast]) {
          const y = new Float32Array(T * rows);
          k.linear(w, x, T, y);
          for (let t = 0; t < T; t++) {
            for (let r = 0; r < rows; r++) {
              const i = t * rows + r;
              let mag = 0;
              for (let c = 0; c < cols; c++) mag += Math.abs(W[r * cols + c] * x[t * cols + c]);
              const tol = k === fast ? mag * 16 * 2 ** -24 : Math.abs(want[i]) * 2 ** -23 + mag * 2 ** -50;
              expect(Math.abs(y[i] - want[i])).toBeLessThanOrEqual(tol + 1e-30);
            }
          }
        }
        const emb = one.vec(cols);
        one.embedding(w, rows - 1, emb);
        expect(Array.from(emb)).toEqual(Array.from(W.subarray((rows - 1) * cols, rows * cols)));
      }),
      { numRuns: 60 },
    );
  });
});

describe("quantized embedding and toVec", () => {
  it("a row is ggml's dequantized row, in both backends", () => {
    for (const dt of QUANT_DTYPES) {
      const rand = rng(QUANT_DTYPES.indexOf(dt) + 1);
      const [V, H] = [5, 512];
      const values = uniform(rand, V * H);
      for (const k of [one, createTsKernels("f32"), createTsKernels("f64")] as Kernels[]) {
        const w = quantWeight(k, dt, V, H, values);
        const W = dense(w);
        for (const id of [0, 3, 4]) {
          const out = k.vec(H);
          k.embedding(w, id, out);
          expect(Array.from(out)).toEqual(Array.from(W.subarray(id * H, (id + 1) * H)));
        }
        expect(Array.from(k.toVec(w))).toEqual(Array.from(W));
      }
    }
  });

  it("the WASM backend stores every quantized type and refuses a row that is not whole blocks", () => {
    for (const dt of QUANT_DTYPES) expect(one.allocWeight("w", dt, [3, 256]).data.byteLength).toBe(3 * quantRowBytes(dt, 256));
    expect(() => one.allocWeight("blk.0.ffn_down", "Q4_K", [4, 100])).toThrow(/whole blocks of 256, but the last axis is 100/);
  });
});
