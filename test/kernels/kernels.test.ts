/**
 * Properties of the TypeScript reference kernels: the causal conv and attention against their definitions
 * and split across calls with carried state, routing invariants, linear over every weight dtype, and the
 * float32 kernels agreeing with the float64 ones.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { f32ArrayToBf16, f32ArrayToF16, bf16ToF32, f16ToF32 } from "../../src/io/dtype.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { Weight } from "../../src/kernels/types.js";
import { maxScaledDiff, rng, uniform } from "../helpers/random.js";

const k64 = createTsKernels("f64");
const k32 = createTsKernels("f32");
const silu = (x: number) => x / (1 + Math.exp(-x));

describe("causalConv1d", () => {
  const shape = fc.record({
    T: fc.integer({ min: 1, max: 20 }),
    C: fc.integer({ min: 1, max: 6 }),
    K: fc.integer({ min: 1, max: 5 }),
    seed: fc.integer(),
  });

  it("is silu of the causal depthwise convolution, zeros before the start", () => {
    fc.assert(
      fc.property(shape, ({ T, C, K, seed }) => {
        const rand = rng(seed);
        const x = uniform(rand, T * C);
        const weight = uniform(rand, C * K);
        const out = new Float64Array(T * C);
        k64.causalConv1d({ x, weight, state: new Float64Array(C * (K - 1)), T, C, K, out });
        for (let t = 0; t < T; t++)
          for (let c = 0; c < C; c++) {
            let acc = 0;
            // tap j multiplies input t - (K - 1) + j
            for (let j = 0; j < K; j++) {
              const s = t - (K - 1) + j;
              if (s >= 0) acc += weight[c * K + j] * x[s * C + c];
            }
            expect(out[t * C + c]).toBeCloseTo(silu(acc), 13);
          }
      }),
      { numRuns: 50 },
    );
  });

  it("split anywhere with the state carried equals one pass (including single steps)", () => {
    fc.assert(
      fc.property(shape, fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 8 }), ({ T, C, K, seed }, pieces) => {
        const rand = rng(seed);
        const x = uniform(rand, T * C);
        const weight = uniform(rand, C * K);
        const init = uniform(rand, C * (K - 1));
        const whole = new Float64Array(T * C);
        const s1 = init.slice();
        k64.causalConv1d({ x, weight, state: s1, T, C, K, out: whole });
        const parts = new Float64Array(T * C);
        const s2 = init.slice();
        let t0 = 0;
        for (let i = 0; t0 < T; i++) {
          const n = Math.min(pieces[i % pieces.length], T - t0);
          k64.causalConv1d({ x: x.subarray(t0 * C, (t0 + n) * C), weight, state: s2, T: n, C, K, out: parts.subarray(t0 * C, (t0 + n) * C) });
          t0 += n;
        }
        expect(maxScaledDiff(parts, whole)).toBeLessThan(1e-14);
        expect(maxScaledDiff(s2, s1)).toBeLessThan(1e-14);
      }),
      { numRuns: 50 },
    );
  });
});

describe("attention", () => {
  const shape = fc.record({
    L: fc.integer({ min: 1, max: 12 }),
    Hkv: fc.integer({ min: 1, max: 3 }),
    group: fc.integer({ min: 1, max: 3 }),
    d: fc.integer({ min: 1, max: 6 }),
    seed: fc.integer(),
  });

  it("query t sees keys 0..L-T+t with softmax weights, GQA head h / group", () => {
    fc.assert(
      fc.property(shape, fc.integer({ min: 1, max: 12 }), ({ L, Hkv, group, d, seed }, Tq) => {
        const T = Math.min(Tq, L);
        const H = Hkv * group;
        const rand = rng(seed);
        const q = uniform(rand, T * H * d, -2, 2);
        const k = uniform(rand, L * Hkv * d, -2, 2);
        const v = uniform(rand, L * Hkv * d, -2, 2);
        const out = new Float64Array(T * H * d);
        const scale = 1 / Math.sqrt(d);
        k64.attention({ q, k, v, T, L, numHeads: H, numKvHeads: Hkv, headDim: d, scale, out });
        for (let t = 0; t < T; t++)
          for (let h = 0; h < H; h++) {
            const kv = Math.floor(h / group);
            const w: number[] = [];
            for (let j = 0; j <= L - T + t; j++) {
              let s = 0;
              for (let e = 0; e < d; e++) s += q[(t * H + h) * d + e] * k[(j * Hkv + kv) * d + e];
              w.push(Math.exp(s * scale));
            }
            const z = w.reduce((a, b) => a + b, 0);
            for (let e = 0; e < d; e++) {
              const want = w.reduce((acc, wj, j) => acc + (wj / z) * v[(j * Hkv + kv) * d + e], 0);
              expect(out[(t * H + h) * d + e]).toBeCloseTo(want, 12);
            }
          }
      }),
      { numRuns: 50 },
    );
  });

  it("the KV cache filled in pieces gives the same rows as one pass", () => {
    fc.assert(
      fc.property(shape, fc.integer({ min: 1, max: 11 }), ({ L, Hkv, group, d, seed }, cut) => {
        const H = Hkv * group;
        const split = Math.min(cut, L);
        const rand = rng(seed);
        const q = uniform(rand, L * H * d);
        const k = uniform(rand, L * Hkv * d);
        const v = uniform(rand, L * Hkv * d);
        const whole = new Float64Array(L * H * d);
        const args = { numHeads: H, numKvHeads: Hkv, headDim: d, scale: 0.5 };
        k64.attention({ ...args, q, k, v, T: L, L, out: whole });
        const parts = new Float64Array(L * H * d);
        // First `split` positions, then the rest, each over the cache as it stands.
        k64.attention({ ...args, q: q.subarray(0, split * H * d), k: k.subarray(0, split * Hkv * d), v: v.subarray(0, split * Hkv * d), T: split, L: split, out: parts.subarray(0, split * H * d) });
        if (split < L) k64.attention({ ...args, q: q.subarray(split * H * d), k, v, T: L - split, L, out: parts.subarray(split * H * d) });
        expect(maxScaledDiff(parts, whole)).toBeLessThan(1e-14);
      }),
      { numRuns: 50 },
    );
  });
});

describe("router", () => {
  const problem = fc.record({
    E: fc.integer({ min: 1, max: 40 }),
    T: fc.integer({ min: 1, max: 4 }),
    kFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    normalize: fc.boolean(),
    seed: fc.integer(),
  });
  const route = (logits: Float64Array, T: number, E: number, k: number, normalize: boolean) => {
    const experts = new Int32Array(T * k);
    const weights = new Float64Array(T * k);
    k64.router({ logits, T, numExperts: E, k, normalize, experts, weights });
    return { experts, weights };
  };

  it("chooses the k most probable experts in descending order; normalised weights sum to 1", () => {
    fc.assert(
      fc.property(problem, ({ E, T, kFrac, normalize, seed }) => {
        const k = 1 + Math.floor(kFrac * (E - 1));
        const logits = uniform(rng(seed), T * E, -4, 4);
        const { experts, weights } = route(logits, T, E, k, normalize);
        for (let t = 0; t < T; t++) {
          const row = logits.subarray(t * E, (t + 1) * E);
          const z = row.reduce((a, x) => a + Math.exp(x), 0);
          const chosen = Array.from(experts.subarray(t * k, (t + 1) * k));
          expect(new Set(chosen).size).toBe(k);
          const minChosen = Math.min(...chosen.map((e) => row[e]));
          for (let e = 0; e < E; e++) if (!chosen.includes(e)) expect(row[e]).toBeLessThanOrEqual(minChosen);
          for (let j = 1; j < k; j++) expect(row[chosen[j]]).toBeLessThanOrEqual(row[chosen[j - 1]]);
          const w = Array.from(weights.subarray(t * k, (t + 1) * k));
          if (normalize) expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
          else w.forEach((wj, j) => expect(wj).toBeCloseTo(Math.exp(row[chosen[j]]) / z, 14));
        }
      }),
      { numRuns: 100 },
    );
  });

  it("permuting the experts permutes the choice", () => {
    fc.assert(
      fc.property(problem, fc.integer(), ({ E, kFrac, normalize, seed }, permSeed) => {
        const k = 1 + Math.floor(kFrac * (E - 1));
        const logits = uniform(rng(seed), E, -4, 4);
        // perm[e] = new index of expert e (Fisher-Yates from its own seed).
        const rand = rng(permSeed);
        const perm = Array.from({ length: E }, (_, i) => i);
        for (let i = E - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [perm[i], perm[j]] = [perm[j], perm[i]];
        }
        const permuted = new Float64Array(E);
        perm.forEach((to, from) => (permuted[to] = logits[from]));
        const a = route(logits, 1, E, k, normalize);
        const b = route(permuted, 1, E, k, normalize);
        expect(Array.from(b.experts)).toEqual(Array.from(a.experts, (e) => perm[e]));
        expect(maxScaledDiff(b.weights, a.weights)).toBeLessThan(1e-15);
      }),
      { numRuns: 100 },
    );
  });
});

describe("linear over stored dtypes", () => {
  it("BF16, F16, F32 and F64 weights give x W^T of the stored values", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 4 }), fc.integer(), (out, inp, T, seed) => {
        const rand = rng(seed);
        const w = uniform(rand, out * inp);
        const x = uniform(rand, T * inp);
        const bf = f32ArrayToBf16(w);
        const hf = f32ArrayToF16(w);
        const cases: Array<[Weight, (i: number) => number]> = [
          [{ name: "w", dtype: "BF16", shape: [out, inp], data: bf }, (i) => bf16ToF32(bf[i])],
          [{ name: "w", dtype: "F16", shape: [out, inp], data: hf }, (i) => f16ToF32(hf[i])],
          [{ name: "w", dtype: "F32", shape: [out, inp], data: Float32Array.from(w) }, (i) => Math.fround(w[i])],
          [{ name: "w", dtype: "F64", shape: [out, inp], data: w }, (i) => w[i]],
        ];
        for (const [weight, value] of cases) {
          const y = new Float64Array(T * out);
          k64.linear(weight, x, T, y);
          for (let t = 0; t < T; t++)
            for (let o = 0; o < out; o++) {
              let want = 0;
              for (let i = 0; i < inp; i++) want += value(o * inp + i) * x[t * inp + i];
              expect(y[t * out + o]).toBeCloseTo(want, 13);
            }
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe("norms", () => {
  it("rmsNorm, gatedRmsNorm and l2Normalize follow their equations", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (n, rows, seed) => {
        const rand = rng(seed);
        const x = uniform(rand, rows * n, -3, 3);
        const z = uniform(rand, rows * n, -3, 3);
        const w = uniform(rand, n);
        const eps = 1e-6;
        const a = new Float64Array(rows * n);
        const b = new Float64Array(rows * n);
        const c = x.slice();
        k64.rmsNorm(x, w, eps, n, a);
        k64.gatedRmsNorm(x, z, w, eps, n, b);
        k64.l2Normalize(c, n, eps, 0.5);
        for (let r = 0; r < rows; r++) {
          const row = Array.from(x.subarray(r * n, (r + 1) * n));
          const ms = row.reduce((s, v) => s + v * v, 0) / n;
          row.forEach((v, i) => {
            expect(a[r * n + i]).toBeCloseTo((v / Math.sqrt(ms + eps)) * w[i], 13);
            expect(b[r * n + i]).toBeCloseTo((v / Math.sqrt(ms + eps)) * w[i] * silu(z[r * n + i]), 13);
            expect(c[r * n + i]).toBeCloseTo((0.5 * v) / Math.sqrt(ms * n + eps), 13);
          });
        }
      }),
      { numRuns: 50 },
    );
  });
});

describe("float32 kernels", () => {
  it("agree with float64 on the chunked delta rule and attention within float32 rounding", () => {
    const rand = rng(5);
    const T = 70, H = 2, dk = 8, dv = 8;
    const unit = (n: number, s: number) => {
      const x = uniform(rand, n * dk);
      for (let i = 0; i < n; i++) {
        const row = x.subarray(i * dk, (i + 1) * dk);
        const norm = Math.hypot(...row);
        row.forEach((v, j) => (row[j] = (v / norm) * s));
      }
      return x;
    };
    const base = { q: unit(T * H, 1 / Math.sqrt(dk)), k: unit(T * H, 1), v: uniform(rand, T * H * dv), g: uniform(rand, T * H, -1, 0), beta: uniform(rand, T * H, 0, 1) };
    const f32 = (x: Float64Array) => Float32Array.from(x);
    const a64 = { ...base, state: new Float64Array(H * dk * dv), T, numKeyHeads: H, numValueHeads: H, dk, dv, out: new Float64Array(T * H * dv) };
    const a32 = { q: f32(base.q), k: f32(base.k), v: f32(base.v), g: f32(base.g), beta: f32(base.beta), state: new Float32Array(H * dk * dv), T, numKeyHeads: H, numValueHeads: H, dk, dv, out: new Float32Array(T * H * dv) };
    k64.deltaRuleChunked(a64);
    k32.deltaRuleChunked(a32);
    expect(maxScaledDiff(a32.out, a64.out)).toBeLessThan(1e-5);
    expect(maxScaledDiff(a32.out, a64.out)).toBeGreaterThan(0); // really float32
  });
});
