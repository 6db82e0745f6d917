/**
 * The built-in demo checkpoint: a tiny Qwen3-Next with random weights and the real 151,936-token vocabulary,
 * so that `generate`, `chat` and `serve` run end to end without a download. Its output is random text.
 *
 * Made once by `writeRandomCheckpoint` with a fixed seed and cached in `$QWEN3_NEXT_CACHE/demo-v1`
 * (default `~/.cache/qwen3-next-ts/demo-v1`); built in a temporary folder and renamed, so a crash or two
 * processes racing never leave a half-written cache. About 21 MB (BF16, tied embeddings).
 */
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writeRandomCheckpoint } from "./random_checkpoint.js";

/** Bump when the demo config or the init rules change, so old caches are not reused. */
export const DEMO_NAME = "demo-v1";
export const DEMO_SEED = 0;

/**
 * 4 layers (3 gated DeltaNet + 1 gated attention), every layer MoE (8 experts, top-2, shared expert),
 * one MTP layer, hidden 64, tied embeddings; the real Qwen3 vocabulary and stop ids.
 */
export const DEMO_CONFIG = {
  architectures: ["Qwen3NextForCausalLM"],
  model_type: "qwen3_next",
  vocab_size: 151936,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 4,
  full_attention_interval: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 32,
  partial_rotary_factor: 0.25,
  rope_theta: 10000000,
  rope_scaling: null,
  max_position_embeddings: 8192,
  linear_conv_kernel_dim: 4,
  linear_key_head_dim: 16,
  linear_value_head_dim: 16,
  linear_num_key_heads: 2,
  linear_num_value_heads: 4,
  decoder_sparse_step: 1,
  mlp_only_layers: [],
  num_experts: 8,
  num_experts_per_tok: 2,
  norm_topk_prob: true,
  moe_intermediate_size: 32,
  shared_expert_intermediate_size: 64,
  mtp_num_hidden_layers: 1,
  tie_word_embeddings: true,
  hidden_act: "silu",
  rms_norm_eps: 1e-6,
  attention_bias: false,
  initializer_range: 0.02,
  bos_token_id: 151643,
  eos_token_id: 151645,
  torch_dtype: "bfloat16",
} as const;

/** The cache root: `$QWEN3_NEXT_CACHE`, else `~/.cache/qwen3-next-ts`. */
export function cacheRoot(): string {
  const env = process.env.QWEN3_NEXT_CACHE;
  return env !== undefined && env !== "" ? path.resolve(env) : path.join(os.homedir(), ".cache", "qwen3-next-ts");
}

/** Folder of the demo checkpoint, creating it on first use. */
export async function ensureDemoCheckpoint(opts: { onProgress?: (done: number, total: number) => void } = {}): Promise<string> {
  const dir = path.join(cacheRoot(), DEMO_NAME);
  if (existsSync(path.join(dir, "config.json"))) return dir;
  await checkWritable(cacheRoot());
  try {
    await writeRandomCheckpoint(DEMO_CONFIG, dir, { seed: DEMO_SEED, onProgress: opts.onProgress });
  } catch (err) {
    // Another process may have finished first; its (identical) checkpoint is as good as ours.
    if (existsSync(path.join(dir, "config.json"))) return dir;
    throw new Error(`cannot create the demo checkpoint in ${dir}: ${(err as Error).message}`);
  }
  return dir;
}

/** Throws one line when the cache folder cannot be created or written (before minutes of work, not after). */
async function checkWritable(root: string): Promise<void> {
  const where = process.env.QWEN3_NEXT_CACHE ? `$QWEN3_NEXT_CACHE (${root})` : `the cache folder ${root}`;
  try {
    // One level at a time: Node's recursive mkdir loops for ever under /proc.
    const missing: string[] = [];
    for (let p = root; !existsSync(p); p = path.dirname(p)) missing.unshift(p);
    for (const p of missing) {
      await mkdir(p).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== "EEXIST") throw e; // another caller made it first
      });
    }
    const probe = path.join(root, `.write-test-${process.pid}-${Math.random().toString(36).slice(2)}`);
    await writeFile(probe, "");
    await rm(probe, { force: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new Error(`${where} is not a writable folder (${code}); set QWEN3_NEXT_CACHE to one, e.g. QWEN3_NEXT_CACHE=/tmp/qwen3-next`);
  }
}

/** The line every command prints on stderr when it runs the demo checkpoint. */
export function demoNotice(dir: string): string {
  return `qwen3-next: no --model given, using the built-in demo checkpoint (${dir}): its weights are RANDOM, so its text is gibberish; pass --model DIR for a real Qwen3-Next checkpoint`;
}
