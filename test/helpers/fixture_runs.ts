/**
 * The two model runs every backend is checked with against a golden fixture of reference/: the full forward pass,
 * and prefill then token-by-token decode, each matching every traced tensor (expert ids exactly) within `tol`.
 */
import path from "node:path";
import { expect, it } from "vitest";
import type { HostKernels, Kernels } from "../../src/kernels/types.js";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { Trace } from "../../src/model/trace.js";
import { expectTraceMatches, readReference, REFERENCE_DIR } from "./reference.js";

/**
 * The shipped fixtures, then two made by reference/generate.py with transformers (other shapes), then a Qwen3.5
 * checkpoint (nested text_config, `model.language_model.*`, split DeltaNet projections, dense SwiGLU, a vision
 * tower to skip, tied, MTP).
 */
export const FIXTURE_MODELS = ["tiny-moe-mtp", "tiny-dense-yarn-long", "tx-gqa1-conv3-interval2", "tx-yarn-full-rotary-tied", "qwen35-dense-mtp-tied"];

/** Declares the two runs of fixture `name` on the kernels `kernels()` gives, inside the caller's describe. */
export function itMatchesFixture(name: string, kernels: () => Kernels | HostKernels | Promise<Kernels | HostKernels>, tol: number): void {
  const setup = async () => {
    const k = await kernels();
    const ckpt = await loadCheckpoint(path.join(REFERENCE_DIR, name), { allocator: k });
    const model = Qwen3NextForCausalLM.fromCheckpoint(ckpt, k);
    const { tensors, metadata } = await readReference(`${name}/expected.safetensors`);
    const ids = Array.from(tensors.get("input_ids")!.data);
    return { model, tensors, ids, nPrefill: Number(metadata.n_prefill) };
  };

  it("full forward pass matches every tensor", async () => {
    const { model, tensors, ids } = await setup();
    const trace = new Trace();
    await model.forward(ids, model.newState(), { trace });
    expectTraceMatches(trace, tensors, tol);
  });

  it("prefill then token-by-token decode matches every tensor", async () => {
    const { model, tensors, ids, nPrefill } = await setup();
    expect(nPrefill).toBeGreaterThan(1);
    const trace = new Trace();
    const state = model.newState();
    await model.forward(ids.slice(0, nPrefill), state, { trace });
    for (const id of ids.slice(nPrefill)) await model.forward([id], state, { trace });
    expectTraceMatches(trace, tensors, tol);
  });
}
