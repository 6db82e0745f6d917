/**
 * Any valid configuration works, not just the fixtures': randomly configured tiny models (head counts and
 * ratios, conv width, attention interval, MoE/dense mix, shared expert or not, tied or not, YaRN or not,
 * MTP or not, attention bias or not; Qwen3-Next or the Qwen3.5 family, dense or MoE, with its split DeltaNet
 * projections) in float64, checked for
 *   - a sequence split into arbitrary pieces (prefill, single-token decode, chunks crossing 64) == one pass,
 *     for the logits and the MTP logits;
 *   - decodeBatch of several sequences == each sequence decoded alone;
 *   - a cloned state continues exactly like the original.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { WeightDType } from "../../src/kernels/types.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { Trace } from "../../src/model/trace.js";
import { maxScaledDiff, rng } from "../helpers/random.js";
import { anyTinyConfig, parseTiny, randomWeights } from "../helpers/random_model.js";

const TOL = 1e-9;

function build(raw: object, seed: number, dtype: WeightDType) {
  const src = randomWeights(parseTiny(raw), seed, dtype);
  return Qwen3NextForCausalLM.fromCheckpoint(src, createTsKernels("f64"));
}

function tokens(seed: number, n: number, vocab: number): number[] {
  const rand = rng(seed);
  return Array.from({ length: n }, () => Math.floor(rand() * vocab));
}

describe("randomly configured models (float64)", () => {
  it("any split of the sequence into calls gives the logits and MTP logits of one pass", async () => {
    await fc.assert(
      fc.asyncProperty(
        anyTinyConfig,
        fc.integer(),
        fc.constantFrom<WeightDType>("F64", "BF16", "F32"),
        fc.integer({ min: 2, max: 75 }),
        fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 6 }),
        async (raw, seed, dtype, T, pieces) => {
          const model = build(raw, seed, dtype);
          const ids = tokens(seed ^ 0x5eed, T, model.config.vocab_size);
          const one = new Trace();
          await model.forward(ids, model.newState(), { trace: one });
          const split = new Trace();
          const state = model.newState();
          for (let t0 = 0, i = 0; t0 < T; i++) {
            const n = Math.min(pieces[i % pieces.length], T - t0);
            await model.forward(ids.slice(t0, t0 + n), state, { trace: split });
            t0 += n;
          }
          expect(state.position).toBe(T);
          for (const name of one.names()) {
            const a = one.get(name);
            const b = split.get(name);
            expect(b.shape, name).toEqual(a.shape);
            expect(maxScaledDiff(b.data, a.data), name).toBeLessThan(TOL);
          }
          expect(one.has("mtp_logits")).toBe(model.config.mtp_num_hidden_layers > 0);
        },
      ),
      { numRuns: 16 },
    );
  });

  it("decodeBatch equals decoding each sequence alone, and clones continue like the original", async () => {
    await fc.assert(
      fc.asyncProperty(anyTinyConfig, fc.integer(), fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 }), async (raw, seed, lengths) => {
        const model = build(raw, seed, "BF16");
        const V = model.config.vocab_size;
        const prompts = lengths.map((n, i) => tokens(seed + i, n, V));
        const next = tokens(seed ^ 77, 2 * prompts.length, V);
        const states = [];
        for (const p of prompts) {
          const s = model.newState();
          await model.forward(p, s);
          states.push(s);
        }
        const clones = states.map((s) => s.clone());
        // Two batched decode steps...
        const b1 = await model.decodeBatch(next.slice(0, prompts.length), states);
        const b2 = await model.decodeBatch(next.slice(prompts.length), states);
        // ...equal each sequence's own decode, from the cloned snapshot.
        for (const [i, s] of clones.entries()) {
          const l1 = await model.forward([next[i]], s);
          const l2 = await model.forward([next[prompts.length + i]], s);
          expect(maxScaledDiff(b1.subarray(i * V, (i + 1) * V), l1)).toBeLessThan(TOL);
          expect(maxScaledDiff(b2.subarray(i * V, (i + 1) * V), l2)).toBeLessThan(TOL);
        }
      }),
      { numRuns: 14 },
    );
  });
});

describe("model API", () => {
  const raw = {
    model_type: "qwen3_next", vocab_size: 20, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 2,
    num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, linear_num_key_heads: 1, linear_num_value_heads: 2,
    linear_key_head_dim: 4, linear_value_head_dim: 4, num_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 4,
    shared_expert_intermediate_size: 4, full_attention_interval: 2, mtp_num_hidden_layers: 1,
  };

  it("lastOnly returns the last row of the full logits", async () => {
    const model = build(raw, 1, "F64");
    const ids = [1, 5, 7, 3];
    const full = await model.forward(ids, model.newState());
    const last = await model.forward(ids, model.newState(), { lastOnly: true });
    expect(last.length).toBe(20);
    expect(maxScaledDiff(last, full.subarray(3 * 20))).toBe(0);
  });

  it("draft's first step is what the next call's MTP computes for that token", async () => {
    const model = build(raw, 2, "F64");
    const ids = [4, 9, 2, 11, 6];
    const ref = new Trace();
    await model.forward(ids, model.newState(), { trace: ref });
    const s = model.newState();
    await model.forward(ids.slice(0, 3), s, { mtp: true });
    let seen: Float64Array | null = null;
    await model.draft(s, ids[3], 1, (logits) => ((seen = Float64Array.from(logits)), 0)); // MTP at position 2: (h_2, x_3)
    const all = ref.get("mtp_logits");
    expect(maxScaledDiff(seen!, all.data.subarray(2 * 20, 3 * 20))).toBeLessThan(TOL);
    await expect(model.draft(s, ids[4], 1, () => 0)).rejects.toThrow(/no hidden state to pair/);
  });

  it("refuses to run the MTP head once a call without it (decodeBatch) has left it behind", async () => {
    const model = build(raw, 5, "F64");
    const s = model.newState();
    await model.forward([4, 9, 2], s, { mtp: true }); // MTP cache: positions 0, 1; h_2 waits
    await model.decodeBatch([11], [s]); // position 3 -> 4, the MTP head does not see it
    await expect(model.forward([6], s, { mtp: true })).rejects.toThrow(
      "the MTP head is out of step with this sequence (it has seen 3 positions, expected 4): pass every step's hidden states to it (forward with { mtp: true }; decodeBatch does not)",
    );
    expect(s.position).toBe(4);
  });

  it("rejects token ids out of range and mismatched batches with one-line errors, leaving the state untouched", async () => {
    const model = build(raw, 3, "F64");
    const s = model.newState();
    await expect(model.forward([1, 20], s)).rejects.toThrow("token id 20 is out of range, expected an integer in [0, 20)");
    await expect(model.forward([-1], s)).rejects.toThrow(/out of range/);
    await expect(model.forward([], s)).rejects.toThrow(/no tokens/);
    expect(s.position).toBe(0);
    await expect(model.decodeBatch([1, 2], [s])).rejects.toThrow(/one token per state/);
    await expect(model.decodeBatch([1, 2], [s, s])).rejects.toThrow(/same state/);
  });

  it("reports a weight whose shape does not match the config", () => {
    const src = randomWeights(parseTiny(raw), 4, "F64");
    const bad = { ...src, get: (n: string) => (n === "model.norm.weight" ? { ...src.get(n), shape: [9] } : src.get(n)) };
    expect(() => Qwen3NextForCausalLM.fromCheckpoint(bad, createTsKernels("f64"))).toThrow(
      "model.norm.weight has shape [9], expected [8] from the config",
    );
  });
});
