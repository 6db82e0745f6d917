/**
 * Multi-token prediction head (`mtp.*`, as vLLM's Qwen3NextMTP). For position t, from the main model's final
 * normed hidden state h_t and the next token x_{t+1}:
 *   u = fc([pre_fc_norm_embedding(embed(x_{t+1})) | pre_fc_norm_hidden(h_t)])
 *   u = mtp.layers.0(u)      (a full-attention decoder layer over the MTP sequence, own KV cache, position t)
 *   out = norm(u)            (then the shared lm_head gives logits for token t+2)
 * Parameters: fc.weight [H, 2H], pre_fc_norm_embedding.weight, pre_fc_norm_hidden.weight, norm.weight [H], layers.{j}.*.
 */
import type { Qwen3NextConfig } from "../config.js";
import type { Kernels, Vec, Weight } from "../kernels/types.js";
import { decoderLayerParams, Qwen3NextDecoderLayer } from "./decoder_layer.js";
import type { Params } from "./params.js";
import type { Qwen3NextModel } from "./qwen3_next_model.js";
import { Qwen3NextRMSNorm } from "./rms_norm.js";
import type { KVCache, SequenceState } from "./state.js";
import type { Workspace } from "./weights.js";

/** The parameters of the MTP head under `p` (`mtp`). */
export function mtpParams<W>(p: Params<W>, c: Qwen3NextConfig) {
  const H = c.hidden_size;
  return {
    fc: p.param("fc.weight", H, 2 * H),
    pre_fc_norm_embedding: p.param("pre_fc_norm_embedding.weight", H),
    pre_fc_norm_hidden: p.param("pre_fc_norm_hidden.weight", H),
    // MTP layer j is a full-attention layer whose MLP kind follows the main-model rule for index j (as vLLM).
    layers: Array.from({ length: c.mtp_num_hidden_layers }, (_, j) => decoderLayerParams(p.at(`layers.${j}`), c, "full_attention", j)),
    norm: p.param("norm.weight", H),
  };
}
export type MtpParams<W> = ReturnType<typeof mtpParams<W>>;

export class Qwen3NextMTP {
  readonly pre_fc_norm_embedding: Qwen3NextRMSNorm;
  readonly pre_fc_norm_hidden: Qwen3NextRMSNorm;
  readonly fc: Weight;
  readonly layers: Qwen3NextDecoderLayer[];
  readonly norm: Qwen3NextRMSNorm;

  constructor(private readonly k: Kernels, w: MtpParams<Weight>, private readonly cfg: Qwen3NextConfig) {
    const eps = cfg.rms_norm_eps;
    this.pre_fc_norm_embedding = new Qwen3NextRMSNorm(k, w.pre_fc_norm_embedding, eps);
    this.pre_fc_norm_hidden = new Qwen3NextRMSNorm(k, w.pre_fc_norm_hidden, eps);
    this.fc = w.fc;
    this.layers = w.layers.map((layer) => new Qwen3NextDecoderLayer(k, layer, cfg, null));
    this.norm = new Qwen3NextRMSNorm(k, w.norm, eps);
  }

  newCaches(): KVCache[] {
    return this.layers.map((l) => l.newState() as KVCache);
  }

  /**
   * n MTP steps for one sequence: hidden [n, H] are h_t for consecutive t starting at the MTP cache's length,
   * nextIds the tokens x_{t+1}. Writes the normed outputs [n, H] into `out`; advances `state.mtp`.
   */
  forward(model: Qwen3NextModel, hidden: Vec, nextIds: readonly number[], state: SequenceState, ws: Workspace, out: Vec): void {
    const H = this.cfg.hidden_size;
    const n = nextIds.length;
    const emb = ws.get("mtp.emb", n * H);
    const hid = ws.get("mtp.hid", n * H);
    const cat = ws.get("mtp.cat", n * 2 * H);
    model.embed(nextIds, emb);
    this.pre_fc_norm_embedding.forward(emb, emb);
    this.pre_fc_norm_hidden.forward(hidden.subarray(0, n * H), hid);
    for (let t = 0; t < n; t++) {
      cat.set(emb.subarray(t * H, (t + 1) * H), t * 2 * H);
      cat.set(hid.subarray(t * H, (t + 1) * H), t * 2 * H + H);
    }
    const u = ws.get("mtp.u", n * H);
    this.k.linear(this.fc, cat, n, u);
    const cache = state.mtp[0];
    const positions = Array.from({ length: n }, (_, t) => cache.length + t);
    const batch = model.batch([{ state, start: 0, T: n }], positions, ws);
    this.layers[0].forward(u, batch, [cache]);
    this.norm.forward(u, out);
  }
}
