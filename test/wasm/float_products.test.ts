/**
 * The float32-sum products over float weights (`accumulate: "f32"`; generate's default for BF16 / F16 / F32)
 * against float64 dot products computed here from the weights' bits, for the shapes the kernels split on:
 * cols around the 8- / 32- / 128-column steps and folds (tails of every length), one token (decode's one-row
 * matvec) and 2..9 tokens (groups of four, then three, two or one; BF16 from six tokens: two rows by two tokens
 * after the first two or three, same bound), rows split over two threads (odd row counts: a row left alone).
 *
 * Bound: every product w x is exact in float64; the kernels round it at most n times in float32 before
 * float64 takes over, then round the float64 total once to float32, so |y - sum| <= n u sum |w x| + u |sum|
 * (u = 2^-24), plus float64 rounding (1e-12 sum |w x| covers it). n = 11 (one token: the multiply, a chain of
 * 8 multiply-adds, two pairwise sums; tokens in groups of two or three: the multiply, 8, one sum), except for
 * F16 weights in groups of four tokens (products of 6 tokens or more): n = 17 (the multiply and a chain of 16;
 * the test takes it from T = 4, which also holds).
 *
 * Invariant: a product of up to five tokens (speculative decoding's verify step, K <= 4) gives each token the
 * bits of its one-token product, whatever the kernels' internals.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { f32ArrayToBf16, f32ArrayToF16 } from "../../src/io/dtype.js";
import type { WeightDType } from "../../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/kernels.js";
import { rng, uniform } from "../helpers/random.js";

const U = 2 ** -24;

/** BF16 bits -> value: the top half of a float32. */
const bf16Value = (h: number): number => new Float32Array(Uint32Array.of(h << 16).buffer)[0];

/** F16 bits -> value: (-1)^s 2^(e-15) (1 + m/1024), subnormal 2^-14 m/1024, e = 31 inf/NaN. */
function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 31) return m ? NaN : s * Infinity;
  return e === 0 ? s * 2 ** -14 * (m / 1024) : s * 2 ** (e - 15) * (1 + m / 1024);
}

let k: WasmKernels;
beforeAll(async () => {
  k = await createWasmKernels({ threads: 2, minParallelBytes: 0, accumulate: "f32" });
});
afterAll(async () => {
  await k.close();
});

// Around every step: 8-column steps, 32-column steps, 64- and 128-column folds, and the scalar tail.
const COLS = [1, 5, 7, 8, 9, 15, 16, 24, 31, 32, 33, 40, 63, 64, 65, 95, 127, 128, 129, 135, 136, 160, 191, 255, 256, 257, 300, 383, 511, 512, 517, 700];

describe("float32-sum products of float weights", () => {
  it("stay within the float32 summation bound of float64 dot products (one to nine tokens, two threads)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 37 }), fc.constantFrom(...COLS), fc.integer({ min: 1, max: 9 }),
        fc.constantFrom<WeightDType>("BF16", "F16", "F32"), fc.integer(),
        (rows, cols, T, dtype, seed) => {
          const rand = rng(seed);
          const values = uniform(rand, rows * cols);
          const w = k.allocWeight("w", dtype, [rows, cols]);
          const wv = new Float64Array(rows * cols);
          if (dtype === "F32") {
            (w.data as Float32Array).set(values);
            wv.set(w.data as Float32Array);
          } else {
            const bits = dtype === "BF16" ? f32ArrayToBf16(values) : f32ArrayToF16(values);
            (w.data as Uint16Array).set(bits);
            for (let i = 0; i < bits.length; i++) wv[i] = dtype === "BF16" ? bf16Value(bits[i]) : f16Value(bits[i]);
          }
          const x = k.vec(T * cols);
          x.set(uniform(rand, T * cols));
          const y = k.vec(T * rows);
          k.linear(w, x, T, y);
          const n = dtype === "F16" && T >= 4 ? 17 : 11;
          for (let t = 0; t < T; t++) {
            for (let r = 0; r < rows; r++) {
              let sum = 0, abs = 0;
              for (let c = 0; c < cols; c++) {
                const p = wv[r * cols + c] * x[t * cols + c];
                sum += p;
                abs += Math.abs(p);
              }
              const got = y[t * rows + r];
              expect(Math.abs(got - sum), `row ${r} token ${t}`).toBeLessThanOrEqual(n * U * abs + U * Math.abs(sum) + 1e-12 * abs);
            }
          }
          k.freeWeight(w);
          k.free(x);
          k.free(y);
        },
      ),
      { numRuns: 120 },
    );
  });

  it("give each token of a product of up to five tokens the bits of its one-token product (one and two threads)", async () => {
    // Speculative decoding verifies K + 1 <= 5 tokens in one product; plain decoding computes them one at a time.
    const one = await createWasmKernels({ threads: 1, minParallelBytes: 0, accumulate: "f32" });
    try {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 37 }), fc.constantFrom(...COLS), fc.integer({ min: 1, max: 5 }),
          fc.constantFrom<WeightDType>("BF16", "F16", "F32"), fc.boolean(), fc.integer(),
          (rows, cols, T, dtype, twoThreads, seed) => {
            const kk = twoThreads ? k : one;
            const rand = rng(seed);
            const values = uniform(rand, rows * cols);
            const w = kk.allocWeight("w", dtype, [rows, cols]);
            if (dtype === "F32") (w.data as Float32Array).set(values);
            else (w.data as Uint16Array).set(dtype === "BF16" ? f32ArrayToBf16(values) : f32ArrayToF16(values));
            const x = kk.vec(T * cols);
            x.set(uniform(rand, T * cols));
            const y = kk.vec(T * rows);
            kk.linear(w, x, T, y);
            const y1 = kk.vec(rows);
            for (let t = 0; t < T; t++) {
              kk.linear(w, x.subarray(t * cols, (t + 1) * cols), 1, y1);
              const bits = (v: ArrayLike<number>): number[] => Array.from(new Uint32Array(Float32Array.from(v).buffer));
              expect(bits(y.subarray(t * rows, (t + 1) * rows)), `token ${t} of ${T}`).toEqual(bits(y1));
            }
            kk.freeWeight(w);
            kk.free(x);
            kk.free(y);
            kk.free(y1);
          },
        ),
        { numRuns: 200 },
      );
    } finally {
      await one.close();
    }
  });

  it("widen every F16 word exactly in the 8-column SIMD steps (subnormals included), f32 and f64 sums", async () => {
    // Row r holds the words 8r .. 8r + 7 (rows of inf / NaN only from 0x7c00 on), then a row of +inf and one of -inf.
    const rows = 8192 + 2, cols = 8;
    const exact = await createWasmKernels({ threads: 1, accumulate: "f64" });
    try {
      for (const kk of [k, exact]) {
        const w = kk.allocWeight("w", "F16", [rows, cols]);
        const bits = w.data as Uint16Array;
        for (let i = 0; i < 65536; i++) bits[i] = i;
        bits.fill(0x7c00, 65536, 65544);
        bits.fill(0xfc00, 65544);
        const x = kk.vec(cols), y = kk.vec(rows);
        for (let j = 0; j < cols; j++) {
          x.fill(0);
          x[j] = 1;
          kk.linear(w, x, 1, y);
          for (let r = 0; r < 8192; r++) {
            const want = f16Value(8 * r + j);
            // A row with inf / NaN gives NaN (inf times 0); the others give the word's value (+-0 alike).
            if (r >= 0x7c00 / 8 && r < 0x8000 / 8 || r >= 0xfc00 / 8) expect(Number.isNaN(y[r]), `word ${8 * r + j}`).toBe(true);
            else if (y[r] !== want) expect(y[r], `word ${(8 * r + j).toString(16)}`).toBe(want);
          }
        }
        x.fill(1);
        kk.linear(w, x, 1, y);
        expect([y[8192], y[8193]]).toEqual([Infinity, -Infinity]);
        kk.freeWeight(w);
        kk.free(x);
        kk.free(y);
      }
    } finally {
      await exact.close();
    }
  });
});
