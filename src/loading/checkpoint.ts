/**
 * Checkpoint folder -> weights. Reads `config.json`, opens the safetensors (single or sharded), matches every
 * parameter the config declares to the stored tensors through the folder's layout (`layout.ts`; checked against
 * the headers, see `planWeights`), then streams each one straight into memory from an allocator (plain typed
 * arrays by default, or WASM memory) in its stored dtype: BF16 stays 2 bytes per parameter, and peak memory
 * while loading is the weights themselves plus one read buffer's worth.
 *
 * Routed experts are exposed per expert (`model.layers.{i}.mlp.experts.{e}.{gate,up,down}_proj.weight`) whether
 * stored one tensor per expert and projection (published) or fused as `mlp.experts.gate_up_proj` [E, 2I, H] and
 * `mlp.experts.down_proj` [E, H, I] (newer transformers): each expert's slice is a contiguous byte range of the
 * fused tensor, read directly into its own weight, so nothing fused is ever held in memory.
 * Every weight is scanned for NaN / Infinity as it arrives (float elements; quantized blocks' scales): a damaged
 * tensor fails the load, named.
 * Tensors the config does not need (`mtp.*` without MTP, a stored `lm_head` when tied, ...) are ignored; a
 * checkpoint without any `mtp.*` tensor loads without the MTP head even if config.json has one (see mtpDropped).
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { parseConfig, type Qwen3NextConfig } from "../config.js";
import { allocHostWeight } from "../kernels/host_weights.js";
import type { Weight } from "../kernels/types.js";
import { safetensorsLayout, type CheckpointLayout } from "./layout.js";
import { planWeights, readWeights, type PlannedWeight, type TensorStore, type WeightAllocator } from "./plan.js";
import { configFromGguf } from "./gguf_config.js";
import { GGUF_QWEN3NEXT } from "./gguf_layout.js";
import { openGgufStore } from "./gguf_store.js";
import { ggufFileOf } from "./model_path.js";
import { openWeightFiles } from "./weight-files.js";

export type { PlannedWeight, WeightAllocator } from "./plan.js";

/** The default: each weight in its own typed array (BF16/F16 as Uint16Array words). */
export const typedArrayAllocator: WeightAllocator = { allocWeight: allocHostWeight };

export interface LoadedCheckpoint {
  dir: string;
  config: Qwen3NextConfig;
  /** Weight by its canonical name, whatever the layout; experts always addressable per expert
   *  (model.layers.{i}.mlp.experts.{e}.gate_proj.weight ...) even when stored fused. Throws naming the missing tensor. */
  get(name: string): Weight;
  has(name: string): boolean;
  names(): string[];
  /** Bytes of all weights in memory. */
  totalBytes: number;
  /** True when config.json asks for an MTP head but the checkpoint has none (saved by transformers, which drops
   *  `mtp.*`); `config.mtp_num_hidden_layers` is then 0. */
  mtpDropped: boolean;
  /** Notes for the user (e.g. tensors of a vision tower that a text-only model skips). */
  notes: readonly string[];
}

export interface LoadOptions {
  allocator?: WeightAllocator;
  /** Called as bytes arrive (and once with 0 at the start). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Scan every float weight for NaN / Infinity as it arrives (default true; a damaged tensor is named). */
  checkFinite?: boolean;
}

/** A checkpoint's config and the location of every weight it needs, from headers only. */
export interface CheckpointPlan {
  readonly dir: string;
  readonly config: Qwen3NextConfig;
  readonly layout: CheckpointLayout;
  readonly weights: readonly PlannedWeight[];
  readonly totalBytes: number;
  /** The open files; close them when done (loadCheckpoint does). */
  readonly store: TensorStore;
  /** True when config.json asks for an MTP head but the checkpoint has no `mtp.*` tensor (config.mtp_num_hidden_layers is then 0). */
  readonly mtpDropped: boolean;
  readonly notes: readonly string[];
}

/** Reads and parses DIR/config.json. */
export async function readConfigFile(file: string): Promise<Qwen3NextConfig> {
  let text: string;
  try {
    text = await fsp.readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${file}: cannot read (${code === "ENOENT" ? "no such file" : code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  return parseConfig(json, file);
}

/**
 * Parses the config and matches every expected weight to its stored bytes; reads no tensor data. `dir` is a
 * checkpoint folder, a .gguf file, or a folder holding one (`locateModel`).
 */
export async function planCheckpoint(dir: string): Promise<CheckpointPlan> {
  const gguf = ggufFileOf(dir);
  if (gguf !== undefined) return planGguf(gguf);
  try {
    const st = await fsp.stat(dir);
    if (!st.isDirectory()) throw new Error(`${dir}: not a folder (expected a checkpoint folder with config.json)`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`${dir}: no such checkpoint folder`);
    throw e;
  }
  const config = await readConfigFile(path.join(dir, "config.json"));
  const store = await openWeightFiles(dir);
  try {
    const layout = safetensorsLayout(config);
    return { dir, layout, store, ...planWeights(dir, config, layout, store) };
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** A GGUF file's plan: config from its metadata, tensors through the `qwen3next` GGUF layout. */
async function planGguf(file: string): Promise<CheckpointPlan> {
  const store = await openGgufStore(file);
  try {
    const config = configFromGguf(store.gguf.header);
    return { dir: file, layout: GGUF_QWEN3NEXT, store, ...planWeights(file, config, GGUF_QWEN3NEXT, store) };
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** Loads every weight the config needs into memory, tensor by tensor. */
export async function loadCheckpoint(dir: string, opts: LoadOptions = {}): Promise<LoadedCheckpoint> {
  const plan = await planCheckpoint(dir);
  return loadPlanned(plan, opts);
}

/**
 * Reads a planned checkpoint's weights (any format: `planWeights` over its store and layout), then closes the
 * store. `plan.dir` names the checkpoint (a folder, or a single file such as a .gguf).
 */
export async function loadPlanned(plan: CheckpointPlan, opts: LoadOptions = {}): Promise<LoadedCheckpoint> {
  const { dir } = plan;
  let weights: Map<string, Weight>;
  try {
    weights = await readWeights(plan.weights, opts.allocator ?? typedArrayAllocator, opts.onProgress, opts.checkFinite ?? true);
  } finally {
    await plan.store.close();
  }
  return {
    dir,
    config: plan.config,
    totalBytes: plan.totalBytes,
    mtpDropped: plan.mtpDropped,
    notes: plan.notes,
    get(name) {
      const w = weights.get(name);
      if (!w) throw new Error(`checkpoint ${dir} has no weight "${name}"`);
      return w;
    },
    has: (name) => weights.has(name),
    names: () => plan.weights.map((w) => w.name),
  };
}
