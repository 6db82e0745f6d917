/**
 * Speculative decoding with the MTP head is exact: on randomly configured models (every configuration kind of
 * both families, Qwen3-Next and Qwen3.5 with grouped or tiled value heads, one or two MTP layers; random weights, where drafts are nearly always wrong, and noisy "accepting"
 * checkpoints, where they are right some of the time), greedy speculative generation gives plain greedy's
 * tokens, token for token, for K = 1..4 drafts. On an accepting checkpoint every draft is accepted. Sampled
 * speculative tokens follow plain sampling's distribution (chi-square), also under a grammar through the
 * server's scheduler (plain constrained sampling's distribution).
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { generate, type GenerateResult } from "../../src/generate/generate.js";
import { AdaptiveDraftLength, MAX_BACKOFF, MIN_BACKOFF, speculativeRound, type SpeculationCounts } from "../../src/generate/speculative.js";
import { Sampler, type SamplingParams } from "../../src/generate/sampler.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import { createWasmKernels } from "../../src/kernels/wasm/kernels.js";
import type { WeightDType } from "../../src/kernels/types.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { bundledTokenizerDir, QwenTokenizer } from "../../src/tokenizer/tokenizer.js";
import { rng } from "../helpers/random.js";
import { anyTinyConfig, parseTiny, randomWeights, tinyConfig, withTiledValueHeads } from "../helpers/random_model.js";
import { acceptingWeights, successor } from "../helpers/accepting_model.js";
import { ToyGrammar } from "../helpers/toy_grammar.js";
import { hostTensor } from "../helpers/host_tensor.js";
import type { SequenceState } from "../../src/model/state.js";
import { Scheduler } from "../../src/server/scheduler.js";

const GREEDY: SamplingParams = { temperature: 0, top_k: 0, top_p: 1, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1 };

let tok: QwenTokenizer;
beforeAll(async () => {
  tok = await QwenTokenizer.load(bundledTokenizerDir());
});

function tokens(seed: number, n: number, vocab: number): number[] {
  const rand = rng(seed);
  return Array.from({ length: n }, () => Math.floor(rand() * vocab));
}

async function run(model: Qwen3NextForCausalLM, prompt: number[], maxTokens: number, sampling: SamplingParams, K?: number, draftVocabulary?: number): Promise<GenerateResult> {
  const g = generate(model, tok, prompt, { sampling, maxTokens, stopIds: [], speculative: K === undefined ? undefined : { draftTokens: K, draftVocabulary } });
  for await (const _ of g.events);
  return g.result;
}

describe("speculative decoding (MTP), greedy", () => {
  it("gives plain greedy's tokens for K = 1..4 on random models of every configuration kind", async () => {
    await fc.assert(
      fc.asyncProperty(
        anyTinyConfig,
        fc.integer(),
        fc.constantFrom(1, 2),
        fc.constantFrom<WeightDType>("F64", "BF16"),
        fc.constantFrom<"f32" | "f64">("f32", "f64"),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 14 }),
        fc.constantFrom(0, 0.5),
        fc.constantFrom(null, 0.1, 0.7, 1.5),
        fc.boolean(),
        fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
        async (raw, seed, mtpLayers, dtype, precision, promptLength, maxTokens, penalty, noise, tiled, vocabFrac) => {
          const parsed = parseTiny(raw);
          const cfg = { ...parsed, mtp_num_hidden_layers: mtpLayers, tie_word_embeddings: noise === null ? parsed.tie_word_embeddings : false };
          let src = noise === null ? randomWeights(cfg, seed, dtype) : acceptingWeights(cfg, seed, { noise, dtype });
          // Qwen3.5's split projections may also come with llama.cpp's tiled value-head order.
          if (tiled && cfg.deltanet_projections.qkvz === "split") src = withTiledValueHeads(src);
          const model = Qwen3NextForCausalLM.fromCheckpoint(src, createTsKernels(precision));
          const prompt = tokens(seed ^ 0x5eed, promptLength, model.config.vocab_size);
          const sampling = { ...GREEDY, presence_penalty: penalty, repetition_penalty: 1 + penalty };
          const plain = await run(model, prompt, maxTokens, sampling);
          // Drafts among the first ids only, sometimes (the same tokens either way).
          const V = model.config.vocab_size;
          const vocab = vocabFrac === undefined ? undefined : 1 + Math.floor(vocabFrac * (V - 1));
          for (const K of [1, 2, 3, 4]) {
            const spec = await run(model, prompt, maxTokens, sampling, K, vocab);
            expect(spec.tokens, `K=${K}`).toEqual(plain.tokens);
            expect(spec.finishReason).toBe(plain.finishReason);
            expect(spec.acceptedTokens).toBeLessThanOrEqual(spec.draftTokens);
          }
          expect(plain.draftTokens).toBe(0);
        },
      ),
      { numRuns: 30 },
    );
  });

  it("accepts every draft on a checkpoint whose drafts are always right", async () => {
    await fc.assert(
      fc.asyncProperty(tinyConfig, fc.integer(), fc.constantFrom(1, 2), fc.integer({ min: 1, max: 4 }), async (raw, seed, mtpLayers, K) => {
        const cfg = parseTiny({ ...raw, mtp_num_hidden_layers: mtpLayers, tie_word_embeddings: false, hidden_size: 32, vocab_size: 24 });
        const model = Qwen3NextForCausalLM.fromCheckpoint(acceptingWeights(cfg, seed), createTsKernels("f64"));
        const prompt = tokens(seed, 3, 24);
        const r = await run(model, prompt, 13, GREEDY, K);
        const expected = [successor(prompt[2], 24)];
        while (expected.length < 13) expected.push(successor(expected[expected.length - 1], 24));
        expect(r.tokens).toEqual(expected);
        expect(r.draftTokens).toBeGreaterThan(0);
        expect(r.acceptedTokens).toBe(r.draftTokens);
      }),
      { numRuns: 10 },
    );
  });
});

describe("speculative decoding (MTP), greedy, WASM kernels with float32 sums", () => {
  // generate's default arithmetic for BF16 weights: the verify step's K + 1 tokens share one product, which
  // gives each token the bits of its one-token product (asm/matvec.ts), so near-ties go the same way.
  it("gives plain greedy's tokens for K = 1..4 on random BF16 models", async () => {
    await fc.assert(
      fc.asyncProperty(
        anyTinyConfig, fc.integer(), fc.constantFrom(1, 2), fc.constantFrom<"f32" | "q8">("f32", "q8"), fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 14 }), fc.constantFrom(null, 0.1, 0.7),
        async (raw, seed, mtpLayers, accumulate, promptLength, maxTokens, noise) => {
          const parsed = parseTiny(raw);
          const cfg = { ...parsed, mtp_num_hidden_layers: mtpLayers, tie_word_embeddings: noise === null ? parsed.tie_word_embeddings : false };
          const src = noise === null ? randomWeights(cfg, seed, "BF16") : acceptingWeights(cfg, seed, { noise, dtype: "BF16" });
          const k = await createWasmKernels({ threads: 1, accumulate });
          try {
            const model = Qwen3NextForCausalLM.fromCheckpoint(src, k);
            const prompt = tokens(seed ^ 0x5eed, promptLength, model.config.vocab_size);
            const plain = await run(model, prompt, maxTokens, GREEDY);
            for (const K of [1, 2, 3, 4]) expect((await run(model, prompt, maxTokens, GREEDY, K)).tokens, `K=${K}`).toEqual(plain.tokens);
          } finally {
            await k.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

/** softmax(z / T) with top-k (0: all), penalties over `seen` (presence, frequency): computed here, not by the sampler. */
function plainDistribution(z: ArrayLike<number>, temperature: number, topK: number, presence: number, frequency: number, seen: number[]): number[] {
  const w = Array.from(z);
  const counts = new Map<number, number>();
  for (const t of seen) counts.set(t, (counts.get(t) ?? 0) + 1);
  for (const [t, n] of counts) w[t] -= presence + frequency * n;
  const order = w.map((_, i) => i).sort((a, b) => w[b] - w[a] || a - b);
  const kept = new Set(topK > 0 ? order.slice(0, topK) : order);
  const max = Math.max(...w);
  const e = w.map((x, i) => (kept.has(i) ? Math.exp((x - max) / temperature) : 0));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / total);
}

/** `runs` seeded sequences (seeds 0 ..) under a ToyGrammar through the server's scheduler, which speculates under it. */
async function runConstrained(model: Qwen3NextForCausalLM, prompt: number[], n: number, sampling: SamplingParams, K: number, runs: number, grammarSeed: number, draftVocabulary?: number) {
  const sched = new Scheduler<SequenceState>(model, { maxConcurrency: 16, maxQueue: runs, prefixCacheSize: 1, prefillChunk: 64, draftTokens: K, draftVocabulary });
  return Promise.all(
    Array.from({ length: runs }, (_, seed) => {
      const tokens: number[] = [];
      return new Promise<{ tokens: number[]; draftTokens: number; acceptedTokens: number }>((resolve, reject) => {
        const seq = sched.submit({
          prompt, maxTokens: n, stopTokenIds: new Set(), sampler: new Sampler({ ...sampling, seed }), sampleableTokens: model.config.vocab_size, draftTokens: K,
          constraint: new ToyGrammar(model.config.vocab_size, grammarSeed),
          onToken: (id) => (tokens.push(id), true),
          onEnd: (reason, err) => (reason === "length" ? resolve({ tokens, ...seq.speculation }) : reject(err ?? new Error(reason))),
        });
      });
    }),
  );
}

/** The 1 - 1e-4 quantile of chi-square with df degrees of freedom (Wilson-Hilferty). */
function chiSquareCritical(df: number): number {
  const z = 3.719;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

describe("speculative decoding (MTP), kept state (chat continuation)", () => {
  it("leaves exactly plain decoding's state when a stop token, max tokens or a stop string ends a round early", async () => {
    const raw = fc.sample(tinyConfig, { seed: 5, numRuns: 1 })[0];
    const cfg = parseTiny({ ...raw, mtp_num_hidden_layers: 1, tie_word_embeddings: false, hidden_size: 32, vocab_size: 24 });
    const model = Qwen3NextForCausalLM.fromCheckpoint(acceptingWeights(cfg, 5), createTsKernels("f64"));
    // Greedy counts up from the prompt's last token (x + 1, x + 2, ...), so every draft is accepted and the
    // ending token sits inside a round of accepted drafts.
    const turn = async (c: { state: null | { free(): void }; tokens: number[] }, ids: number[], stopIds: number[], maxTokens: number, K?: number) => {
      const g = generate(model, tok, ids, { sampling: GREEDY, maxTokens, stopIds, continuation: c, speculative: K ? { draftTokens: K } : undefined });
      for await (const _ of g.events);
      return g.result;
    };
    for (const [stopIds, maxTokens] of [[[7], 20], [[], 4], [[9], 6]] as const) {
      for (const K of [2, 3, 4]) {
        const plain = { state: null, tokens: [] as number[] };
        const spec = { state: null, tokens: [] as number[] };
        for (const ids of [[1, 2, 3], [11, 12]]) {
          const a = await turn(plain, ids, [...stopIds], maxTokens);
          const b = await turn(spec, ids, [...stopIds], maxTokens, K);
          expect(b.tokens).toEqual(a.tokens);
          expect(b.finishReason).toBe(a.finishReason);
          expect(spec.tokens).toEqual(plain.tokens);
          expect((spec.state as unknown as { position: number }).position).toBe(spec.tokens.length);
        }
        // Both kept states continue alike.
        const a = await model.forward([5], plain.state as never, { lastOnly: true });
        const b = await model.forward([5], spec.state as never, { lastOnly: true });
        expect(Array.from(b)).toEqual(Array.from(a));
      }
    }
  });
});

describe("Sampler.distribution (the p and q of speculative sampling)", () => {
  /** softmax(z / T) -> top-k -> top-p (smallest prefix reaching it) -> min-p, renormalised: computed here. */
  function expected(z: number[], T: number, topK: number, topP: number, minP: number): number[] {
    const order = z.map((_, i) => i).sort((a, b) => z[b] - z[a] || a - b);
    let kept = topK > 0 ? order.slice(0, topK) : order;
    const max = z[order[0]];
    const w = new Map(kept.map((i) => [i, Math.exp((z[i] - max) / T)]));
    const total = [...w.values()].reduce((a, b) => a + b, 0);
    let cum = 0;
    const cut = kept.findIndex((i) => (cum += w.get(i)! / total) >= topP);
    if (topP < 1 && cut >= 0) kept = kept.slice(0, cut + 1);
    kept = kept.filter((i, j) => j === 0 || w.get(i)! >= minP * w.get(kept[0])!);
    const sum = kept.reduce((a, i) => a + w.get(i)!, 0);
    return z.map((_, i) => (kept.includes(i) ? w.get(i)! / sum : 0));
  }

  it("equals the distribution sample() draws from, for any temperature, top-k, top-p and min-p", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -8, max: 8, noNaN: true }), { minLength: 1, maxLength: 12 }),
        fc.double({ min: 0.2, max: 2, noNaN: true }),
        fc.integer({ min: 0, max: 6 }),
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        (z, temperature, top_k, top_p, min_p) => {
          const sampler = new Sampler({ temperature, top_k, top_p, min_p, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1, seed: 1 });
          const got = sampler.distribution(Float64Array.from(z), []);
          const want = expected(z, temperature, top_k, top_p, min_p);
          want.forEach((p, i) => expect(got[i]).toBeCloseTo(p, 12));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("adaptive draft length", () => {
  /** Rounds of `d`: "draft k", "plain" or "probe"; `accepts` says how a round or a probe did. */
  function schedule(d: AdaptiveDraftLength, rounds: number, accepts: (kind: "draft" | "probe", k: number, round: number) => number): string[] {
    const seen: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const k = d.next();
      if (k > 0) {
        seen.push(`draft ${k}`);
        d.update(k, accepts("draft", k, round));
      } else if (d.probing) {
        seen.push("probe");
        d.probed(accepts("probe", 1, round) > 0);
      } else seen.push("plain");
    }
    return seen;
  }

  it("backs off 2, 8, 32, 64 plain steps while no draft has ever been accepted, each back-off ending in a probe (no verify step)", () => {
    const seen = schedule(new AdaptiveDraftLength(3), 180, () => 0); // nothing ever accepted
    const at = (kind: string) => seen.flatMap((r, i) => (r === kind ? [i] : []));
    // One verified round (the first), then probes after 2, 8, 32, 64, 64 plain steps.
    expect(at("draft 1")).toEqual([0]);
    expect(at("probe")).toEqual([3, 12, 45, 110, 175]);
    expect(at("plain").length).toBe(180 - 6);
    const probes = [0, ...at("probe")];
    expect(Math.max(...probes.slice(1).map((p, i) => p - probes[i] - 1))).toBe(MAX_BACKOFF);
    expect(MIN_BACKOFF).toBe(2);
  });

  it("backs off 2, 4 .. 64 plain steps once a draft has been accepted", () => {
    const seen = schedule(new AdaptiveDraftLength(3), 150, (_, k, round) => (round === 0 ? k : 0)); // the first round only
    const at = (kind: string) => seen.flatMap((r, i) => (r === kind ? [i] : []));
    expect(at("draft 1")).toEqual([0]);
    expect(at("draft 2")).toEqual([1]);
    // Probes after 2, 4, 8, 16, 32, 64 plain steps.
    expect(at("probe")).toEqual([4, 9, 18, 35, 68, 133]);
  });

  it("reaches K after K - 1 rounds when every draft is accepted, and never backs off", () => {
    expect(schedule(new AdaptiveDraftLength(4), 8, (_, k) => k)).toEqual(["draft 1", "draft 2", "draft 3", "draft 4", "draft 4", "draft 4", "draft 4", "draft 4"]);
  });

  it("grows by one up to K while every draft is accepted, shrinks by one on a rejection, and a successful probe ends a back-off", () => {
    // How each round does, in order (a probe: 1 accepted or 0).
    const plan = [3, 3, 3, 3, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    const seen = schedule(new AdaptiveDraftLength(3), plan.length, (_, k, round) => Math.min(k, plan[round]));
    expect(seen).toEqual([
      ...["draft 1", "draft 2", "draft 3", "draft 3", "draft 3"], // all accepted: 1, 2, 3, 3; then 2 of 3
      ...["draft 2", "draft 1", "draft 2"], // 1 of 2, 1 of 1, 0 of 2: back off
      ...["plain", "plain", "probe"], // 2 plain steps, a failed probe: back off 4
      ...["plain", "plain", "plain", "plain", "probe"], // the probe would have been accepted: drafting again
      ...["draft 1", "draft 2"], // 1 of 1; 0 of 2: a later failure backs off 2 again, not 8
      ...["plain", "plain", "probe"],
      ...["plain", "plain", "plain", "plain"],
    ]);
  });
});

describe("probes (a plain step with one unverified draft)", () => {
  /**
   * Walks a sequence `steps` tokens on by probing plain steps; before each, a clone of the state runs a real
   * round of one draft (draft, 2-row verify step, accept). Returns per step the probe's verdict, the real
   * round's accepted drafts and both rounds' tokens, and the probing sequence's state at the end.
   */
  async function probeWalk(model: Qwen3NextForCausalLM, prompt: number[], steps: number, params: SamplingParams, seed: number) {
    const sampler = new Sampler({ ...params, seed });
    const view = (z: Float32Array | Float64Array) => z;
    const counts: SpeculationCounts = { draftTokens: 0, acceptedTokens: 0 };
    const state = model.newState();
    const out = [sampler.sample(await model.forward(prompt, state, { lastOnly: true, mtp: true }), [], prompt)];
    const walk: { verdict: boolean; accepted: number; probeToken: number; roundTokens: number[] }[] = [];
    for (let i = 0; i < steps; i++) {
      const y = out[out.length - 1];
      const clone = state.clone();
      const round = await speculativeRound(model, clone, y, 1, new Sampler({ ...params, seed: seed + i }), view, out, prompt, { ...counts });
      clone.free();
      let verdict: boolean | undefined;
      const [t] = await speculativeRound(model, state, y, 0, sampler, view, out, prompt, counts, undefined, undefined, (ok) => (verdict = ok));
      expect(verdict).toBeDefined();
      walk.push({ verdict: verdict!, accepted: round.length - 1, probeToken: t, roundTokens: round });
      out.push(t);
    }
    return { walk, state, out };
  }

  it("says exactly whether a verify step would accept the draft (greedy), and changes no token", async () => {
    const verdicts = new Set<boolean>();
    await fc.assert(
      fc.asyncProperty(tinyConfig, fc.integer(), fc.constantFrom(0.1, 0.7, 1.5), async (raw, seed, noise) => {
        const cfg = parseTiny({ ...raw, mtp_num_hidden_layers: 1, tie_word_embeddings: false });
        const model = Qwen3NextForCausalLM.fromCheckpoint(acceptingWeights(cfg, seed, { noise }), createTsKernels("f64"));
        const prompt = tokens(seed, 4, model.config.vocab_size);
        const { walk, state, out } = await probeWalk(model, prompt, 8, GREEDY, seed);
        for (const w of walk) {
          expect(w.verdict).toBe(w.accepted === 1);
          expect(w.roundTokens[0]).toBe(w.probeToken); // the round's first token is plain greedy's
          verdicts.add(w.verdict);
        }
        // Plain greedy decoding (no MTP head at all) gives the same tokens.
        expect(out).toEqual((await run(model, prompt, out.length, GREEDY)).tokens);
        // The MTP head is exactly in step: its cache and waiting hidden states are those of a plain run that
        // fed the same tokens one per step, each step's pair through the head at once (bit for bit, f64).
        model.mtp!.checkInStep(state);
        const plain = model.newState();
        await model.forward(prompt, plain, { mtp: true });
        for (const t of out.slice(0, -1)) await model.forward([t], plain, { mtp: true });
        const ws = (model as unknown as { ws: never }).ws;
        model.mtp!.run(model, state, ws);
        model.mtp!.run(model, plain, ws);
        const H = model.config.hidden_size;
        const waiting = (st: SequenceState) => Array.from(st.mtpPending ? hostTensor(st.mtpPending.hidden).subarray(0, st.mtpPending.rows * H) : []);
        expect(state.mtp[0].length).toBe(plain.mtp[0].length);
        expect(Array.from(hostTensor(state.mtp[0].k))).toEqual(Array.from(hostTensor(plain.mtp[0].k)));
        expect(Array.from(hostTensor(state.mtp[0].v))).toEqual(Array.from(hostTensor(plain.mtp[0].v)));
        expect(waiting(state)).toEqual(waiting(plain));
        plain.free();
        state.free();
      }),
      { numRuns: 12 },
    );
    // The noisy checkpoints gave both verdicts.
    expect([...verdicts].sort()).toEqual([false, true]);
  });

  it("accepts when sum_i min(p_i, q_i) >= 1/2 (sampling), p and q computed here from the step's and the head's logits", async () => {
    const verdicts = new Set<boolean>();
    await fc.assert(
      fc.asyncProperty(tinyConfig, fc.integer(), fc.constantFrom(0.1, 0.7, 1.5, 3), fc.constantFrom(0.1, 0.3, 1, 2), async (raw, seed, noise, temperature) => {
        const cfg = parseTiny({ ...raw, mtp_num_hidden_layers: 1, tie_word_embeddings: false });
        const model = Qwen3NextForCausalLM.fromCheckpoint(acceptingWeights(cfg, seed, { noise }), createTsKernels("f64"));
        const prompt = tokens(seed, 4, model.config.vocab_size);
        const params = { ...GREEDY, temperature };
        const sampler = new Sampler({ ...params, seed });
        const state = model.newState();
        const y = sampler.sample(await model.forward(prompt, state, { lastOnly: true, mtp: true }), [], prompt);
        // The head's logits for the draft after y, on a clone (drafting runs the head's waiting pairs).
        const clone = state.clone();
        let head: Float64Array | undefined;
        await model.draftBatch([{ state: clone, next: y, K: 1, pick: (z) => ((head = Float64Array.from(z)), 0) }]);
        clone.free();
        const other = state.clone();
        const step = Float64Array.from(await model.forward([y], other, { lastOnly: true }));
        other.free();
        const softmax = (z: Float64Array) => {
          const m = Math.max(...z);
          const e = z.map((x) => Math.exp((x - m) / temperature));
          const sum = e.reduce((a, b) => a + b, 0);
          return e.map((x) => x / sum);
        };
        const p = softmax(step);
        const q = softmax(head!);
        const overlap = p.reduce((a, pi, i) => a + Math.min(pi, q[i]), 0);
        fc.pre(Math.abs(overlap - 0.5) > 1e-9);
        let verdict: boolean | undefined;
        await speculativeRound(model, state, y, 0, sampler, (z) => z, [y], prompt, { draftTokens: 0, acceptedTokens: 0 }, undefined, undefined, (ok) => (verdict = ok));
        expect(verdict).toBe(overlap >= 0.5);
        verdicts.add(verdict!);
        state.free();
      }),
      { numRuns: 40 },
    );
    expect([...verdicts].sort()).toEqual([false, true]);
  });
});

describe("speculative decoding (MTP), usage", () => {
  it("refuses a model without an MTP head, a draft length below 1 and a draft vocabulary outside the model's, with one line", () => {
    const raw = fc.sample(tinyConfig, { seed: 2, numRuns: 1 })[0];
    const model = Qwen3NextForCausalLM.fromCheckpoint(randomWeights(parseTiny({ ...raw, mtp_num_hidden_layers: 0 }), 2), createTsKernels("f64"));
    const opts = (draftTokens: number) => ({ sampling: GREEDY, maxTokens: 4, speculative: { draftTokens } });
    expect(() => generate(model, tok, [1, 2], opts(1))).toThrow(
      "speculative decoding with MTP needs the checkpoint's MTP head, and this one has none (mtp_num_hidden_layers is 0, or no mtp.* tensors)",
    );
    const withMtp = Qwen3NextForCausalLM.fromCheckpoint(randomWeights(parseTiny({ ...raw, mtp_num_hidden_layers: 1 }), 2), createTsKernels("f64"));
    expect(() => generate(withMtp, tok, [1, 2], opts(0))).toThrow("draft tokens is 0, expected an integer >= 1");
    const V = withMtp.config.vocab_size;
    for (const n of [0, V + 1, 1.5]) {
      expect(() => generate(withMtp, tok, [1, 2], { ...opts(1), speculative: { draftTokens: 1, draftVocabulary: n } })).toThrow(
        `draft vocabulary is ${n}, expected an integer in [1, ${V}] (the model's vocabulary)`,
      );
    }
  });
});

describe("speculative decoding (MTP), sampling", () => {
  it.each([
    { name: "K 1, temperature 0.9", K: 1, V: 4, temperature: 0.9, top_k: 0, presence: 0, frequency: 0 },
    { name: "K 2, top-k 2, penalties", K: 2, V: 3, temperature: 1.2, top_k: 2, presence: 0.4, frequency: 0.3 },
    // Drafts among ids 0 and 1 only: q is 0 past them, and the residual must give ids 2 and 3 their share.
    { name: "K 2, draft vocabulary 2 of 4", K: 2, V: 4, temperature: 1, top_k: 0, presence: 0, frequency: 0, draftVocabulary: 2 },
    // Under a grammar (the server's scheduler): p and q under each position's mask, plain constrained sampling's
    // distribution; with a draft vocabulary of 2 some positions allow none of its ids (a forbidden draft).
    { name: "K 2, a grammar", K: 2, V: 4, temperature: 1, top_k: 0, presence: 0, frequency: 0, grammar: 3 },
    { name: "K 3, a grammar, top-k 3, penalties, draft vocabulary 2 of 4", K: 3, V: 4, temperature: 1.1, top_k: 3, presence: 0.3, frequency: 0.2, grammar: 5, draftVocabulary: 2 },
  ])("draws the first tokens from plain sampling's distribution ($name; chi-square over seeded runs)", async ({ K, V, temperature, top_k, presence, frequency, draftVocabulary, grammar }) => {
    const raw = fc.sample(tinyConfig, { seed: 7, numRuns: 1 })[0];
    const cfg = parseTiny({ ...raw, vocab_size: V, mtp_num_hidden_layers: 1, num_hidden_layers: 2, full_attention_interval: 2 });
    const model = Qwen3NextForCausalLM.fromCheckpoint(randomWeights(cfg, 7), createTsKernels("f64"));
    const prompt = [1, 2, 0];
    const sampling: SamplingParams = { temperature, top_k, top_p: 1, min_p: 0, presence_penalty: presence, frequency_penalty: frequency, repetition_penalty: 1 };
    const n = K + 2; // tokens per run: the first is plain sampling's, then K drafts (or resamples) and one more
    // Expected probability of each sequence of n tokens, from the model's logits over every prefix (the ids
    // the grammar forbids there at -inf).
    const expected = new Map<string, number>();
    const walk = async (seq: number[], prob: number): Promise<void> => {
      if (seq.length === n) return void expected.set(seq.join(","), prob);
      const logits = await model.forward([...prompt, ...seq], model.newState(), { lastOnly: true });
      if (grammar !== undefined) logits.forEach((_, id) => void (new ToyGrammar(V, grammar).allows(id, seq) || (logits[id] = -Infinity)));
      for (const [t, p] of plainDistribution(logits, temperature, top_k, presence, frequency, seq).entries()) if (p > 0) await walk([...seq, t], prob * p);
    };
    await walk([], 1);
    const runs = 3000;
    const observed = new Map<string, number>();
    let drafts = 0;
    let accepted = 0;
    const results = grammar === undefined ? undefined : await runConstrained(model, prompt, n, sampling, K, runs, grammar, draftVocabulary);
    for (let seed = 0; seed < runs; seed++) {
      const r = results?.[seed] ?? (await run(model, prompt, n, { ...sampling, seed }, K, draftVocabulary));
      const key = r.tokens.join(",");
      expect(expected.has(key), key).toBe(true);
      observed.set(key, (observed.get(key) ?? 0) + 1);
      drafts += r.draftTokens;
      accepted += r.acceptedTokens;
    }
    // Both paths are exercised: some drafts accepted, some rejected (and resampled).
    expect(accepted).toBeGreaterThan(0.1 * drafts);
    expect(accepted).toBeLessThan(0.9 * drafts);
    // Chi-square over the cells expected at least 5 times, the rest pooled.
    let chi = 0;
    let cells = 0;
    let restE = 0;
    let restO = 0;
    for (const [key, p] of expected) {
      const e = p * runs;
      const o = observed.get(key) ?? 0;
      if (e >= 5) {
        chi += (o - e) ** 2 / e;
        cells++;
      } else {
        restE += e;
        restO += o;
      }
    }
    if (restE > 0) {
      chi += (restO - restE) ** 2 / restE;
      cells++;
    }
    expect(cells).toBeGreaterThan(8);
    expect(chi).toBeLessThan(chiSquareCritical(cells - 1));
  });
});
