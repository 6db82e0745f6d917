/**
 * Qwen3NextDecoderLayer:  x = x + mixer(input_layernorm(x));  x = x + mlp(post_attention_layernorm(x))
 * The mixer is gated DeltaNet (`linear_attn`) or gated attention (`self_attn`) by `layer_types`; the mlp is
 * the sparse MoE block or a dense SwiGLU by `decoder_sparse_step` / `mlp_only_layers`.
 */
import { isMoeLayer, type LayerType, type Qwen3NextConfig } from "../config.js";
import type { Kernels, Vec } from "../kernels/types.js";
import type { Batch } from "./batch.js";
import { Qwen3NextAttention } from "./gated_attention.js";
import { Qwen3NextGatedDeltaNet } from "./gated_deltanet.js";
import { Qwen3NextMLP } from "./mlp.js";
import { Qwen3NextRMSNorm } from "./rms_norm.js";
import { Qwen3NextSparseMoeBlock } from "./sparse_moe_block.js";
import { DeltaNetState, KVCache, type LayerState } from "./state.js";
import type { WeightSource } from "./weights.js";

export class Qwen3NextDecoderLayer {
  readonly input_layernorm: Qwen3NextRMSNorm;
  readonly post_attention_layernorm: Qwen3NextRMSNorm;
  readonly self_attn: Qwen3NextAttention | null = null;
  readonly linear_attn: Qwen3NextGatedDeltaNet | null = null;
  readonly mlp: Qwen3NextSparseMoeBlock | Qwen3NextMLP;

  /**
   * @param prefix   e.g. `model.layers.3` or `mtp.layers.0`
   * @param moeIndex the layer index that decides MoE vs dense (the MTP layer follows layer 0's rule)
   * @param traceName the `{i}` of `router.{i}.*` in traces, or null to record nothing
   */
  constructor(
    private readonly k: Kernels,
    src: WeightSource,
    prefix: string,
    cfg: Qwen3NextConfig,
    readonly layerType: LayerType,
    moeIndex: number,
    private readonly traceName: string | null,
  ) {
    const H = cfg.hidden_size;
    this.input_layernorm = new Qwen3NextRMSNorm(k, src, `${prefix}.input_layernorm.weight`, H, cfg.rms_norm_eps);
    this.post_attention_layernorm = new Qwen3NextRMSNorm(k, src, `${prefix}.post_attention_layernorm.weight`, H, cfg.rms_norm_eps);
    if (layerType === "full_attention") this.self_attn = new Qwen3NextAttention(k, src, `${prefix}.self_attn`, cfg);
    else this.linear_attn = new Qwen3NextGatedDeltaNet(k, src, `${prefix}.linear_attn`, cfg);
    this.mlp = isMoeLayer(cfg, moeIndex)
      ? new Qwen3NextSparseMoeBlock(k, src, `${prefix}.mlp`, cfg)
      : new Qwen3NextMLP(k, src, `${prefix}.mlp`, H, cfg.intermediate_size);
  }

  newState(): LayerState {
    return this.self_attn ? this.self_attn.newCache() : this.linear_attn!.newState();
  }

  /** Advances the residual stream h [N, hidden] in place; `states[s]` is this layer's state of segment s. */
  forward(h: Vec, batch: Batch, states: LayerState[]): void {
    const { N, ws } = batch;
    const normed = ws.get("layer.normed", h.length);
    const y = ws.get("layer.out", h.length);
    this.input_layernorm.forward(h, normed);
    if (this.self_attn) this.self_attn.forward(normed, batch, states as KVCache[], y);
    else this.linear_attn!.forward(normed, batch, states as DeltaNetState[], y);
    this.k.axpy(1, y, h);
    this.post_attention_layernorm.forward(h, normed);
    if (this.mlp instanceof Qwen3NextSparseMoeBlock) {
      this.mlp.forward(normed, N, ws, y, this.traceName !== null ? batch.trace : undefined);
    } else {
      this.mlp.forward(normed, N, ws, y);
      if (this.traceName !== null) batch.trace?.rows("mlp.out", [y.length / N], y);
    }
    this.k.axpy(1, y, h);
  }
}
