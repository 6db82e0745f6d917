/**
 * The scheduler with speculative decoding on: plain and speculative sequences (each with its own draft
 * length) share one batched step, with the prefix cache on, arrivals at any time and cancellations, and
 * every sequence still gets exactly its tokens alone: greedy ones plain greedy's tokens, sampled plain ones
 * plain sampling's, sampled speculative ones those of the same speculative loop run alone with the same seed.
 * The model is a noisy accepting checkpoint (drafts right part of the time), in float64.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Sampler, type SamplingParams } from "../../src/generate/sampler.js";
import { AdaptiveDraftLength, roundDraftLength, speculativeRound, type SpeculationCounts } from "../../src/generate/speculative.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import type { SequenceState } from "../../src/model/state.js";
import { Scheduler, type EndReason, type TokenLogprob } from "../../src/server/scheduler.js";
import { acceptingWeights } from "../helpers/accepting_model.js";
import { parseTiny, tinyConfig } from "../helpers/random_model.js";
import { ToyGrammar } from "../helpers/toy_grammar.js";

const K_MAX = 3;
const raw = fc.sample(tinyConfig, { seed: 11, numRuns: 1 })[0];
const model = Qwen3NextForCausalLM.fromCheckpoint(
  acceptingWeights(parseTiny({ ...raw, vocab_size: 32, hidden_size: 24, mtp_num_hidden_layers: 1, tie_word_embeddings: false }), 11, { noise: 0.6 }),
  createTsKernels("f64"),
);
const V = 32;

const sampling = (seed: number, greedy: boolean): SamplingParams => ({
  temperature: greedy ? 0 : 0.8, top_k: 0, top_p: 1, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, seed,
});

/**
 * One sequence alone: plain (one forward per token) or speculative (generate's loop), no scheduler. Plain
 * runs also give the logits row each token was sampled from.
 */
async function alone(prompt: number[], maxTokens: number, params: SamplingParams, K: number, draftVocab?: number): Promise<{ tokens: number[]; rows: Float64Array[] }> {
  const sampler = new Sampler(params);
  const state = model.newState();
  const out: number[] = [];
  const rows: Float64Array[] = [];
  const counts: SpeculationCounts = { draftTokens: 0, acceptedTokens: 0 };
  const view = (z: Float32Array | Float64Array) => z;
  const draftLength = new AdaptiveDraftLength(K);
  const plainStep = (logits: Float32Array | Float64Array) => (rows.push(Float64Array.from(logits)), [sampler.sample(logits, out, prompt)]);
  let chosen = plainStep(await model.forward(prompt, state, { lastOnly: true, mtp: K > 0 }));
  for (;;) {
    for (const t of chosen) {
      out.push(t);
      if (out.length >= maxTokens) return state.free(), { tokens: out, rows };
    }
    const y = out[out.length - 1];
    if (K > 0) {
      const k = roundDraftLength(draftLength.next(), maxTokens - out.length, Infinity);
      const probe = draftLength.probing ? (accepted: boolean) => draftLength.probed(accepted) : undefined;
      chosen = await speculativeRound(model, state, y, k, sampler, view, out, prompt, counts, undefined, draftVocab, probe);
      draftLength.update(k, chosen.length - 1);
    } else chosen = plainStep(await model.forward([y], state, { lastOnly: true }));
  }
}

/** log softmax(row)[token] and the `top` largest with theirs, ties to the lower id: computed here, in float64. */
function logprobOf(row: Float64Array, token: number, top: number): TokenLogprob {
  const max = Math.max(...row);
  const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
  const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
  return { id: token, logprob: Math.min(0, row[token] - lse), top: order.slice(0, top).map((id) => ({ id, logprob: Math.min(0, row[id] - lse) })) };
}

const request = fc.record({
  prompt: fc.integer({ min: 0, max: 2 }),
  maxTokens: fc.integer({ min: 1, max: 10 }),
  seed: fc.integer({ min: 0, max: 1000 }),
  greedy: fc.boolean(),
  draftTokens: fc.integer({ min: 0, max: K_MAX }),
  cancelAfter: fc.integer({ min: 1, max: 14 }),
  delay: fc.integer({ min: 0, max: 6 }),
  topLogprobs: fc.constantFrom(undefined, 0, 2),
});

describe("Scheduler with speculative decoding", () => {
  it("gives every sequence its tokens alone, plain and speculative in one batch, with the prefix cache", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.integer({ min: 0, max: V - 1 }), { minLength: 1, maxLength: 12 }), { minLength: 3, maxLength: 3 }),
        fc.array(request, { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 2 }),
        fc.option(fc.integer({ min: 1, max: V }), { nil: undefined }),
        async (prompts, picks, maxConcurrency, prefixCacheSize, draftVocabulary) => {
          const reqs = picks.map((r) => ({ ...r, prompt: prompts[r.prompt] }));
          const sched = new Scheduler<SequenceState>(model, { maxConcurrency, maxQueue: 16, prefixCacheSize, prefillChunk: 5, draftTokens: K_MAX, draftVocabulary });
          const runs = reqs.map(async (r) => {
            for (let i = 0; i < r.delay; i++) await new Promise((res) => setImmediate(res));
            const tokens: number[] = [];
            const logprobs: (TokenLogprob | undefined)[] = [];
            let counts: SpeculationCounts = { draftTokens: 0, acceptedTokens: 0 };
            const reason = await new Promise<EndReason>((resolve) => {
              const seq = sched.submit({
                prompt: r.prompt,
                maxTokens: r.maxTokens,
                stopTokenIds: new Set(),
                sampler: new Sampler(sampling(r.seed, r.greedy)),
                sampleableTokens: V,
                draftTokens: r.draftTokens,
                topLogprobs: r.topLogprobs,
                onToken: (id, lp) => {
                  tokens.push(id);
                  logprobs.push(lp);
                  if (tokens.length === r.cancelAfter) seq.cancel();
                  return true;
                },
                onEnd: (why) => ((counts = seq.speculation), resolve(why)),
              });
            });
            return { tokens, logprobs, reason, counts };
          });
          const got = await Promise.all(runs);
          let drafts = 0;
          for (const [i, r] of reqs.entries()) {
            // Greedy: plain greedy's tokens whatever the draft length; sampled: the same loop alone.
            const expected = await alone(r.prompt, r.maxTokens, sampling(r.seed, r.greedy), r.greedy ? 0 : r.draftTokens, draftVocabulary);
            const n = Math.min(r.cancelAfter, r.maxTokens);
            expect(got[i].reason).toBe(r.cancelAfter < r.maxTokens ? "cancelled" : "length");
            expect(got[i].tokens).toEqual(expected.tokens.slice(0, n));
            // Logprobs (their values: the next test) come with every token when asked.
            if (r.topLogprobs === undefined) expect(got[i].logprobs.every((lp) => lp === undefined)).toBe(true);
            else expect(got[i].logprobs.map((lp) => [lp!.id, lp!.top.length])).toEqual(got[i].tokens.map((t) => [t, r.topLogprobs]));
            if (r.draftTokens === 0) expect(got[i].counts.draftTokens).toBe(0);
            drafts += got[i].counts.draftTokens;
          }
          expect(sched.stats.draftTokens).toBe(drafts);
          expect(sched.stats.acceptedTokens).toBeLessThanOrEqual(drafts);
          expect(sched.stats.active).toBe(0);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("gives speculative sequences plain decoding's logprobs: each token's from the verify row plain decoding computes for it", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ prompt: fc.array(fc.integer({ min: 0, max: V - 1 }), { minLength: 1, maxLength: 12 }), draftTokens: fc.integer({ min: 0, max: K_MAX }) }), { minLength: 1, maxLength: 4 }),
        async (reqs) => {
          // One prefill chunk per prompt and no prefix cache: the rows are those of `alone`'s prefill, bit for bit.
          const sched = new Scheduler<SequenceState>(model, { maxConcurrency: 4, maxQueue: 16, prefixCacheSize: 0, prefillChunk: 64, draftTokens: K_MAX });
          const got = await Promise.all(
            reqs.map(
              (r) =>
                new Promise<{ tokens: number[]; logprobs: TokenLogprob[] }>((resolve) => {
                  const tokens: number[] = [];
                  const logprobs: TokenLogprob[] = [];
                  sched.submit({
                    prompt: r.prompt, maxTokens: 10, stopTokenIds: new Set(), sampler: new Sampler(sampling(0, true)), sampleableTokens: V,
                    draftTokens: r.draftTokens, topLogprobs: 3,
                    onToken: (id, lp) => (tokens.push(id), logprobs.push(lp!), true),
                    onEnd: () => resolve({ tokens, logprobs }),
                  });
                }),
            ),
          );
          for (const [i, r] of reqs.entries()) {
            const expected = await alone(r.prompt, 10, sampling(0, true), 0);
            expect(got[i].tokens).toEqual(expected.tokens);
            expect(got[i].logprobs).toEqual(expected.tokens.map((t, j) => logprobOf(expected.rows[j], t, 3)));
          }
        },
      ),
      { numRuns: 20 },
    );
    // The noisy accepting model accepts drafts: tokens from verify rows past the first are covered.
    const s = new Scheduler<SequenceState>(model, { maxConcurrency: 1, maxQueue: 1, prefixCacheSize: 0, prefillChunk: 64, draftTokens: K_MAX });
    const accepted = await new Promise<number>((resolve) => {
      const seq = s.submit({
        prompt: [1, 2, 3], maxTokens: 20, stopTokenIds: new Set(), sampler: new Sampler(sampling(0, true)), sampleableTokens: V, draftTokens: K_MAX, topLogprobs: 1,
        onToken: () => true, onEnd: () => resolve(seq.speculation.acceptedTokens),
      });
    });
    expect(accepted).toBeGreaterThan(0);
  });

  it("drafts under a grammar: greedy gives plain constrained greedy's tokens for K = 1..4, and the grammar's state is the delivered tokens", async () => {
    const stop = 5;
    /** Plain constrained greedy alone: each token the argmax of its logits among the ids the grammar allows. */
    const constrainedGreedy = async (prompt: number[], maxTokens: number, grammarSeed: number) => {
      const g = new ToyGrammar(V, grammarSeed, stop);
      const state = model.newState();
      const out: number[] = [];
      let logits = await model.forward(prompt, state, { lastOnly: true });
      for (;;) {
        let best = -1;
        for (let id = 0; id < V; id++) if (g.allows(id, out) && (best < 0 || logits[id] > logits[best])) best = id;
        out.push(best);
        if (best === stop || out.length >= maxTokens) return state.free(), out;
        logits = await model.forward([best], state, { lastOnly: true });
      }
    };
    let drafts = 0;
    let accepted = 0;
    let rolledBack = 0;
    let terminatingDrafts = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            prompt: fc.array(fc.integer({ min: 0, max: V - 1 }), { minLength: 1, maxLength: 8 }),
            maxTokens: fc.integer({ min: 1, max: 14 }),
            greedy: fc.boolean(),
            seed: fc.integer({ min: 0, max: 1000 }),
            grammar: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
            draftTokens: fc.integer({ min: 0, max: 4 }),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        fc.integer({ min: 1, max: 4 }),
        fc.option(fc.integer({ min: 1, max: V }), { nil: undefined }),
        async (reqs, maxConcurrency, draftVocabulary) => {
          const sched = new Scheduler<SequenceState>(model, { maxConcurrency, maxQueue: 16, prefixCacheSize: 2, prefillChunk: 5, draftTokens: 4, draftVocabulary });
          const got = await Promise.all(
            reqs.map(
              (r) =>
                new Promise<{ tokens: number[]; reason: EndReason; counts: SpeculationCounts; grammar?: ToyGrammar; error?: Error }>((resolve) => {
                  const tokens: number[] = [];
                  const grammar = r.grammar === undefined ? undefined : new ToyGrammar(V, r.grammar, stop);
                  const seq = sched.submit({
                    prompt: r.prompt, maxTokens: r.maxTokens, stopTokenIds: new Set([stop]), sampler: new Sampler(sampling(r.seed, r.greedy)), sampleableTokens: V,
                    draftTokens: r.draftTokens, constraint: grammar,
                    onToken: (id) => {
                      tokens.push(id);
                      // The grammar holds the tokens delivered, in order, whatever was drafted and taken back (and
                      // a round's accepted drafts from the start of its delivery; at the end exactly the tokens).
                      if (grammar) expect(grammar.history.slice(0, tokens.length)).toEqual(tokens);
                      return true;
                    },
                    // The generated tokens: those delivered, then the stop token (not delivered) when one came.
                    onEnd: (reason, error) => resolve({ tokens: seq.generated, reason, counts: seq.speculation, grammar, error }),
                  });
                }),
            ),
          );
          for (const [i, r] of reqs.entries()) {
            const { tokens, reason, counts, grammar, error } = got[i];
            expect(error).toBeUndefined();
            expect(reason).toBe(tokens.at(-1) === stop ? "stop" : "length");
            if (!grammar) continue;
            expect(grammar.freed).toBe(1);
            expect(grammar.history).toEqual(tokens);
            tokens.forEach((t, j) => expect(grammar.allows(t, tokens.slice(0, j))).toBe(true));
            if (r.greedy) expect(tokens).toEqual(await constrainedGreedy(r.prompt, r.maxTokens, r.grammar!));
            drafts += counts.draftTokens;
            accepted += counts.acceptedTokens;
            rolledBack += grammar.rolledBack;
            // Drafting asks whether a draft ended the grammar (the stop token drafted, more drafts to come).
            terminatingDrafts += grammar.endsSeen;
          }
          expect(sched.stats.active).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
    // Every path was taken: drafts accepted and rejected under the grammar, the grammar taken back, a draft ending it.
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(drafts);
    expect(rolledBack).toBeGreaterThan(0);
    expect(terminatingDrafts).toBeGreaterThan(0);
  });

  it("ends only the sequence whose grammar fails while drafting, with its error", async () => {
    /** A grammar whose mask fetches fail from the third on (the first is the prompt's, the second a step's or a draft's). */
    class Failing extends ToyGrammar {
      fetched = 0;
      override async nextMask() {
        if (++this.fetched > 2) throw new Error("grammar broke");
        return super.nextMask();
      }
    }
    const sched = new Scheduler<SequenceState>(model, { maxConcurrency: 2, maxQueue: 2, prefixCacheSize: 0, prefillChunk: 64, draftTokens: 3 });
    const run = (constraint: ToyGrammar) =>
      new Promise<{ reason: EndReason; error?: Error; tokens: number[] }>((resolve) => {
        const tokens: number[] = [];
        sched.submit({
          prompt: [1, 2, 3], maxTokens: 12, stopTokenIds: new Set(), sampler: new Sampler(sampling(0, true)), sampleableTokens: V, draftTokens: 3, constraint,
          onToken: (id) => (tokens.push(id), true), onEnd: (reason, error) => resolve({ reason, error, tokens }),
        });
      });
    const failing = new Failing(V, 1);
    const [bad, good] = await Promise.all([run(failing), run(new ToyGrammar(V, 2))]);
    expect(bad.reason).toBe("error");
    expect(bad.error?.message).toBe("grammar broke");
    // The first token came from the prompt; the third fetch is the first draft's (a plain step would deliver one more).
    expect(bad.tokens).toHaveLength(1);
    expect(failing.freed).toBe(1);
    expect(good.reason).toBe("length");
    expect(good.tokens).toHaveLength(12);
  });

  it("refuses a request asking for more drafts than the server's, a server without an MTP head, and a draft vocabulary outside the model's", () => {
    const sched = new Scheduler<SequenceState>(model, { maxConcurrency: 1, maxQueue: 1, prefixCacheSize: 0, prefillChunk: 8, draftTokens: 2 });
    const req = { prompt: [1, 2], maxTokens: 2, stopTokenIds: new Set<number>(), sampler: new Sampler(sampling(1, true)), sampleableTokens: V, onToken: () => true, onEnd: () => {} };
    expect(() => sched.submit({ ...req, draftTokens: 3 })).toThrow(
      expect.objectContaining({ status: 400, message: "num_speculative_tokens is 3, expected an integer in [0, 2] (the server's --draft-tokens)" }),
    );
    const noMtp = Qwen3NextForCausalLM.fromCheckpoint(
      acceptingWeights(parseTiny({ ...raw, vocab_size: 32, hidden_size: 24, mtp_num_hidden_layers: 0, tie_word_embeddings: false }), 1),
      createTsKernels("f64"),
    );
    expect(() => new Scheduler<SequenceState>(noMtp, { maxConcurrency: 1, maxQueue: 1, prefixCacheSize: 0, prefillChunk: 8, draftTokens: 1 })).toThrow(/needs the checkpoint's MTP head/);
    expect(() => new Scheduler<SequenceState>(model, { maxConcurrency: 1, maxQueue: 1, prefixCacheSize: 0, prefillChunk: 8, draftTokens: 1, draftVocabulary: V + 1 })).toThrow(
      `draftVocabulary is ${V + 1}, expected an integer in [1, ${V}] (the model's vocabulary)`,
    );
  });
});
