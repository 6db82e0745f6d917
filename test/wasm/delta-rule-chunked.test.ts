/**
 * The WASM chunked gated delta rule (asm/delta_chunked.ts) against both TypeScript forms computed in float64
 * from the same float32 inputs (the chunked algorithm and the step-by-step definition), over random lengths
 * (partial last chunks), chunk sizes, GQA head ratios and dims not multiples of 4, with and without an
 * initial state; bit-identical on 1 and 2 threads; and the golden delta-rule fixtures (float64 oracle).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deltaRuleChunked as tsChunked, deltaRuleRecurrent as tsRecurrent } from "../../src/kernels/ts/delta_rule.js";
import type { DeltaRuleArgs, Vec } from "../../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/kernels.js";
import { PAGE } from "../../src/kernels/wasm/module.js";
import { maxScaledDiff, rng, uniform } from "../helpers/random.js";
import { maxAbsDiff, readDeltaRuleFixture } from "../helpers/reference.js";

let one: WasmKernels;
let two: WasmKernels;
beforeAll(async () => {
  one = await createWasmKernels({ threads: 1 });
  two = await createWasmKernels({ threads: 2, minParallelBytes: 0 });
});
afterAll(async () => {
  await one.close();
  await two.close();
});

interface Problem {
  T: number;
  Hk: number;
  Hv: number;
  dk: number;
  dv: number;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  g: Float32Array;
  beta: Float32Array;
  s0: Float32Array;
}

/** Rows of n values scaled to unit length (the model L2-normalises q and k). */
function unitRows(x: Float64Array, n: number, scale = 1): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length; r += n) {
    let s = 0;
    for (let i = 0; i < n; i++) s += x[r + i] ** 2;
    for (let i = 0; i < n; i++) out[r + i] = (x[r + i] / Math.sqrt(s + 1e-6)) * scale;
  }
  return out;
}

function problem(seed: number, T: number, Hk: number, ratio: number, dk: number, dv: number, withState: boolean): Problem {
  const rand = rng(seed);
  const Hv = Hk * ratio;
  return {
    T, Hk, Hv, dk, dv,
    q: unitRows(uniform(rand, T * Hk * dk), dk, 1 / Math.sqrt(dk)),
    k: unitRows(uniform(rand, T * Hk * dk), dk),
    v: Float32Array.from(uniform(rand, T * Hv * dv)),
    g: Float32Array.from(uniform(rand, T * Hv, -1.5, 0)),
    beta: Float32Array.from(uniform(rand, T * Hv, 0, 1)),
    s0: withState ? Float32Array.from(uniform(rand, Hv * dk * dv)) : new Float32Array(Hv * dk * dv),
  };
}

/** The problem's arguments, copied into fresh arrays made by `make` (state and out writable). */
function argsOf(p: Problem, make: (n: number) => Vec): DeltaRuleArgs {
  const copy = (a: Float32Array) => {
    const v = make(a.length);
    v.set(a);
    return v;
  };
  return {
    q: copy(p.q), k: copy(p.k), v: copy(p.v), g: copy(p.g), beta: copy(p.beta), state: copy(p.s0),
    T: p.T, numKeyHeads: p.Hk, numValueHeads: p.Hv, dk: p.dk, dv: p.dv, out: make(p.T * p.Hv * p.dv),
  };
}

const f64 = (n: number) => new Float64Array(n);
/**
 * Float32 storage and float32 SIMD products: the error seen is about 1e-7 of 1 + |value| (T = 500, slow
 * decay); 2e-6 leaves room for other draws and still fails any wrong term.
 */
const TOL = 2e-6;

describe("WASM chunked delta rule", () => {
  it("matches the TypeScript chunked and recurrent forms (float64) for any T, chunk, heads and dims", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.oneof(fc.constantFrom(1, 4, 16, 64), fc.integer({ min: 1, max: 80 })),
        fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 37 }), fc.integer({ min: 1, max: 37 }),
        fc.boolean(), fc.boolean(), fc.integer(),
        (T, chunk, Hk, ratio, dk, dv, withState, resident, seed) => {
          const p = problem(seed, T, Hk, ratio, dk, dv, withState);
          const got = argsOf(p, resident ? (n) => one.vec(n) : (n) => new Float32Array(n));
          one.deltaRuleChunked(got, chunk);
          const chunked = argsOf(p, f64);
          tsChunked(chunked, chunk);
          const recurrent = argsOf(p, f64);
          tsRecurrent(recurrent);
          for (const want of [chunked, recurrent]) {
            expect(maxScaledDiff(got.out, want.out)).toBeLessThanOrEqual(TOL);
            expect(maxScaledDiff(got.state, want.state)).toBeLessThanOrEqual(TOL);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("at the real head size (dk = dv = 128, 2 value heads per key head) over several chunks", () => {
    const p = problem(7, 150, 2, 2, 128, 128, true);
    const got = argsOf(p, (n) => one.vec(n));
    one.deltaRuleChunked(got);
    const want = argsOf(p, f64);
    tsRecurrent(want);
    expect(maxScaledDiff(got.out, want.out)).toBeLessThanOrEqual(TOL);
    expect(maxScaledDiff(got.state, want.state)).toBeLessThanOrEqual(TOL);
  });

  it("gives bit-identical results on 2 threads and 1", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 64, max: 150 }), fc.integer({ min: 1, max: 70 }),
        fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 3 }),
        fc.integer({ min: 24, max: 40 }), fc.integer({ min: 24, max: 40 }), fc.integer(),
        (T, chunk, Hk, ratio, dk, dv, seed) => {
          const p = problem(seed, T, Hk, ratio, dk, dv, true);
          const outs = [one, two].map((k) => {
            const a = argsOf(p, (n) => k.vec(n));
            k.deltaRuleChunked(a, chunk);
            return [Array.from(a.out), Array.from(a.state)];
          });
          expect(outs[1]).toEqual(outs[0]);
        },
      ),
      { numRuns: 15 },
    );
  });

  it("is right on instances too small for its work space (one thread, then the scan, take over)", async () => {
    const capped = await createWasmKernels({ threads: 2, minParallelBytes: 0, maxInstanceBytes: 4 * PAGE });
    try {
      // Work space per thread ~130 KB with chunk 80 (fits once, not twice), ~300 KB with chunk 128 (never).
      for (const chunk of [80, 128]) {
        const p = problem(chunk, 140, 3, 1, 12, 8, true);
        const got = argsOf(p, (n) => new Float32Array(n));
        capped.deltaRuleChunked(got, chunk);
        const want = argsOf(p, f64);
        tsRecurrent(want);
        expect(maxScaledDiff(got.out, want.out)).toBeLessThanOrEqual(TOL);
        expect(maxScaledDiff(got.state, want.state)).toBeLessThanOrEqual(TOL);
      }
    } finally {
      await capped.close();
    }
  });

  it("rejects a chunk size that is not a positive integer", () => {
    const a = argsOf(problem(1, 3, 1, 1, 4, 4, false), (n) => one.vec(n));
    expect(() => one.deltaRuleChunked(a, 0)).toThrow(/chunk size 0, expected an integer >= 1/);
    expect(() => one.deltaRuleChunked(a, 2.5)).toThrow(/chunk size 2.5/);
  });
});

describe.each(["delta-rule-small", "delta-rule-real-heads"])("fixture %s through the WASM chunked kernel", (file) => {
  it.each([
    { threads: 1, chunk: 64 },
    { threads: 1, chunk: 5 },
    { threads: 2, chunk: 64 },
  ])("threads $threads, chunk $chunk: output and final state within 1e-3", async ({ threads, chunk }) => {
    const kernels = threads === 1 ? one : two;
    const fixture = await readDeltaRuleFixture(`${file}.safetensors`, kernels);
    const args = fixture.args();
    kernels.deltaRuleChunked(args, chunk);
    expect(maxAbsDiff(args.out, fixture.output)).toBeLessThanOrEqual(1e-3);
    expect(maxAbsDiff(args.state, fixture.finalState)).toBeLessThanOrEqual(1e-3);
  });
});
