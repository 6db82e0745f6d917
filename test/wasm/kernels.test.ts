/**
 * Every WASM kernel against its TypeScript twin (float32) on random shapes, sizes deliberately not
 * multiples of 4, 8 or 16, with operands both in WASM memory (from `vec`) and in plain JS memory (staged).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { f32ArrayToBf16, f32ArrayToF16 } from "../../src/io/dtype.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { Vec, Weight, WeightDType } from "../../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/kernels.js";
import { maxScaledDiff, rng, uniform } from "../helpers/random.js";

const ts = createTsKernels("f32");
let wasm: WasmKernels;
let fast: WasmKernels; // float32 accumulation in the matrix products
beforeAll(async () => {
  wasm = await createWasmKernels({ threads: 1 });
  fast = await createWasmKernels({ threads: 1, accumulate: "f32" });
});
afterAll(async () => {
  await wasm.close();
  await fast.close();
});

const RUNS = { numRuns: 40 };
const dim = (max: number) => fc.integer({ min: 1, max });

/** The same numbers in a WASM vector (resident) or a plain Float32Array (staged). */
function vecOf(data: ArrayLike<number>, resident: boolean): Float32Array {
  const v = resident ? (wasm.vec(data.length) as Float32Array) : new Float32Array(data.length);
  v.set(data);
  return v;
}

function weightOf(dtype: WeightDType, shape: number[], values: Float64Array, resident: boolean): Weight {
  const w = resident ? wasm.allocWeight("w", dtype, shape) : createTsKernels("f32").allocWeight("w", dtype, shape);
  if (dtype === "BF16") f32ArrayToBf16(values, w.data as Uint16Array);
  else if (dtype === "F16") f32ArrayToF16(values, w.data as Uint16Array);
  else (w.data as Float32Array | Float64Array).set(values);
  return w;
}

const close = (got: Vec, want: Vec, tol = 2e-5) => expect(maxScaledDiff(got, want)).toBeLessThanOrEqual(tol);

describe("linear", () => {
  it("matches the TypeScript kernel for every dtype, any shape, one or many tokens", () => {
    fc.assert(
      fc.property(
        dim(70), dim(150), dim(9), fc.constantFrom<WeightDType>("BF16", "F16", "F32", "F64"), fc.boolean(), fc.integer(),
        (rows, cols, T, dtype, resident, seed) => {
          const rand = rng(seed);
          const w = weightOf(dtype, [rows, cols], uniform(rand, rows * cols), resident);
          const x = vecOf(uniform(rand, T * cols), resident);
          const want = new Float32Array(T * rows);
          ts.linear(w, x, T, want);
          // Exact products and float64 sums: the same float32 result up to one rounding of the sum.
          const got = resident ? wasm.vec(T * rows) : new Float32Array(T * rows);
          wasm.linear(w, x, T, got);
          close(got, want, 1e-6);
          // Float32 accumulation: rounding grows like sqrt(cols).
          const quick = new Float32Array(T * rows);
          fast.linear(w, x, T, quick);
          close(quick, want, 2e-6 * Math.sqrt(cols));
        },
      ),
      RUNS,
    );
  });

  /** The WASM exact matvec of random rows x cols weights equals the float64 dot product (the TS kernels' f64 sums) rounded once. */
  const exactOnce = (rows: number, cols: number, dtype: WeightDType, seed: number) => {
    const rand = rng(seed);
    const w = weightOf(dtype, [rows, cols], uniform(rand, rows * cols), true);
    const x = vecOf(uniform(rand, cols), true);
    const want = new Float32Array(rows);
    createTsKernels("f64").linear(w, Float64Array.from(x), 1, want); // float64 sums, then one rounding
    const got = wasm.vec(rows);
    wasm.linear(w, x, 1, got);
    for (let r = 0; r < rows; r++) expect(Math.abs(got[r] - want[r])).toBeLessThanOrEqual(Math.abs(want[r]) * 2 ** -23 + 1e-30);
  };

  it("exact accumulation equals a float64 dot product rounded once", () => {
    fc.assert(
      fc.property(dim(40), dim(300), fc.constantFrom<WeightDType>("BF16", "F16", "F32"), fc.integer(), exactOnce),
      RUNS,
    );
  });

  it("exact accumulation on long rows (read one row at a time) equals a float64 dot product rounded once", () => {
    fc.assert(
      fc.property(dim(9), fc.constantFrom(513, 519, 1024, 1025, 1031, 2048, 2053, 4096), fc.constantFrom<WeightDType>("BF16", "F16", "F32"), fc.integer(), exactOnce),
      { numRuns: 24 },
    );
  });

  it("exact accumulation stays exact for every token of a batch (groups of four, three, two, one)", () => {
    fc.assert(
      fc.property(dim(12), dim(90), dim(11), fc.constantFrom<WeightDType>("BF16", "F16", "F32"), fc.integer(), (rows, cols, T, dtype, seed) => {
        const rand = rng(seed);
        const w = weightOf(dtype, [rows, cols], uniform(rand, rows * cols), true);
        const x = vecOf(uniform(rand, T * cols), true);
        const want = new Float32Array(T * rows);
        createTsKernels("f64").linear(w, Float64Array.from(x), T, want); // float64 sums, then one rounding
        const got = wasm.vec(T * rows);
        wasm.linear(w, x, T, got);
        for (let i = 0; i < T * rows; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(Math.abs(want[i]) * 2 ** -23 + 1e-30);
      }),
      RUNS,
    );
  });

  it("widens F16 specials exactly: subnormals, largest normal, infinities, NaN", () => {
    const bits = [0x0001, 0x03ff, 0x0400, 0x7bff, 0x8001, 0x8000, 0x0000, 0x3c00, 0xfc00, 0x7c00, 0x7e00];
    const w = wasm.allocWeight("e", "F16", [bits.length, 1]);
    (w.data as Uint16Array).set(bits);
    const x = vecOf([1], true);
    const got = wasm.vec(bits.length);
    const want = new Float32Array(bits.length);
    wasm.linear(w, x, 1, got);
    ts.linear(w, x, 1, want);
    expect(Array.from(got)).toEqual(Array.from(want));
    expect(got[0]).toBe(2 ** -24); // smallest subnormal
    expect(got[3]).toBe(65504); // largest normal
  });

  it("embedding rows equal the widened table row", () => {
    fc.assert(
      fc.property(dim(20), dim(45), fc.constantFrom<WeightDType>("BF16", "F16", "F32"), fc.integer(), (V, H, dtype, seed) => {
        const rand = rng(seed);
        const w = weightOf(dtype, [V, H], uniform(rand, V * H), true);
        const id = Math.floor(rand() * V);
        const got = wasm.vec(H);
        const want = new Float32Array(H);
        wasm.embedding(w, id, got);
        ts.embedding(w, id, want);
        expect(Array.from(got)).toEqual(Array.from(want));
      }),
      RUNS,
    );
    const w = wasm.allocWeight("e", "BF16", [3, 2]);
    expect(() => wasm.embedding(w, 3, wasm.vec(2))).toThrow(/token id 3 is out of range/);
  });
});

describe("row kernels", () => {
  const rows = fc.record({ n: dim(70), R: dim(5), resident: fc.boolean(), seed: fc.integer() });

  it("rmsNorm, gatedRmsNorm, l2Normalize, softmax match", () => {
    fc.assert(
      fc.property(rows, ({ n, R, resident, seed }) => {
        const rand = rng(seed);
        const x = uniform(rand, R * n, -3, 3), z = uniform(rand, R * n, -4, 4), w = uniform(rand, n);
        const pairs: [Vec, Vec][] = [];
        const run = (f: (k: typeof ts, a: Vec) => void, src: Float64Array) => {
          const a = vecOf(src, resident), b = Float32Array.from(src);
          f(wasm, a);
          f(ts, b);
          pairs.push([a, b]);
        };
        run((k, a) => k.rmsNorm(a, vecOf(w, resident), 1e-6, n, a), x);
        run((k, a) => k.gatedRmsNorm(a, vecOf(z, resident), vecOf(w, resident), 1e-6, n, a), x);
        run((k, a) => k.l2Normalize(a, n, 1e-6, 0.3), x);
        run((k, a) => k.softmax(a, n), x);
        // Out of place too.
        const outW = vecOf(new Float64Array(R * n), resident), outT = new Float32Array(R * n);
        wasm.rmsNorm(vecOf(x, !resident), vecOf(w, resident), 1e-6, n, outW);
        ts.rmsNorm(Float32Array.from(x), Float32Array.from(w), 1e-6, n, outT);
        pairs.push([outW, outT]);
        for (const [a, b] of pairs) close(a, b);
      }),
      RUNS,
    );
  });

  it("siluMul, sigmoidMul, axpy match", () => {
    fc.assert(
      fc.property(dim(133), fc.boolean(), fc.integer(), (n, resident, seed) => {
        const rand = rng(seed);
        const g = uniform(rand, n, -5, 5), u = uniform(rand, n, -2, 2);
        const outW = vecOf(new Float64Array(n), resident), outT = new Float32Array(n);
        wasm.siluMul(vecOf(g, resident), vecOf(u, !resident), outW);
        ts.siluMul(Float32Array.from(g), Float32Array.from(u), outT);
        close(outW, outT);
        const xw = vecOf(u, resident), xt = Float32Array.from(u);
        wasm.sigmoidMul(xw, vecOf(g, !resident));
        ts.sigmoidMul(xt, Float32Array.from(g));
        close(xw, xt);
        wasm.axpy(0.7, vecOf(g, !resident), xw);
        ts.axpy(0.7, Float32Array.from(g), xt);
        close(xw, xt);
      }),
      RUNS,
    );
  });

  it("rope matches on partial rotary dims", () => {
    fc.assert(
      fc.property(dim(5), dim(4), fc.integer({ min: 1, max: 19 }), fc.integer({ min: 0, max: 10 }), fc.integer(), (T, H, halfR, extra, seed) => {
        const rand = rng(seed);
        const R = 2 * halfR, D = R + extra;
        const x = uniform(rand, T * H * D), cos = uniform(rand, T * halfR), sin = uniform(rand, T * halfR);
        const xw = vecOf(x, true), xt = Float32Array.from(x);
        wasm.rope(xw, T, H, D, R, vecOf(cos, true), vecOf(sin, false));
        ts.rope(xt, T, H, D, R, Float32Array.from(cos), Float32Array.from(sin));
        close(xw, xt);
      }),
      RUNS,
    );
  });
});

describe("two-lane exp (asm/exp2.ts)", () => {
  it("equals the scalar NativeMath.exp bit for bit: the sigmoid / SiLU range, every table index, and the scalar fallbacks", () => {
    const n = 1 << 16;
    const { arena, ptr } = wasm.heap.alloc(n * 8 * 3, "exp test");
    const x = arena.f64(ptr, n), pairs = arena.f64(ptr + n * 8, n), scalar = arena.f64(ptr + 2 * n * 8, n);
    const rand = rng(7);
    const special = [0, -0, 1e-300, -1e-17, 2 ** -54, 2 ** -55, 511.9, 512, -512, 709.7, 710, -745, -746, Infinity, -Infinity, NaN];
    for (let i = 0; i < n; i++) {
      // Mostly |x| < 40 (what sigmoid and SiLU see), some anywhere in the exponent range, some special values
      // next to ordinary ones (a pair with one special lane takes the scalar path for both).
      const u = rand();
      x[i] = i % 97 === 0 ? special[(i / 97) % special.length] : u < 0.8 ? (rand() - 0.5) * 80 : (rand() - 0.5) * 2 ** (rand() * 20 - 10) * 2;
    }
    arena.exports.expLanes(ptr, ptr + n * 8, n, 1);
    arena.exports.expLanes(ptr, ptr + 2 * n * 8, n, 0);
    const bits = (a: Float64Array) => Array.from(new BigUint64Array(a.buffer, a.byteOffset, a.length), (b) => b.toString(16));
    expect(bits(pairs)).toEqual(bits(scalar));
    // And the scalar function is exp: within an ulp or two of the host's Math.exp.
    for (let i = 0; i < n; i++) if (Number.isFinite(x[i]) && Math.abs(x[i]) < 700) expect(Math.abs(scalar[i] / Math.exp(x[i]) - 1)).toBeLessThan(4e-16);
    arena.release(ptr);
  });
});

describe("sequence kernels", () => {
  it("attention matches (GQA, T new queries over L cached positions)", () => {
    fc.assert(
      fc.property(dim(4), dim(3), dim(21), dim(6), fc.integer({ min: 0, max: 7 }), fc.integer(), (T, Hkv, D, group, past, seed) => {
        const rand = rng(seed);
        const H = Hkv * group, L = T + past;
        const q = uniform(rand, T * H * D), k = uniform(rand, L * Hkv * D), v = uniform(rand, L * Hkv * D);
        const args = (resident: boolean, out: Vec) => ({
          q: vecOf(q, resident), k: vecOf(k, resident), v: vecOf(v, resident),
          T, L, numHeads: H, numKvHeads: Hkv, headDim: D, scale: 1 / Math.sqrt(D), out,
        });
        const got = wasm.vec(T * H * D), want = new Float32Array(T * H * D);
        wasm.attention(args(true, got));
        ts.attention(args(false, want));
        close(got, want);
      }),
      RUNS,
    );
  });

  it("causalConv1d matches and carries the same state", () => {
    fc.assert(
      fc.property(dim(9), dim(37), dim(5), fc.integer(), (T, C, K, seed) => {
        const rand = rng(seed);
        const x = uniform(rand, T * C), w = uniform(rand, C * K), s = uniform(rand, C * (K - 1));
        const sw = vecOf(s, true), st = Float32Array.from(s);
        const got = wasm.vec(T * C), want = new Float32Array(T * C);
        wasm.causalConv1d({ x: vecOf(x, true), weight: vecOf(w, true), state: sw, T, C, K, out: got });
        ts.causalConv1d({ x: Float32Array.from(x), weight: Float32Array.from(w), state: st, T, C, K, out: want });
        close(got, want);
        close(sw, st);
      }),
      RUNS,
    );
  });

  it("causalConv1d is the float64 sum in tap order, silu'd and rounded once, with the last K-1 rows as the new state", () => {
    fc.assert(
      fc.property(dim(9), dim(37), fc.constantFrom(4, 2, 3, 5), fc.boolean(), fc.integer(), (T, C, K, resident, seed) => {
        const rand = rng(seed);
        const x = Float32Array.from(uniform(rand, T * C, -3, 3)), w = Float32Array.from(uniform(rand, C * K));
        const s = Float32Array.from(uniform(rand, C * (K - 1), -3, 3));
        // s[r, c] of the window: the K-1 state rows, then x.
        const win = (r: number, c: number) => (r < K - 1 ? s[c * (K - 1) + r] : x[(r - K + 1) * C + c]);
        const want = new Float32Array(T * C);
        for (let t = 0; t < T; t++) {
          for (let c = 0; c < C; c++) {
            let acc = 0;
            for (let j = 0; j < K; j++) acc += w[c * K + j] * win(t + j, c);
            want[t * C + c] = acc * (1 / (1 + Math.exp(-acc)));
          }
        }
        const wantState = Float32Array.from({ length: C * (K - 1) }, (_, i) => win(T + (i % (K - 1)), Math.floor(i / (K - 1))));
        const state = vecOf(s, resident), out = resident ? wasm.vec(T * C) : new Float32Array(T * C);
        wasm.causalConv1d({ x: vecOf(x, resident), weight: vecOf(w, resident), state, T, C, K, out });
        // f64 exp may differ from Math.exp in its last bit; rounded to float32 that shows up ~once in 2^28.
        expect(Array.from(out)).toEqual(Array.from(want));
        expect(Array.from(state)).toEqual(Array.from(wantState));
      }),
      RUNS,
    );
  });

  it("gatherRows and scatterAxpyRows: row copies and float64 axpys rounded once, in slot order, staged or resident", () => {
    fc.assert(
      fc.property(dim(9), dim(70), fc.array(fc.nat(), { minLength: 1, maxLength: 12 }), fc.boolean(), fc.integer(), (N, width, picks, resident, seed) => {
        const rand = rng(seed);
        const rows = Int32Array.from(picks, (p) => p % N);
        const x = vecOf(uniform(rand, N * width), resident);
        const g = resident ? wasm.vec(rows.length * width + 3) : new Float32Array(rows.length * width + 3);
        g.fill(7);
        wasm.gatherRows(x, width, rows, g);
        const wantG = new Float32Array(rows.length * width + 3).fill(7);
        rows.forEach((r, j) => wantG.set(x.subarray(r * width, (r + 1) * width), j * width));
        expect(Array.from(g)).toEqual(Array.from(wantG));
        const a = vecOf(uniform(rand, rows.length, -2, 2), resident);
        const y0 = uniform(rand, N * width);
        const y = vecOf(y0, resident);
        wasm.scatterAxpyRows(a, g, width, rows, y);
        const want = Float32Array.from(y0);
        rows.forEach((r, j) => {
          for (let i = 0; i < width; i++) want[r * width + i] = want[r * width + i] + a[j] * g[j * width + i];
        });
        expect(Array.from(y)).toEqual(Array.from(want));
      }),
      RUNS,
    );
  });

  it("the delta rule (recurrent and chunked entry points) matches the recurrent TypeScript rule", () => {
    fc.assert(
      fc.property(dim(12), dim(2), dim(3), dim(19), dim(21), fc.boolean(), fc.integer(), (T, Hk, r, dk, dv, chunked, seed) => {
        const rand = rng(seed);
        const Hv = Hk * r;
        const l2 = (a: Float64Array, n: number) => {
          const v = Float32Array.from(a);
          ts.l2Normalize(v, n, 1e-6, 1);
          return v;
        };
        const q = l2(uniform(rand, T * Hk * dk), dk), k = l2(uniform(rand, T * Hk * dk), dk);
        const v = uniform(rand, T * Hv * dv), g = uniform(rand, T * Hv, -2, 0), beta = uniform(rand, T * Hv, 0, 1);
        const s0 = uniform(rand, Hv * dk * dv);
        const args = (resident: boolean, state: Vec, out: Vec) => ({
          q: vecOf(q, resident), k: vecOf(k, resident), v: vecOf(v, resident), g: vecOf(g, resident),
          beta: vecOf(beta, resident), state, T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv, out,
        });
        const sw = vecOf(s0, true), stt = Float32Array.from(s0);
        const got = wasm.vec(T * Hv * dv), want = new Float32Array(T * Hv * dv);
        if (chunked) wasm.deltaRuleChunked(args(true, sw, got), 4);
        else wasm.deltaRuleRecurrent(args(true, sw, got));
        ts.deltaRuleRecurrent(args(false, stt, want));
        close(got, want, 1e-4);
        close(sw, stt, 1e-4);
      }),
      RUNS,
    );
  });

  it("router picks the same experts with the same weights", () => {
    fc.assert(
      fc.property(dim(4), fc.integer({ min: 1, max: 70 }), fc.boolean(), fc.integer(), (T, E, normalize, seed) => {
        const rand = rng(seed);
        const k = 1 + Math.floor(rand() * E);
        // Distinct logits a clear margin apart, so float32 and float64 orderings agree.
        const perm = Array.from({ length: E }, (_, i) => i).sort(() => rand() - 0.5);
        const logits = Float32Array.from({ length: T * E }, (_, i) => perm[(i + 3 * Math.floor(i / E)) % E] * 0.05 - 1);
        const ew = new Int32Array(T * k), et = new Int32Array(T * k);
        const ww = wasm.vec(T * k), wt = new Float32Array(T * k);
        wasm.router({ logits: vecOf(logits, true), T, numExperts: E, k, normalize, experts: ew, weights: ww });
        ts.router({ logits, T, numExperts: E, k, normalize, experts: et, weights: wt });
        expect(Array.from(ew)).toEqual(Array.from(et));
        close(ww, wt, 1e-6);
      }),
      RUNS,
    );
  });
});
