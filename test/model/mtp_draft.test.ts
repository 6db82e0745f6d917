/**
 * Drafting for several sequences at once (`draftBatch`, the server's drafts: one batch per chain step over
 * every drafting sequence) proposes what each sequence proposes alone, from the same logits, and leaves each
 * sequence's caches as drafting alone does; a draft vocabulary of n ids gives the first n of those logits. With
 * WASM kernels that sum in float64 or float32, the head drafts with the fastest products, "q8" (float32 sums for
 * float weights; drafts never reach the output), and hands the kernels back as they were.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { Vec } from "../../src/kernels/types.js";
import { createWasmKernels } from "../../src/kernels/wasm/kernels.js";
import { withDraftSums } from "../../src/model/mtp.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import type { SequenceState } from "../../src/model/state.js";
import { hostTensor } from "../helpers/host_tensor.js";
import { rng } from "../helpers/random.js";
import { anyTinyConfig, parseTiny, randomWeights, tinyConfig } from "../helpers/random_model.js";

/** Argmax, ties to the lower id. */
const argmax = (z: Vec) => {
  let b = 0;
  for (let i = 1; i < z.length; i++) if (z[i] > z[b]) b = i;
  return b;
};

/** Drafts K tokens for `state`, recording every chain step's logits. */
async function draftAlone(model: Qwen3NextForCausalLM, state: SequenceState, next: number, K: number): Promise<{ drafts: number[]; logits: number[][] }> {
  const logits: number[][] = [];
  const drafts = await model.draft(state, next, K, (z) => (logits.push(Array.from(z)), argmax(z)));
  return { drafts, logits };
}

/** Everything drafting may touch in a state: MTP caches and waiting hidden states. */
function mtpOf(model: Qwen3NextForCausalLM, s: SequenceState) {
  const H = model.config.hidden_size;
  return {
    caches: s.mtp.map((c) => ({ length: c.length, k: Array.from(hostTensor(c.k)), v: Array.from(hostTensor(c.v)) })),
    waiting: Array.from(s.mtpPending ? hostTensor(s.mtpPending.hidden).subarray(0, s.mtpPending.rows * H) : []),
    next: [...(s.mtpPending?.next ?? [])],
  };
}

describe("draftBatch", () => {
  it("proposes, from the same logits, what each sequence drafts alone, and leaves the same caches", async () => {
    await fc.assert(
      fc.asyncProperty(
        anyTinyConfig,
        fc.integer(),
        fc.constantFrom(1, 2),
        fc.array(fc.record({ prompt: fc.integer({ min: 1, max: 7 }), plainSteps: fc.integer({ min: 0, max: 3 }), K: fc.integer({ min: 0, max: 4 }) }), { minLength: 1, maxLength: 4 }),
        async (raw, seed, mtpLayers, seqs) => {
          const cfg = { ...parseTiny(raw), mtp_num_hidden_layers: mtpLayers };
          const model = Qwen3NextForCausalLM.fromCheckpoint(randomWeights(cfg, seed, "BF16"), createTsKernels("f64"));
          const V = model.config.vocab_size;
          const rand = rng(seed ^ 0xd4a);
          const id = () => Math.floor(rand() * V);
          // Two copies of each sequence: one drafts alone, one in the batch. Some have plain steps waiting.
          const setups: { a: SequenceState; b: SequenceState; next: number; K: number }[] = [];
          for (const q of seqs) {
            const prompt = Array.from({ length: q.prompt }, id);
            const steps = Array.from({ length: q.plainSteps }, id);
            const make = async () => {
              const s = model.newState();
              await model.forward(prompt, s, { mtp: true });
              for (const t of steps) {
                const { hidden } = await model.step([{ tokens: [t], state: s }]);
                model.observeMtp(hidden, [t], s);
              }
              return s;
            };
            setups.push({ a: await make(), b: await make(), next: id(), K: q.K });
          }
          const alone: { drafts: number[]; logits: number[][] }[] = [];
          for (const s of setups) alone.push(await draftAlone(model, s.a, s.next, s.K));
          const logits: number[][][] = setups.map(() => []);
          const batched = await model.draftBatch(setups.map((s, i) => ({ state: s.b, next: s.next, K: s.K, pick: (z: Vec) => (logits[i].push(Array.from(z)), argmax(z)) })));
          setups.forEach((s, i) => {
            expect(batched[i]).toEqual(alone[i].drafts);
            expect(batched[i].length).toBe(s.K);
            expect(logits[i]).toEqual(alone[i].logits);
            expect(mtpOf(model, s.b)).toEqual(mtpOf(model, s.a));
          });
        },
      ),
      { numRuns: 40 },
    );
  });

  it("drafts among the first n ids from the first n of the full logits, each request with its own n in one batch", async () => {
    await fc.assert(
      fc.asyncProperty(tinyConfig, fc.integer(), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 3 }), async (raw, seed, fracs) => {
        const cfg = parseTiny({ ...raw, mtp_num_hidden_layers: 1, tie_word_embeddings: false });
        const model = Qwen3NextForCausalLM.fromCheckpoint(randomWeights(cfg, seed, "BF16"), createTsKernels("f64"));
        const V = model.config.vocab_size;
        const states: { a: SequenceState; b: SequenceState; vocab: number }[] = [];
        for (const [i, frac] of fracs.entries()) {
          const a = model.newState();
          const b = model.newState();
          await model.forward([i, 1, 2], a, { mtp: true });
          await model.forward([i, 1, 2], b, { mtp: true });
          states.push({ a, b, vocab: 1 + Math.floor(frac * (V - 1)) });
        }
        // Full logits, and the drafts the first n ids give: the argmax over the first n of them.
        const full: { drafts: number[]; logits: number[][] }[] = [];
        for (const s of states) full.push(await draftAlone(model, s.a, 3, 2));
        const logits: number[][][] = states.map(() => []);
        const drafts = await model.draftBatch(
          states.map((s, i) => ({ state: s.b, next: 3, K: 1, vocab: s.vocab, pick: (z: Vec) => (logits[i].push(Array.from(z)), argmax(z)) })),
        );
        states.forEach((s, i) => {
          const first = full[i].logits[0].slice(0, s.vocab);
          expect(logits[i]).toEqual([first]);
          expect(drafts[i]).toEqual([argmax(Float64Array.from(first))]);
        });
      }),
      { numRuns: 30 },
    );
  });

  it("refuses the same state twice, a draft length below 0 and a vocabulary outside the model's, with one line", async () => {
    const cfg = parseTiny({ ...fc.sample(tinyConfig, { seed: 3, numRuns: 1 })[0], mtp_num_hidden_layers: 1 });
    const model = Qwen3NextForCausalLM.fromCheckpoint(randomWeights(cfg, 3), createTsKernels("f64"));
    const s = model.newState();
    await model.forward([1, 2], s, { mtp: true });
    expect(() => model.draftBatch([{ state: s, next: 1, K: 1, pick: () => 0 }, { state: s, next: 1, K: 1, pick: () => 0 }])).toThrow("draftBatch: the same state appears twice");
    expect(() => model.draftBatch([{ state: s, next: 1, K: -1, pick: () => 0 }])).toThrow("draft tokens is -1, expected an integer >= 0");
    const V = model.config.vocab_size;
    expect(() => model.draftBatch([{ state: s, next: 1, K: 1, vocab: V + 1, pick: () => 0 }])).toThrow(`draft vocabulary is ${V + 1}, expected an integer in [1, ${V}]`);
  });
});

describe("draft sums", () => {
  it("drafts with q8 products (float32 sums on float weights) whatever the kernels' sums, and gives the kernels back as they were (also after an error)", async () => {
    const cfg = parseTiny({ ...fc.sample(tinyConfig, { seed: 5, numRuns: 1 })[0], mtp_num_hidden_layers: 1, hidden_size: 64 });
    const k = await createWasmKernels({ threads: 1, accumulate: "f64" });
    try {
      const model = Qwen3NextForCausalLM.fromCheckpoint(randomWeights(cfg, 5, "BF16"), k);
      const prompt = [3, 1, 4, 1, 5];
      // Here the two arithmetics give different logits for the main model...
      const logitsIn = async (accumulate: "f32" | "f64") => ((k.accumulate = accumulate), Array.from(await model.forward(prompt, model.newState(), { lastOnly: true })));
      expect(await logitsIn("f32")).not.toEqual(await logitsIn("f64"));
      // ...but the head drafts the same from the same state in both: with q8 products, float32 sums here.
      const draftIn = async (accumulate: "f32" | "f64") => {
        k.accumulate = "f64";
        const s = model.newState();
        await model.forward(prompt, s, { mtp: true });
        k.accumulate = accumulate;
        const { logits } = await draftAlone(model, s, 9, 3);
        s.free();
        return { logits, after: k.accumulate };
      };
      const f64 = await draftIn("f64");
      const f32 = await draftIn("f32");
      expect(f64.logits).toEqual(f32.logits);
      expect(f64.after).toBe("f64");
      expect(f32.after).toBe("f32");
      const sums: string[] = [];
      k.accumulate = "f64";
      expect(() =>
        withDraftSums(k, () => {
          sums.push(k.accumulate);
          throw new Error("inside");
        }),
      ).toThrow("inside");
      expect(k.accumulate).toBe("f64");
      k.accumulate = "f32";
      withDraftSums(k, () => sums.push(k.accumulate));
      expect(k.accumulate).toBe("f32");
      k.accumulate = "q8";
      withDraftSums(k, () => sums.push(k.accumulate));
      expect(k.accumulate).toBe("q8");
      expect(sums).toEqual(["q8", "q8", "q8"]);
      // An async function keeps the switch across its awaits, until it settles (also when it rejects).
      k.accumulate = "f64";
      const inside: string[] = [];
      const tick = () => new Promise<void>((r) => setImmediate(r));
      const running = withDraftSums(k, async () => {
        inside.push(k.accumulate);
        await tick();
        inside.push(k.accumulate);
        await tick();
        throw new Error("after awaits");
      });
      expect(k.accumulate).toBe("q8");
      await expect(running).rejects.toThrow("after awaits");
      expect(inside).toEqual(["q8", "q8"]);
      expect(k.accumulate).toBe("f64");
      expect(await withDraftSums(k, async () => (await tick(), k.accumulate))).toBe("q8");
      expect(k.accumulate).toBe("f64");
      // TypeScript kernels have no switch: they run as they are.
      expect(withDraftSums(createTsKernels("f64"), () => "ran")).toBe("ran");
    } finally {
      await k.close();
    }
  });
});
