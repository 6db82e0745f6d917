/**
 * Writes a random-weight checkpoint folder in the published layout of its family, for demos and tests:
 *   config.json (as given), generation_config.json, tokenizer.json + tokenizer_config.json (the bundled Qwen3
 *   tokenizer), model.safetensors (or model-0000k-of-0000n.safetensors + model.safetensors.index.json above 2 GiB),
 *   BF16, `mtp.*` when configured. The parameters are the model's declared ones (`expectedTensors`), stored as the
 *   family's layout spells them first (`safetensorsLayout`): Qwen3-Next one tensor per expert; Qwen3.5 under
 *   `model.language_model.*` with split DeltaNet projections, Qwen3.5-MoE with fused experts
 *   (`mlp.experts.gate_up_proj` [E, 2I, H], `mlp.experts.down_proj` [E, H, I]). No vision tower is written.
 *
 * Initialisation follows `transformers`' Qwen3NextPreTrainedModel._init_weights (and PyTorch's defaults where
 * it defers to them), seeded (xoshiro128**, Box-Muller), so the same config and seed give the same bytes:
 *   Linear and embedding weights  ~ Normal(0, initializer_range)          (initializer_range default 0.02)
 *   zero-centred RMSNorm weights  = 0        (the scale is 1 + w, so 0 is the identity; all norms but one)
 *   DeltaNet gated norm weight    = 1        (linear_attn.norm: plain scale w)
 *   DeltaNet dt_bias              = 1
 *   DeltaNet A_log                = log(Uniform(1, 16))   (HF draws Uniform(0, 16); 1 avoids log 0)
 *   conv1d weight                 ~ Uniform(-1/sqrt(K), 1/sqrt(K))   (PyTorch's Conv1d default, fan_in = K)
 *   attention biases (if any)     = 0
 */
import { mkdir, rename, rm, copyFile, writeFile } from "node:fs/promises";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { parseConfig, type Qwen3NextConfig } from "../config.js";
import { expectedTensors, type ExpectedTensor } from "../loading/expected.js";
import { safetensorsLayout, type Spelling } from "../loading/layout.js";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors.js";
import { f32ToBf16 } from "../io/dtype.js";
import { NormalRandom, Xoshiro128 } from "../prng.js";
import { bundledTokenizerDir } from "../tokenizer/tokenizer.js";
import { QWEN3_NEXT_INSTRUCT_SAMPLING } from "../generate/sampler.js";

/** Largest shard written by default; bigger checkpoints are split like the published ones. */
export const MAX_SHARD_BYTES = 2 * 1024 ** 3;

export interface InitOptions {
  seed?: number;
  /** Split the weights into shards of at most this many bytes (default MAX_SHARD_BYTES). */
  maxShardBytes?: number;
  /** Called after each tensor with the bytes written so far and the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Stops between tensors (the temporary folder is removed, nothing is left behind). */
  signal?: AbortSignal;
}

/** Throws when `outDir` exists and is not an empty folder. */
export function checkOutDir(outDir: string): void {
  if (existsSync(outDir) && (!statSync(outDir).isDirectory() || readdirSync(outDir).length > 0)) {
    throw new Error(`${outDir} already exists; expected a folder that does not exist yet`);
  }
}

/** Bytes `writeRandomCheckpoint` writes for a config: the BF16 weights plus the tokenizer files (headers aside). */
export function randomCheckpointBytes(rawConfig: unknown): number {
  const weights = storedTensors(parseConfig(rawConfig, "config")).reduce((s, t) => s + 2 * count(t.shape), 0);
  const tokenizer = ["tokenizer.json", "tokenizer_config.json"].reduce((s, f) => s + statSync(path.join(bundledTokenizerDir(), f)).size, 0);
  return weights + tokenizer;
}

/**
 * Creates `outDir` (an existing non-empty folder is an error) holding a random checkpoint for `rawConfig` (a config.json object). Written into a temporary sibling folder
 * first and renamed into place, so `outDir` is never half-written.
 */
export async function writeRandomCheckpoint(rawConfig: unknown, outDir: string, opts: InitOptions = {}): Promise<Qwen3NextConfig> {
  const config = parseConfig(rawConfig, "config");
  checkOutDir(outDir);
  const tmp = `${outDir.replace(/[\\/]+$/, "")}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(tmp, { recursive: true });
  try {
    await writeFolder(rawConfig as Record<string, unknown>, config, tmp, opts);
    try {
      await rename(tmp, outDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOTEMPTY" || code === "EEXIST" || code === "EISDIR" || code === "ENOTDIR") {
        throw new Error(`${outDir} already exists; expected a folder that does not exist yet`);
      }
      throw err;
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return config;
}

/** A tensor to store and the declared parameters whose rows it holds (one, unless fused). */
interface StoredPlan {
  name: string;
  shape: readonly number[];
  parts: Array<{ decl: ExpectedTensor; rowStart: number }>;
}

/** Every declared parameter placed in the tensor its layout's first spelling names, in order of first use. */
function storedTensors(config: Qwen3NextConfig): StoredPlan[] {
  const layout = safetensorsLayout(config);
  const byName = new Map<string, StoredPlan>();
  for (const decl of expectedTensors(config)) {
    const s: Spelling = layout.spell(decl, config)[0];
    if (s.transform) throw new Error(`init cannot write "${s.stored}": it is stored as ${s.transform.stored}`);
    let t = byName.get(s.stored);
    if (!t) byName.set(s.stored, (t = { name: s.stored, shape: s.storedShape ?? decl.shape, parts: [] }));
    t.parts.push({ decl, rowStart: s.rowStart ?? 0 });
  }
  return [...byName.values()];
}

async function writeFolder(raw: Record<string, unknown>, config: Qwen3NextConfig, dir: string, opts: InitOptions): Promise<void> {
  const seed = opts.seed ?? 0;
  const text = (raw.text_config ?? raw) as Record<string, unknown>;
  const std = typeof text.initializer_range === "number" ? text.initializer_range : 0.02;
  const tensors = storedTensors(config);
  const total = tensors.reduce((s, t) => s + 2 * count(t.shape), 0);
  const shards = planShards(tensors, opts.maxShardBytes ?? MAX_SHARD_BYTES);
  const rng = new Xoshiro128(seed);
  const normal = new NormalRandom(rng);
  const weightMap: Record<string, string> = {};
  let done = 0;
  for (let s = 0; s < shards.length; s++) {
    const file = shards.length === 1 ? "model.safetensors" : `model-${pad(s + 1)}-of-${pad(shards.length)}.safetensors`;
    const toWrite: TensorToWrite[] = [];
    for (const t of shards[s]) {
      if (opts.signal) await new Promise((resolve) => setImmediate(resolve)); // let a signal handler run
      if (opts.signal?.aborted) throw new Error("interrupted");
      const data = new Uint16Array(count(t.shape));
      const cols = t.shape[t.shape.length - 1];
      for (const { decl, rowStart } of t.parts) data.set(randomTensor(decl, config, std, rng, normal), rowStart * cols);
      toWrite.push({ name: t.name, dtype: "BF16", shape: [...t.shape], data });
      weightMap[t.name] = file;
      done += data.byteLength;
      opts.onProgress?.(done, total);
    }
    await writeSafetensors(path.join(dir, file), toWrite, { format: "pt" });
  }
  if (shards.length > 1) {
    const index = { metadata: { total_size: total }, weight_map: weightMap };
    await writeFile(path.join(dir, "model.safetensors.index.json"), JSON.stringify(index, null, 2) + "\n");
  }
  const cfgOut = { architectures: [ARCHITECTURE[config.model_type]], ...raw, torch_dtype: "bfloat16" };
  await writeFile(path.join(dir, "config.json"), JSON.stringify(cfgOut, null, 2) + "\n");
  const eos = config.eos_token_id.length > 0 ? config.eos_token_id : [151645, 151643];
  const generation = {
    bos_token_id: config.bos_token_id ?? 151643,
    do_sample: true,
    eos_token_id: eos.includes(151643) ? eos : [...eos, 151643],
    pad_token_id: 151643,
    temperature: QWEN3_NEXT_INSTRUCT_SAMPLING.temperature,
    top_k: QWEN3_NEXT_INSTRUCT_SAMPLING.top_k,
    top_p: QWEN3_NEXT_INSTRUCT_SAMPLING.top_p,
  };
  await writeFile(path.join(dir, "generation_config.json"), JSON.stringify(generation, null, 2) + "\n");
  for (const name of ["tokenizer.json", "tokenizer_config.json"]) {
    await copyFile(path.join(bundledTokenizerDir(), name), path.join(dir, name));
  }
}

/** One tensor's random BF16 values (see the file comment for the rule per tensor kind). */
function randomTensor(t: ExpectedTensor, config: Qwen3NextConfig, std: number, rng: Xoshiro128, normal: NormalRandom): Uint16Array {
  const n = count(t.shape);
  const out = new Uint16Array(n);
  const fill = (value: number) => out.fill(f32ToBf16(value));
  if (t.name.endsWith("linear_attn.norm.weight") || t.name.endsWith(".dt_bias")) {
    fill(1);
  } else if (t.name.endsWith(".A_log")) {
    for (let i = 0; i < n; i++) out[i] = f32ToBf16(Math.log(1 + 15 * rng.nextFloat()));
  } else if (t.name.endsWith("conv1d.weight")) {
    const bound = 1 / Math.sqrt(config.linear_conv_kernel_dim);
    for (let i = 0; i < n; i++) out[i] = f32ToBf16((2 * rng.nextFloat() - 1) * bound);
  } else if (t.shape.length === 1) {
    // Zero-centred RMSNorm weights (scale 1 + w) and biases.
    fill(0);
  } else {
    for (let i = 0; i < n; i++) out[i] = f32ToBf16(normal.next(0, std));
  }
  return out;
}

/** The model class a family's config.json names (when the given config names none). */
const ARCHITECTURE = {
  qwen3_next: "Qwen3NextForCausalLM",
  qwen3_5: "Qwen3_5ForConditionalGeneration",
  qwen3_5_moe: "Qwen3_5MoeForConditionalGeneration",
} as const;

/** Tensors grouped into shards of at most `maxBytes` (a bigger single tensor gets its own shard). */
function planShards(tensors: StoredPlan[], maxBytes: number): StoredPlan[][] {
  const shards: StoredPlan[][] = [[]];
  let bytes = 0;
  for (const t of tensors) {
    const b = 2 * count(t.shape);
    if (bytes + b > maxBytes && shards[shards.length - 1].length > 0) {
      shards.push([]);
      bytes = 0;
    }
    shards[shards.length - 1].push(t);
    bytes += b;
  }
  return shards;
}

function count(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function pad(n: number): string {
  return String(n).padStart(5, "0");
}
