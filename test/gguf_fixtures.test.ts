/**
 * GGUF files against golden outputs:
 *   - reference/gguf: files quantized by llama.cpp's own tools (Q8_0; Q4_K_M = Q4_K, Q5_K, Q6_K, Q8_0), expected
 *     outputs computed in float64 over their exactly dequantized values;
 *   - the safetensors fixtures of reference/ written as GGUF files in llama.cpp's layout by a test-side converter
 *     (split attn_qkv + attn_gate and the older ssm_in, stacked and fused experts, tied output, YaRN, dense layers,
 *     norm_topk_prob false, the MTP head), which must reproduce the folders' own expected outputs;
 *   - expert_weights_norm false is honoured (llama.cpp ignores it for this architecture).
 * float64 within 1e-9, float32 within 1e-3 with identical expert ids, full pass and prefill-then-decode, both backends.
 */
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GgufFile } from "../src/io/gguf.js";
import { createKernels } from "../src/kernels/index.js";
import type { Backend, HostKernels as Kernels, Precision } from "../src/kernels/types.js";
import { loadCheckpoint } from "../src/loading/checkpoint.js";
import { Qwen3NextForCausalLM } from "../src/model/qwen3_next_for_causal_lm.js";
import { Trace } from "../src/model/trace.js";
import { bool, ggufFixture, GGUF_FIXTURES, rewriteGguf } from "./helpers/gguf.js";
import { hfToGguf, qwen35ToGguf, type HfToGgufOptions } from "./helpers/hf_to_gguf.js";
import { COMBOS, expectTraceMatches, maxAbsDiff, readReference, REFERENCE_DIR, TOL, type RefTensor } from "./helpers/reference.js";

const kernelSets = new Map<string, Promise<Kernels>>();
function kernelsFor(backend: Backend, precision: Precision): Promise<Kernels> {
  const key = `${backend}/${precision}`;
  if (!kernelSets.has(key)) kernelSets.set(key, createKernels({ backend, precision, threads: 2 }));
  return kernelSets.get(key)!;
}
let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "gguf-fixtures-"));
});
afterAll(async () => {
  for (const k of kernelSets.values()) await ((await k) as Kernels & { close?: () => Promise<void> }).close?.();
  await fsp.rm(tmp, { recursive: true, force: true });
});

async function run(file: string, expectedFile: string, backend: Backend, precision: Precision, mode: "full" | "decode") {
  const kernels = await kernelsFor(backend, precision);
  const ckpt = await loadCheckpoint(file, { allocator: kernels });
  const model = Qwen3NextForCausalLM.fromCheckpoint(ckpt, kernels);
  const { tensors, metadata } = await readReference(expectedFile);
  const ids = Array.from(tensors.get("input_ids")!.data);
  const trace = new Trace();
  if (mode === "full") await model.forward(ids, model.newState(), { trace });
  else {
    const nPrefill = Number(metadata.n_prefill);
    expect(nPrefill).toBeGreaterThan(1);
    const state = model.newState();
    await model.forward(ids.slice(0, nPrefill), state, { trace });
    for (const id of ids.slice(nPrefill)) await model.forward([id], state, { trace });
  }
  return { trace, tensors, ckpt };
}

describe.each(GGUF_FIXTURES)("llama.cpp file %s", (name) => {
  const file = ggufFixture(name);
  const expected = `gguf/${name}/expected.safetensors`;
  describe.each(COMBOS)("backend %s, precision %s", (backend, precision) => {
    it.each(["full", "decode"] as const)("%s pass matches every tensor", async (mode) => {
      const { trace, tensors } = await run(file, expected, backend, precision, mode);
      expectTraceMatches(trace, tensors, TOL[precision]);
    });
  });

  it("keeps the weights quantized, each expert's bytes read straight from its slice of the stacked tensor", async () => {
    const ckpt = await loadCheckpoint(file);
    const f = await GgufFile.open(file);
    try {
      const info = f.info("blk.2.ffn_gate_exps.weight");
      const w = ckpt.get("model.layers.2.mlp.experts.5.gate_proj.weight");
      expect(w.dtype).toBe(info.type.name);
      expect(w.shape).toEqual([256, 256]);
      const per = info.byteLength / 8;
      expect(w.data.byteLength).toBe(per);
      const slice = new Uint8Array(per);
      await f.readInto("blk.2.ffn_gate_exps.weight", slice, 5 * per);
      expect(Buffer.compare(Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength), Buffer.from(slice))).toBe(0);
      // The split DeltaNet projections keep their own (different) types in Q4_K_M.
      expect(ckpt.get("model.layers.0.linear_attn.in_proj_qkv.weight").dtype).toBe(f.info("blk.0.attn_qkv.weight").type.name);
      expect(ckpt.get("model.layers.0.linear_attn.in_proj_z.weight").dtype).toBe(f.info("blk.0.attn_gate.weight").type.name);
    } finally {
      await f.close();
    }
  });
});

/** The reference/ safetensors fixtures as GGUF files, each in a different spelling. */
const CONVERTED: Array<[string, HfToGgufOptions]> = [
  ["tiny-moe-mtp", { qkvz: "split", experts: "stacked" }],
  ["tiny-dense-yarn-long", { qkvz: "ssm_in", experts: "stacked" }],
  ["tx-gqa1-conv3-interval2", { qkvz: "split", experts: "fused" }],
  ["tx-yarn-full-rotary-tied", { qkvz: "ssm_in", experts: "fused" }],
];

describe.each(CONVERTED)("%s written as GGUF (%o)", (name, opts) => {
  const file = () => path.join(tmp, `${name}.gguf`);
  beforeAll(async () => {
    await hfToGguf(path.join(REFERENCE_DIR, name), file(), opts);
  });
  it.each([["ts", "f64"], ["wasm", "f32"]] as Array<[Backend, Precision]>)("%s %s: full pass and prefill-then-decode match the folder's expected outputs", async (backend, precision) => {
    for (const mode of ["full", "decode"] as const) {
      const { trace, tensors } = await run(file(), `${name}/expected.safetensors`, backend, precision, mode);
      expectTraceMatches(trace, tensors, TOL[precision]);
    }
  });
});

describe("the Qwen3.5 fixture written as a qwen35 GGUF (value heads tiled, ssm_beta / ssm_alpha, nextn MTP)", () => {
  const file = () => path.join(tmp, "qwen35-dense-mtp-tied.gguf");
  beforeAll(async () => {
    await qwen35ToGguf(path.join(REFERENCE_DIR, "qwen35-dense-mtp-tied"), file(), { experts: "stacked" });
  });
  it.each(COMBOS)("%s %s: full pass and prefill-then-decode match the fixture's expected outputs, MTP logits included", async (backend, precision) => {
    for (const mode of ["full", "decode"] as const) {
      const { trace, tensors, ckpt } = await run(file(), "qwen35-dense-mtp-tied/expected.safetensors", backend, precision, mode);
      expect(ckpt.config.model_type).toBe("qwen3_5");
      expect(ckpt.config.deltanet_projections).toEqual({ qkvz: "split", ba: "split", valueHeads: "tiled" });
      expect(tensors.has("mtp_logits") && trace.has("mtp_logits")).toBe(true);
      expectTraceMatches(trace, tensors, TOL[precision]);
    }
  });
});

describe("expert_weights_norm false", () => {
  it("is honoured: the top-k routing weights are the softmax probabilities, not renormalised", async () => {
    const file = path.join(tmp, "no-norm.gguf");
    await rewriteGguf(ggufFixture("gguf-q8_0"), file, { metadata: { "qwen3next.expert_weights_norm": bool(false) } });
    const { trace, tensors, ckpt } = await run(file, "gguf/gguf-q8_0/expected.safetensors", "ts", "f64", "full");
    expect(ckpt.config.norm_topk_prob).toBe(false);
    // Layer 0's router sees the same input as in the fixture (computed with renormalisation): the same experts,
    // weights that sum to less than 1 (the top-k share of a softmax over 8 experts), and renormalised they are
    // the fixture's weights.
    const ref = tensors.get("router.0.weights") as RefTensor;
    const got = trace.get("router.0.weights").data;
    expect(Array.from(trace.get("router.0.experts").data)).toEqual(Array.from(tensors.get("router.0.experts")!.data));
    const k = ref.shape[ref.shape.length - 1];
    const renormalised = new Float64Array(got.length);
    for (let t = 0; t < got.length / k; t++) {
      let sum = 0;
      for (let j = 0; j < k; j++) sum += got[t * k + j];
      expect(sum).toBeLessThan(1 - 1e-3);
      for (let j = 0; j < k; j++) renormalised[t * k + j] = got[t * k + j] / sum;
    }
    expect(maxAbsDiff(renormalised, ref.data)).toBeLessThanOrEqual(1e-12);
  });
});
