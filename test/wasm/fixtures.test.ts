/**
 * The reference fixtures through the WASM kernels: float32 within 1e-3 and identical expert ids, with the
 * weights spread over several capped WASM instances and the products split over two threads; full pass and
 * prefill-then-decode.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { Trace } from "../../src/model/trace.js";
import { createWasmKernels } from "../../src/kernels/wasm/kernels.js";
import { PAGE } from "../../src/kernels/wasm/module.js";
import { maxAbsDiff, readReference, REFERENCE_DIR } from "../helpers/reference.js";

const TOL = 1e-3;

describe.each(["tiny-moe-mtp", "tiny-dense-yarn-long"])("fixture %s on the wasm backend", (name) => {
  it.each([
    { threads: 1, maxInstanceBytes: undefined, decode: false },
    { threads: 2, maxInstanceBytes: 4 * PAGE, decode: true },
  ])("threads $threads, instance cap $maxInstanceBytes, decode $decode", async ({ threads, maxInstanceBytes, decode }) => {
    const kernels = await createWasmKernels({ threads, maxInstanceBytes, minParallelBytes: 0 });
    const ckpt = await loadCheckpoint(path.join(REFERENCE_DIR, name), { allocator: kernels });
    if (maxInstanceBytes) expect(kernels.heap.arenas.length).toBeGreaterThan(1);
    const model = Qwen3NextForCausalLM.fromCheckpoint(ckpt, kernels);
    const { tensors, metadata } = await readReference(`${name}/expected.safetensors`);
    const ids = Array.from(tensors.get("input_ids")!.data);
    const trace = new Trace();
    const state = model.newState();
    if (decode) {
      const nPrefill = Number(metadata.n_prefill);
      await model.forward(ids.slice(0, nPrefill), state, { trace });
      for (const id of ids.slice(nPrefill)) await model.forward([id], state, { trace });
    } else {
      await model.forward(ids, state, { trace });
    }
    for (const [tensor, ref] of tensors) {
      if (tensor === "input_ids") continue;
      const got = trace.get(tensor);
      expect(got.shape, tensor).toEqual(ref.shape);
      if (ref.dtype === "I64") expect(Array.from(got.data), tensor).toEqual(Array.from(ref.data));
      else expect(maxAbsDiff(got.data, ref.data), tensor).toBeLessThanOrEqual(TOL);
    }
    await kernels.close();
  });
});
