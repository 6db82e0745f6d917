/**
 * Parameter counts and memory needs, from a config alone (no weights read).
 *
 * total  = every tensor the checkpoint holds (`expectedTensors`): embeddings, lm_head (when not tied),
 *          all 2 * E routed-expert matrices... and the MTP head.
 * active = what one token's forward pass through the main model multiplies with: every non-expert weight
 *          (mixers, norms, routers, shared experts and their gates) plus top-k of the E routed experts per MoE
 *          layer, WITHOUT the embedding table, lm_head and the MTP head. This is the convention behind Qwen's
 *          "80B total, 3B active" (Qwen3-Next-80B-A3B); `activeWithEmbeddings` adds embedding + lm_head rows
 *          (the whole lm_head is multiplied at every step; the embedding is a lookup of one row).
 */
import { isMoeLayer, rotaryDim, type Qwen3NextConfig } from "../config.js";
import { DTYPE_BYTES } from "../io/dtype.js";
import { numel } from "../shape.js";
import type { FloatDType } from "../kernels/types.js";
import { expectedTensors } from "./expected.js";

export interface ParameterCounts {
  /** All parameters, MTP head included. */
  total: number;
  /** Of which the MTP head (`mtp.*`). */
  mtp: number;
  /** Embedding table plus lm_head (0 for lm_head when tied). */
  embeddings: number;
  /** Routed-expert parameters of the main model (all E experts of every MoE layer). */
  routedExperts: number;
  /** Per token, main model, excluding embeddings, lm_head and MTP (see the header comment). */
  active: number;
  /** `active` plus embedding table and lm_head. */
  activeWithEmbeddings: number;
}

const ROUTED = /^model\.layers\.(\d+)\.mlp\.experts\.\d+\./;

export function countParameters(c: Qwen3NextConfig): ParameterCounts {
  let total = 0;
  let mtp = 0;
  let embeddings = 0;
  let routedExperts = 0;
  for (const t of expectedTensors(c)) {
    const n = numel(t.shape);
    total += n;
    if (t.name.startsWith("mtp.")) mtp += n;
    else if (t.name === "model.embed_tokens.weight" || t.name === "lm_head.weight") embeddings += n;
    else if (ROUTED.test(t.name)) routedExperts += n;
  }
  const moeLayers = c.layer_types.filter((_, i) => isMoeLayer(c, i)).length;
  const perExpert = 3 * c.moe_intermediate_size * c.hidden_size;
  const routedActive = moeLayers * c.num_experts_per_tok * perExpert;
  const active = total - mtp - embeddings - routedExperts + routedActive;
  return { total, mtp, embeddings, routedExperts, active, activeWithEmbeddings: active + embeddings };
}

/** Bytes to hold every weight in one dtype (the published checkpoints are BF16). */
export function weightBytes(c: Qwen3NextConfig, dtype: FloatDType): number {
  return countParameters(c).total * DTYPE_BYTES[dtype];
}

/** Memory of one sequence's state at a context length, in the compute precision. */
export interface SequenceStateBytes {
  /** Keys and values of every full-attention layer (main model and MTP): 2 * context * kv_heads * head_dim. */
  kvCache: number;
  /** DeltaNet recurrent state per linear-attention layer: value_heads * dk * dv. */
  deltaState: number;
  /** DeltaNet conv state per linear-attention layer: conv channels * (kernel - 1). */
  convState: number;
  total: number;
}

export function sequenceStateBytes(c: Qwen3NextConfig, context: number, bytesPerValue = 4): SequenceStateBytes {
  const attnLayers = c.layer_types.filter((t) => t === "full_attention").length + c.mtp_num_hidden_layers;
  const linLayers = c.layer_types.length - c.layer_types.filter((t) => t === "full_attention").length;
  const kvCache = attnLayers * 2 * context * c.num_key_value_heads * c.head_dim * bytesPerValue;
  const deltaState = linLayers * c.linear_num_value_heads * c.linear_key_head_dim * c.linear_value_head_dim * bytesPerValue;
  const convChannels = 2 * c.linear_num_key_heads * c.linear_key_head_dim + c.linear_num_value_heads * c.linear_value_head_dim;
  const convState = linLayers * convChannels * (c.linear_conv_kernel_dim - 1) * bytesPerValue;
  return { kvCache, deltaState, convState, total: kvCache + deltaState + convState };
}

/** A short architecture summary line per aspect, for `info` and logs. */
export function describeArchitecture(c: Qwen3NextConfig): string[] {
  const full = c.layer_types.flatMap((t, i) => (t === "full_attention" ? [i] : []));
  const moe = c.layer_types.flatMap((_, i) => (isMoeLayer(c, i) ? [i] : []));
  const dense = c.layer_types.flatMap((_, i) => (isMoeLayer(c, i) ? [] : [i]));
  const r = c.rope;
  const rope =
    r.rope_type === "yarn"
      ? `YaRN factor ${r.factor} over original ${r.original_max_position_embeddings} (beta_fast ${r.beta_fast}, beta_slow ${r.beta_slow}, attention factor ${round(r.attention_factor)})`
      : r.rope_type === "linear"
        ? `linear scaling factor ${r.factor}`
        : "plain";
  const family =
    c.model_type === "qwen3_next"
      ? "Qwen3-Next (qwen3_next)"
      : `${c.model_type === "qwen3_5" ? "Qwen3.5" : "Qwen3.5-MoE"} (${c.model_type}), text only (image and video input are not supported)`;
  const projections =
    c.deltanet_projections.qkvz === "split"
      ? `split input projections (in_proj_qkv, in_proj_z, ${c.deltanet_projections.ba === "split" ? "in_proj_b, in_proj_a" : "in_proj_ba"})`
      : `grouped input projections (in_proj_qkvz, ${c.deltanet_projections.ba === "split" ? "in_proj_b, in_proj_a" : "in_proj_ba"})`;
  const valueOrder =
    c.deltanet_projections.valueHeads === "tiled" && c.linear_num_value_heads > c.linear_num_key_heads ? ", value heads stored tiled (llama.cpp's order)" : "";
  return [
    `family: ${family}`,
    `layers: ${c.num_hidden_layers} (${c.num_hidden_layers - full.length} gated DeltaNet, ${full.length} gated attention at ${ranges(full)})`,
    `mlp: ${moe.length} MoE layers${moe.length ? ` (${ranges(moe)})` : ""}, ${dense.length} dense SwiGLU${dense.length ? ` (${ranges(dense)}, intermediate ${c.intermediate_size})` : ""}`,
    moe.length === 0
      ? "experts: none"
      : `experts: ${c.num_experts} routed, top-${c.num_experts_per_tok}${c.norm_topk_prob ? " (weights renormalised)" : ""}, width ${c.moe_intermediate_size}; shared expert width ${c.shared_expert_intermediate_size} with a sigmoid gate`,
    `hidden: ${c.hidden_size}, vocab: ${c.vocab_size}, lm_head: ${c.tie_word_embeddings ? "tied to the embedding" : "separate"}`,
    `gated attention: ${c.num_attention_heads} query heads / ${c.num_key_value_heads} kv heads of ${c.head_dim}${c.attention_bias ? ", with bias" : ""}`,
    `gated DeltaNet: ${c.linear_num_key_heads} key heads of ${c.linear_key_head_dim}, ${c.linear_num_value_heads} value heads of ${c.linear_value_head_dim}, conv kernel ${c.linear_conv_kernel_dim}, ${projections}${valueOrder}`,
    `rope: theta ${r.rope_theta}, rotary dims ${rotaryDim(c)} of ${c.head_dim} (partial ${r.partial_rotary_factor}), ${rope}; max positions ${c.max_position_embeddings}`,
    `mtp: ${c.mtp_num_hidden_layers === 0 ? "none" : `${c.mtp_num_hidden_layers} layer(s)`}`,
  ];
}

/** [3, 7, 11, 15] -> "3, 7, 11, 15"; [0, 1, 2, 3, 5] -> "0-3, 5". */
function ranges(xs: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < xs.length; ) {
    let j = i;
    while (j + 1 < xs.length && xs[j + 1] === xs[j] + 1) j++;
    parts.push(j > i ? `${xs[i]}-${xs[j]}` : `${xs[i]}`);
    i = j + 1;
  }
  return parts.join(", ");
}

function round(x: number): string {
  return String(Math.round(x * 1e4) / 1e4);
}
