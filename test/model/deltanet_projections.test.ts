/**
 * The gated DeltaNet's input projections in either form (grouped per key head as Qwen3-Next stores them, split
 * as Qwen3.5 stores them, or the mix GGUF's qwen3next uses: split qkv + z with grouped ba) give the same model:
 * the split weights are gathered row by row from the grouped ones by the layout's index formulas (a test
 * helper written from the fixtures' README, not the model's regrouping code), and every logit agrees exactly.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import { listParams, Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { Trace } from "../../src/model/trace.js";
import { rng } from "../helpers/random.js";
import { maxScaledDiff } from "../helpers/random.js";
import { parseTiny, randomWeights, tinyConfig, withProjections, withTiledValueHeads } from "../helpers/random_model.js";

const FORMS = [
  { qkvz: "split", ba: "split" },
  { qkvz: "split", ba: "grouped" },
  { qkvz: "grouped", ba: "split" },
] as const;

describe("DeltaNet projection forms", () => {
  it("declare the split names (and only those) for a split form, with the same parameter count", () => {
    const c = parseTiny({ model_type: "qwen3_next", num_hidden_layers: 1, full_attention_interval: 2, hidden_size: 16, linear_num_key_heads: 2, linear_num_value_heads: 6, linear_key_head_dim: 4, linear_value_head_dim: 3, num_experts: 0, intermediate_size: 8, vocab_size: 10, head_dim: 8, num_attention_heads: 2 });
    const names = (form: (typeof FORMS)[number] | typeof c.deltanet_projections) =>
      listParams({ ...c, deltanet_projections: form }).filter((d) => d.name.includes("in_proj"));
    expect(names(c.deltanet_projections).map((d) => [d.name, d.shape])).toEqual([
      ["model.layers.0.linear_attn.in_proj_qkvz.weight", [2 * 2 * 4 + 2 * 6 * 3, 16]],
      ["model.layers.0.linear_attn.in_proj_ba.weight", [12, 16]],
    ]);
    expect(names(FORMS[0]).map((d) => [d.name, d.shape])).toEqual([
      ["model.layers.0.linear_attn.in_proj_qkv.weight", [2 * 2 * 4 + 6 * 3, 16]],
      ["model.layers.0.linear_attn.in_proj_z.weight", [6 * 3, 16]],
      ["model.layers.0.linear_attn.in_proj_b.weight", [6, 16]],
      ["model.layers.0.linear_attn.in_proj_a.weight", [6, 16]],
    ]);
    const count = (f: typeof c.deltanet_projections) => listParams({ ...c, deltanet_projections: f }).reduce((s, d) => s + d.shape.reduce((a, b) => a * b, 1), 0);
    for (const f of FORMS) expect(count(f)).toBe(count(c.deltanet_projections));
  });

  it("every form gives the logits and MTP logits of the grouped form, exactly (float64)", async () => {
    await fc.assert(
      fc.asyncProperty(tinyConfig, fc.integer(), fc.integer({ min: 1, max: 70 }), async (raw, seed, T) => {
        const grouped = randomWeights(parseTiny(raw), seed);
        const rand = rng(seed ^ 0x70c5);
        const ids = Array.from({ length: T }, () => Math.floor(rand() * grouped.config.vocab_size));
        const run = async (src: typeof grouped) => {
          const model = Qwen3NextForCausalLM.fromCheckpoint(src, createTsKernels("f64"));
          const trace = new Trace();
          await model.forward(ids, model.newState(), { trace });
          return trace;
        };
        const want = await run(grouped);
        for (const form of FORMS) {
          const got = await run(withProjections(grouped, form));
          for (const name of want.names()) expect(Array.from(got.get(name).data), `${form.qkvz}/${form.ba} ${name}`).toEqual(Array.from(want.get(name).data));
        }
      }),
      { numRuns: 25 },
    );
  });

  it("value heads tiled over the key heads (llama.cpp's qwen35 order) with the weights renumbered give the same model", async () => {
    await fc.assert(
      fc.asyncProperty(tinyConfig, fc.integer(), fc.integer({ min: 1, max: 70 }), async (raw, seed, T) => {
        const split = withProjections(randomWeights(parseTiny(raw), seed), { qkvz: "split", ba: "split" });
        const rand = rng(seed ^ 0x711e);
        const ids = Array.from({ length: T }, () => Math.floor(rand() * split.config.vocab_size));
        const run = async (src: typeof split) => {
          const model = Qwen3NextForCausalLM.fromCheckpoint(src, createTsKernels("f64"));
          const trace = new Trace();
          await model.forward(ids, model.newState(), { trace });
          return trace;
        };
        const want = await run(split);
        const got = await run(withTiledValueHeads(split));
        // out_proj sums its columns in another order, so agreement is to rounding, not bit for bit; the DeltaNet
        // state itself is stored in the tiled order.
        for (const name of want.names().filter((n) => !n.startsWith("deltanet."))) {
          expect(maxScaledDiff(got.get(name).data, want.get(name).data), name).toBeLessThan(1e-12);
        }
      }),
      { numRuns: 25 },
    );
  });
});
