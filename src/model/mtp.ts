/**
 * Multi-token prediction head (`mtp.*`, as vLLM's Qwen3NextMTP). For position t, from the main model's final
 * normed hidden state h_t and the next token x_{t+1}:
 *   u = fc([pre_fc_norm_embedding(embed(x_{t+1})) | pre_fc_norm_hidden(h_t)])
 *   u = mtp.layers.0(u)      (a full-attention decoder layer over the MTP sequence, own KV cache, position t)
 *   out = norm(u)            (then the shared lm_head gives logits for token t+2)
 * Parameters: fc.weight [H, 2H], pre_fc_norm_embedding.weight, pre_fc_norm_hidden.weight, norm.weight [H], layers.{j}.*.
 *
 * Pairing: the main model hands every final hidden state it computes to `observe`; a pair runs once its next
 * token is known (`run`, or `draft` with the token just chosen). So the MTP cache holds one row per pair
 * (h_t, x_{t+1}) of the sequence's real tokens, position t at row t.
 *
 * Drafting K tokens after x_{t+1} (speculative decoding): step 1 is the pair (h_t, x_{t+1}) and proposes d_1;
 * step j > 1 takes the head's own output of step j-1 in place of h and d_{j-1} as the token, at position
 * t + j - 1, with MTP layer (j-1) mod mtp_num_hidden_layers (one layer is reused, as in vLLM). The rows of
 * steps 2..K are speculative and are removed from the caches before `draft` returns.
 */
import type { Qwen3NextConfig } from "../config.js";
import type { Kernels, Tensor, Vec, Weight } from "../kernels/types.js";
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

/** What the head shares with the main model: the embedding and the lm_head. */
export interface MtpHost {
  readonly model: Qwen3NextModel;
  readonly lm_head: Weight;
}

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
   * n pairs through MTP layer `layer`: hidden [n, H] (h_t for consecutive t from `position`), nextIds the
   * tokens x_{t+1}. Writes the normed outputs [n, H] into `out`; appends n rows to that layer's cache.
   */
  forward(model: Qwen3NextModel, hidden: Tensor, nextIds: readonly number[], state: SequenceState, ws: Workspace, out: Tensor, layer = 0, position = state.mtp[layer].length): void {
    const H = this.cfg.hidden_size;
    const n = nextIds.length;
    const emb = ws.get("mtp.emb", n * H);
    const hid = ws.get("mtp.hid", n * H);
    const cat = ws.get("mtp.cat", n * 2 * H);
    model.embed(nextIds, emb);
    this.pre_fc_norm_embedding.forward(emb, emb);
    this.pre_fc_norm_hidden.forward(this.k.view(hidden, 0, n * H), hid);
    this.k.concatColumns([emb, hid], [H, H], cat);
    const u = ws.get("mtp.u", n * H);
    this.k.linear(this.fc, cat, n, u);
    const positions = Array.from({ length: n }, (_, t) => position + t);
    const batch = model.batch([{ state, start: 0, T: n }], positions, ws);
    this.layers[layer].forward(u, batch, [state.mtp[layer]]);
    this.norm.forward(u, out);
  }

  /**
   * Takes the main model's final hidden states of `tokens` (rows first .. first + T - 1 of `hidden`), which it
   * has just run (the last T positions of `state`): each waits for its next token. Throws when the head has missed some of the
   * sequence's positions (a step that did not pass its hidden states here).
   */
  observe(hidden: Tensor, tokens: readonly number[], state: SequenceState, first = 0): void {
    const H = this.cfg.hidden_size;
    const T = tokens.length;
    this.checkInStep(state, state.position - T);
    const p = state.mtpPending;
    const rows = p?.rows ?? 0;
    const need = (rows + T) * H;
    let buf = p?.hidden;
    if (!buf || buf.length < need) {
      const grown = this.k.vec(Math.max(need, 2 * (buf?.length ?? 0)));
      if (buf) {
        this.k.copy(this.k.view(buf, 0, rows * H), grown);
        this.k.free(buf);
      }
      buf = grown;
    }
    this.k.copy(this.k.view(hidden, first * H, (first + T) * H), this.k.view(buf, rows * H, need));
    const next = p?.next ?? [];
    // The first token pairs with the previous call's last hidden state (none before position 0, and none
    // when a draft has already run that pair).
    if (p && rows > 0) next.push(tokens[0]);
    next.push(...tokens.slice(1));
    state.mtpPending = { hidden: buf, rows: rows + T, next };
  }

  /**
   * Throws unless the head has seen every position of the sequence before `position` (its cache rows plus its
   * waiting hidden states): a step that did not pass its hidden states to `observe` leaves it behind.
   */
  checkInStep(state: SequenceState, position = state.position): void {
    const seen = state.mtp[0].length + (state.mtpPending?.rows ?? 0);
    if (seen !== position) {
      throw new Error(
        `the MTP head is out of step with this sequence (it has seen ${seen} positions, expected ${position}): ` +
          "pass every step's hidden states to it (forward with { mtp: true }; decodeBatch does not)",
      );
    }
  }

  /**
   * Runs every waiting pair whose next token is known, with `next` as the token after the last hidden state
   * when given. Returns the normed outputs [pairs, H] (a workspace view) and how many pairs ran.
   */
  run(host: MtpHost, state: SequenceState, ws: Workspace, next?: number): { out: Tensor; n: number } {
    const H = this.cfg.hidden_size;
    const p = state.mtpPending;
    if (!p || p.rows === 0) {
      if (next !== undefined) throw new Error("the MTP head has no hidden state to pair with the next token: run the main model first");
      return { out: ws.get("mtp.out", 0), n: 0 };
    }
    const ids = next === undefined ? p.next : [...p.next, next];
    const n = ids.length;
    const out = ws.get("mtp.out", n * H);
    if (n > 0) this.forward(host.model, p.hidden, ids, state, ws, out);
    // What is left waiting: the last hidden state when its token is not known yet.
    this.k.copy(this.k.view(p.hidden, n * H, p.rows * H), p.hidden);
    p.rows -= n;
    p.next = [];
    return { out, n };
  }

  /**
   * Proposes K tokens to follow `next` (the token chosen after the last observed hidden state): `pick` turns
   * step j's logits [V] (read back: one step boundary per draft token) into d_{j+1}. Runs the waiting pairs as
   * step 1. Leaves the caches holding only real pairs. Returns the drafts.
   */
  async draft(host: MtpHost, state: SequenceState, ws: Workspace, next: number, K: number, pick: (logits: Vec, j: number) => number): Promise<number[]> {
    const H = this.cfg.hidden_size;
    const V = this.cfg.vocab_size;
    const { out, n } = this.run(host, state, ws, next);
    const lens = state.mtp.map((c) => c.length);
    const u = ws.get("mtp.chain_h", H);
    this.k.copy(this.k.view(out, (n - 1) * H, n * H), u);
    const logits = ws.get("mtp.logits", V);
    const drafts: number[] = [];
    for (let j = 0; j < K; j++) {
      if (j > 0) {
        const layer = j % this.layers.length;
        const o = ws.get("mtp.chain_out", H);
        this.forward(host.model, u, [drafts[j - 1]], state, ws, o, layer, lens[0] + j - 1);
        this.k.copy(o, u);
      }
      this.k.linear(host.lm_head, u, 1, logits);
      drafts.push(pick(await this.k.read(logits), j));
    }
    state.mtp.forEach((c, i) => c.truncate(lens[i]));
    return drafts;
  }
}
