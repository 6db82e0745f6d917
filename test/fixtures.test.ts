/**
 * The model against the golden fixtures of reference/ (computed in float64 by an independent oracle):
 * float64 within 1e-9 on every tensor, float32 within 1e-3 with identical expert ids; the full pass and the
 * prefill-then-decode path; the MTP logits; the delta rule and RoPE files.
 */
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";
import { createKernels } from "../src/kernels/index.js";
import type { Backend, HostKernels as Kernels, Precision } from "../src/kernels/types.js";
import { loadCheckpoint } from "../src/loading/checkpoint.js";
import { ropeInvFreq, ropeAttentionScaling } from "../src/model/rotary_embedding.js";
import { createTsKernels } from "../src/kernels/ts/index.js";
import { rotaryDim } from "../src/config.js";
import { FIXTURE_MODELS, itMatchesFixture } from "./helpers/fixture_runs.js";
import { COMBOS, maxAbsDiff, readDeltaRuleFixture, readReference, REFERENCE_DIR, TOL } from "./helpers/reference.js";

/**
 * Both backends, both precisions (the wasm backend's f64 mode is the TypeScript backend in float64: weights
 * in JS memory). One kernel set per combination, shared by the tests and closed at the end.
 */
const kernelSets = new Map<string, Promise<Kernels>>();
function kernelsFor(backend: Backend, precision: Precision): Promise<Kernels> {
  const key = `${backend}/${precision}`;
  if (!kernelSets.has(key)) kernelSets.set(key, createKernels({ backend, precision, threads: 2 }));
  return kernelSets.get(key)!;
}
afterAll(async () => {
  for (const k of kernelSets.values()) {
    const kernels = (await k) as Kernels & { close?: () => Promise<void> };
    await kernels.close?.();
  }
});

describe.each(FIXTURE_MODELS)("fixture %s", (name) => {
  describe.each(COMBOS)("backend %s, precision %s", (backend, precision) => {
    itMatchesFixture(name, () => kernelsFor(backend, precision), TOL[precision]);
  });
});

describe("config of the fixtures", () => {
  it("the Qwen3.5 fixture loads as a Qwen3.5 model with MTP, skipping its vision tower with a note", async () => {
    const ckpt = await loadCheckpoint(path.join(REFERENCE_DIR, "qwen35-dense-mtp-tied"));
    expect(ckpt.config.model_type).toBe("qwen3_5");
    expect(ckpt.config.deltanet_projections).toEqual({ qkvz: "split", ba: "split" });
    expect(ckpt.config.mtp_num_hidden_layers).toBe(1);
    expect(ckpt.notes).toHaveLength(1);
    expect(ckpt.notes[0]).toMatch(/^skipped the vision tower \(\d+ tensors under model\.visual\.\*\)/);
    const { tensors } = await readReference("qwen35-dense-mtp-tied/expected.safetensors");
    expect(tensors.has("mtp_logits")).toBe(true);
  });

  it("has MTP in one model and not the other", async () => {
    const { tensors } = await readReference("tiny-moe-mtp/expected.safetensors");
    expect(tensors.has("mtp_logits")).toBe(true);
    const dense = await readReference("tiny-dense-yarn-long/expected.safetensors");
    expect(dense.tensors.has("mtp_logits")).toBe(false);
  });
});

describe.each(["delta-rule-small", "delta-rule-real-heads"])("%s", (file) => {
  it.each(COMBOS)("recurrent and chunked forms match on %s in %s", async (backend, precision) => {
    const kernels = await kernelsFor(backend, precision);
    const fixture = await readDeltaRuleFixture(`${file}.safetensors`, kernels);
    for (const form of ["recurrent", "chunked"] as const) {
      for (const chunk of form === "chunked" ? [64, 5] : [0]) {
        const args = fixture.args();
        if (form === "recurrent") kernels.deltaRuleRecurrent(args);
        else kernels.deltaRuleChunked(args, chunk);
        expect(maxAbsDiff(args.out, fixture.output), `${form} ${chunk} output`).toBeLessThanOrEqual(TOL[precision]);
        expect(maxAbsDiff(args.state, fixture.finalState), `${form} ${chunk} state`).toBeLessThanOrEqual(TOL[precision]);
      }
    }
  });
});

describe.each(["rope-qwen3-next-80b-default", "rope-qwen3-next-80b-yarn4"])("%s", (file) => {
  it("inv_freq, cos and sin match", async () => {
    const { tensors, metadata } = await readReference(`${file}.safetensors`);
    const raw = JSON.parse(metadata.config) as Record<string, unknown>;
    const cfg = parseConfig({ model_type: "qwen3_next", ...raw }, file);
    const rd = rotaryDim(cfg);
    const invFreq = ropeInvFreq(cfg.rope, rd);
    expect(maxAbsDiff(invFreq, tensors.get("inv_freq")!.data)).toBeLessThanOrEqual(1e-15);
    expect(ropeAttentionScaling(cfg.rope)).toBeCloseTo(Number(metadata.attention_scaling), 15);
    const positions = Array.from(tensors.get("positions")!.data);
    const half = rd / 2;
    const cos = new Float64Array(positions.length * half);
    const sin = new Float64Array(positions.length * half);
    createTsKernels("f64").ropeTables(invFreq, ropeAttentionScaling(cfg.rope), positions, cos, sin);
    // The fixture holds HF's full-width layout cat(freqs, freqs): both halves equal ours.
    const refCos = tensors.get("cos")!.data;
    const refSin = tensors.get("sin")!.data;
    for (const [mine, ref] of [[cos, refCos], [sin, refSin]] as const) {
      for (let p = 0; p < positions.length; p++) {
        for (let j = 0; j < rd; j++) {
          expect(Math.abs(mine[p * half + (j % half)] - ref[p * rd + j])).toBeLessThanOrEqual(1e-9);
        }
      }
    }
  });
});
