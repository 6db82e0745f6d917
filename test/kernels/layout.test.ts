/**
 * The layout and small elementwise kernels (what the model computes between the big kernels), on every kernel
 * set (TypeScript float64 and float32, WASM with operands in its memory), against their definitions written
 * here element by element: the index arithmetic of the loops they replaced in the model, and the formulas.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { HostKernels as Kernels, Vec } from "../../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/kernels.js";
import { rng, uniform } from "../helpers/random.js";

let wasm: WasmKernels;
beforeAll(async () => {
  wasm = await createWasmKernels({ threads: 1 });
});
afterAll(async () => {
  await wasm.close();
});

const SETS: [string, () => Kernels][] = [
  ["ts f64", () => createTsKernels("f64")],
  ["ts f32", () => createTsKernels("f32")],
  ["wasm", () => wasm],
];
const RUNS = { numRuns: 30 };
const dim = (max: number) => fc.integer({ min: 1, max });

/** A kernel vector holding these numbers (rounded to the kernels' precision). */
function vecOf(k: Kernels, data: ArrayLike<number>): Vec {
  const v = k.vec(data.length);
  v.set(data);
  return v;
}
/** The numbers as the kernels store them. */
const stored = (k: Kernels, x: number): number => (k.precision === "f64" ? x : Math.fround(x));
/** Distinct integers 0..n-1 (exact in every precision): where each lands shows the layout. */
const ids = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe.each(SETS)("layout kernels (%s)", (_name, kernels) => {
  it("splitQkvz: per key head [q | k | v | z] -> [all q | all k | all v], z", () => {
    fc.assert(
      fc.property(dim(3), dim(3), dim(3), dim(5), dim(5), (T, Hk, r, dk, dv) => {
        const k = kernels();
        const Hv = Hk * r;
        const C = 2 * Hk * dk + Hv * dv;
        const group = 2 * dk + 2 * r * dv;
        const qkvz = vecOf(k, ids(T * Hk * group));
        const mixed = k.vec(T * C);
        const z = k.vec(T * Hv * dv);
        k.splitQkvz({ qkvz, T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv, mixed, z });
        for (let t = 0; t < T; t++) {
          for (let h = 0; h < Hk; h++) {
            const src = (t * Hk + h) * group;
            for (let i = 0; i < dk; i++) {
              expect(mixed[t * C + h * dk + i]).toBe(src + i);
              expect(mixed[t * C + Hk * dk + h * dk + i]).toBe(src + dk + i);
            }
            for (let i = 0; i < r * dv; i++) {
              expect(mixed[t * C + 2 * Hk * dk + h * r * dv + i]).toBe(src + 2 * dk + i);
              expect(z[t * Hv * dv + h * r * dv + i]).toBe(src + 2 * dk + r * dv + i);
            }
          }
        }
      }),
      RUNS,
    );
  });

  it("splitBa: per key head [b | a] -> b, a per value head", () => {
    fc.assert(
      fc.property(dim(4), dim(4), dim(4), (T, Hk, r) => {
        const k = kernels();
        const Hv = Hk * r;
        const ba = vecOf(k, ids(T * 2 * Hv));
        const b = k.vec(T * Hv);
        const a = k.vec(T * Hv);
        k.splitBa({ ba, T, numKeyHeads: Hk, numValueHeads: Hv, b, a });
        for (let t = 0; t < T; t++) {
          for (let h = 0; h < Hk; h++) {
            for (let j = 0; j < r; j++) {
              expect(b[t * Hv + h * r + j]).toBe(t * 2 * Hv + h * 2 * r + j);
              expect(a[t * Hv + h * r + j]).toBe(t * 2 * Hv + h * 2 * r + r + j);
            }
          }
        }
      }),
      RUNS,
    );
  });

  it("splitColumns takes each row's blocks; concatColumns puts them back", () => {
    fc.assert(
      fc.property(dim(5), fc.array(dim(6), { minLength: 1, maxLength: 4 }), (R, widths) => {
        const k = kernels();
        const W = widths.reduce((s, w) => s + w, 0);
        const x = vecOf(k, ids(R * W));
        const outs = widths.map((w) => k.vec(R * w));
        k.splitColumns(x, widths, outs);
        let start = 0;
        widths.forEach((w, i) => {
          for (let t = 0; t < R; t++) for (let c = 0; c < w; c++) expect(outs[i][t * w + c]).toBe(t * W + start + c);
          start += w;
        });
        const back = k.vec(R * W);
        k.concatColumns(outs, widths, back);
        expect(Array.from(back)).toEqual(ids(R * W));
      }),
      RUNS,
    );
  });

  it("tileHeads: value head h gets key head h mod Hk", () => {
    fc.assert(
      fc.property(dim(3), dim(3), dim(3), dim(5), (T, Hk, r, d) => {
        const k = kernels();
        const Hv = Hk * r;
        const x = vecOf(k, ids(T * Hk * d));
        const out = k.vec(T * Hv * d);
        k.tileHeads(x, T, Hk, Hv, d, out);
        for (let t = 0; t < T; t++) for (let h = 0; h < Hv; h++) for (let i = 0; i < d; i++) expect(out[(t * Hv + h) * d + i]).toBe((t * Hk + (h % Hk)) * d + i);
      }),
      RUNS,
    );
  });

  it("gatherRows and scatterAxpyRows move rows by index (repeated targets accumulate)", () => {
    fc.assert(
      fc.property(dim(6), dim(7), fc.array(fc.nat(), { minLength: 1, maxLength: 9 }), fc.integer(), (N, width, picks, seed) => {
        const k = kernels();
        const rand = rng(seed);
        const rows = Int32Array.from(picks, (p) => p % N);
        const xs = uniform(rand, N * width);
        const x = vecOf(k, xs);
        const g = k.vec(rows.length * width);
        k.gatherRows(x, width, rows, g);
        rows.forEach((r, j) => {
          for (let i = 0; i < width; i++) expect(g[j * width + i]).toBe(x[r * width + i]);
        });
        const as = uniform(rand, rows.length, -2, 2);
        const a = vecOf(k, as);
        const ys = uniform(rand, N * width);
        const y = vecOf(k, ys);
        k.scatterAxpyRows(a, g, width, rows, y);
        const want = Array.from(ys, (v) => stored(k, v));
        rows.forEach((r, j) => {
          for (let i = 0; i < width; i++) want[r * width + i] = stored(k, want[r * width + i] + a[j] * g[j * width + i]);
        });
        expect(Array.from(y)).toEqual(want);
      }),
      RUNS,
    );
  });

  it("fill and copy (overlapping ranges copy as if through a temporary)", () => {
    fc.assert(
      fc.property(dim(20), fc.nat(), fc.nat(), (n, from, len) => {
        const k = kernels();
        const x = vecOf(k, ids(n));
        const s = from % n;
        const m = Math.min(len % n, n - s);
        k.copy(x.subarray(s, s + m), x);
        const want = ids(n);
        for (let i = 0; i < m; i++) want[i] = s + i;
        expect(Array.from(x)).toEqual(want);
        k.fill(x, 2.5);
        expect(Array.from(x)).toEqual(Array(n).fill(2.5));
      }),
      RUNS,
    );
  });
});

describe.each(SETS)("elementwise kernels (%s)", (_name, kernels) => {
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

  it("gates: beta = sigmoid(b), g = -exp(A_log) softplus(a + dt_bias), per value head", () => {
    fc.assert(
      fc.property(dim(4), dim(6), fc.integer(), (T, Hv, seed) => {
        const k = kernels();
        const rand = rng(seed);
        const [as, bs, logs, dts] = [uniform(rand, T * Hv, -30, 30), uniform(rand, T * Hv, -8, 8), uniform(rand, Hv, -2, 3), uniform(rand, Hv, -1, 1)];
        const [a, b, A_log, dt] = [as, bs, logs, dts].map((v) => vecOf(k, v));
        const g = k.vec(T * Hv);
        const beta = k.vec(T * Hv);
        k.gates(a, b, A_log, dt, g, beta);
        for (let i = 0; i < T * Hv; i++) {
          const h = i % Hv;
          expect(beta[i]).toBe(stored(k, sigmoid(b[i])));
          expect(g[i]).toBe(stored(k, -Math.exp(A_log[h]) * softplus(a[i] + dt[h])));
        }
      }),
      RUNS,
    );
  });

  it("sigmoid, addBias, addScalar and axpyRows", () => {
    fc.assert(
      fc.property(dim(5), dim(7), fc.integer(), (R, width, seed) => {
        const k = kernels();
        const rand = rng(seed);
        const xs = uniform(rand, R * width, -6, 6);
        const x = vecOf(k, xs);
        const s = k.vec(R * width);
        k.sigmoid(x, s);
        s.forEach((v, i) => expect(v).toBe(stored(k, sigmoid(x[i]))));
        const bias = vecOf(k, uniform(rand, width));
        const y = vecOf(k, xs);
        k.addBias(y, bias);
        y.forEach((v, i) => expect(v).toBe(stored(k, x[i] + bias[i % width])));
        k.addScalar(y, 1);
        y.forEach((v, i) => expect(v).toBe(stored(k, stored(k, x[i] + bias[i % width]) + 1)));
        const a = vecOf(k, uniform(rand, R, -2, 2));
        const z = vecOf(k, xs);
        k.axpyRows(a, s, z);
        z.forEach((v, i) => expect(v).toBe(stored(k, x[i] + a[Math.floor(i / width)] * s[i])));
      }),
      RUNS,
    );
  });

  it("ropeTables: cos and sin of position times frequency, scaled", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 100_000 }), { minLength: 1, maxLength: 5 }), fc.array(fc.double({ min: 1e-6, max: 1, noNaN: true }), { minLength: 1, maxLength: 6 }), fc.double({ min: 0.5, max: 2, noNaN: true }), (positions, freqs, scaling) => {
        const k = kernels();
        const invFreq = Float64Array.from(freqs);
        const half = freqs.length;
        const cos = k.vec(positions.length * half);
        const sin = k.vec(positions.length * half);
        k.ropeTables(invFreq, scaling, positions, cos, sin);
        positions.forEach((p, t) =>
          freqs.forEach((f, j) => {
            expect(cos[t * half + j]).toBe(stored(k, Math.cos(p * f) * scaling));
            expect(sin[t * half + j]).toBe(stored(k, Math.sin(p * f) * scaling));
          }),
        );
      }),
      RUNS,
    );
  });
});
