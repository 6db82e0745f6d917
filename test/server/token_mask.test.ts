/**
 * The scheduler's per-token helpers against plain second implementations: the grammar mask (bit i%32 of
 * word i/32 allows id i) and the logprobs (log-softmax, and the top-k by sorting the whole row).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyMask } from "../../src/generate/sampler.js";
import { tokenLogprob } from "../../src/server/scheduler.js";

describe("applyMask", () => {
  it("keeps exactly the allowed ids, word patterns all-on, all-off and mixed", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.array(fc.oneof(fc.constant(0), fc.constant(-1), fc.integer()), { minLength: 7, maxLength: 7 }), (n, words) => {
        const mask = Int32Array.from(words);
        const z = Float64Array.from({ length: n }, (_, i) => i + 0.5);
        applyMask(z, mask);
        for (let i = 0; i < n; i++) {
          const bit = i < 32 * mask.length ? (BigInt.asUintN(32, BigInt(mask[Math.floor(i / 32)])) >> BigInt(i % 32)) & 1n : 0n;
          expect(z[i]).toBe(bit === 1n ? i + 0.5 : -Infinity);
        }
      }),
    );
  });
});

describe("tokenLogprob", () => {
  it("equals log-softmax, and its top-k is the k largest by a full sort (lower id first on ties)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 0, max: 20 }), (ints, k) => {
        const raw = Float64Array.from(ints, (v) => v / 4);
        const token = ints.length - 1;
        const lp = tokenLogprob(raw, token, k);
        const lse = Math.log(raw.reduce((s, v) => s + Math.exp(v), 0));
        expect(lp.id).toBe(token);
        expect(lp.logprob).toBeCloseTo(Math.min(0, raw[token] - lse), 12);
        const order = [...raw.keys()].sort((a, b) => raw[b] - raw[a] || a - b).slice(0, k);
        expect(lp.top.map((t) => t.id)).toEqual(order);
        for (const t of lp.top) expect(t.logprob).toBeLessThanOrEqual(0);
      }),
    );
  });
});
