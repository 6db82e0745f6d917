/**
 * The model with `accumulate: "q8"` (activations quantized per block, integer dot products: llama.cpp's path) on
 * the llama.cpp-quantized GGUF fixtures, against their float64 expected outputs (computed over the exactly
 * dequantized weights). The activations' 8-bit rounding is an error the exact path does not make, so this path is
 * not held to the fixtures' 1e-3: it is held to the bounds measured here (README, "Computing with quantized
 * weights"); the computation is deterministic (exact integer sums, float64 scaling), the same on both builds and
 * any thread count.
 */
import { afterAll, describe, expect, it } from "vitest";
import { createKernels } from "../../src/kernels/index.js";
import type { HostKernels as Kernels } from "../../src/kernels/types.js";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { ggufFixture, GGUF_FIXTURES } from "../helpers/gguf.js";
import { readReference } from "../helpers/reference.js";

const opened: Kernels[] = [];
afterAll(async () => {
  for (const k of opened) await (k as Kernels & { close?: () => Promise<void> }).close?.();
});

/** Logits of the fixture's tokens: one pass, or prefill then one token at a time. */
async function logits(name: string, mode: "full" | "decode", threads: number): Promise<{ got: Float32Array; want: Float32Array; V: number; T: number }> {
  const { tensors, metadata } = await readReference(`gguf/${name}/expected.safetensors`);
  const ids = Array.from(tensors.get("input_ids")!.data);
  const want = Float32Array.from(tensors.get("logits")!.data);
  const T = ids.length, V = want.length / T;
  const k = await createKernels({ backend: "wasm", threads, accumulate: "q8" });
  opened.push(k);
  const model = Qwen3NextForCausalLM.fromCheckpoint(await loadCheckpoint(ggufFixture(name), { allocator: k }), k);
  const state = model.newState();
  const got = new Float32Array(T * V);
  if (mode === "full") got.set(await model.forward(ids, state));
  else {
    const np = Number(metadata.n_prefill);
    got.set(await model.forward(ids.slice(0, np), state));
    for (const [i, id] of ids.slice(np).entries()) got.set(await model.forward([id], state), (np + i) * V);
  }
  return { got, want, V, T };
}

/** Largest |logit difference|, positions with the same top-1, mean KL(exact || q8) in float64. */
function compare(got: Float32Array, want: Float32Array, V: number, T: number): { maxAbs: number; top1: number; meanKL: number } {
  let maxAbs = 0, top1 = 0, kl = 0;
  for (let t = 0; t < T; t++) {
    const a = want.subarray(t * V, (t + 1) * V), b = got.subarray(t * V, (t + 1) * V);
    const am = a.indexOf(Math.max(...a)), bm = b.indexOf(Math.max(...b));
    if (am === bm) top1++;
    const lse = (x: Float32Array, m: number) => x[m] + Math.log(x.reduce((s, v) => s + Math.exp(v - x[m]), 0));
    const la = lse(a, am), lb = lse(b, bm);
    for (let v = 0; v < V; v++) {
      maxAbs = Math.max(maxAbs, Math.abs(a[v] - b[v]));
      kl += Math.exp(a[v] - la) * (a[v] - la - (b[v] - lb));
    }
  }
  return { maxAbs, top1, meanKL: kl / T };
}

/**
 * Measured (73 positions, both builds, full and prefill-then-decode, 1 and 2 threads): Q8_0 max |diff| 0.985, top-1
 * 67-68/73, mean KL 2.27e-3; Q4_K_M 1.694, 67/73, 5.99e-3. (The exact path: 1e-3 and 73/73. These random models
 * amplify small differences: the README's figures for Q8_0 vs BF16 weights on the same model are 1.7.) The bounds
 * are those figures rounded up, top-1 one position below.
 */
const BOUNDS: Record<(typeof GGUF_FIXTURES)[number], { maxAbs: number; top1: number; meanKL: number }> = {
  "gguf-q8_0": { maxAbs: 1.0, top1: 66, meanKL: 2.5e-3 },
  "gguf-q4_k_m": { maxAbs: 1.7, top1: 66, meanKL: 6.5e-3 },
};

describe.each(GGUF_FIXTURES)("llama.cpp file %s with q8 activations", (name) => {
  it.each([["full", 1], ["decode", 2]] as const)("%s pass (%i threads) stays within the measured bounds of the exact outputs", async (mode, threads) => {
    const { got, want, V, T } = await logits(name, mode, threads);
    const r = compare(got, want, V, T);
    const b = BOUNDS[name];
    expect(r.maxAbs).toBeLessThanOrEqual(b.maxAbs);
    expect(r.top1).toBeGreaterThanOrEqual(b.top1);
    expect(r.meanKL).toBeLessThanOrEqual(b.meanKL);
    // Not the exact path: the activations' rounding shows (the exact path is within 1e-3).
    expect(r.maxAbs).toBeGreaterThan(1e-2);
  });
});
