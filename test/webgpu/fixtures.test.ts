/**
 * The model on the WebGPU backend (src/kernels/webgpu/causal_lm.ts) against the golden fixtures of reference/
 * (float64 oracle), as test/fixtures.test.ts checks the CPU backends: every hidden state, the final hidden
 * states and the logits within the float32 tolerance, expert ids identical; the full pass and prefill then
 * token-by-token decode, and the MTP head's logits where the checkpoint has one.
 */
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import { WebGpuCausalLM } from "../../src/kernels/webgpu/causal_lm.js";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { Trace } from "../../src/model/trace.js";
import { expectTraceMatches, readReference, REFERENCE_DIR, TOL } from "../helpers/reference.js";
import { testGpu } from "./gpu.js";

const MODELS = ["tiny-moe-mtp", "tiny-dense-yarn-long", "tx-gqa1-conv3-interval2", "tx-yarn-full-rotary-tied", "qwen35-dense-mtp-tied"];

const { gpu, reason } = await testGpu();
afterAll(() => gpu?.close());

describe.skipIf(!gpu)(`fixtures on the WebGPU backend${reason ? ` (skipped: ${reason})` : ""}`, () => {
  describe.each(MODELS)("fixture %s", (name) => {
    const setup = async () => {
      const ckpt = await loadCheckpoint(path.join(REFERENCE_DIR, name), { allocator: createTsKernels("f32") });
      const model = new WebGpuCausalLM(ckpt.config, gpu!, ckpt);
      const { tensors, metadata } = await readReference(`${name}/expected.safetensors`);
      const ids = Array.from(tensors.get("input_ids")!.data);
      return { model, tensors, ids, nPrefill: Number(metadata.n_prefill) };
    };

    it("full forward pass matches every hidden state, the expert ids, the logits and the MTP logits", async () => {
      const { model, tensors, ids } = await setup();
      const trace = new Trace();
      await model.forward(ids, model.newState(), { trace });
      expectTraceMatches(trace, tensors, TOL.f32);
    });

    it("prefill then token-by-token decode matches too", async () => {
      const { model, tensors, ids, nPrefill } = await setup();
      expect(nPrefill).toBeGreaterThan(1);
      const trace = new Trace();
      const state = model.newState();
      await model.forward(ids.slice(0, nPrefill), state, { trace });
      for (const id of ids.slice(nPrefill)) await model.forward([id], state, { trace });
      expectTraceMatches(trace, tensors, TOL.f32);
    });
  });
});
