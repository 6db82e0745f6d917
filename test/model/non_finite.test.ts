/**
 * Non-finite values never turn into internal errors or silently sampled tokens:
 *   - a checkpoint holding NaN / Infinity fails to load with one line naming the tensor and the element;
 *   - NaN router logits route to in-range experts on both backends (NaN flows on to that token alone);
 *   - the sampler refuses NaN / +Infinity logits (greedy and random);
 *   - in a batch, the sequence whose activations went NaN fails alone; the others get their own tokens.
 */
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKernels } from "../../src/kernels/index.js";
import type { HostKernels as Kernels, Weight } from "../../src/kernels/types.js";
import { hostTensor } from "../helpers/host_tensor.js";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { firstNonFiniteWeight } from "../../src/loading/finite.js";
import { loadModel } from "../../src/model/load.js";
import type { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { DeltaNetState, type SequenceState } from "../../src/model/state.js";
import { NonFiniteLogitsError, Sampler, type SamplingParams } from "../../src/generate/sampler.js";
import { Scheduler, type EndReason } from "../../src/server/scheduler.js";
import { REFERENCE_DIR } from "../helpers/reference.js";
import { rewriteCheckpoint } from "../loading/rewrite.js";

const FIXTURE = path.join(REFERENCE_DIR, "tiny-moe-mtp");
const ROUTER = "model.layers.0.mlp.gate.weight";

/** The fixture with element `at` of `name` (BF16) replaced by the BF16 word `word`. */
async function poisoned(name: string, at: number, word: number): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-next-nan-"));
  await rewriteCheckpoint(FIXTURE, dir, {
    tensors: (ts) =>
      ts.map((t) => {
        if (t.name !== name) return t;
        const words = new Uint16Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength));
        words[at] = word;
        return { ...t, data: words };
      }),
  });
  return dir;
}

const BF16_NAN = 0x7fc0;
const BF16_INF = 0x7f80;
const BF16_NEG_INF = 0xff80;
const BF16_MAX = 0x7f7f; // 3.39e38: finite

describe("non-finite weights at load", () => {
  it("finds the first NaN or infinity of each float dtype, at any offset, and nothing in finite data", () => {
    const w = (dtype: Weight["dtype"], data: Weight["data"]): Weight => ({ name: "w", dtype, shape: [data.length], data });
    const words = new Uint16Array(11).fill(0x3f80); // 1.0
    expect(firstNonFiniteWeight(w("BF16", words))).toBeUndefined();
    words[10] = BF16_MAX;
    expect(firstNonFiniteWeight(w("BF16", words))).toBeUndefined();
    for (const at of [0, 1, 6, 9, 10]) {
      const v = words.slice();
      v[at] = BF16_NEG_INF;
      expect(firstNonFiniteWeight(w("BF16", v))).toEqual({ index: at, value: -Infinity });
      // Unaligned view (odd word offset): the same element is found.
      const big = new Uint16Array(12);
      big.set(v, 1);
      expect(firstNonFiniteWeight(w("BF16", big.subarray(1)))).toEqual({ index: at, value: -Infinity });
    }
    const h = new Uint16Array([0x3c00, 0x7bff, 0x7e00]); // F16: 1, 65504, NaN
    expect(firstNonFiniteWeight(w("F16", h))?.index).toBe(2);
    expect(firstNonFiniteWeight(w("F32", new Float32Array([1, 2, Infinity])))).toEqual({ index: 2, value: Infinity });
    expect(firstNonFiniteWeight(w("F64", new Float64Array([NaN])))?.index).toBe(0);
  });

  it("fails the load with one line naming the tensor, the element and the value", async () => {
    const nan = await poisoned(ROUTER, 77, BF16_NAN);
    await expect(loadCheckpoint(nan)).rejects.toThrow(
      new RegExp(`tensor "${ROUTER.replace(/\./g, "\\.")}" holds NaN at element 77 \\(shape \\[8, 64\\]\\); the checkpoint is damaged`),
    );
    const inf = await poisoned("model.embed_tokens.weight", 5, BF16_INF);
    const err = await loadCheckpoint(inf).catch((e: Error) => e);
    expect(String(err)).toMatch(/"model\.embed_tokens\.weight" holds Infinity at element 5/);
    expect(String(err).split("\n")).toHaveLength(1);
  });
});

describe("NaN router logits", () => {
  for (const backend of ["ts", "wasm"] as const) {
    it(`keep expert ids in range and leave the other tokens' routing unchanged (${backend})`, async () => {
      const k: Kernels = await createKernels({ backend, threads: 1 });
      try {
        const E = 8, topK = 2;
        const row = [0.5, -1, 2, 0.25, 3, -0.5, 1, 0];
        const logits = k.vec(3 * E);
        logits.set(row, 0);
        logits.set(row.map(() => NaN), E);
        logits.set(row, 2 * E);
        const experts = new Int32Array(3 * topK);
        const weights = k.vec(3 * topK);
        k.router({ logits, T: 3, numExperts: E, k: topK, normalize: true, experts, weights });
        for (const id of experts) expect(id >= 0 && id < E).toBe(true);
        // Rows 0 and 2: experts 4 (logit 3) and 2 (logit 2), weights softmax-renormalised over the two.
        const w4 = 1 / (1 + Math.exp(-1));
        for (const r of [0, 2]) {
          expect([experts[r * topK], experts[r * topK + 1]]).toEqual([4, 2]);
          expect(weights[r * topK]).toBeCloseTo(w4, 6);
          expect(weights[r * topK + 1]).toBeCloseTo(1 - w4, 6);
        }
        expect(experts[topK]).not.toBe(experts[topK + 1]);
        expect(Number.isNaN(weights[topK])).toBe(true);
      } finally {
        await (k as { close?: () => unknown }).close?.();
      }
    });
  }
});

const greedy: SamplingParams = { temperature: 0, top_k: 0, top_p: 1, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1 };
const random: SamplingParams = { ...greedy, temperature: 1, seed: 1 };
const topk: SamplingParams = { ...greedy, temperature: 0.7, top_k: 5, top_p: 0.9, seed: 1 };

describe("the sampler and non-finite logits", () => {
  it("refuses NaN and +Infinity logits, greedy or not, and accepts -Infinity (masked tokens)", () => {
    for (const p of [greedy, random, topk]) {
      const s = new Sampler(p);
      expect(() => s.sample(new Float32Array([NaN, NaN, NaN]), [])).toThrow(NonFiniteLogitsError);
      expect(() => s.sample(new Float32Array([0, 1, NaN, 2]), [])).toThrow(/non-finite logits \(NaN at token 2 of 4\)/);
      expect(() => s.sample(new Float64Array([0, Infinity]), [])).toThrow(/Infinity at token 1/);
      expect(s.sample(new Float32Array([-Infinity, 5, -Infinity]), [])).toBe(1);
    }
  });

  for (const backend of ["ts", "wasm"] as const) {
    it(`a model loaded unchecked with NaN router weights gives NaN logits, never an internal error (${backend})`, async () => {
      const dir = await poisoned(ROUTER, 3, BF16_NAN);
      const model = await loadModel(dir, { backend, threads: 1, checkFinite: false });
      try {
        const state = model.newState();
        const logits = await model.forward([1, 2, 3], state, { lastOnly: true });
        expect(Number.isNaN(logits[0])).toBe(true);
        expect(() => new Sampler(greedy).sample(logits, [])).toThrow(NonFiniteLogitsError);
        const batch = await model.decodeBatch([4, 5], [state, model.newState()]);
        expect(batch.length).toBe(2 * model.config.vocab_size);
      } finally {
        await (model.kernels as { close?: () => unknown }).close?.();
      }
    });
  }
});

describe("a sequence whose activations go NaN, in a batch", () => {
  let model: Qwen3NextForCausalLM;
  beforeAll(async () => {
    model = await loadModel(FIXTURE, { backend: "wasm", threads: 1 });
  });
  afterAll(async () => {
    await (model?.kernels as { close?: () => unknown } | undefined)?.close?.();
  });

  async function alone(prompt: number[], n: number): Promise<number[]> {
    const s = new Sampler(random);
    const state = model.newState();
    const out: number[] = [];
    let logits = await model.forward(prompt, state, { lastOnly: true });
    for (;;) {
      out.push(s.sample(logits, out, prompt));
      if (out.length >= n) break;
      logits = await model.forward([out[out.length - 1]], state, { lastOnly: true });
    }
    state.free();
    return out;
  }

  it("fails alone with a clear error; the batch goes on", async () => {
    const sched = new Scheduler<SequenceState>(model, { maxConcurrency: 4, maxQueue: 4, prefixCacheSize: 0, prefillChunk: 64 });
    const ends: Record<string, { reason: EndReason; error?: string; tokens: number[] }> = {};
    const run = (name: string, prompt: number[], poisonAfter?: number) =>
      new Promise<void>((resolve) => {
        const tokens: number[] = [];
        const seq = sched.submit({
          prompt,
          maxTokens: 12,
          stopTokenIds: new Set(),
          sampler: new Sampler(random),
          sampleableTokens: model.config.vocab_size,
          onToken(id) {
            tokens.push(id);
            // A numerical blow-up in this sequence's own state (the DeltaNet memory of layer 0).
            if (tokens.length === poisonAfter) hostTensor((seq.state!.layers[0] as DeltaNetState).recurrent).fill(NaN);
            return true;
          },
          onEnd(reason, error) {
            ends[name] = { reason, error: error?.message, tokens };
            resolve();
          },
        });
      });
    await Promise.all([run("healthy", [1, 2, 3]), run("poisoned", [7, 8, 9, 10], 3), run("other", [11, 12])]);
    expect(ends.poisoned.reason).toBe("error");
    expect(ends.poisoned.error).toMatch(/^the model produced non-finite logits \(NaN at token \d+ of 512\); refusing to sample from them$/);
    expect(ends.poisoned.tokens).toHaveLength(3);
    expect(ends.healthy).toEqual({ reason: "length", error: undefined, tokens: await alone([1, 2, 3], 12) });
    expect(ends.other).toEqual({ reason: "length", error: undefined, tokens: await alone([11, 12], 12) });
    expect(sched.stats.largestBatch).toBe(3);
  });
});
