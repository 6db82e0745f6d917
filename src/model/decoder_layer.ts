/**
 * Qwen3NextDecoderLayer:  x = x + mixer(input_layernorm(x));  x = x + mlp(post_attention_layernorm(x))
 * The mixer is gated DeltaNet (`linear_attn`) or gated attention (`self_attn`) by `layer_types`; the mlp is
 * the sparse MoE block or a dense SwiGLU by `decoder_sparse_step` / `mlp_only_layers`.
 * Parameters: input_layernorm.weight, post_attention_layernorm.weight [H]; linear_attn.* or self_attn.*; mlp.*.
 */
import { isMoeLayer, type LayerType, type Qwen3NextConfig } from "../config.js";
import type { Kernels, Tensor, Weight } from "../kernels/types.js";
import type { Batch } from "./batch.js";
import { attentionParams, Qwen3NextAttention } from "./gated_attention.js";
import { gatedDeltaNetParams, Qwen3NextGatedDeltaNet } from "./gated_deltanet.js";
import type { Mixer } from "./mixer.js";
import { mlpParams, Qwen3NextMLP } from "./mlp.js";
import type { Params } from "./params.js";
import { Qwen3NextRMSNorm } from "./rms_norm.js";
import { Qwen3NextSparseMoeBlock, sparseMoeParams } from "./sparse_moe_block.js";
import type { KVCache, LayerState } from "./state.js";

/**
 * The parameters of a decoder layer under `p` (e.g. `model.layers.3`, `mtp.layers.0`) with this mixer;
 * `moeIndex` is the layer index that decides MoE vs dense (an MTP layer j follows the main-model rule for j, as vLLM).
 */
export function decoderLayerParams<W>(p: Params<W>, c: Qwen3NextConfig, layerType: LayerType, moeIndex: number) {
  const H = c.hidden_size;
  return {
    layerType,
    input_layernorm: p.param("input_layernorm.weight", H),
    post_attention_layernorm: p.param("post_attention_layernorm.weight", H),
    linear_attn: layerType === "linear_attention" ? gatedDeltaNetParams(p.at("linear_attn"), c) : null,
    self_attn: layerType === "full_attention" ? attentionParams(p.at("self_attn"), c) : null,
    mlp: isMoeLayer(c, moeIndex)
      ? { moe: sparseMoeParams(p.at("mlp"), c), dense: null }
      : { moe: null, dense: mlpParams(p.at("mlp"), H, c.intermediate_size) },
  };
}
export type DecoderLayerParams<W> = ReturnType<typeof decoderLayerParams<W>>;

export class Qwen3NextDecoderLayer {
  readonly input_layernorm: Qwen3NextRMSNorm;
  readonly post_attention_layernorm: Qwen3NextRMSNorm;
  readonly self_attn: Qwen3NextAttention | null = null;
  readonly linear_attn: Qwen3NextGatedDeltaNet | null = null;
  /** Whichever of self_attn / linear_attn this layer has. */
  readonly mixer: Mixer<LayerState>;
  readonly mlp: Qwen3NextSparseMoeBlock | Qwen3NextMLP;
  readonly layerType: LayerType;

  /** @param traceName the `{i}` of `router.{i}.*` in traces, or null to record nothing */
  constructor(
    private readonly k: Kernels,
    w: DecoderLayerParams<Weight>,
    cfg: Qwen3NextConfig,
    private readonly traceName: string | null,
  ) {
    this.layerType = w.layerType;
    this.input_layernorm = new Qwen3NextRMSNorm(k, w.input_layernorm, cfg.rms_norm_eps);
    this.post_attention_layernorm = new Qwen3NextRMSNorm(k, w.post_attention_layernorm, cfg.rms_norm_eps);
    if (w.self_attn) this.mixer = this.self_attn = new Qwen3NextAttention(k, w.self_attn, cfg);
    else this.mixer = this.linear_attn = new Qwen3NextGatedDeltaNet(k, w.linear_attn!, cfg);
    this.mlp = w.mlp.moe ? new Qwen3NextSparseMoeBlock(k, w.mlp.moe, cfg) : new Qwen3NextMLP(k, w.mlp.dense!);
  }

  newState(): LayerState {
    return this.mixer.newState();
  }

  /** Advances the residual stream h [N, hidden] in place; `states[s]` is this layer's state of segment s. */
  forward(h: Tensor, batch: Batch, states: LayerState[]): void {
    const { N, ws } = batch;
    const normed = ws.get("layer.normed", h.length);
    const y = ws.get("layer.out", h.length);
    this.input_layernorm.forward(h, normed);
    this.mixer.forward(normed, batch, states, y);
    this.k.axpy(1, y, h);
    this.post_attention_layernorm.forward(h, normed);
    this.mlp.forward(normed, N, ws, y, this.traceName !== null ? batch.trace : undefined);
    this.k.axpy(1, y, h);
  }

  /**
   * What later rows read of h [N, hidden] when nobody reads this layer's outputs for them: the attention's keys
   * and values of input_layernorm(h), appended to `states[s]` as `forward` appends them (h is left as it is).
   * A full-attention layer only (a DeltaNet state needs the whole mixer).
   */
  forwardCacheOnly(h: Tensor, batch: Batch, states: LayerState[]): void {
    if (!this.self_attn) throw new Error("forwardCacheOnly: only a full-attention layer keeps what later rows read in a cache");
    const normed = batch.ws.get("layer.normed", h.length);
    this.input_layernorm.forward(h, normed);
    this.self_attn.appendKeysValues(normed, batch, states as KVCache[]);
  }
}
