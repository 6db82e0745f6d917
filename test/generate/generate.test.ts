import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { contextLimit, parseConfig, ropeWithScaling } from "../../src/config.js";
import { checkPromptLength, generate, type Continuation, type GenerateEvent } from "../../src/generate/generate.js";
import { StopStringText } from "../../src/generate/stop_strings.js";
import type { SamplingParams } from "../../src/generate/sampler.js";
import { DEMO_CONFIG } from "../../src/init/demo.js";
import { writeRandomCheckpoint } from "../../src/init/random_checkpoint.js";
import { loadModel } from "../../src/model/load.js";
import type { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { QwenTokenizer } from "../../src/tokenizer/tokenizer.js";

const GREEDY: SamplingParams = { temperature: 0, top_k: 0, top_p: 1, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1 };
const SAMPLED: SamplingParams = { ...GREEDY, temperature: 0.8, top_k: 40, top_p: 0.95, seed: 11 };

let tmp: string;
let model: Qwen3NextForCausalLM;
let tok: QwenTokenizer;
let prompt: number[];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "qwen3-gen-"));
  const dir = path.join(tmp, "demo");
  await writeRandomCheckpoint(DEMO_CONFIG, dir, { seed: 5 });
  [model, tok] = await Promise.all([loadModel(dir), QwenTokenizer.load(dir)]);
  prompt = tok.encode("<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n");
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function collect(events: AsyncIterable<GenerateEvent>): Promise<GenerateEvent[]> {
  const out: GenerateEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

/** Greedy decoding the slow way: the whole sequence through a fresh state at every step, argmax of the last row. */
async function greedyByFullPasses(ids: number[], n: number): Promise<number[]> {
  const seq = [...ids];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const state = model.newState();
    const logits = (await model.forward(seq, state, { lastOnly: true })).subarray(0, tok.vocabSize);
    state.free();
    let best = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
    out.push(best);
    seq.push(best);
  }
  return out;
}

describe("generate", () => {
  it("greedy decoding over the caches equals argmax over full passes", async () => {
    const g = generate(model, tok, prompt, { sampling: GREEDY, maxTokens: 5, stopIds: [] });
    const r = await g.result;
    expect(r.tokens).toEqual(await greedyByFullPasses(prompt, 5));
    expect(r.finishReason).toBe("length");
    expect(r.promptTokens).toBe(prompt.length);
    expect(r.completionTokens).toBe(5);
    expect(r.tokensPerSecond).toBeGreaterThan(0);
  });

  it("streams events whose text adds up to the result, reproducibly for a seed, whatever the prefill chunk", async () => {
    const progress: Array<[number, number]> = [];
    const a = generate(model, tok, prompt, {
      sampling: SAMPLED,
      maxTokens: 8,
      stopIds: [],
      prefillChunk: 4,
      onPrefillProgress: (d, t) => progress.push([d, t]),
    });
    const events = await collect(a.events);
    const ra = await a.result;
    expect(events.map((e) => e.text).join("")).toBe(ra.text);
    expect(ra.text).toBe(tok.decode(ra.tokens));
    expect(events.filter((e) => e.token !== null).map((e) => e.token)).toEqual(ra.tokens);
    expect(progress.at(-1)).toEqual([prompt.length, prompt.length]);
    expect(progress.map((p) => p[0])).toEqual([...progress.map((p) => p[0])].sort((x, y) => x - y));
    const rb = await generate(model, tok, prompt, { sampling: SAMPLED, maxTokens: 8, stopIds: [] }).result;
    expect(rb.tokens).toEqual(ra.tokens);
  });

  it("stops on a stop id without including it", async () => {
    const free = await generate(model, tok, prompt, { sampling: GREEDY, maxTokens: 4, stopIds: [] }).result;
    const r = await generate(model, tok, prompt, { sampling: GREEDY, maxTokens: 4, stopIds: [free.tokens[2]] }).result;
    const firstStop = free.tokens.indexOf(free.tokens[2]);
    expect(r.finishReason).toBe("stop");
    expect(r.tokens).toEqual(free.tokens.slice(0, firstStop));
    expect(r.completionTokens).toBe(firstStop + 1);
  });

  it("cuts the text before a stop string and never streams any of it", async () => {
    const free = await generate(model, tok, prompt, { sampling: GREEDY, maxTokens: 6, stopIds: [] }).result;
    const chars = [...free.text];
    const stop = chars.slice(Math.floor(chars.length / 2), Math.floor(chars.length / 2) + 2).join("");
    const g = generate(model, tok, prompt, { sampling: GREEDY, maxTokens: 6, stopIds: [], stopStrings: [stop] });
    const events = await collect(g.events);
    const r = await g.result;
    expect(r.finishReason).toBe("stop");
    expect(r.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
    expect(events.map((e) => e.text).join("")).toBe(r.text);
  });

  it("stops cleanly on abort", async () => {
    const ac = new AbortController();
    const g = generate(model, tok, prompt, { sampling: GREEDY, maxTokens: 50, stopIds: [], signal: ac.signal });
    for await (const e of g.events) if (e.token !== null) ac.abort();
    const r = await g.result;
    expect(r.finishReason).toBe("abort");
    expect(r.tokens.length).toBeGreaterThanOrEqual(1);
    expect(r.tokens.length).toBeLessThan(50);
  });

  it("rejects an empty prompt, a prompt over the context, a bad max tokens, ids outside the vocabulary", () => {
    expect(() => generate(model, tok, [], { sampling: GREEDY, maxTokens: 1 })).toThrow(/prompt is empty/);
    const long = new Array(DEMO_CONFIG.max_position_embeddings).fill(9707);
    expect(() => generate(model, tok, long, { sampling: GREEDY, maxTokens: 1 })).toThrow(
      /the prompt is 8192 tokens, the model's context is 8192 tokens .*--rope-scaling/,
    );
    expect(() => generate(model, tok, prompt, { sampling: GREEDY, maxTokens: 0 })).toThrow(/max tokens is 0/);
    expect(() => generate(model, tok, [9707, 151936], { sampling: GREEDY, maxTokens: 1 })).toThrow(
      /token id 151936, but the model's vocabulary has 151936 ids/,
    );
  });
});

describe("context limit", () => {
  it("is max_position_embeddings, or factor x original with YaRN (--rope-scaling)", () => {
    const base = parseConfig(DEMO_CONFIG);
    expect(contextLimit(base)).toBe(8192);
    const rope = ropeWithScaling(DEMO_CONFIG, '{"rope_type":"yarn","factor":4,"original_max_position_embeddings":8192}');
    expect(rope).toMatchObject({ rope_type: "yarn", factor: 4, original_max_position_embeddings: 8192, rope_theta: 10000000 });
    const yarn = { ...base, rope };
    expect(contextLimit(yarn)).toBe(32768);
    expect(() => checkPromptLength(yarn, 20000)).not.toThrow();
    expect(() => checkPromptLength(yarn, 32768)).toThrow(/context is 32768 tokens/);
    expect(() => ropeWithScaling(DEMO_CONFIG, "{yarn")).toThrow(/--rope-scaling is not JSON/);
    expect(() => ropeWithScaling(DEMO_CONFIG, '{"rope_type":"yarn","factor":4}')).toThrow(/original_max_position_embeddings is required/);
  });
});

describe("StopStringText", () => {
  it("emits exactly the text before the first stop string to appear, however it arrives (property)", () => {
    const alphabet = fc.constantFrom("a", "b", "c", "ab", "\n", "😀");
    fc.assert(
      fc.property(
        fc.array(fc.array(alphabet, { maxLength: 3 }).map((a) => a.join("")), { maxLength: 12 }),
        fc.array(fc.array(alphabet, { minLength: 1, maxLength: 3 }).map((a) => a.join("")), { maxLength: 3 }),
        (deltas, stops) => {
          // Spec, by brute force: after each delta, if a stop string occurs in the text so far, the text is cut
          // before the earliest occurrence and generation stops (as vLLM checks after every token).
          let expected = deltas.join("");
          let firstStop = Infinity;
          for (let k = 1; k <= deltas.length && !Number.isFinite(firstStop); k++) {
            const sofar = deltas.slice(0, k).join("");
            firstStop = Math.min(...stops.map((s) => sofar.indexOf(s)).filter((i) => i >= 0), Infinity);
            if (Number.isFinite(firstStop)) expected = sofar.slice(0, firstStop);
          }
          const t = new StopStringText(stops);
          let shown = "";
          let stopped = false;
          for (const d of deltas) {
            const r = t.add(d);
            shown += r.emit;
            if (r.stopped) {
              stopped = true;
              break;
            }
            // Nothing shown can be part of a stop string that may still complete.
            expect(expected.startsWith(shown)).toBe(true);
          }
          shown += t.end("");
          expect(shown).toBe(expected);
          expect(t.value).toBe(expected);
          expect(stopped).toBe(Number.isFinite(firstStop));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("generate with a continuation (a state kept between calls, as chat does)", () => {
  it("continuing equals prefilling the whole sequence afresh; the continuation holds exactly the tokens its state consumed", async () => {
    const cont: Continuation<{ free(): void }> = { state: null, tokens: [] };
    const first = await generate(model, tok, prompt, { sampling: GREEDY, maxTokens: 6, continuation: cont }).result;
    expect(first.finishReason).toBe("length");
    expect(first.reusedTokens).toBe(0);
    expect(first.prefilledTokens).toBe(prompt.length);
    // The 6th token was sampled but never fed: the state holds the prompt and the first 5.
    expect(cont.tokens).toEqual([...prompt, ...first.tokens.slice(0, 5)]);
    const next = tok.encode("<|im_end|>\n<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n");
    const held = [...cont.tokens];
    const second = await generate(model, tok, next, { sampling: GREEDY, maxTokens: 8, continuation: cont }).result;
    expect(second.reusedTokens).toBe(held.length);
    expect(second.prefilledTokens).toBe(next.length);
    expect(second.promptTokens).toBe(held.length + next.length);
    const fresh = await generate(model, tok, [...held, ...next], { sampling: GREEDY, maxTokens: 8 }).result;
    expect(second.tokens).toEqual(fresh.tokens);
    cont.state?.free();
  });

  it("says the output was capped when the context fills before max tokens", async () => {
    const r = await generate(model, tok, prompt, { sampling: GREEDY, maxTokens: 50, contextSize: prompt.length + 4 }).result;
    expect(r.capped).toBe(true);
    expect(r.finishReason).toBe("length");
    expect(r.tokens).toHaveLength(4);
    expect(() => generate(model, tok, prompt, { sampling: GREEDY, maxTokens: 5, contextSize: prompt.length })).toThrow(/--ctx-size/);
  });
});
