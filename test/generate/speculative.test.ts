/**
 * Speculative decoding with the MTP head is exact: on randomly configured models (every configuration kind,
 * one or two MTP layers; random weights, where drafts are nearly always wrong, and noisy "accepting"
 * checkpoints, where they are right some of the time), greedy speculative generation gives plain greedy's
 * tokens, token for token, for K = 1..4 drafts. On an accepting checkpoint every draft is accepted.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { generate, type GenerateResult } from "../../src/generate/generate.js";
import type { SamplingParams } from "../../src/generate/sampler.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { WeightDType } from "../../src/kernels/types.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { bundledTokenizerDir, QwenTokenizer } from "../../src/tokenizer/tokenizer.js";
import { rng } from "../helpers/random.js";
import { parseTiny, randomWeights, tinyConfig } from "../helpers/random_model.js";
import { acceptingWeights, successor } from "../helpers/accepting_model.js";

const GREEDY: SamplingParams = { temperature: 0, top_k: 0, top_p: 1, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1 };

let tok: QwenTokenizer;
beforeAll(async () => {
  tok = await QwenTokenizer.load(bundledTokenizerDir());
});

function tokens(seed: number, n: number, vocab: number): number[] {
  const rand = rng(seed);
  return Array.from({ length: n }, () => Math.floor(rand() * vocab));
}

async function run(model: Qwen3NextForCausalLM, prompt: number[], maxTokens: number, sampling: SamplingParams, K?: number): Promise<GenerateResult> {
  const g = generate(model, tok, prompt, { sampling, maxTokens, stopIds: [], speculative: K === undefined ? undefined : { draftTokens: K } });
  for await (const _ of g.events);
  return g.result;
}

describe("speculative decoding (MTP), greedy", () => {
  it("gives plain greedy's tokens for K = 1..4 on random models of every configuration kind", async () => {
    await fc.assert(
      fc.asyncProperty(
        tinyConfig,
        fc.integer(),
        fc.constantFrom(1, 2),
        fc.constantFrom<WeightDType>("F64", "BF16"),
        fc.constantFrom<"f32" | "f64">("f32", "f64"),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 14 }),
        fc.constantFrom(0, 0.5),
        fc.constantFrom(null, 0.1, 0.7, 1.5),
        async (raw, seed, mtpLayers, dtype, precision, promptLength, maxTokens, penalty, noise) => {
          const cfg = parseTiny({ ...raw, mtp_num_hidden_layers: mtpLayers, tie_word_embeddings: noise === null ? raw.tie_word_embeddings : false });
          const src = noise === null ? randomWeights(cfg, seed, dtype) : acceptingWeights(cfg, seed, { noise, dtype });
          const model = Qwen3NextForCausalLM.fromCheckpoint(src, createTsKernels(precision));
          const prompt = tokens(seed ^ 0x5eed, promptLength, model.config.vocab_size);
          const sampling = { ...GREEDY, presence_penalty: penalty, repetition_penalty: 1 + penalty };
          const plain = await run(model, prompt, maxTokens, sampling);
          for (const K of [1, 2, 3, 4]) {
            const spec = await run(model, prompt, maxTokens, sampling, K);
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
