/**
 * A safetensors checkpoint folder written as one `qwen3next` GGUF file, as llama.cpp's converter and then
 * `llama-quantize` would make it, streamed: the header first (every tensor's name, type and shape), then each
 * tensor encoded row block by row block from the parameters it holds, so memory stays near one parameter.
 *
 *   parameters      the model's declaration for the GGUF form of the config (`expectedTensors`): the DeltaNet
 *                   input projection split into in_proj_qkv + in_proj_z (llama.cpp's attn_qkv + attn_gate,
 *                   rows regrouped from the checkpoint's in_proj_qkvz with the model's own `splitQkvz` kernel),
 *                   in_proj_ba kept grouped; no MTP blocks (llama.cpp's converter drops `mtp.*`).
 *   names, rows     the GGUF layout (`gguf_layout.ts`): each parameter's stored tensor, its rows in a stacked
 *                   tensor, its stored transform (1 + w, -exp(A_log)), computed in float64, rounded to float32.
 *   types           `gguf_tensor_types.ts` (llama.cpp's choice per tensor for the file type).
 *   encoding        F32 as is, BF16 / F16 rounded to nearest even (a BF16 checkpoint's values are kept
 *                   exactly), block types by ggml's reference quantizers (`ggml_quants.ts`), row by row.
 */
import path from "node:path";
import type { Qwen3NextConfig } from "../config.js";
import { f32ArrayToBf16, f32ArrayToF16 } from "../io/dtype.js";
import { isQuantDType, quantizeRow, quantRowBytes } from "../io/ggml_quants.js";
import { modelMetadata } from "../io/gguf_model_meta.js";
import { chooseTensorTypes, FILE_TYPES, ggufTensorOrder, type FileType } from "../io/gguf_tensor_types.js";
import { writeGgufStreamed } from "../io/gguf_write.js";
import { numel } from "../shape.js";
import { widenWeight } from "../kernels/host_weights.js";
import { createTsKernels } from "../kernels/ts/index.js";
import type { ParamDecl } from "../model/params.js";
import { tokenizerFilesDir } from "../tokenizer/tokenizer.js";
import { planCheckpoint, typedArrayAllocator } from "./checkpoint.js";
import { expectedTensors } from "./expected.js";
import type { CheckpointLayout, StoredTransform } from "./layout.js";
import { readWeights, type PlannedWeight } from "./plan.js";

export interface ToGgufOptions {
  fileType: FileType;
  /** How GGUF spells each parameter. */
  layout: CheckpointLayout;
  /** general.name (default: the folder's name). */
  name?: string;
  /** Source bytes read so far and their total. */
  onProgress?: (done: number, total: number) => void;
}

/** One parameter's rows inside a GGUF tensor. */
interface Part {
  readonly decl: ParamDecl;
  /** First row in the GGUF tensor seen as [rows, cols]. */
  readonly rowStart: number;
  readonly transform?: StoredTransform;
}

interface GgufTensorPlan {
  readonly name: string;
  readonly shape: readonly number[];
  readonly parts: Part[];
}

export interface ToGgufResult {
  readonly tensors: number;
  /** Tensors per ggml type. */
  readonly types: Record<string, number>;
  readonly config: Qwen3NextConfig;
}

/** The config as a GGUF file states it: split qkv / z, grouped ba, no MTP. */
export function ggufFormOf(c: Qwen3NextConfig): Qwen3NextConfig {
  return { ...c, mtp_num_hidden_layers: 0, deltanet_projections: { qkvz: "split", ba: "grouped" } };
}

/** Every GGUF tensor of the config with the parameters it holds (row ranges that tile it exactly). */
export function planGgufTensors(c: Qwen3NextConfig, layout: CheckpointLayout): GgufTensorPlan[] {
  const byName = new Map<string, GgufTensorPlan>();
  for (const decl of expectedTensors(c)) {
    const sp = layout.spell(decl, c)[0];
    const shape = sp.storedShape ?? decl.shape;
    let t = byName.get(sp.stored);
    if (!t) byName.set(sp.stored, (t = { name: sp.stored, shape, parts: [] }));
    else if (t.shape.join() !== shape.join()) throw new Error(`layout error: "${sp.stored}" is [${t.shape}] for one parameter and [${shape}] for "${decl.name}"`);
    t.parts.push({ decl, rowStart: sp.rowStart ?? 0, transform: sp.transform });
  }
  for (const t of byName.values()) {
    t.parts.sort((a, b) => a.rowStart - b.rowStart);
    const cols = t.shape[t.shape.length - 1];
    let row = 0;
    for (const p of t.parts) {
      if (p.rowStart !== row) throw new Error(`layout error: rows ${row}.. of "${t.name}" hold no parameter ("${p.decl.name}" starts at ${p.rowStart})`);
      row += numel(p.decl.shape) / cols;
    }
    if (row * cols !== numel(t.shape)) throw new Error(`layout error: the parameters of "${t.name}" fill ${row * cols} of its ${numel(t.shape)} values`);
  }
  return [...byName.values()];
}

/** Writes `dir` (a safetensors checkpoint folder) as the GGUF file `out`. */
export async function checkpointToGguf(dir: string, out: string, opts: ToGgufOptions): Promise<ToGgufResult> {
  const plan = await planCheckpoint(dir);
  try {
    const src = plan.config;
    if (src.deltanet_projections.qkvz !== "grouped" || src.deltanet_projections.ba !== "grouped") {
      throw new Error(`${dir}: a Qwen3-Next checkpoint (grouped in_proj_qkvz / in_proj_ba) is expected; this one has split DeltaNet projections, which the qwen3next GGUF layout does not hold`);
    }
    const c = ggufFormOf(src);
    const tensors = ggufTensorOrder(planGgufTensors(c, opts.layout));
    const ft = FILE_TYPES[opts.fileType];
    const types = chooseTensorTypes(tensors, opts.fileType, c.num_experts, c.num_hidden_layers);
    const metadata = modelMetadata(c, tokenizerFilesDir(dir), opts.name ?? path.basename(path.resolve(dir)), ft.ftype);
    const sourceOf = new Map(plan.weights.map((w) => [w.name, w]));
    const total = plan.weights.filter((w) => !w.name.startsWith("mtp.")).reduce((s, w) => s + w.readBytes, 0);
    let done = 0;
    opts.onProgress?.(0, total);
    const read = async (w: PlannedWeight): Promise<Float32Array> => {
      const weights = await readWeights([w], typedArrayAllocator, (d) => opts.onProgress?.(done + d, total));
      done += w.readBytes;
      return widenWeight(weights.get(w.name)!, "f32") as Float32Array;
    };
    /** A parameter of the GGUF form as float32 values, from the checkpoint. */
    const values = async (decl: ParamDecl): Promise<Float32Array> => {
      const w = sourceOf.get(decl.name);
      if (w) return read(w);
      const m = /^(.*\.linear_attn)\.in_proj_(qkv|z)\.weight$/.exec(decl.name);
      if (!m) throw new Error(`${dir}: no weight for "${decl.name}" (expected in the checkpoint)`);
      return splitProjection(c, m[2] as "qkv" | "z", await read(sourceOf.get(`${m[1]}.in_proj_qkvz.weight`)!));
    };
    const encode = (type: string, v: Float32Array, cols: number): Uint8Array => {
      if (type === "F32") return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      if (type === "BF16" || type === "F16") {
        const h = type === "BF16" ? f32ArrayToBf16(v) : f32ArrayToF16(v);
        return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
      }
      if (!isQuantDType(type)) throw new Error(`cannot encode ${type}`);
      const rowBytes = quantRowBytes(type, cols);
      const rows = v.length / cols;
      const outBytes = new Uint8Array(rows * rowBytes);
      for (let r = 0; r < rows; r++) quantizeRow(type, v, r * cols, outBytes, r * rowBytes, cols);
      return outBytes;
    };
    async function* pieces(i: number): AsyncIterable<Uint8Array> {
      const t = tensors[i];
      const cols = t.shape[t.shape.length - 1];
      for (const p of t.parts) {
        const v = await values(p.decl);
        if (p.transform) for (let j = 0; j < v.length; j++) v[j] = p.transform.toStored(v[j]);
        yield encode(types[i], v, cols);
      }
    }
    await writeGgufStreamed(out, metadata, tensors.map((t, i) => ({ name: t.name, type: types[i], shape: t.shape })), pieces);
    const count: Record<string, number> = {};
    for (const t of types) count[t] = (count[t] ?? 0) + 1;
    return { tensors: tensors.length, types: count, config: c };
  } finally {
    await plan.store.close();
  }
}

/**
 * in_proj_qkv (conv channel order [all q | all k | all v]) or in_proj_z rows from the grouped in_proj_qkvz
 * [C + Z, H]: the model's own regrouping (the reference `splitQkvz` kernel) applied to row numbers gives, for
 * each split row, its grouped row.
 */
function splitProjection(c: Qwen3NextConfig, which: "qkv" | "z", grouped: Float32Array): Float32Array {
  const Hk = c.linear_num_key_heads, Hv = c.linear_num_value_heads, dk = c.linear_key_head_dim, dv = c.linear_value_head_dim;
  const C = 2 * Hk * dk + Hv * dv, Z = Hv * dv, H = c.hidden_size;
  const rowIds = Float64Array.from({ length: C + Z }, (_, i) => i);
  const mixed = new Float64Array(C), z = new Float64Array(Z);
  createTsKernels("f64").splitQkvz({ qkvz: rowIds, T: 1, numKeyHeads: Hk, numValueHeads: Hv, dk, dv, mixed, z });
  const pick = which === "qkv" ? mixed : z;
  const out = new Float32Array(pick.length * H);
  pick.forEach((row, i) => out.set(grouped.subarray(row * H, (row + 1) * H), i * H));
  return out;
}
