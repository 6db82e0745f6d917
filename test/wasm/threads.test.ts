/**
 * Threads: every split kernel gives bit-identical results on 1 and 2 threads (rows and heads are split,
 * never a sum), including on an instance opened after the workers started.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { f32ArrayToBf16, f32ArrayToF16 } from "../../src/io/dtype.js";
import type { WeightDType } from "../../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/kernels.js";
import { PAGE } from "../../src/kernels/wasm/module.js";
import { rng, uniform } from "../helpers/random.js";

let one: WasmKernels;
let two: WasmKernels;
beforeAll(async () => {
  one = await createWasmKernels({ threads: 1 });
  // Split everything (no size threshold); 1 MiB instances, so new ones open while the workers run.
  two = await createWasmKernels({ threads: 2, minParallelBytes: 0, maxInstanceBytes: 16 * PAGE });
  for (let i = 0; i < 3; i++) two.allocWeight(`filler${i}`, "F32", [400, 400]);
});
afterAll(async () => {
  await one.close();
  await two.close();
});

const dim = (max: number) => fc.integer({ min: 1, max });

describe("two threads equal one", () => {
  it("linear, every dtype, decode and prefill shapes", () => {
    fc.assert(
      fc.property(dim(150), dim(120), dim(6), fc.constantFrom<WeightDType>("BF16", "F16", "F32"), fc.integer(), (rows, cols, T, dtype, seed) => {
        const rand = rng(seed);
        const values = uniform(rand, rows * cols);
        const x = uniform(rand, T * cols);
        const outs = [one, two].map((k) => {
          const w = k.allocWeight("w", dtype, [rows, cols]);
          if (dtype === "BF16") f32ArrayToBf16(values, w.data as Uint16Array);
          else if (dtype === "F16") f32ArrayToF16(values, w.data as Uint16Array);
          else (w.data as Float32Array).set(values);
          const xv = k.vec(T * cols);
          xv.set(x);
          const y = k.vec(T * rows);
          k.linear(w, xv, T, y);
          return Array.from(y);
        });
        expect(outs[1]).toEqual(outs[0]);
      }),
      { numRuns: 30 },
    );
    expect(two.heap.arenas.length).toBeGreaterThan(1);
  });

  it("attention and the delta rule split by heads", () => {
    fc.assert(
      fc.property(dim(3), dim(3), dim(4), dim(40), dim(9), fc.integer(), (T, Hkv, group, D, past, seed) => {
        const rand = rng(seed);
        const H = Hkv * group, L = T + past;
        const q = uniform(rand, T * H * D), kk = uniform(rand, L * Hkv * D), v = uniform(rand, L * Hkv * D);
        const vv = uniform(rand, T * H * D), g = uniform(rand, T * H, -1, 0), beta = uniform(rand, T * H, 0, 1), s0 = uniform(rand, H * D * D, -0.1, 0.1);
        const outs = [one, two].map((k) => {
          const vec = (a: Float64Array) => {
            const r = k.vec(a.length);
            r.set(a);
            return r;
          };
          const att = k.vec(T * H * D);
          k.attention({ q: vec(q), k: vec(kk), v: vec(v), T, L, numHeads: H, numKvHeads: Hkv, headDim: D, scale: 0.1, out: att });
          const state = vec(s0), o = k.vec(T * H * D);
          const qk = vec(q.subarray(0, T * Hkv * D));
          k.deltaRuleRecurrent({ q: qk, k: qk, v: vec(vv), g: vec(g), beta: vec(beta), state, T, numKeyHeads: Hkv, numValueHeads: H, dk: D, dv: D, out: o });
          return [Array.from(att), Array.from(o), Array.from(state)];
        });
        expect(outs[1]).toEqual(outs[0]);
      }),
      { numRuns: 25 },
    );
  });

  it("causalConv1d splits channels (odd widths, K = 4 and 5)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 8, max: 12 }), fc.integer({ min: 2048, max: 2101 }), fc.constantFrom(4, 4, 5), fc.integer(), (T, C, K, seed) => {
        const rand = rng(seed);
        const x = uniform(rand, T * C), w = uniform(rand, C * K), s0 = uniform(rand, C * (K - 1));
        const outs = [one, two].map((k) => {
          const vec = (a: Float64Array) => {
            const r = k.vec(a.length);
            r.set(a);
            return r;
          };
          const state = vec(s0), out = k.vec(T * C);
          k.causalConv1d({ x: vec(x), weight: vec(w), state, T, C, K, out });
          return [Array.from(out), Array.from(state)];
        });
        expect(outs[1]).toEqual(outs[0]);
      }),
      { numRuns: 10 },
    );
  });
});

describe("thread pool failures", () => {
  it("a kernel that traps reports an error on every thread and the pool keeps working", () => {
    const pool = two.pool!;
    const arena = two.heap.arenas[0];
    const beyond = arena.memory.buffer.byteLength; // rows past the end of memory: an out-of-bounds trap
    expect(() => pool.run(arena, "matvecF32Exact", [beyond, beyond, beyond, 64, 0, 64], 4, 64, 4)).toThrow();
    const w = two.allocWeight("ok", "F32", [16, 3]);
    (w.data as Float32Array).fill(1);
    const x = two.vec(3);
    x.fill(2);
    const y = two.vec(16);
    two.linear(w, x, 1, y);
    expect(Array.from(y)).toEqual(new Array(16).fill(6));
  });
});

describe("claimed parts", () => {
  it("every part of every job runs exactly once: 400 back-to-back in-place updates on 3 threads equal 1 thread", async () => {
    // The one-step delta rule updates its state in place: a head run twice or skipped in any of the jobs
    // changes the final state. Short jobs posted back to back make late workers claim against new jobs.
    const three = await createWasmKernels({ threads: 3 });
    try {
      const rand = rng(7);
      const H = 6, D = 8;
      const q = uniform(rand, H * D), v = uniform(rand, H * D), g = uniform(rand, H, -0.1, 0), beta = uniform(rand, H, 0, 1);
      const s0 = uniform(rand, H * D * D, -0.1, 0.1);
      const finals = [one, three].map((k) => {
        const vec = (a: Float64Array) => {
          const r = k.vec(a.length);
          r.set(a);
          return r;
        };
        const state = vec(s0), o = k.vec(H * D);
        const args = [q, q, v, g, beta].map(vec);
        const st = k.heap.arenas[0];
        const ptr = (x: Float32Array) => x.byteOffset;
        const tmp = k.vec(H * (2 * D + D * D) * 2); // float64 scratch of deltaRule
        for (let i = 0; i < 400; i++) {
          const call = [...args.map((x) => ptr(x as Float32Array)), ptr(state as Float32Array), ptr(o as Float32Array), ptr(tmp as Float32Array), 1, H, H, D, D, 0, H];
          if (k.pool) k.pool.run(st, "deltaRule", call, 13, H, 1, 3);
          else st.exports.deltaRule(...call);
        }
        return Array.from(state);
      });
      expect(finals[1]).toEqual(finals[0]);
    } finally {
      await three.close();
    }
  });
});
