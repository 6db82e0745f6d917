/**
 * From declared parameters to bytes, for any checkpoint format: `planWeights` matches every parameter the config
 * declares (`expectedTensors`) to a stored tensor through a `CheckpointLayout`, checking shapes and dtypes from
 * headers alone; `readWeights` then streams each parameter's bytes straight into memory from an allocator, in
 * file order, a few reads in flight. Peak memory while loading is the weights themselves plus one read buffer's
 * worth (a transformed parameter, always small, is read into a scratch array first).
 *
 * A format provides a `TensorStore` (safetensors: `weight-files.ts`; GGUF: the gguf reader) and a layout.
 */
import type { Qwen3NextConfig } from "../config.js";
import { DTYPE_BYTES, toFloat64, typedArrayFor, type SafetensorsDType } from "../io/dtype.js";
import { ggmlByteLength } from "../io/ggml_types.js";
import { numel } from "../shape.js";
import type { Weight, WeightDType } from "../kernels/types.js";
import type { ParamDecl } from "../model/params.js";
import { expectedTensors } from "./expected.js";
import { checkFiniteWeight } from "./finite.js";
import type { CheckpointLayout, Spelling, StoredTransform } from "./layout.js";

/** A checkpoint that does not hold what the config declares; the message is one line naming file and tensor. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
}

/** One stored tensor as a format's reader sees it (headers only). */
export interface StoredTensor {
  /** The file that holds it (for messages). */
  readonly file: string;
  readonly dtype: string;
  /** PyTorch order (outermost first). */
  readonly shape: readonly number[];
  readonly byteLength: number;
  /** Disk order, for reading front to back: index of the file in `TensorStore.files`, absolute data offset. */
  readonly fileIndex: number;
  readonly fileOffset: number;
  /** Reads bytes [byteOffset, byteOffset + dest.byteLength) of the tensor's data into dest. */
  readInto(dest: ArrayBufferView, byteOffset: number, onBytes?: (n: number) => void): Promise<void>;
}

/** The tensors of a checkpoint's files, by stored name. */
export interface TensorStore {
  /** The files, in order. */
  readonly files: readonly string[];
  /** The dtypes a parameter may have in this format (a tensor of another dtype is refused, naming these). */
  readonly weightDTypes: readonly WeightDType[];
  /** Where the config comes from, for shape messages ("config.json" when absent; a GGUF file: its metadata). */
  readonly configFrom?: string;
  get(name: string): StoredTensor | undefined;
  names(): string[];
  close(): Promise<void>;
}

/** Where one declared parameter's bytes are, and what it becomes in memory. */
export interface PlannedWeight {
  /** Canonical name and shape (as declared). */
  readonly name: string;
  readonly shape: readonly number[];
  /** In memory: the stored dtype, or F64 for a transformed parameter. */
  readonly dtype: WeightDType;
  readonly byteLength: number;
  readonly source: StoredTensor;
  /** The stored tensor's name. */
  readonly stored: string;
  /** The stored bytes [byteOffset, byteOffset + readBytes) of the stored tensor. */
  readonly storedDType: WeightDType;
  readonly byteOffset: number;
  readonly readBytes: number;
  readonly transform?: StoredTransform;
}

export interface WeightsPlan {
  /** The config, with mtp_num_hidden_layers 0 when the MTP head was dropped. */
  readonly config: Qwen3NextConfig;
  readonly weights: readonly PlannedWeight[];
  /** Bytes of all weights in memory. */
  readonly totalBytes: number;
  /** True when the config asks for an MTP head but the store has none of its tensors. */
  readonly mtpDropped: boolean;
  /** Notes for the user (the layout's note on unused tensors). */
  readonly notes: readonly string[];
}

/**
 * Matches every parameter the config declares to the store through the layout; reads no tensor data. `where`
 * names the checkpoint in "missing tensor" messages.
 */
export function planWeights(where: string, config: Qwen3NextConfig, layout: CheckpointLayout, store: TensorStore): WeightsPlan {
  // transformers' Qwen3NextForCausalLM drops `mtp.*` when it saves, keeping mtp_num_hidden_layers in the
  // config: a checkpoint with no MTP tensor at all loads as a model without the MTP head.
  let c = config;
  const isMtp = (d: ParamDecl) => d.name.startsWith("mtp.");
  const mtpDropped =
    c.mtp_num_hidden_layers > 0 &&
    !expectedTensors(c).some((d) => isMtp(d) && layout.spell(d, c).some((s) => store.get(s.stored) !== undefined));
  if (mtpDropped) c = { ...c, mtp_num_hidden_layers: 0 };
  const weights = expectedTensors(c).map((d) => planOne(where, c, layout, store, d));
  const note = layout.unusedNote?.(store.names()) ?? null;
  return { config: c, weights, totalBytes: weights.reduce((s, w) => s + w.byteLength, 0), mtpDropped, notes: note ? [note] : [] };
}

function planOne(where: string, c: Qwen3NextConfig, layout: CheckpointLayout, store: TensorStore, d: ParamDecl): PlannedWeight {
  const spellings = layout.spell(d, c);
  for (const s of spellings) {
    const t = store.get(s.stored);
    if (t) return located(store, d, s, t);
  }
  const [first, ...others] = spellings;
  const alternatives = others.map((s) => `, or ${s.what ? `${s.what} ` : ""}"${s.stored}"`).join("");
  const expected = others.length ? `expected ${fmt(d.shape)}${first.what ? ` ${first.what}` : ""}${alternatives}` : `expected shape ${fmt(d.shape)} from ${store.configFrom ?? "config.json"}`;
  throw new CheckpointError(`${where}: checkpoint has no tensor "${first.stored}" (${expected})`);
}

function located(store: TensorStore, d: ParamDecl, s: Spelling, t: StoredTensor): PlannedWeight {
  if (!(store.weightDTypes as readonly string[]).includes(t.dtype)) {
    throw new CheckpointError(`${t.file}: tensor "${s.stored}" has dtype ${t.dtype}, expected a weight dtype (${list(store.weightDTypes)})`);
  }
  const dtype = t.dtype as WeightDType;
  const want = s.storedShape ?? d.shape;
  if (!sameShape(t.shape, want)) {
    throw new CheckpointError(`${t.file}: tensor "${s.stored}" has shape ${fmt(t.shape)}, expected ${fmt(want)} from ${store.configFrom ?? "config.json"}`);
  }
  let byteOffset = 0;
  let readBytes = t.byteLength;
  if (s.rowStart !== undefined || numel(want) !== numel(d.shape)) {
    const cols = want[want.length - 1];
    const rows = numel(d.shape) / cols;
    if (d.shape[d.shape.length - 1] !== cols || s.rowStart === undefined || s.rowStart + rows > numel(want) / cols) {
      throw new Error(`layout error: "${d.name}" ${fmt(d.shape)} is not a row range of "${s.stored}" ${fmt(want)}`);
    }
    byteOffset = ggmlByteLength(dtype, [s.rowStart, cols]);
    readBytes = ggmlByteLength(dtype, [rows, cols]);
  }
  if (s.transform) {
    if (!["F32", "F64", "BF16", "F16"].includes(dtype)) {
      throw new CheckpointError(`${t.file}: tensor "${s.stored}" is stored as ${s.transform.stored} in ${dtype}, expected a float dtype`);
    }
    const shape = d.shape;
    return { name: d.name, shape, dtype: "F64", byteLength: 8 * numel(shape), source: t, stored: s.stored, storedDType: dtype, byteOffset, readBytes, transform: s.transform };
  }
  return { name: d.name, shape: d.shape, dtype, byteLength: readBytes, source: t, stored: s.stored, storedDType: dtype, byteOffset, readBytes };
}

/** Gives each weight its memory; `data` must hold exactly prod(shape) elements of `dtype`. */
export interface WeightAllocator {
  allocWeight(name: string, dtype: WeightDType, shape: readonly number[]): Weight;
}

/** Concurrent tensor reads while loading (libuv's thread pool has 4 threads by default). */
const READS_IN_FLIGHT = 4;

/**
 * Reads every planned weight into memory from `allocator`, in disk order, and returns them by canonical name.
 * `onProgress` gets the stored bytes read so far and their total (once with 0 first). With `checkFinite`, each
 * weight is scanned for NaN / Infinity (`finite.ts`: float elements, quantized blocks' scales) as soon as its
 * bytes are in, and the first damaged one fails the read, named.
 */
export async function readWeights(
  weights: readonly PlannedWeight[],
  allocator: WeightAllocator,
  onProgress?: (doneBytes: number, totalBytes: number) => void,
  checkFinite = false,
): Promise<Map<string, Weight>> {
  const out = new Map<string, Weight>();
  const total = weights.reduce((s, w) => s + w.readBytes, 0);
  let done = 0;
  onProgress?.(0, total);
  const order = [...weights].sort(
    (a, b) => a.source.fileIndex - b.source.fileIndex || a.source.fileOffset + a.byteOffset - (b.source.fileOffset + b.byteOffset),
  );
  // A few reads in flight at once: each is a kernel copy on a libuv thread, so they overlap across cores.
  // Each read goes straight into its own weight, so this costs no extra memory.
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  for (const w of order) {
    const weight = allocator.allocWeight(w.name, w.dtype, w.shape);
    if (weight.dtype !== w.dtype || weight.data.byteLength !== w.byteLength) {
      throw new Error(`allocator gave "${w.name}" ${weight.data.byteLength} bytes of ${weight.dtype}, expected ${w.byteLength} of ${w.dtype}`);
    }
    out.set(w.name, weight);
    const onBytes = (n: number) => {
      done += n;
      onProgress?.(done, total);
    };
    const read = readOne(w, weight, onBytes)
      .then(() => {
        if (checkFinite) checkFiniteWeight(weight, w.stored === w.name ? w.source.file : `${w.source.file} (${w.stored})`);
      })
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => inFlight.delete(read));
    inFlight.add(read);
    if (inFlight.size >= READS_IN_FLIGHT) await Promise.race(inFlight);
    if (failure) break;
  }
  // Every read settles before the caller closes the files; the first error is the one reported.
  await Promise.all(inFlight);
  if (failure) throw failure.error;
  return out;
}

async function readOne(w: PlannedWeight, weight: Weight, onBytes: (n: number) => void): Promise<void> {
  if (!w.transform) return w.source.readInto(weight.data, w.byteOffset, onBytes);
  const dtype = w.storedDType as SafetensorsDType;
  const n = numel(w.shape);
  const stored = typedArrayFor(dtype, new ArrayBuffer(n * DTYPE_BYTES[dtype]), 0, n);
  await w.source.readInto(stored, w.byteOffset, onBytes);
  const values = toFloat64(dtype, stored);
  const data = weight.data as Float64Array;
  for (let i = 0; i < values.length; i++) data[i] = w.transform.toParam(values[i]);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function list(xs: readonly string[]): string {
  return xs.length <= 1 ? xs.join("") : `${xs.slice(0, -1).join(", ")} or ${xs[xs.length - 1]}`;
}
