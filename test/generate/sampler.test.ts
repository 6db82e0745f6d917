import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { Sampler, defaultSamplingParams, samplingParamsError, type SamplingParams } from "../../src/generate/sampler.js";
import { Xoshiro128 } from "../../src/prng.js";

const NEUTRAL: SamplingParams = {
  temperature: 1,
  top_k: 0,
  top_p: 1,
  min_p: 0,
  presence_penalty: 0,
  frequency_penalty: 0,
  repetition_penalty: 1,
};
const params = (p: Partial<SamplingParams>): SamplingParams => ({ ...NEUTRAL, ...p });

const logitsArb = fc.array(fc.double({ min: -20, max: 20, noNaN: true }), { minLength: 1, maxLength: 60 }).map((a) => Float64Array.from(a));

/** Softmax written out independently of the sampler. */
function softmax(z: ArrayLike<number>, t = 1): number[] {
  const m = Math.max(...Array.from(z));
  const e = Array.from(z, (v) => Math.exp((v - m) / t));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

describe("Sampler", () => {
  it("temperature 0 is the argmax", () => {
    fc.assert(
      fc.property(logitsArb, fc.integer(), (z, seed) => {
        const id = new Sampler(params({ temperature: 0, seed })).sample(z, []);
        expect(z[id]).toBe(Math.max(...z));
        expect(id).toBe(z.indexOf(Math.max(...z)));
      }),
    );
  });

  it("top-k never picks outside the k best", () => {
    fc.assert(
      fc.property(logitsArb, fc.integer({ min: 1, max: 10 }), fc.integer(), (z, k, seed) => {
        const s = new Sampler(params({ top_k: k, seed }));
        const kth = [...z].sort((a, b) => b - a)[Math.min(k, z.length) - 1];
        for (let i = 0; i < 5; i++) expect(z[s.sample(z, [])]).toBeGreaterThanOrEqual(kth);
      }),
    );
  });

  it("top-p keeps the smallest most-probable set whose mass reaches p", () => {
    fc.assert(
      fc.property(logitsArb, fc.double({ min: 0.05, max: 0.99, noNaN: true }), fc.integer(), (z, topP, seed) => {
        const p = softmax(z);
        const order = p.map((v, i) => i).sort((a, b) => p[b] - p[a] || a - b);
        let cum = 0;
        let n = 0;
        while (n < order.length && cum < topP) cum += p[order[n++]];
        // Tokens tied with the last kept one may stand in for it.
        const floor = p[order[n - 1]];
        const s = new Sampler(params({ top_p: topP, seed }));
        for (let i = 0; i < 5; i++) expect(p[s.sample(z, [])]).toBeGreaterThanOrEqual(floor * (1 - 1e-12));
      }),
    );
    // ...and every token of that set is reachable: p = [0.5, 0.3, 0.2], top_p 0.75 keeps {0, 1}.
    const z = Float64Array.from([0.5, 0.3, 0.2].map(Math.log));
    const s = new Sampler(params({ top_p: 0.75, seed: 7 }));
    const seen = new Set(Array.from({ length: 400 }, () => s.sample(z, [])));
    expect([...seen].sort()).toEqual([0, 1]);
  });

  it("applies top-p to the distribution left by top-k (renormalised), as Hugging Face does", () => {
    // p = [0.4, 0.3, 0.2, 0.1]; top-k 2 leaves [4/7, 3/7]; top-p 0.5 then keeps token 0 alone
    // (over the full distribution 0.4 < 0.5 would have kept tokens 0 and 1).
    const z = Float64Array.from([0.4, 0.3, 0.2, 0.1].map(Math.log));
    const s = new Sampler(params({ top_k: 2, top_p: 0.5, seed: 3 }));
    expect(new Set(Array.from({ length: 200 }, () => s.sample(z, [])))).toEqual(new Set([0]));
    const wide = new Sampler(params({ top_p: 0.5, seed: 3 }));
    expect(new Set(Array.from({ length: 400 }, () => wide.sample(z, [])))).toEqual(new Set([0, 1]));
  });

  it("min-p drops tokens below min_p times the top probability", () => {
    fc.assert(
      fc.property(logitsArb, fc.double({ min: 0.01, max: 1, noNaN: true }), fc.integer(), (z, minP, seed) => {
        const p = softmax(z);
        const pmax = Math.max(...p);
        const s = new Sampler(params({ min_p: minP, seed }));
        for (let i = 0; i < 5; i++) expect(p[s.sample(z, [])]).toBeGreaterThanOrEqual(minP * pmax * (1 - 1e-12));
      }),
    );
  });

  it("draws in proportion to softmax(z / T) when nothing is cut", () => {
    const z = Float64Array.from([2, 1, 0, -1]);
    const T = 0.8;
    const expected = softmax(z, T);
    const s = new Sampler(params({ temperature: T, seed: 123 }));
    const n = 20000;
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) counts[s.sample(z, [])]++;
    // Within 4 binomial standard deviations of the expected counts.
    counts.forEach((c, i) => expect(Math.abs(c - n * expected[i])).toBeLessThan(4 * Math.sqrt(n * expected[i] * (1 - expected[i]))));
  });

  it("a seed reproduces the run; another seed gives another run", () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const z = Float64Array.from({ length: 50 }, (_, i) => Math.sin(i));
        const run = (s: number) => {
          const sampler = new Sampler(params({ seed: s, top_k: 40 }));
          return Array.from({ length: 40 }, () => sampler.sample(z, []));
        };
        expect(run(seed)).toEqual(run(seed));
        expect(run(seed)).not.toEqual(run(seed + 1));
      }),
      { numRuns: 30 },
    );
  });

  it("repetition penalty divides positive and multiplies negative logits of seen tokens (prompt included)", () => {
    // Greedy: logits [3, 2.5, -0.1, -0.5]; penalty 2 on tokens 0 and 2 -> [1.5, 2.5, -0.2, -0.5]: token 1 wins.
    const z = Float64Array.from([3, 2.5, -0.1, -0.5]);
    const s = new Sampler(params({ temperature: 0, repetition_penalty: 2 }));
    expect(s.sample(z, [], [0])).toBe(1);
    // [3, 2.5, 1, -0.5] with tokens 0 (generated) and 1 (prompt) penalised by 4 -> [0.75, 0.625, 1, -0.5].
    expect(new Sampler(params({ temperature: 0, repetition_penalty: 4 })).sample(Float64Array.from([3, 2.5, 1, -0.5]), [0], [1])).toBe(2);
    // A negative logit is multiplied: [-1, -1.5] with token 0 penalised by 2 -> [-2, -1.5].
    expect(new Sampler(params({ temperature: 0, repetition_penalty: 2 })).sample(Float64Array.from([-1, -1.5]), [0])).toBe(1);
    expect(Array.from(z)).toEqual([3, 2.5, -0.1, -0.5]); // the caller's logits are untouched
  });

  it("presence and frequency penalties subtract per generated occurrence (not the prompt)", () => {
    const z = Float64Array.from([1.0, 0.6, 0.0]);
    // token 0 generated twice: 1.0 - 0.1 * 2 - 0.3 = 0.5 < 0.6
    expect(new Sampler(params({ temperature: 0, frequency_penalty: 0.1, presence_penalty: 0.3 })).sample(z, [0, 0], [1])).toBe(1);
    // token 0 once: 1.0 - 0.1 - 0.3 = 0.6, tied with token 1: the lower id wins
    expect(new Sampler(params({ temperature: 0, frequency_penalty: 0.1, presence_penalty: 0.3 })).sample(z, [0], [])).toBe(0);
    // negative presence penalty encourages a seen token
    expect(new Sampler(params({ temperature: 0, presence_penalty: -1.5 })).sample(z, [2])).toBe(2);
  });

  it("rejects invalid parameters with a message naming the field", () => {
    expect(samplingParamsError(params({ temperature: -1 }))).toMatch(/^temperature is -1/);
    expect(samplingParamsError(params({ top_p: 0 }))).toMatch(/^top_p is 0/);
    expect(samplingParamsError(params({ top_k: 2.5 }))).toMatch(/^top_k/);
    expect(samplingParamsError(params({ min_p: 2 }))).toMatch(/^min_p/);
    expect(samplingParamsError(params({ presence_penalty: 3 }))).toMatch(/^presence_penalty/);
    expect(samplingParamsError(params({ repetition_penalty: 0 }))).toMatch(/^repetition_penalty/);
    expect(samplingParamsError(params({ seed: 0.5 }))).toMatch(/^seed/);
    expect(samplingParamsError(NEUTRAL)).toBeNull();
    expect(() => new Sampler(params({ top_p: 1.5 }))).toThrow(/top_p is 1.5/);
  });
});

describe("defaultSamplingParams", () => {
  it("reads Qwen3-Next-Instruct's published generation_config.json", () => {
    const g = JSON.parse(readFileSync(new URL("../fixtures/published/generation_config.Instruct.json", import.meta.url), "utf8"));
    expect(defaultSamplingParams(g)).toEqual({ ...NEUTRAL, temperature: 0.7, top_k: 20, top_p: 0.8 });
  });

  it("uses Hugging Face's defaults for missing fields, greedy for do_sample false", () => {
    expect(defaultSamplingParams({})).toEqual({ ...NEUTRAL, top_k: 50 });
    expect(defaultSamplingParams({ do_sample: false, temperature: 0.6 }).temperature).toBe(0);
    expect(defaultSamplingParams({ repetition_penalty: 1.05, min_p: 0.1 })).toMatchObject({ repetition_penalty: 1.05, min_p: 0.1 });
    expect(() => defaultSamplingParams({ top_p: 7 })).toThrow(/generation_config\.json: top_p is 7/);
  });

  it("without a generation config, Qwen3-Next-Instruct's recommended values", () => {
    expect(defaultSamplingParams()).toEqual({ ...NEUTRAL, temperature: 0.7, top_k: 20, top_p: 0.8 });
  });
});

describe("Xoshiro128", () => {
  it("gives uniform floats in [0, 1) with the expected mean, reproducibly", () => {
    const a = new Xoshiro128(42);
    const b = new Xoshiro128(42);
    let sum = 0;
    for (let i = 0; i < 10000; i++) {
      const x = a.nextFloat();
      expect(x).toBe(b.nextFloat());
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
    }
    expect(Math.abs(sum / 10000 - 0.5)).toBeLessThan(4 * Math.sqrt(1 / 12 / 10000));
  });
});
