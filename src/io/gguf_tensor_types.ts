/**
 * Which ggml type each tensor of a GGUF file gets, as llama.cpp decides it: its converter
 * (convert_hf_to_gguf.py) for the unquantized types, then `llama-quantize` (src/llama-quant.cpp,
 * `tensor_allows_quantization` and `llama_tensor_get_type`) for a quantized file type. Only the rules that
 * can fire for the file types offered here are kept:
 *
 *   converter       1-D tensors, the MoE router (`ffn_gate_inp`) and the conv taps (`ssm_conv1d`) stay F32;
 *                   every other tensor takes the output type (BF16 or F32).
 *   quantizable     2-D/3-D, name ending in "weight", not a norm ("_norm.weight"), not the router, not the conv
 *                   taps; the others keep the converter's type.
 *   category        by name, first match: output.weight, token_embd.weight, attn_qkv / attn_kv_b / attn_v
 *                   ("attention-v like"), attn_k, attn_q, attn_output, ffn_up, ffn_gate, ffn_down, other.
 *   rules           (n_expert = number of experts; i = the tensor's rank among attention-v-like tensors in file
 *                   order, n = their count; more(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2)
 *     output, and token_embd when there is no output (tied): Q8_0 if the row is not whole 256-blocks or the
 *                   type is Q8_0, else Q6_K
 *     attention-v like: Q4_K_M: Q6_K when more(i, n); then every type: Q8_0 when n_expert == 8
 *     attn_k:       Q8_0 when n_expert == 8
 *     attn_output:  Q4_K_M with n_expert == 8: Q5_K
 *     ffn_down*:    Q4_K_M: Q6_K when more(layer, n_layer) (the layer parsed from "blk.N."; n_layer = every block
 *                   of the file, MTP blocks included: llama.cpp's n_layer_all)
 *   fallback        a row that is not whole blocks: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, and F16 when even
 *                   that does not fit (none for Q8_0 / Q4_0: an error, as in llama.cpp).
 * File order (which `i` counts in) is llama.cpp's: tensors outside blocks first, then by block number, each
 * group sorted by name.
 */
import { GGML_TYPES_BY_NAME } from "./ggml_types.js";

/** The `--type` choices of `quantize`, with llama.cpp's `general.file_type` (llama_ftype) and default type. */
export const FILE_TYPES = {
  f32: { ftype: 0, base: "F32", quantized: null },
  bf16: { ftype: 32, base: "BF16", quantized: null },
  q8_0: { ftype: 7, base: "BF16", quantized: "Q8_0" },
  q4_0: { ftype: 2, base: "BF16", quantized: "Q4_0" },
  q4_k_m: { ftype: 15, base: "BF16", quantized: "Q4_K" },
  q6_k: { ftype: 18, base: "BF16", quantized: "Q6_K" },
} as const;
export type FileType = keyof typeof FILE_TYPES;

export function isFileType(s: string): s is FileType {
  return Object.prototype.hasOwnProperty.call(FILE_TYPES, s);
}

export interface TensorSpec {
  /** GGUF tensor name. */
  readonly name: string;
  /** PyTorch order (outermost first): the last axis is the row. */
  readonly shape: readonly number[];
}

type Category = "output" | "token_embd" | "attn_v" | "attn_k" | "attn_q" | "attn_output" | "ffn_up" | "ffn_gate" | "ffn_down" | "other";

function category(name: string): Category {
  if (name === "output.weight") return "output";
  if (name === "token_embd.weight") return "token_embd";
  if (name.includes("attn_qkv.weight") || name.includes("attn_kv_b.weight") || name.includes("attn_v.weight")) return "attn_v";
  if (name.includes("attn_k.weight")) return "attn_k";
  if (name.includes("attn_q.weight")) return "attn_q";
  if (name.includes("attn_output.weight")) return "attn_output";
  if (name.includes("ffn_up")) return "ffn_up";
  if (name.includes("ffn_gate")) return "ffn_gate";
  if (name.includes("ffn_down")) return "ffn_down";
  return "other";
}

/** The converter's type: F32 for 1-D tensors, the router and the conv taps; `base` otherwise. */
function converterType(t: TensorSpec, base: string): string {
  if (t.shape.length <= 1 || t.name.includes("ffn_gate_inp.weight") || t.name.includes("ssm_conv1d")) return "F32";
  return base;
}

function quantizable(t: TensorSpec): boolean {
  return (
    t.shape.length >= 2 &&
    t.name.endsWith("weight") &&
    !t.name.includes("_norm.weight") &&
    !t.name.includes("ffn_gate_inp.weight") &&
    !t.name.includes("ssm_conv1d")
  );
}

/** llama.cpp's tensor order: non-block tensors first, then by block number, by name within each group. */
export function ggufTensorOrder<T extends TensorSpec>(tensors: readonly T[]): T[] {
  const layer = (n: string): number => {
    const m = /^blk\.(\d+)\./.exec(n);
    return m ? Number(m[1]) : -1;
  };
  return [...tensors].sort((a, b) => layer(a.name) - layer(b.name) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const more = (i: number, n: number): boolean => {
  const n8 = Math.trunc(n / 8);
  return i < n8 || i >= Math.trunc((7 * n) / 8) || (i - n8) % 3 === 2;
};

const FALLBACK: Record<string, string> = { Q4_K: "Q5_0", Q5_K: "Q5_1", Q6_K: "Q8_0" };

/**
 * The ggml type of every tensor (in the order given, which must be llama.cpp's file order: `ggufTensorOrder`)
 * for a file type, a model with `nExpert` experts and `nLayer` blocks in the file (MTP blocks included).
 */
export function chooseTensorTypes(tensors: readonly TensorSpec[], fileType: FileType, nExpert: number, nLayer: number): string[] {
  const ft = FILE_TYPES[fileType];
  const q4km = fileType === "q4_k_m";
  const tied = !tensors.some((t) => t.name === "output.weight");
  const nAttnV = tensors.filter((t) => category(t.name) === "attn_v").length;
  let iAttnV = 0;
  return tensors.map((t) => {
    const kept = converterType(t, ft.base);
    if (ft.quantized === null || !quantizable(t)) return kept;
    const cat = category(t.name);
    const cols = t.shape[t.shape.length - 1];
    let type: string = ft.quantized;
    if (cat === "output" || (tied && cat === "token_embd")) {
      type = cols % 256 !== 0 || type === "Q8_0" ? "Q8_0" : "Q6_K";
    } else if (cat === "attn_v") {
      if (q4km && more(iAttnV, nAttnV)) type = "Q6_K";
      if (nExpert === 8) type = "Q8_0";
      iAttnV++;
    } else if (cat === "attn_k") {
      if (nExpert === 8) type = "Q8_0";
    } else if (cat === "attn_output") {
      if (q4km && nExpert === 8) type = "Q5_K";
    } else if (cat === "ffn_down" && q4km) {
      const layer = /^blk\.(\d+)\./.exec(t.name);
      if (!layer || Number(layer[1]) >= nLayer) throw new Error(`tensor ${t.name}: cannot tell its block (expected blk.N. with N < ${nLayer})`);
      if (more(Number(layer[1]), nLayer)) type = "Q6_K";
    }
    if (cols % GGML_TYPES_BY_NAME.get(type)!.blockSize !== 0) {
      const fallback = FALLBACK[type];
      if (!fallback) throw new Error(`tensor ${t.name}: rows of ${cols} are not whole ${type} blocks, and llama.cpp has no fallback for ${type}`);
      type = cols % GGML_TYPES_BY_NAME.get(fallback)!.blockSize === 0 ? fallback : "F16";
    }
    return type;
  });
}
