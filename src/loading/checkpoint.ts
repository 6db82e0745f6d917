/**
 * Checkpoint folder -> weights. Reads `config.json`, finds the safetensors (single or sharded), checks every
 * tensor the config implies (`expectedTensors`) against the headers, then streams each tensor straight into
 * memory from an allocator (plain typed arrays by default, or WASM memory) in its stored dtype: BF16 stays
 * 2 bytes per parameter, and peak memory while loading is the weights themselves plus one read buffer's worth.
 *
 * Two expert layouts are accepted and both are exposed per expert
 * (`model.layers.{i}.mlp.experts.{e}.{gate,up,down}_proj.weight`):
 *   - published: one tensor per expert and projection;
 *   - fused (newer transformers): `mlp.experts.gate_up_proj` [E, 2I, H] (per expert: I gate rows, then I up
 *     rows) and `mlp.experts.down_proj` [E, H, I]. Each expert's slice is a contiguous byte range of the fused
 *     tensor, so it is read directly into its own per-expert weight: nothing fused is ever held in memory.
 * Every float weight is scanned for NaN / Infinity as it arrives: a damaged tensor fails the load, named.
 * Tensors the config does not need (`mtp.*` without MTP, a stored `lm_head` when tied, ...) are ignored; a
 * checkpoint without any `mtp.*` tensor loads without the MTP head even if config.json has one (see mtpDropped).
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { parseConfig, type Qwen3NextConfig } from "../config.js";
import { DTYPE_BYTES } from "../io/dtype.js";
import { numel, SafetensorsError, type SafetensorsFile } from "../io/safetensors.js";
import { allocHostWeight } from "../kernels/ts/weights.js";
import type { FloatDType, Weight, WeightDType } from "../kernels/types.js";
import { expectedTensors } from "./expected.js";
import { checkFiniteWeight } from "./finite.js";
import { openWeightFiles, type WeightFiles } from "./weight-files.js";

/** Gives each weight its memory; `data` must hold exactly prod(shape) elements of `dtype`. */
export interface WeightAllocator {
  /**
   * Optional: called once, before any allocWeight, with every weight that will be allocated (in allocation
   * order), so that an allocator can size its memory up front (e.g. WASM memories, whose growth would detach
   * views handed out earlier) or decide which instance holds which tensor.
   */
  reserve?(weights: ReadonlyArray<{ name: string; dtype: WeightDType; shape: readonly number[]; byteLength: number }>): void;
  allocWeight(name: string, dtype: WeightDType, shape: readonly number[]): Weight;
}

/** The default: each weight in its own typed array (BF16/F16 as Uint16Array words). */
export const typedArrayAllocator: WeightAllocator = { allocWeight: allocHostWeight };

export interface LoadedCheckpoint {
  dir: string;
  config: Qwen3NextConfig;
  /** Weight by its published name; experts always addressable per expert
   *  (model.layers.{i}.mlp.experts.{e}.gate_proj.weight ...) even when stored fused. Throws naming the missing tensor. */
  get(name: string): Weight;
  has(name: string): boolean;
  names(): string[];
  /** Bytes of all weights as stored. */
  totalBytes: number;
  /** True when config.json asks for an MTP head but the checkpoint has none (saved by transformers, which drops
   *  `mtp.*`); `config.mtp_num_hidden_layers` is then 0. */
  mtpDropped: boolean;
}

export interface LoadOptions {
  allocator?: WeightAllocator;
  /** Called as bytes arrive (and once with 0 at the start). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Scan every float weight for NaN / Infinity as it arrives (default true; a damaged tensor is named). */
  checkFinite?: boolean;
}

/** Where one expected weight's bytes are: a tensor of a file, or a byte range of a fused tensor. */
export interface PlannedWeight {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: WeightDType;
  readonly byteLength: number;
  readonly file: SafetensorsFile;
  /** The stored tensor read from (the fused tensor's name for a fused expert). */
  readonly stored: string;
  /** Offset of this weight's bytes inside the stored tensor's data. */
  readonly byteOffset: number;
}

/** A checkpoint's config and the location of every weight it needs, from headers only. */
export interface CheckpointPlan {
  readonly dir: string;
  readonly config: Qwen3NextConfig;
  readonly weights: readonly PlannedWeight[];
  readonly totalBytes: number;
  /** Open file handles; close them when done (loadCheckpoint does). */
  readonly files: WeightFiles;
  /** True when config.json asks for an MTP head but the checkpoint has no `mtp.*` tensor (config.mtp_num_hidden_layers is then 0). */
  readonly mtpDropped: boolean;
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

/** Concurrent tensor reads while loading (libuv's thread pool has 4 threads by default). */
const READS_IN_FLIGHT = 4;
const WEIGHT_DTYPES: readonly string[] = ["BF16", "F16", "F32", "F64"];
const EXPERT = /^(.*\.mlp\.experts)\.(\d+)\.(gate|up|down)_proj\.weight$/;

/** Parses the config and matches every expected weight to its stored bytes; reads no tensor data. */
export async function planCheckpoint(dir: string): Promise<CheckpointPlan> {
  try {
    const st = await fsp.stat(dir);
    if (!st.isDirectory()) throw new Error(`${dir}: not a folder (expected a checkpoint folder with config.json)`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`${dir}: no such checkpoint folder`);
    throw e;
  }
  let config = await readConfigFile(path.join(dir, "config.json"));
  const files = await openWeightFiles(dir);
  try {
    // transformers' Qwen3NextForCausalLM drops `mtp.*` when it saves, keeping mtp_num_hidden_layers in the
    // config: a checkpoint with no MTP tensor at all loads as a model without the MTP head.
    const mtpDropped = config.mtp_num_hidden_layers > 0 && !files.names().some((n) => n.startsWith("mtp."));
    if (mtpDropped) config = { ...config, mtp_num_hidden_layers: 0 };
    const weights = expectedTensors(config).map((t) => planOne(dir, config, files, t.name, t.shape));
    return { dir, config, weights, totalBytes: weights.reduce((s, w) => s + w.byteLength, 0), files, mtpDropped };
  } catch (e) {
    await files.close();
    throw e;
  }
}

function planOne(dir: string, c: Qwen3NextConfig, files: WeightFiles, name: string, shape: readonly number[]): PlannedWeight {
  const stored = files.locate(name);
  if (stored) {
    const { file, info } = stored;
    const dtype = checkDType(info.file, name, info.dtype);
    if (!sameShape(info.shape, shape)) {
      throw new SafetensorsError(`${info.file}: tensor "${name}" has shape ${fmt(info.shape)}, expected ${fmt(shape)} from config.json`);
    }
    return { name, shape, dtype, byteLength: info.byteLength, file, stored: name, byteOffset: 0 };
  }
  const m = EXPERT.exec(name);
  if (m) {
    const [, prefix, eStr, proj] = m;
    const fusedName = `${prefix}.${proj === "down" ? "down_proj" : "gate_up_proj"}`;
    const fused = files.locate(fusedName);
    if (fused) {
      const { file, info } = fused;
      const dtype = checkDType(info.file, fusedName, info.dtype);
      const E = c.num_experts;
      const I = c.moe_intermediate_size;
      const H = c.hidden_size;
      const want = proj === "down" ? [E, H, I] : [E, 2 * I, H];
      if (!sameShape(info.shape, want)) {
        throw new SafetensorsError(`${info.file}: tensor "${fusedName}" has shape ${fmt(info.shape)}, expected ${fmt(want)} from config.json`);
      }
      const bytes = numel(shape) * DTYPE_BYTES[dtype];
      // gate_up_proj[e] is [2I, H]: rows 0..I-1 are gate, I..2I-1 are up. down_proj[e] is [H, I].
      const perExpert = proj === "down" ? bytes : 2 * bytes;
      const byteOffset = Number(eStr) * perExpert + (proj === "up" ? bytes : 0);
      return { name, shape, dtype, byteLength: bytes, file, stored: fusedName, byteOffset };
    }
    throw new SafetensorsError(
      `${dir}: checkpoint has no tensor "${name}" (expected ${fmt(shape)} per expert, or a fused "${fusedName}")`,
    );
  }
  throw new SafetensorsError(`${dir}: checkpoint has no tensor "${name}" (expected shape ${fmt(shape)} from config.json)`);
}

function checkDType(file: string, name: string, dtype: string): FloatDType {
  if (!WEIGHT_DTYPES.includes(dtype)) {
    throw new SafetensorsError(`${file}: tensor "${name}" has dtype ${dtype}, expected a weight dtype (BF16, F16, F32 or F64)`);
  }
  return dtype as FloatDType;
}

/** Loads every weight the config needs into memory, tensor by tensor. */
export async function loadCheckpoint(dir: string, opts: LoadOptions = {}): Promise<LoadedCheckpoint> {
  const allocator = opts.allocator ?? typedArrayAllocator;
  const plan = await planCheckpoint(dir);
  const weights = new Map<string, Weight>();
  try {
    let done = 0;
    opts.onProgress?.(0, plan.totalBytes);
    // In file order, so that the disk is read front to back.
    const order = [...plan.weights].sort(
      (a, b) =>
        plan.files.files.indexOf(a.file) - plan.files.files.indexOf(b.file) ||
        a.file.info(a.stored).fileOffset + a.byteOffset - (b.file.info(b.stored).fileOffset + b.byteOffset),
    );
    allocator.reserve?.(order);
    // A few reads in flight at once: each is a kernel copy on a libuv thread, so they overlap across cores.
    // Each read goes straight into its own weight, so this costs no extra memory.
    const inFlight = new Set<Promise<void>>();
    let failure: { error: unknown } | undefined;
    for (const w of order) {
      const weight = allocator.allocWeight(w.name, w.dtype, w.shape);
      if (weight.dtype !== w.dtype || weight.data.byteLength !== w.byteLength) {
        throw new Error(`allocator gave "${w.name}" ${weight.data.byteLength} bytes of ${weight.dtype}, expected ${w.byteLength} of ${w.dtype}`);
      }
      weights.set(w.name, weight);
      const read = w.file
        .readInto(w.stored, weight.data, w.byteOffset, (n) => {
          done += n;
          opts.onProgress?.(done, plan.totalBytes);
        })
        .then(() => {
          if (opts.checkFinite ?? true) checkFiniteWeight(weight, w.stored === w.name ? w.file.file : `${w.file.file} (${w.stored})`);
        })
        .catch((error: unknown) => {
          failure ??= { error };
        })
        .finally(() => inFlight.delete(read));
      inFlight.add(read);
      if (inFlight.size >= READS_IN_FLIGHT) await Promise.race(inFlight);
      if (failure) break;
    }
    // Every read settles before the files are closed; the first error is the one reported.
    await Promise.all(inFlight);
    if (failure) throw failure.error;
  } finally {
    await plan.files.close();
  }
  return {
    dir,
    config: plan.config,
    totalBytes: plan.totalBytes,
    mtpDropped: plan.mtpDropped,
    get(name) {
      const w = weights.get(name);
      if (!w) throw new Error(`checkpoint ${dir} has no weight "${name}"`);
      return w;
    },
    has: (name) => weights.has(name),
    names: () => plan.weights.map((w) => w.name),
  };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
