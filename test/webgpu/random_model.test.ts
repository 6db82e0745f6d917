/**
 * Randomly configured tiny models (test/helpers/random_model.ts: Qwen3-Next and Qwen3.5, dense and MoE, every
 * DeltaNet projection form, value heads grouped or tiled, YaRN, biases) on the WebGPU backend against the
 * TypeScript model in float64: every traced tensor (module internals, states, caches, hidden states, logits, MTP
 * logits) within the float32 tolerance and identical expert ids, one full pass and prefill then token-by-token decode.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { WeightDType } from "../../src/kernels/types.js";
import type { Kernels } from "../../src/kernels/types.js";
import { webGpuBackend } from "../../src/kernels/webgpu/backend.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { Trace } from "../../src/model/trace.js";
import { maxScaledDiff, rng } from "../helpers/random.js";
import { anyTinyConfig, parseTiny, randomWeights, withProjections, withTiledValueHeads } from "../helpers/random_model.js";
import { TOL } from "../helpers/reference.js";
import { testGpu } from "./gpu.js";

const { gpu, reason } = await testGpu();
afterAll(() => gpu?.close());

describe.skipIf(!gpu)(`random models on the WebGPU backend${reason ? ` (skipped: ${reason})` : ""}`, () => {
  const kernels = gpu ? (webGpuBackend(gpu) as unknown as Kernels) : null!;
  it("match the float64 TypeScript model: full pass and prefill-then-decode", async () => {
    await fc.assert(
      fc.asyncProperty(
        anyTinyConfig,
        fc.integer(),
        fc.constantFrom<WeightDType>("BF16", "F32"),
        fc.integer({ min: 2, max: 40 }),
        fc.integer({ min: 1, max: 39 }),
        fc.boolean(),
        async (raw, seed, dtype, T, split, tiled) => {
          let src = randomWeights(parseTiny(raw), seed, dtype);
          if (tiled && src.config.linear_num_value_heads > src.config.linear_num_key_heads) {
            const grouped = src.config.deltanet_projections.qkvz === "grouped" || src.config.deltanet_projections.ba === "grouped";
            src = withTiledValueHeads(grouped ? withProjections(src, { qkvz: "split", ba: "split" }) : src);
          }
          const rand = rng(seed ^ 0x9e37);
          const ids = Array.from({ length: T }, () => Math.floor(rand() * src.config.vocab_size));
          const want = new Trace();
          const cpu = Qwen3NextForCausalLM.fromCheckpoint(src, createTsKernels("f64"));
          await cpu.forward(ids, cpu.newState(), { trace: want });

          const model = new Qwen3NextForCausalLM(src.config, kernels, src);
          const full = new Trace();
          await model.forward(ids, model.newState(), { trace: full });
          const steps = new Trace();
          const state = model.newState();
          const n = Math.min(split, T - 1);
          await model.forward(ids.slice(0, n), state, { trace: steps });
          for (const id of ids.slice(n)) await model.forward([id], state, { trace: steps });
          expect(state.position).toBe(T);

          for (const got of [full, steps]) {
            const names = want.names();
            expect(got.names().sort()).toEqual(names.sort());
            for (const name of names) {
              const [a, b] = [got.get(name), want.get(name)];
              expect(a.shape, name).toEqual(b.shape);
              if (b.kind === "int") expect(Array.from(a.data), name).toEqual(Array.from(b.data));
              else expect(maxScaledDiff(a.data, b.data), name).toBeLessThanOrEqual(TOL.f32);
            }
          }
        },
      ),
      { numRuns: 10 },
    );
  });

  it("lastOnly returns the last row of the logits, a bad token id is one clear error, a freed state gives its memory back", async () => {
    const src = randomWeights(parseTiny({ model_type: "qwen3_next", vocab_size: 20, hidden_size: 8, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 8, linear_num_key_heads: 1, linear_num_value_heads: 2, linear_key_head_dim: 4, linear_value_head_dim: 4, num_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 4, shared_expert_intermediate_size: 4, intermediate_size: 8, full_attention_interval: 2, mtp_num_hidden_layers: 0 }), 1);
    const model = new Qwen3NextForCausalLM(src.config, kernels, src);
    const full = await model.forward([1, 5, 7], model.newState());
    const last = await model.forward([1, 5, 7], model.newState(), { lastOnly: true });
    expect(Array.from(last)).toEqual(Array.from(full.subarray(40)));
    await expect(model.forward([3, 20], model.newState())).rejects.toThrow("token id 20 is out of range, expected an integer in [0, 20)");
    await expect(model.forward([], model.newState())).rejects.toThrow(/no tokens/);
    // A freed state gives its device memory back (after a first step has sized the model's workspace).
    const first = model.newState();
    await model.forward([1, 2], first);
    first.free();
    const free = gpu!.dev.freeElements();
    for (let i = 0; i < 3; i++) {
      const s = model.newState();
      await model.forward([1, 2], s);
      s.free();
      expect(gpu!.dev.freeElements()).toBe(free);
    }
  });
});
