/** Checkpoint folder -> ready model: kernels chosen, weights streamed into the kernels' memory. */
import { createModelKernels } from "../kernels/index.js";
import type { RopeConfig } from "../config.js";
import type { KernelOptions } from "../kernels/types.js";
import { loadCheckpoint } from "../loading/checkpoint.js";
import { Qwen3NextForCausalLM } from "./qwen3_next_for_causal_lm.js";

/** The kernel choice (backend, precision, threads, accumulation), plus: */
export interface LoadModelOptions extends KernelOptions {
  /** Loading progress in bytes. */
  onProgress?: (done: number, total: number) => void;
  /** Replaces the checkpoint's RoPE setup (e.g. YaRN for long prompts, like vLLM's --rope-scaling). */
  rope?: RopeConfig;
  /** Scan the weights for NaN / Infinity while loading (default true). */
  checkFinite?: boolean;
  /** Told each one-line note about the checkpoint (e.g. a skipped vision tower). */
  onNote?: (note: string) => void;
}

export async function loadModel(dir: string, opts: LoadModelOptions = {}): Promise<Qwen3NextForCausalLM> {
  const kernels = await createModelKernels(opts);
  const ckpt = await loadCheckpoint(dir, { allocator: kernels, onProgress: opts.onProgress, checkFinite: opts.checkFinite });
  for (const note of ckpt.notes) opts.onNote?.(note);
  if (opts.rope) ckpt.config = { ...ckpt.config, rope: opts.rope };
  return Qwen3NextForCausalLM.fromCheckpoint(ckpt, kernels);
}
