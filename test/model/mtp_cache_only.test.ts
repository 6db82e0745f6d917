/**
 * The MTP head runs the whole layer only for the pairs whose outputs are read (each drafting sequence's last
 * pair, the outputs asked of `run`); the other pairs only append their keys and values to the layer's cache.
 * With float64 sums (the same bits whatever the batch), any sequence of steps, runs and drafts leaves the same
 * caches (every row's keys and values), the same drafts, the same chain logits and the same asked-for outputs
 * as running every pair through the whole layer (`allRows`, the head's original path).
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { HostKernels, Vec } from "../../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/kernels.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import type { SequenceState } from "../../src/model/state.js";
import type { Workspace } from "../../src/model/weights.js";
import { hostTensor } from "../helpers/host_tensor.js";
import { rng } from "../helpers/random.js";
import { anyTinyConfig, parseTiny, randomWeights } from "../helpers/random_model.js";

/** Argmax, ties to the lower id. */
const argmax = (z: Vec) => {
  let b = 0;
  for (let i = 1; i < z.length; i++) if (z[i] > z[b]) b = i;
  return b;
};

/** The head's caches of a state: every layer's length, keys and values. */
const cachesOf = (s: SequenceState) => s.mtp.map((c) => ({ length: c.length, k: Array.from(hostTensor(c.k)), v: Array.from(hostTensor(c.v)) }));

/** One round for every sequence: tokens through the main model (observed), then a run or a draft over some of them. */
const round = fc.record({
  steps: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
  action: fc.constantFrom("none", "run", "runNext", "draft"),
  outputs: fc.constantFrom(undefined, 0, 1, 2, 5),
  K: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 3, maxLength: 3 }),
  which: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
});

type Round = typeof round extends fc.Arbitrary<infer R> ? R : never;

async function sameAsAllRows(kernels: HostKernels, raw: object, seed: number, mtpLayers: number, seqs: number, rounds: Round[]) {
  const cfg = { ...parseTiny(raw), mtp_num_hidden_layers: mtpLayers };
  const model = Qwen3NextForCausalLM.fromCheckpoint(randomWeights(cfg, seed, "BF16"), kernels);
  const mtp = model.mtp!;
  const ws = (model as unknown as { ws: Workspace }).ws;
  const H = model.config.hidden_size;
  const V = model.config.vocab_size;
  const rand = rng(seed ^ 0x5eed);
  const id = () => Math.floor(rand() * V);
  // Sequence i as two states: a (outputs only where read) and b (every pair through the whole layer).
  const seq = Array.from({ length: seqs }, () => ({ a: model.newState(), b: model.newState(), first: null as number | null }));
  const on = <T>(all: boolean, f: () => T): T => {
    mtp.allRows = all;
    try {
      return f();
    } finally {
      mtp.allRows = false;
    }
  };
  try {
    for (const r of rounds) {
      for (const [i, s] of seq.entries()) {
        for (const T of r.steps) {
          const tokens = Array.from({ length: T }, id);
          if (s.first !== null) tokens[0] = s.first;
          s.first = null;
          for (const st of [s.a, s.b]) {
            const { hidden } = await model.step([{ tokens, state: st }]);
            mtp.observe(hidden, tokens, st);
          }
        }
        expect(cachesOf(s.a), `sequence ${i} after steps`).toEqual(cachesOf(s.b));
      }
      const chosen = seq.filter((_, i) => r.which[i] || i === 0);
      if (r.action === "run" || r.action === "runNext") {
        const items = chosen.map((s) => {
          const next = r.action === "runNext" ? id() : undefined;
          if (next !== undefined) s.first = next;
          return { s, next };
        });
        const outs = [false, true].map((all) =>
          on(all, () => {
            const { out, ends } = mtp.runMany(model, items.map(({ s, next }) => ({ state: all ? s.b : s.a, next, outputs: r.outputs })), ws);
            const host = hostTensor(out);
            // The rows asked for: each item's last `outputs` (all when not given).
            return ends.map((end, i) => {
              const start = i === 0 ? 0 : ends[i - 1];
              const m = r.outputs === undefined ? end - start : Math.min(r.outputs, end - start);
              return Array.from(host.subarray((end - m) * H, end * H));
            });
          }),
        );
        expect(outs[0]).toEqual(outs[1]);
      } else if (r.action === "draft") {
        const nexts = chosen.map(() => id());
        const runs: { drafts: number[][]; logits: number[][][] }[] = [];
        for (const all of [false, true]) {
          const logits: number[][][] = chosen.map(() => []);
          mtp.allRows = all;
          try {
            const requests = chosen.map((s, i) => ({ state: all ? s.b : s.a, next: nexts[i], K: r.K[i], pick: (z: Vec) => (logits[i].push(Array.from(z)), argmax(z)) }));
            runs.push({ drafts: await mtp.draft(model, ws, requests), logits });
          } finally {
            mtp.allRows = false;
          }
        }
        expect(runs[0]).toEqual(runs[1]);
        chosen.forEach((s, i) => (s.first = nexts[i]));
      }
      for (const [i, s] of seq.entries()) expect(cachesOf(s.a), `sequence ${i} after ${r.action}`).toEqual(cachesOf(s.b));
    }
  } finally {
    for (const s of seq) {
      s.a.free();
      s.b.free();
    }
  }
}

const property = (kernels: () => HostKernels) =>
  fc.asyncProperty(anyTinyConfig, fc.integer(), fc.constantFrom(1, 2), fc.integer({ min: 1, max: 3 }), fc.array(round, { minLength: 1, maxLength: 4 }), (raw, seed, layers, seqs, rounds) =>
    sameAsAllRows(kernels(), raw, seed, layers, seqs, rounds),
  );

describe("MTP pairs whose outputs nobody reads", () => {
  let wasm: WasmKernels;
  beforeAll(async () => {
    wasm = await createWasmKernels({ threads: 1, accumulate: "f64" });
  });
  afterAll(async () => {
    await wasm.close();
  });

  it("leave the same caches, drafts and read outputs as the whole layer (TypeScript kernels, float64)", async () => {
    await fc.assert(property(() => createTsKernels("f64")), { numRuns: 40 });
  });

  it("leave the same caches, drafts and read outputs as the whole layer (WASM kernels, float64 sums)", async () => {
    await fc.assert(property(() => wasm), { numRuns: 40 });
  });
});
