/**
 * Qwen3NextAttention (`self_attn`), gated attention with GQA:
 *   [q | gate] = q_proj(x) per head;  k = k_proj(x);  v = v_proj(x)
 *   q = rope(q_norm(q));  k = rope(k_norm(k))           (zero-centred RMSNorm over head_dim; partial rotary)
 *   o = softmax(q k^T / sqrt(head_dim), causal) v       (query head h reads kv head h / (heads / kv_heads))
 *   y = o_proj(o * sigmoid(gate))
 * Parameters: q_proj.weight [2 heads hd, H] (query and gate per head), k_proj.weight, v_proj.weight [kv hd, H],
 *   o_proj.weight [H, heads hd], q_norm.weight, k_norm.weight [hd]; a .bias for each projection if attention_bias.
 */
import { rotaryDim, type Qwen3NextConfig } from "../config.js";
import type { Kernels, Tensor, Weight } from "../kernels/types.js";
import type { Batch, Segment } from "./batch.js";
import { Qwen3NextRMSNorm } from "./rms_norm.js";
import type { Mixer } from "./mixer.js";
import type { Params } from "./params.js";
import { KVCache } from "./state.js";
import type { Workspace } from "./weights.js";

/** The parameters of a gated attention module under `p`. */
export function attentionParams<W>(p: Params<W>, c: Qwen3NextConfig) {
  const H = c.hidden_size;
  const hd = c.head_dim;
  const q = 2 * c.num_attention_heads * hd;
  const kv = c.num_key_value_heads * hd;
  return {
    q_proj: p.param("q_proj.weight", q, H),
    k_proj: p.param("k_proj.weight", kv, H),
    v_proj: p.param("v_proj.weight", kv, H),
    o_proj: p.param("o_proj.weight", H, c.num_attention_heads * hd),
    bias: c.attention_bias
      ? { q: p.param("q_proj.bias", q), k: p.param("k_proj.bias", kv), v: p.param("v_proj.bias", kv), o: p.param("o_proj.bias", H) }
      : null,
    q_norm: p.param("q_norm.weight", hd),
    k_norm: p.param("k_norm.weight", hd),
  };
}
export type AttentionParams<W> = ReturnType<typeof attentionParams<W>>;

export class Qwen3NextAttention implements Mixer<KVCache> {
  readonly q_proj: Weight;
  readonly k_proj: Weight;
  readonly v_proj: Weight;
  readonly o_proj: Weight;
  readonly q_norm: Qwen3NextRMSNorm;
  readonly k_norm: Qwen3NextRMSNorm;
  private readonly bias: { q: Tensor; k: Tensor; v: Tensor; o: Tensor } | null;
  private readonly H: number;
  private readonly Hkv: number;
  private readonly d: number;
  private readonly rd: number;

  constructor(private readonly k: Kernels, w: AttentionParams<Weight>, cfg: Qwen3NextConfig) {
    this.H = cfg.num_attention_heads;
    this.Hkv = cfg.num_key_value_heads;
    this.d = cfg.head_dim;
    this.rd = rotaryDim(cfg);
    ({ q_proj: this.q_proj, k_proj: this.k_proj, v_proj: this.v_proj, o_proj: this.o_proj } = w);
    this.q_norm = new Qwen3NextRMSNorm(k, w.q_norm, cfg.rms_norm_eps);
    this.k_norm = new Qwen3NextRMSNorm(k, w.k_norm, cfg.rms_norm_eps);
    this.bias = w.bias
      ? { q: k.toVec(w.bias.q), k: k.toVec(w.bias.k), v: k.toVec(w.bias.v), o: k.toVec(w.bias.o) }
      : null;
  }

  /** An empty KV cache for this layer. */
  newState(): KVCache {
    return new KVCache(this.k, this.Hkv * this.d);
  }

  /** x [N, hidden] -> out [N, hidden]; `caches[s]` is segment s's cache. */
  forward(x: Tensor, batch: Batch, caches: KVCache[], out: Tensor): void {
    const { k, H, Hkv, d, rd } = this;
    const { N, ws } = batch;
    const qg = ws.get("attn.qg", N * H * 2 * d);
    const q = ws.get("attn.q", N * H * d);
    const gate = ws.get("attn.gate", N * H * d);
    const o = ws.get("attn.o", N * H * d);
    k.linear(this.q_proj, x, N, qg);
    if (this.bias) k.addBias(qg, this.bias.q);
    k.splitColumns(qg, [d, d], [q, gate]); // q_proj rows are per head [query (d) | gate (d)]
    this.q_norm.forward(q, q);
    k.rope(q, N, H, d, rd, batch.cos, batch.sin);
    const { kk, vv } = this.keysValues(x, batch);
    batch.trace?.rows("attention.q", [H, d], q);
    batch.trace?.rows("attention.k", [Hkv, d], kk);
    batch.trace?.rows("attention.gate", [H, d], gate);
    batch.segments.forEach((seg, s) => {
      const cache = caches[s];
      const rows = (buf: Tensor, width: number) => k.view(buf, seg.start * width, (seg.start + seg.T) * width);
      this.append(cache, seg, kk, vv);
      k.attention({
        q: rows(q, H * d),
        k: cache.k,
        v: cache.v,
        T: seg.T,
        L: cache.length,
        numHeads: H,
        numKvHeads: Hkv,
        headDim: d,
        scale: 1 / Math.sqrt(d),
        out: rows(o, H * d),
      });
    });
    batch.trace?.whole("attention.k_cache", [caches[0].length, Hkv, d], caches[0].k);
    batch.trace?.whole("attention.v_cache", [caches[0].length, Hkv, d], caches[0].v);
    k.sigmoidMul(o, gate);
    k.linear(this.o_proj, o, N, out);
    if (this.bias) k.addBias(out, this.bias.o);
    batch.trace?.rows("attention.out", [out.length / N], out);
  }

  /**
   * Only what later rows read of x [N, hidden]: its keys and values, appended to `caches[s]` (segment s's
   * cache) exactly as `forward` appends them; no queries, no attention, no output.
   */
  appendKeysValues(x: Tensor, batch: Batch, caches: KVCache[]): void {
    const { kk, vv } = this.keysValues(x, batch);
    batch.segments.forEach((seg, s) => this.append(caches[s], seg, kk, vv));
  }

  /** k = rope(k_norm(k_proj(x))), v = v_proj(x) for the batch's rows (workspace views). */
  private keysValues(x: Tensor, batch: Batch): { kk: Tensor; vv: Tensor } {
    const { k, Hkv, d, rd } = this;
    const { N, ws } = batch;
    const kk = ws.get("attn.k", N * Hkv * d);
    const vv = ws.get("attn.v", N * Hkv * d);
    k.linear(this.k_proj, x, N, kk);
    k.linear(this.v_proj, x, N, vv);
    if (this.bias) {
      k.addBias(kk, this.bias.k);
      k.addBias(vv, this.bias.v);
    }
    this.k_norm.forward(kk, kk);
    k.rope(kk, N, Hkv, d, rd, batch.cos, batch.sin);
    return { kk, vv };
  }

  /** Appends segment `seg`'s rows of kk, vv to its cache (a verify step records where it starts). */
  private append(cache: KVCache, seg: Segment, kk: Tensor, vv: Tensor): void {
    const w = this.Hkv * this.d;
    const rows = (buf: Tensor) => this.k.view(buf, seg.start * w, (seg.start + seg.T) * w);
    cache.verifyFrom = seg.verify ? cache.length : null;
    cache.append(rows(kk), rows(vv), seg.T);
  }

  /** Cuts the last verify step back to its first `keep` tokens: the cache forgets the others. */
  rollback(cache: KVCache, keep: number, _ws: Workspace): void {
    if (cache.verifyFrom === null) throw new Error("rollback: this KV cache has no verify step to roll back");
    const T = cache.length - cache.verifyFrom;
    if (!(Number.isInteger(keep) && keep >= 0 && keep <= T)) throw new Error(`rollback to ${keep} tokens of a ${T}-token verify step`);
    cache.truncate(cache.verifyFrom + keep);
    cache.verifyFrom = null;
  }
}
