/**
 * The WASM delta rule's arithmetic contract, checked bit for bit: float32 operands and state, float64
 * arithmetic within the call, the state carried in float64 across the call's steps and every stored result
 * rounded once. The expectation is that contract written out in float64 TypeScript, in the kernel's order of
 * operations (u = S^T k summed over rows in order; S = e S + k delta^T; o = S^T q). With g = 0 the decay is
 * exactly 1, so no exp() implementation enters the comparison. It covers the one-step (decode) path, which
 * skips the float64 copy of the state, and the multi-step path.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/kernels.js";
import { rng, uniform } from "../helpers/random.js";

let wasm: WasmKernels;
beforeAll(async () => {
  wasm = await createWasmKernels({ threads: 1 });
});
afterAll(async () => {
  await wasm.close();
});

/** The contract in float64 (inputs already float32 values); returns [out, state] rounded to float32. */
function reference(q: Float32Array, k: Float32Array, v: Float32Array, beta: Float32Array, s0: Float32Array, T: number, Hk: number, Hv: number, dk: number, dv: number) {
  const out = new Float32Array(T * Hv * dv);
  const state = new Float32Array(s0.length);
  for (let h = 0; h < Hv; h++) {
    const S = Float64Array.from(s0.subarray(h * dk * dv, (h + 1) * dk * dv));
    const kh = Math.floor(h / (Hv / Hk));
    for (let t = 0; t < T; t++) {
      const kt = (t * Hk + kh) * dk, vt = (t * Hv + h) * dv, b = beta[t * Hv + h];
      const u = new Float64Array(dv), o = new Float64Array(dv);
      for (let i = 0; i < dk; i++) for (let j = 0; j < dv; j++) u[j] += S[i * dv + j] * k[kt + i];
      for (let j = 0; j < dv; j++) u[j] = b * (v[vt + j] - 1 * u[j]);
      for (let i = 0; i < dk; i++) {
        for (let j = 0; j < dv; j++) {
          const sv = 1 * S[i * dv + j] + k[kt + i] * u[j];
          S[i * dv + j] = sv;
          o[j] += sv * q[kt + i];
        }
      }
      for (let j = 0; j < dv; j++) out[vt + j] = o[j];
    }
    state.set(S, h * dk * dv);
  }
  return { out, state };
}

describe("WASM delta rule", () => {
  it("equals the float64 contract bit for bit, one step and many, even and odd widths", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 21 }), fc.integer(), (T, Hk, r, dk, dv, seed) => {
        const rand = rng(seed);
        const Hv = Hk * r;
        const f32 = (n: number, lo = -1, hi = 1) => Float32Array.from(uniform(rand, n, lo, hi));
        const q = f32(T * Hk * dk), k = f32(T * Hk * dk), v = f32(T * Hv * dv), beta = f32(T * Hv, 0, 1);
        const s0 = f32(Hv * dk * dv);
        const want = reference(q, k, v, beta, s0, T, Hk, Hv, dk, dv);
        const vec = (a: Float32Array) => {
          const x = wasm.vec(a.length) as Float32Array;
          x.set(a);
          return x;
        };
        const state = vec(s0), out = wasm.vec(T * Hv * dv) as Float32Array;
        wasm.deltaRuleRecurrent({ q: vec(q), k: vec(k), v: vec(v), g: vec(new Float32Array(T * Hv)), beta: vec(beta), state, T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv, out });
        expect(Array.from(out)).toEqual(Array.from(want.out));
        expect(Array.from(state)).toEqual(Array.from(want.state));
      }),
      { numRuns: 60 },
    );
  });
});
