/**
 * `moeExperts` on every host kernel set against the MoE sum written out here token by token in float64:
 * out[t] = out0[t] + sum_j w[t, j] down_e(silu(gate_e x_t) * up_e x_t), e = experts[t, j]; and the tensor
 * boundary of the host backends: `read` captures the values at the call, `write` and `view` address elements.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { HostKernels, Vec, Weight } from "../../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/kernels.js";
import { maxScaledDiff, rng, uniform } from "../helpers/random.js";

let wasm: WasmKernels;
beforeAll(async () => {
  wasm = await createWasmKernels({ threads: 1 });
});
afterAll(async () => {
  await wasm.close();
});

const SETS: [string, () => HostKernels, number][] = [
  ["ts f64", () => createTsKernels("f64"), 1e-12],
  ["ts f32", () => createTsKernels("f32"), 1e-5],
  ["wasm", () => wasm, 1e-5],
];
const silu = (a: number) => a / (1 + Math.exp(-a));

function f32Weight(k: HostKernels, name: string, rows: number, cols: number, values: Float64Array): Weight {
  const w = k.allocWeight(name, "F32", [rows, cols]);
  (w.data as Float32Array).set(values);
  return w;
}

describe.each(SETS)("moeExperts (%s)", (_name, kernels, tol) => {
  it("adds each token's weighted expert outputs, experts chosen any number of times", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 6 }), fc.integer(), (T, E, topK, H, I, seed) => {
        const k = kernels();
        const rand = rng(seed);
        const mats = Array.from({ length: E }, () => ({ g: uniform(rand, I * H), u: uniform(rand, I * H), d: uniform(rand, H * I) }));
        const mlps = mats.map((m, e) => ({
          gate_proj: f32Weight(k, `e${e}.gate`, I, H, m.g),
          up_proj: f32Weight(k, `e${e}.up`, I, H, m.u),
          down_proj: f32Weight(k, `e${e}.down`, H, I, m.d),
        }));
        const ids = Int32Array.from({ length: T * topK }, () => Math.floor(rand() * E));
        const xs = uniform(rand, T * H, -2, 2);
        const ws = uniform(rand, T * topK);
        const out0 = uniform(rand, T * H);
        const x = k.vec(T * H);
        const weights = k.vec(T * topK);
        const out = k.vec(T * H);
        k.write(x, xs);
        k.write(weights, ws);
        k.write(out, out0);
        const experts = k.indices(T * topK);
        experts.set(ids);
        k.moeExperts({ x, experts, weights, T, k: topK, mlps, out });
        // The definition, with the inputs as the kernels store them (weights are exact float32 numbers).
        const f = (v: number) => (k.precision === "f64" ? v : Math.fround(v));
        const want = Float64Array.from(out0, f);
        for (let t = 0; t < T; t++) {
          for (let j = 0; j < topK; j++) {
            const m = mats[ids[t * topK + j]];
            const h = Array.from({ length: I }, (_, i) => {
              let g = 0, u = 0;
              for (let c = 0; c < H; c++) {
                g += Math.fround(m.g[i * H + c]) * f(xs[t * H + c]);
                u += Math.fround(m.u[i * H + c]) * f(xs[t * H + c]);
              }
              return silu(g) * u;
            });
            for (let o = 0; o < H; o++) {
              let y = 0;
              for (let i = 0; i < I; i++) y += Math.fround(m.d[o * I + i]) * h[i];
              want[t * H + o] += f(ws[t * topK + j]) * y;
            }
          }
        }
        expect(maxScaledDiff(out, want)).toBeLessThanOrEqual(tol);
      }),
      { numRuns: 30 },
    );
  });

  it("read captures the values at the call; write and view address the same elements", async () => {
    const k = kernels();
    const t = k.vec(6);
    k.write(t, [1, 2, 3, 4, 5, 6]);
    const before = k.read(k.view(t, 2, 5));
    k.fill(t, 0);
    k.write(k.view(t, 4, 6), [7, 8]);
    expect(Array.from(await before)).toEqual([3, 4, 5]);
    expect(Array.from(await k.read(t))).toEqual([0, 0, 0, 0, 7, 8]);
    const r: Vec = k.residual(3);
    expect(r).toBeInstanceOf(Float64Array);
  });
});
