/**
 * Qwen3NextModel (`model.*`):  h = embed_tokens(ids);  h = layer_i(h) for each decoder layer;  out = norm(h)
 * The residual stream h is kept in float64 (see `forward`).
 * RoPE cos/sin are computed once per call for every row's position and shared by the attention layers.
 * Parameters: embed_tokens.weight [V, H], layers.{i}.*, norm.weight [H].
 */
import { rotaryDim, type Qwen3NextConfig } from "../config.js";
import type { Kernels, Tensor, Weight } from "../kernels/types.js";
import type { Batch, Segment } from "./batch.js";
import { decoderLayerParams, Qwen3NextDecoderLayer } from "./decoder_layer.js";
import type { Params } from "./params.js";
import { Qwen3NextRMSNorm } from "./rms_norm.js";
import { Qwen3NextRotaryEmbedding } from "./rotary_embedding.js";
import { DeltaNetState } from "./state.js";
import type { Trace } from "./trace.js";
import type { Workspace } from "./weights.js";

/** The parameters of the decoder stack under `p` (`model`). */
export function modelParams<W>(p: Params<W>, c: Qwen3NextConfig) {
  return {
    embed_tokens: p.param("embed_tokens.weight", c.vocab_size, c.hidden_size),
    layers: c.layer_types.map((type, i) => decoderLayerParams(p.at(`layers.${i}`), c, type, i)),
    norm: p.param("norm.weight", c.hidden_size),
  };
}
export type ModelParams<W> = ReturnType<typeof modelParams<W>>;

export class Qwen3NextModel {
  readonly embed_tokens: Weight;
  readonly layers: Qwen3NextDecoderLayer[];
  readonly norm: Qwen3NextRMSNorm;
  readonly rotary_emb: Qwen3NextRotaryEmbedding;

  constructor(private readonly k: Kernels, w: ModelParams<Weight>, readonly cfg: Qwen3NextConfig) {
    this.embed_tokens = w.embed_tokens;
    this.layers = w.layers.map((layer, i) => new Qwen3NextDecoderLayer(k, layer, cfg, String(i)));
    this.norm = new Qwen3NextRMSNorm(k, w.norm, cfg.rms_norm_eps);
    this.rotary_emb = new Qwen3NextRotaryEmbedding(k, cfg.rope, rotaryDim(cfg));
  }

  /** h [ids.length, hidden] = embedding rows of the token ids. */
  embed(ids: readonly number[], h: Tensor): void {
    const H = this.cfg.hidden_size;
    ids.forEach((id, t) => this.k.embedding(this.embed_tokens, id, this.k.view(h, t * H, (t + 1) * H)));
  }

  /** A batch over `segments`, with cos/sin for positions[row]. */
  batch(segments: Segment[], positions: number[], ws: Workspace, trace?: Trace): Batch {
    const half = this.rotary_emb.rotaryDim / 2;
    const N = positions.length;
    const cos = ws.get("rope.cos", N * half);
    const sin = ws.get("rope.sin", N * half);
    this.rotary_emb.forward(positions, cos, sin);
    return { N, segments, cos, sin, ws, trace };
  }

  /**
   * Runs the token rows `ids` through every layer, advancing each segment's state; writes the final normed
   * hidden states [N, hidden] into `out`. Traces the embedding, hidden.{i}, deltanet.{i}.state,
   * and (through the modules) every module's output and internals.
   */
  forward(
    ids: readonly number[],
    segments: Segment[],
    ws: Workspace,
    out: Tensor,
    trace?: Trace,
    onProgress?: (layersDone: number, layers: number) => void,
  ): void {
    const H = this.cfg.hidden_size;
    const positions: number[] = [];
    for (const seg of segments) for (let t = 0; t < seg.T; t++) positions.push(seg.state.position + t);
    const batch = this.batch(segments, positions, ws, trace);
    // The residual stream stays float64 in both precisions: 2 adds per layer would otherwise accumulate
    // float32 rounding along the depth (the mixers and MLPs still compute in the chosen precision).
    const h = ws.residual("model.h", ids.length * H);
    this.embed(ids, h);
    trace?.rows("embedding", [H], h);
    this.layers.forEach((layer, i) => {
      if (trace) trace.layer = i;
      layer.forward(
        h,
        batch,
        segments.map((s) => s.state.layers[i]),
      );
      if (trace) {
        trace.append(`hidden.${i}`, [H], h);
        const st = segments[0].state.layers[i];
        if (st instanceof DeltaNetState) {
          const dn = layer.linear_attn!;
          trace.set(`deltanet.${i}.state`, [dn.Hv, dn.dk, dn.dv], st.recurrent);
        }
      }
      onProgress?.(i + 1, this.layers.length);
    });
    if (trace) trace.layer = null;
    this.norm.forward(h, out);
    for (const seg of segments) seg.state.position += seg.T;
  }
}
