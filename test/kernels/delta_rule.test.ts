/**
 * The gated delta rule: the chunked form (transformers' algorithm) equals the recurrent definition, and a
 * sequence split anywhere with the state carried equals one pass.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deltaRuleChunked, deltaRuleRecurrent } from "../../src/kernels/ts/delta_rule.js";
import type { DeltaRuleArgs } from "../../src/kernels/types.js";
import { maxScaledDiff, rng, uniform } from "../helpers/random.js";

interface Problem {
  T: number;
  Hk: number;
  r: number;
  dk: number;
  dv: number;
  withState: boolean;
  seed: number;
}

const problem = fc.record({
  T: fc.integer({ min: 1, max: 200 }),
  Hk: fc.integer({ min: 1, max: 3 }),
  r: fc.integer({ min: 1, max: 3 }),
  dk: fc.integer({ min: 1, max: 9 }),
  dv: fc.integer({ min: 1, max: 9 }),
  withState: fc.boolean(),
  seed: fc.integer(),
});

/** Inputs as the model produces them: q, k unit-norm (q scaled), g <= 0, beta in (0, 1). */
function inputs(p: Problem): DeltaRuleArgs {
  const rand = rng(p.seed);
  const Hv = p.Hk * p.r;
  const unitRows = (n: number, scale: number) => {
    const x = uniform(rand, n * p.dk);
    for (let i = 0; i < n; i++) {
      const row = x.subarray(i * p.dk, (i + 1) * p.dk);
      const norm = Math.hypot(...row) || 1;
      row.forEach((v, j) => (row[j] = (v / norm) * scale));
    }
    return x;
  };
  return {
    q: unitRows(p.T * p.Hk, 1 / Math.sqrt(p.dk)),
    k: unitRows(p.T * p.Hk, 1),
    v: uniform(rand, p.T * Hv * p.dv, -2, 2),
    g: uniform(rand, p.T * Hv, -3, 0),
    beta: uniform(rand, p.T * Hv, 0, 1),
    state: p.withState ? uniform(rand, Hv * p.dk * p.dv) : new Float64Array(Hv * p.dk * p.dv),
    T: p.T,
    numKeyHeads: p.Hk,
    numValueHeads: Hv,
    dk: p.dk,
    dv: p.dv,
    out: new Float64Array(p.T * Hv * p.dv),
  };
}

/** A copy of the args with its own state and output. */
function fresh(a: DeltaRuleArgs): DeltaRuleArgs {
  return { ...a, state: a.state.slice(), out: new Float64Array(a.out.length) };
}

/** Rows [from, to) of every per-token input, the state shared. */
function slice(a: DeltaRuleArgs, from: number, to: number, state: Float64Array, out: Float64Array): DeltaRuleArgs {
  const { Hk, Hv, dk, dv } = { Hk: a.numKeyHeads, Hv: a.numValueHeads, dk: a.dk, dv: a.dv };
  return {
    ...a,
    q: a.q.subarray(from * Hk * dk, to * Hk * dk),
    k: a.k.subarray(from * Hk * dk, to * Hk * dk),
    v: a.v.subarray(from * Hv * dv, to * Hv * dv),
    g: a.g.subarray(from * Hv, to * Hv),
    beta: a.beta.subarray(from * Hv, to * Hv),
    T: to - from,
    state,
    out: out.subarray(from * Hv * dv, to * Hv * dv),
  };
}

describe("gated delta rule", () => {
  it("chunked equals recurrent for any length, chunk size, heads and dims", () => {
    fc.assert(
      fc.property(problem, fc.integer({ min: 1, max: 70 }), (p, chunk) => {
        const a = inputs(p);
        const rec = fresh(a);
        const chk = fresh(a);
        deltaRuleRecurrent(rec);
        deltaRuleChunked(chk, chunk);
        expect(maxScaledDiff(chk.out, rec.out)).toBeLessThan(1e-10);
        expect(maxScaledDiff(chk.state, rec.state)).toBeLessThan(1e-10);
      }),
      { numRuns: 60 },
    );
  });

  it("the recurrent step with a value head per key head reads key head h / r", () => {
    // r value heads sharing one key head equal r separate problems with that key head repeated.
    const p: Problem = { T: 5, Hk: 2, r: 3, dk: 4, dv: 2, withState: true, seed: 7 };
    const a = fresh(inputs(p));
    const Hv = p.Hk * p.r;
    const rep = (x: Float64Array) => {
      const y = new Float64Array(p.T * Hv * p.dk);
      for (let t = 0; t < p.T; t++)
        for (let h = 0; h < Hv; h++) y.set(x.subarray((t * p.Hk + Math.floor(h / p.r)) * p.dk, (t * p.Hk + Math.floor(h / p.r) + 1) * p.dk), (t * Hv + h) * p.dk);
      return y;
    };
    const b = { ...fresh(a), q: rep(a.q as Float64Array), k: rep(a.k as Float64Array), numKeyHeads: Hv };
    deltaRuleRecurrent(a);
    deltaRuleRecurrent(b);
    expect(maxScaledDiff(a.out, b.out)).toBeLessThan(1e-14);
  });

  it("splitting a sequence anywhere and carrying the state equals one pass", () => {
    fc.assert(
      fc.property(problem, fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), (p, at, chunked) => {
        const a = inputs(p);
        const whole = fresh(a);
        deltaRuleRecurrent(whole);
        const split = Math.floor(at * p.T);
        const state = a.state.slice() as Float64Array;
        const out = new Float64Array(a.out.length);
        for (const [from, to] of [[0, split], [split, p.T]]) {
          if (to === from) continue;
          const part = slice(a, from, to, state, out);
          if (chunked) deltaRuleChunked(part, 16);
          else deltaRuleRecurrent(part);
        }
        expect(maxScaledDiff(out, whole.out)).toBeLessThan(1e-10);
        expect(maxScaledDiff(state, whole.state)).toBeLessThan(1e-10);
      }),
      { numRuns: 60 },
    );
  });

  it("matches the definition written out for one head and two steps", () => {
    // dk = dv = 1: S is a number. S1 = 0*e^g0 + k0*b0*(v0 - 0); o0 = S1*q0; S2 = S1 e^g1 + k1 b1 (v1 - S1 e^g1 k1); o1 = S2 q1.
    const [q0, q1, k0, k1, v0, v1, g0, g1, b0, b1] = [0.5, -0.25, 1, -1, 2, 3, -0.1, -0.7, 0.4, 0.9];
    const S1 = k0 * b0 * v0;
    const S1d = S1 * Math.exp(g1);
    const S2 = S1d + k1 * b1 * (v1 - S1d * k1);
    const a: DeltaRuleArgs = {
      q: Float64Array.of(q0, q1), k: Float64Array.of(k0, k1), v: Float64Array.of(v0, v1), g: Float64Array.of(g0, g1),
      beta: Float64Array.of(b0, b1), state: new Float64Array(1), T: 2, numKeyHeads: 1, numValueHeads: 1, dk: 1, dv: 1,
      out: new Float64Array(2),
    };
    const c = fresh(a);
    deltaRuleRecurrent(a);
    deltaRuleChunked(c, 2);
    for (const x of [a, c]) {
      expect(x.out[0]).toBeCloseTo(S1 * q0, 14);
      expect(x.out[1]).toBeCloseTo(S2 * q1, 14);
      expect(x.state[0]).toBeCloseTo(S2, 14);
    }
  });
});
