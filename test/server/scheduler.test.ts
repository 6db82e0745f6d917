/**
 * The scheduler against the real demo model (WASM kernels): whatever the mix of requests, the concurrency
 * limit, the order of arrival and the cancellations, every sequence gets exactly the tokens it gets alone.
 * "Alone" is computed by an independent loop: one `forward` over the prompt, then one `forward` per token.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { ensureDemoCheckpoint } from "../../src/init/demo.js";
import { loadModel } from "../../src/model/load.js";
import type { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { Sampler, type SamplingParams } from "../../src/generate/sampler.js";
import { Scheduler, type EndReason, type TokenConstraint } from "../../src/server/scheduler.js";
import type { SequenceState } from "../../src/model/state.js";
import "./harness.js"; // the demo checkpoint's cache folder

let model: Qwen3NextForCausalLM;
beforeAll(async () => {
  model = await loadModel(await ensureDemoCheckpoint(), { backend: "wasm", threads: 1 });
});
afterAll(async () => {
  await (model?.kernels as { close?: () => unknown } | undefined)?.close?.();
});

const sampling = (seed: number): SamplingParams => ({
  temperature: 1, top_k: 0, top_p: 1, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, seed,
});

/** Ids the demo tokenizer can render; the logits have 151,936 rows, the tokenizer 151,669 ids. */
const SAMPLEABLE = 151_669;

async function alone(prompt: number[], maxTokens: number, seed: number): Promise<number[]> {
  const sampler = new Sampler(sampling(seed));
  const state = model.newState();
  const out: number[] = [];
  let logits = await model.forward(prompt, state, { lastOnly: true });
  for (;;) {
    out.push(sampler.sample(logits.subarray(0, SAMPLEABLE), out, prompt));
    if (out.length >= maxTokens) break;
    logits = await model.forward([out[out.length - 1]], state, { lastOnly: true });
  }
  state.free();
  return out;
}

const request = fc.record({
  /** Index into a pool of three prompts, so repeated prompts (prefix-cache hits) are common. */
  prompt: fc.integer({ min: 0, max: 2 }),
  maxTokens: fc.integer({ min: 1, max: 8 }),
  seed: fc.integer({ min: 0, max: 1000 }),
  /** Cancel after this many tokens (none when >= maxTokens). */
  cancelAfter: fc.integer({ min: 1, max: 12 }),
  /** Arrives after this many macrotask turns (so some join a running batch). */
  delay: fc.integer({ min: 0, max: 6 }),
});

describe("Scheduler", () => {
  it("gives every sequence its single-request tokens, for any mix, limit, arrival order, cancellations, prefix cache", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.integer({ min: 0, max: 151_000 }), { minLength: 1, maxLength: 24 }), { minLength: 3, maxLength: 3 }),
        fc.array(request, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 2 }),
        async (prompts, picks, maxConcurrency, prefixCacheSize) => {
          const reqs = picks.map((r) => ({ ...r, prompt: prompts[r.prompt] }));
          const sched = new Scheduler<SequenceState>(model, { maxConcurrency, maxQueue: 16, prefixCacheSize, prefillChunk: 64 });
          const runs = reqs.map(async (r) => {
            for (let i = 0; i < r.delay; i++) await new Promise((res) => setImmediate(res));
            const tokens: number[] = [];
            const reason = await new Promise<EndReason>((resolve) => {
              const seq = sched.submit({
                prompt: r.prompt,
                maxTokens: r.maxTokens,
                stopTokenIds: new Set(),
                sampler: new Sampler(sampling(r.seed)),
                sampleableTokens: SAMPLEABLE,
                onToken: (id) => {
                  tokens.push(id);
                  if (tokens.length === r.cancelAfter) seq.cancel();
                  return true;
                },
                onEnd: (why) => resolve(why),
              });
            });
            return { tokens, reason };
          });
          const got = await Promise.all(runs);
          for (const [i, r] of reqs.entries()) {
            const expected = await alone(r.prompt, r.maxTokens, r.seed);
            if (r.cancelAfter < r.maxTokens) {
              expect(got[i].reason).toBe("cancelled");
              expect(got[i].tokens).toEqual(expected.slice(0, r.cancelAfter));
            } else {
              expect(got[i].reason).toBe("length");
              expect(got[i].tokens).toEqual(expected);
            }
          }
          expect(sched.stats.active).toBe(0);
          expect(sched.stats.queued).toBe(0);
          expect(sched.stats.largestBatch).toBeLessThanOrEqual(maxConcurrency);
        },
      ),
      { numRuns: 25 },
    );
  });

  it("refuses beyond maxConcurrency + maxQueue with 429, and after drain with 503", async () => {
    const sched = new Scheduler<SequenceState>(model, { maxConcurrency: 1, maxQueue: 1, prefixCacheSize: 0, prefillChunk: 64 });
    const ends: EndReason[] = [];
    const req = () => ({
      prompt: [1, 2, 3], maxTokens: 3, stopTokenIds: new Set<number>(), sampler: new Sampler(sampling(1)), sampleableTokens: SAMPLEABLE,
      onToken: () => true, onEnd: (why: EndReason) => void ends.push(why),
    });
    sched.submit(req());
    sched.submit(req());
    expect(() => sched.submit(req())).toThrow(expect.objectContaining({ status: 429 }));
    await sched.drain(60_000);
    expect(ends).toEqual(["length", "length"]);
    expect(() => sched.submit(req())).toThrow(expect.objectContaining({ status: 503 }));
  });

  it("ends a sequence on a stop token without passing it on, and counts it as generated", async () => {
    const sched = new Scheduler<SequenceState>(model, { maxConcurrency: 2, maxQueue: 0, prefixCacheSize: 0, prefillChunk: 64 });
    const expected = await alone([5, 6, 7], 6, 42);
    const stopAt = expected.indexOf(expected[3]); // the first position holding the 4th token's id
    const seen: number[] = [];
    const seq = sched.submit({
      prompt: [5, 6, 7], maxTokens: 6, stopTokenIds: new Set([expected[3]]), sampler: new Sampler(sampling(42)), sampleableTokens: SAMPLEABLE,
      onToken: (id) => (seen.push(id), true),
      onEnd: () => undefined,
    });
    await sched.drain(60_000);
    expect(seen).toEqual(expected.slice(0, stopAt));
    expect(seq.generated).toEqual(expected.slice(0, stopAt + 1));
  });

  it("runs a group (n) from one prefill: each member gets the tokens it gets alone", async () => {
    const sched = new Scheduler<SequenceState>(model, { maxConcurrency: 4, maxQueue: 4, prefixCacheSize: 0, prefillChunk: 4 });
    const prompt = [3, 14, 15, 92, 65, 35, 89, 79, 32];
    const seeds = [5, 6, 7];
    const got = seeds.map(() => [] as number[]);
    const ends: EndReason[] = [];
    const seqs = sched.submitGroup(
      seeds.map((seed, i) => ({
        prompt, maxTokens: 5, stopTokenIds: new Set<number>(), sampler: new Sampler(sampling(seed)), sampleableTokens: SAMPLEABLE,
        onToken: (id: number) => (got[i].push(id), true),
        onEnd: (why: EndReason) => void ends.push(why),
      })),
    );
    await sched.drain(60_000);
    expect(ends).toEqual(["length", "length", "length"]);
    for (const [i, seed] of seeds.entries()) expect(got[i]).toEqual(await alone(prompt, 5, seed));
    expect(seqs.map((s) => s.generated.length)).toEqual([5, 5, 5]);
    // Prefilled once: the prefix cache was consulted for one prompt, not three.
    expect(sched.stats.prefixCacheQueryTokens).toBe(prompt.length);
  });

  it("ends every member of a queued group when it is cancelled before its prefill", async () => {
    const sched = new Scheduler<SequenceState>(model, { maxConcurrency: 1, maxQueue: 8, prefixCacheSize: 0, prefillChunk: 64 });
    const ends: EndReason[] = [];
    const req = (maxTokens: number) => ({
      prompt: [1, 2, 3], maxTokens, stopTokenIds: new Set<number>(), sampler: new Sampler(sampling(1)), sampleableTokens: SAMPLEABLE,
      onToken: () => true, onEnd: (why: EndReason) => void ends.push(why),
    });
    sched.submit(req(3)); // holds the only slot
    const group = sched.submitGroup([req(3), req(3)]);
    expect(sched.stats.queued).toBe(3); // nothing admitted yet (the loop starts on a later turn); a group counts each member
    group[0].cancel();
    await sched.drain(60_000);
    expect(ends.sort()).toEqual(["cancelled", "cancelled", "length"]);
  });

  it("samples only what the constraint allows, masking before sampling, and frees it at the end", async () => {
    const sched = new Scheduler<SequenceState>(model, { maxConcurrency: 2, maxQueue: 0, prefixCacheSize: 0, prefillChunk: 64 });
    // A grammar of "only ids 1000..1009, and each at most once": the mask changes with every accepted token.
    const used = new Set<number>();
    let freed = 0;
    const constraint: TokenConstraint = {
      async nextMask() {
        const mask = new Int32Array(Math.ceil(151_936 / 32));
        for (let id = 1000; id < 1010; id++) if (!used.has(id)) mask[id >> 5] |= 1 << (id & 31);
        return mask;
      },
      accept: (id) => id >= 1000 && id < 1010 && !used.has(id) && (used.add(id), true),
      rollback: () => {
        throw new Error("plain decoding never takes a token back");
      },
      terminated: () => false,
      free: () => void freed++,
    };
    const got: number[] = [];
    sched.submit({
      prompt: [7, 8, 9], maxTokens: 6, stopTokenIds: new Set<number>(), sampler: new Sampler(sampling(3)), sampleableTokens: SAMPLEABLE, constraint,
      onToken: (id) => (got.push(id), true), onEnd: () => undefined,
    });
    await sched.drain(60_000);
    expect(got).toHaveLength(6);
    expect(new Set(got).size).toBe(6);
    for (const id of got) expect(id >= 1000 && id < 1010).toBe(true);
    expect(freed).toBe(1);
  });
});
