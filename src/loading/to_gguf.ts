/**
 * A safetensors checkpoint folder written as one llama.cpp GGUF file, as llama.cpp's converter and then
 * `llama-quantize` would make it, streamed: the header first (every tensor's name, type and shape), then each
 * tensor encoded row block by row block from the parameters it holds, so memory stays near one parameter.
 * Qwen3-Next checkpoints become `qwen3next` files, Qwen3.5 ones `qwen35` (dense) or `qwen35moe`.
 *
 *   parameters      the model's declaration for the GGUF form of the config (`expectedTensors`, `ggufFormOf`):
 *                   qwen3next: the DeltaNet input projection split into in_proj_qkv + in_proj_z (llama.cpp's
 *                   attn_qkv + attn_gate, rows regrouped from the checkpoint's in_proj_qkvz with the model's own
 *                   `splitQkvz` kernel), in_proj_ba kept grouped; no MTP blocks (llama.cpp's converter drops
 *                   `mtp.*`). qwen35 / qwen35moe: the checkpoint's split projections as they are, the MTP head
 *                   kept, and the DeltaNet value heads moved from grouped to tiled order (`tiledValueHeads`).
 *   names, rows     the GGUF layout (`gguf_layout.ts`): each parameter's stored tensor, its rows in a stacked
 *                   tensor, its stored transform (1 + w, -exp(A_log)), computed in float64, rounded to float32.
 *   types           `gguf_tensor_types.ts` (llama.cpp's choice per tensor for the file type).
 *   encoding        F32 as is, BF16 / F16 rounded to nearest even (a BF16 checkpoint's values are kept
 *                   exactly), block types by ggml's reference quantizers (`ggml_quants.ts`), row by row.
 */
import { readFile } from "node:fs/promises";
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

/**
 * The config as a GGUF file states it. qwen3next: split qkv / z, grouped ba, no MTP. qwen35 / qwen35moe: split
 * projections, value heads tiled, MTP kept.
 */
export function ggufFormOf(c: Qwen3NextConfig): Qwen3NextConfig {
  if (c.model_type !== "qwen3_next") return { ...c, deltanet_projections: { qkvz: "split", ba: "split", valueHeads: "tiled" } };
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
    const qwen35 = src.model_type !== "qwen3_next";
    const form = src.deltanet_projections;
    if (form.valueHeads === "tiled" || (qwen35 ? form.qkvz !== "split" || form.ba !== "split" : form.qkvz !== "grouped" || form.ba !== "grouped")) {
      throw new Error(`${dir}: a Hugging Face checkpoint is expected (Qwen3-Next: grouped in_proj_qkvz / in_proj_ba; Qwen3.5: split in_proj_qkv / in_proj_z / in_proj_b / in_proj_a); this one has ${JSON.stringify(form)}`);
    }
    const c = ggufFormOf(src);
    const tensors = ggufTensorOrder(planGgufTensors(c, opts.layout));
    const ft = FILE_TYPES[opts.fileType];
    // llama-quantize counts the layers as every block of the file (n_layer_all), MTP blocks included.
    const types = chooseTensorTypes(tensors, opts.fileType, c.num_experts, c.num_hidden_layers + (qwen35 ? c.mtp_num_hidden_layers : 0));
    const metadata = modelMetadata(c, tokenizerFilesDir(dir), opts.name ?? path.basename(path.resolve(dir)), ft.ftype, qwen35 ? await mropeSectionOf(dir) : undefined);
    const sourceOf = new Map(plan.weights.map((w) => [w.name, w]));
    const total = plan.weights.filter((w) => c.mtp_num_hidden_layers > 0 || !w.name.startsWith("mtp.")).reduce((s, w) => s + w.readBytes, 0);
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
      if (w) return qwen35 ? tiledValueHeads(c, decl.name, await read(w)) : read(w);
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

/** A Qwen3.5 folder's text rope_parameters.mrope_section, if it states one (the parsed config keeps only its check). */
async function mropeSectionOf(dir: string): Promise<number[] | undefined> {
  const raw = JSON.parse(await readFile(path.join(dir, "config.json"), "utf8")) as { text_config?: { rope_parameters?: { mrope_section?: number[] } }; rope_parameters?: { mrope_section?: number[] } };
  return (raw.text_config ?? raw).rope_parameters?.mrope_section ?? undefined;
}

/**
 * A DeltaNet parameter's values with its value heads moved from Hugging Face's grouped order (value head j of
 * key head g at g r + j) to llama.cpp's tiled order (at j Hk + g), as llama.cpp's Qwen3.5 converter does
 * (`_LinearAttentionVReorderBase`, when Hv != Hk): the v rows of in_proj_qkv and the v channels of conv1d
 * (dv rows per head, after the 2 Hk dk q and k rows), the rows of in_proj_z (dv per head), in_proj_b /
 * in_proj_a / A_log / dt_bias (one per head) and the columns of out_proj (dv per head). Others are returned as
 * they are.
 */
export function tiledValueHeads(c: Qwen3NextConfig, name: string, v: Float32Array): Float32Array {
  const Hk = c.linear_num_key_heads, Hv = c.linear_num_value_heads, dv = c.linear_value_head_dim;
  const m = /\.linear_attn\.(in_proj_qkv\.weight|in_proj_z\.weight|in_proj_b\.weight|in_proj_a\.weight|conv1d\.weight|A_log|dt_bias|out_proj\.weight)$/.exec(name);
  if (!m || Hv === Hk) return v;
  const r = Hv / Hk;
  /** Heads of `size` rows of `width` values each, starting at row `first`, moved within `src` (into `dst`). */
  const move = (src: Float32Array, dst: Float32Array, first: number, size: number, width: number) => {
    for (let g = 0; g < Hk; g++) {
      for (let j = 0; j < r; j++) {
        const from = (first + (g * r + j) * size) * width;
        dst.set(src.subarray(from, from + size * width), (first + (j * Hk + g) * size) * width);
      }
    }
  };
  const out = v.slice();
  const qk = 2 * Hk * c.linear_key_head_dim;
  switch (m[1]) {
    case "in_proj_qkv.weight":
      move(v, out, qk, dv, c.hidden_size);
      break;
    case "conv1d.weight":
      move(v, out, qk, dv, c.linear_conv_kernel_dim);
      break;
    case "in_proj_z.weight":
      move(v, out, 0, dv, c.hidden_size);
      break;
    case "out_proj.weight":
      for (let row = 0; row < c.hidden_size; row++) move(v.subarray(row * Hv * dv, (row + 1) * Hv * dv), out.subarray(row * Hv * dv, (row + 1) * Hv * dv), 0, dv, 1);
      break;
    default: // in_proj_b / in_proj_a rows of hidden_size, A_log / dt_bias single values
      move(v, out, 0, 1, v.length / Hv);
  }
  return out;
}
