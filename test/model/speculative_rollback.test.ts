/**
 * Rollback after a speculative verify step (alone, or batched behind another sequence's rows): whatever the
 * drafts and however many tokens are kept, the sequence's state (DeltaNet conv and recurrent states, KV caches, position, the MTP head's caches and
 * waiting hidden states) equals the state of a plain run that fed only the kept tokens, one per step.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { DeltaNetState, KVCache, type SequenceState } from "../../src/model/state.js";
import { hostTensor } from "../helpers/host_tensor.js";
import { rng } from "../helpers/random.js";
import { anyTinyConfig, parseTiny, randomWeights, tinyConfig, withTiledValueHeads } from "../helpers/random_model.js";

function expectSameCache(a: KVCache, b: KVCache, where: string): void {
  expect(a.length, where).toBe(b.length);
  expect(Array.from(hostTensor(a.k)), `${where} keys`).toEqual(Array.from(hostTensor(b.k)));
  expect(Array.from(hostTensor(a.v)), `${where} values`).toEqual(Array.from(hostTensor(b.v)));
}

function expectSameState(model: Qwen3NextForCausalLM, spec: SequenceState, plain: SequenceState): void {
  expect(spec.position).toBe(plain.position);
  spec.layers.forEach((l, i) => {
    const p = plain.layers[i];
    if (l instanceof DeltaNetState) {
      expect(Array.from(hostTensor(l.conv)), `layer ${i} conv`).toEqual(Array.from(hostTensor((p as DeltaNetState).conv)));
      expect(Array.from(hostTensor(l.recurrent)), `layer ${i} recurrent`).toEqual(Array.from(hostTensor((p as DeltaNetState).recurrent)));
    } else expectSameCache(l, p as KVCache, `layer ${i}`);
  });
  // The MTP head: run what waits on both, then compare its caches and what is left waiting.
  if (model.mtp) {
    model.mtp.run(model, spec, (model as unknown as { ws: never }).ws);
    model.mtp.run(model, plain, (model as unknown as { ws: never }).ws);
    spec.mtp.forEach((c, i) => expectSameCache(c, plain.mtp[i], `mtp layer ${i}`));
    const H = model.config.hidden_size;
    const rows = (s: SequenceState) => Array.from((s.mtpPending ? hostTensor(s.mtpPending.hidden).subarray(0, s.mtpPending.rows * H) : []));
    expect(rows(spec)).toEqual(rows(plain));
  }
}

describe("speculative rollback", () => {
  it("leaves exactly the state of a plain run over the kept tokens, for any accept/reject pattern", async () => {
    await fc.assert(
      fc.asyncProperty(
        anyTinyConfig,
        fc.integer(),
        fc.constantFrom(0, 1, 2),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.record({ K: fc.integer({ min: 0, max: 5 }), keepFrac: fc.double({ min: 0, max: 1, noNaN: true }) }), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        fc.boolean(),
        async (raw, seed, mtpLayers, promptLength, rounds, batched, tiled) => {
          const cfg = { ...parseTiny(raw), mtp_num_hidden_layers: mtpLayers };
          const src = randomWeights(cfg, seed, "BF16");
          const model = Qwen3NextForCausalLM.fromCheckpoint(tiled && cfg.deltanet_projections.qkvz === "split" ? withTiledValueHeads(src) : src, createTsKernels("f64"));
          const V = model.config.vocab_size;
          const rand = rng(seed ^ 0xabc);
          const id = () => Math.floor(rand() * V);
          const prompt = Array.from({ length: promptLength }, id);
          const useMtp = mtpLayers > 0;
          const spec = model.newState();
          const plain = model.newState();
          const other = batched ? model.newState() : null;
          if (other) await model.forward([id(), id()], other);
          await model.forward(prompt, spec, { mtp: useMtp });
          // The plain run feeds one token per step from here on, so its delta rule is the recurrent step too.
          await model.forward(prompt, plain, { mtp: useMtp });
          let y = id();
          for (const { K, keepFrac } of rounds) {
            const drafts = Array.from({ length: K }, id);
            const keep = 1 + Math.min(K, Math.floor(keepFrac * (K + 1)));
            if (useMtp) expect(await model.draft(spec, y, K, (_, j) => drafts[j])).toEqual(drafts);
            const fed = [y, ...drafts];
            // The verify step is batched behind another sequence's rows (as in the server) when `other` is set.
            const rows = other ? [{ tokens: [id(), id()].slice(0, 1 + (K % 2)), state: other }, { tokens: fed, state: spec, verify: true }] : [{ tokens: fed, state: spec, verify: true }];
            const { hidden } = await model.step(rows);
            const first = rows.length === 2 ? rows[0].tokens.length : 0;
            model.rollback(spec, K + 1, keep);
            if (useMtp) model.observeMtp(hidden, fed.slice(0, keep), spec, first);
            for (const t of fed.slice(0, keep)) await model.forward([t], plain, { mtp: useMtp });
            expectSameState(model, spec, plain);
            y = id();
          }
          // Both continue alike: the next step's logits are equal.
          const a = await model.forward([y], spec, { mtp: useMtp });
          const b = await model.forward([y], plain, { mtp: useMtp });
          expect(Array.from(a)).toEqual(Array.from(b));
        },
      ),
      { numRuns: 40 },
    );
  });

  it("refuses a rollback without a verify step, or to more tokens than it had", async () => {
    const raw = fc.sample(tinyConfig, { seed: 3, numRuns: 1 })[0];
    const model = Qwen3NextForCausalLM.fromCheckpoint(randomWeights(parseTiny({ ...raw, num_hidden_layers: 2, full_attention_interval: 2 }), 3), createTsKernels("f64"));
    const s = model.newState();
    await model.forward([1, 2], s);
    expect(() => model.rollback(s, 2, 1)).toThrow("rollback: this DeltaNet state has no verify step to roll back");
    await model.step([{ tokens: [3, 4], state: s, verify: true }]);
    expect(() => model.rollback(s, 2, 3)).toThrow("rollback: keep 3 of 2 tokens");
  });
});
