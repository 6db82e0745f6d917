/**
 * The model itself (src/model/, through the seam's asynchronous kernel interface) on the WebGPU backend
 * (src/kernels/webgpu/backend.ts) against the golden fixtures, as test/fixtures.test.ts checks the CPU backends:
 * every traced tensor within the float32 tolerance, expert ids identical, full pass and prefill-then-decode.
 */
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Kernels } from "../../src/kernels/types.js";
import { webGpuBackend } from "../../src/kernels/webgpu/backend.js";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { Trace } from "../../src/model/trace.js";
import { expectTraceMatches, readReference, REFERENCE_DIR, TOL } from "../helpers/reference.js";
import { testGpu } from "./gpu.js";

const MODELS = ["tiny-moe-mtp", "tiny-dense-yarn-long", "tx-gqa1-conv3-interval2", "tx-yarn-full-rotary-tied", "qwen35-dense-mtp-tied"];

const { gpu, reason } = await testGpu();
afterAll(() => gpu?.close());

describe.skipIf(!gpu)(`the model on the WebGPU backend${reason ? ` (skipped: ${reason})` : ""}`, () => {
  const kernels = gpu ? (webGpuBackend(gpu) as unknown as Kernels) : null!;
  describe.each(MODELS)("fixture %s", (name) => {
    const setup = async () => {
      const ckpt = await loadCheckpoint(path.join(REFERENCE_DIR, name), { allocator: kernels });
      const model = Qwen3NextForCausalLM.fromCheckpoint(ckpt, kernels);
      const { tensors, metadata } = await readReference(`${name}/expected.safetensors`);
      const ids = Array.from(tensors.get("input_ids")!.data);
      return { model, tensors, ids, nPrefill: Number(metadata.n_prefill) };
    };

    it("full forward pass matches every tensor", async () => {
      const { model, tensors, ids } = await setup();
      const trace = new Trace();
      await model.forward(ids, model.newState(), { trace });
      expectTraceMatches(trace, tensors, TOL.f32);
    });

    it("prefill then token-by-token decode matches every tensor", async () => {
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
