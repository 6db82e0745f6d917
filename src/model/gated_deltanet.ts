/**
 * Qwen3NextGatedDeltaNet (`linear_attn`), with r = value_heads / key_heads and C = 2 Hk dk + Hv dv conv channels:
 *   [q | k | v] (C, in conv channel order [all q | all k | all v]), z (Hv dv), b, a (Hv each) = input projections of x,
 *     in one of two forms per pair (chosen by the checkpoint, `deltanet_projections` in the config):
 *       grouped (Qwen3-Next):  in_proj_qkvz(x) per key head = [q (dk) | k (dk) | v (r dv) | z (r dv)]  [C + Hv dv, H]
 *                              in_proj_ba(x) per key head   = [b (r) | a (r)]                         [2 Hv, H]
 *       split (Qwen3.5):       in_proj_qkv(x) = [all q | all k | all v] [C, H];  in_proj_z(x) = z [Hv dv, H]
 *                              in_proj_b(x) = b, in_proj_a(x) = a  [Hv, H]
 *   [q | k | v] = silu(conv1d([q | k | v]))               (depthwise causal, conv1d.weight [C, 1, K], K = linear_conv_kernel_dim)
 *   q = l2norm(q) / sqrt(dk);  k = l2norm(k)                  (l2norm(x) = x / sqrt(sum(x^2) + 1e-6))
 *   beta = sigmoid(b);  g = -exp(A_log) softplus(a + dt_bias)  (A_log, dt_bias [Hv])
 *   per value head h (key head h / r), state S [dk, dv]:  S = S exp(g_t);  S += k_t (beta_t (v_t - S^T k_t))^T;  o_t = S^T q_t
 *   y = out_proj(norm(o, z)),  norm(o, z) = o / sqrt(mean(o^2) + eps) * w * silu(z)  (per head, over dv; norm.weight [dv],
 *     out_proj.weight [H, Hv dv])
 * Prefill (T > 1) uses the chunked form of the delta rule, decode (T = 1) the recurrent step; both equal.
 * A speculative verify step (several tokens) uses the recurrent step and can be cut back to a prefix (`rollback`).
 * Value heads are numbered grouped by key head (h reads key head h / r) unless the checkpoint tiles them
 * (`deltanet_projections.valueHeads` "tiled": h reads key head h mod Hk); every other per-head parameter is
 * stored in the same order, so the order only matters where a value head meets its key head (`tileHeads`).
 */
import type { Qwen3NextConfig } from "../config.js";
import type { Kernels, Tensor, Weight } from "../kernels/types.js";
import type { Batch, Segment } from "./batch.js";
import type { Mixer } from "./mixer.js";
import type { Params } from "./params.js";
import { Qwen3NextRMSNormGated } from "./rms_norm.js";
import { DeltaNetState } from "./state.js";
import type { Workspace } from "./weights.js";

/** Chunk length of the chunked delta rule during prefill (as in transformers and the FLA kernels). */
export const DELTA_RULE_CHUNK = 64;

/** The parameters of a gated DeltaNet under `p`, in the projection form `c.deltanet_projections`. */
export function gatedDeltaNetParams<W>(p: Params<W>, c: Qwen3NextConfig) {
  const H = c.hidden_size;
  const nk = c.linear_num_key_heads;
  const nv = c.linear_num_value_heads;
  const C = 2 * nk * c.linear_key_head_dim + nv * c.linear_value_head_dim;
  const Z = nv * c.linear_value_head_dim;
  const form = c.deltanet_projections;
  return {
    in_proj_qkvz: form.qkvz === "grouped" ? p.param("in_proj_qkvz.weight", C + Z, H) : null,
    in_proj_qkv: form.qkvz === "split" ? p.param("in_proj_qkv.weight", C, H) : null,
    in_proj_z: form.qkvz === "split" ? p.param("in_proj_z.weight", Z, H) : null,
    in_proj_ba: form.ba === "grouped" ? p.param("in_proj_ba.weight", 2 * nv, H) : null,
    in_proj_b: form.ba === "split" ? p.param("in_proj_b.weight", nv, H) : null,
    in_proj_a: form.ba === "split" ? p.param("in_proj_a.weight", nv, H) : null,
    conv1d: p.param("conv1d.weight", C, 1, c.linear_conv_kernel_dim),
    dt_bias: p.param("dt_bias", nv),
    A_log: p.param("A_log", nv),
    norm: p.param("norm.weight", c.linear_value_head_dim),
    out_proj: p.param("out_proj.weight", H, Z),
  };
}
export type GatedDeltaNetParams<W> = ReturnType<typeof gatedDeltaNetParams<W>>;

export class Qwen3NextGatedDeltaNet implements Mixer<DeltaNetState> {
  /** The input projections of the checkpoint's form (see the header); the others are null. */
  readonly in_proj_qkvz: Weight | null;
  readonly in_proj_qkv: Weight | null;
  readonly in_proj_z: Weight | null;
  readonly in_proj_ba: Weight | null;
  readonly in_proj_b: Weight | null;
  readonly in_proj_a: Weight | null;
  readonly out_proj: Weight;
  readonly norm: Qwen3NextRMSNormGated;
  /** conv1d.weight as taps [channels, kernel]; A_log and dt_bias [Hv]. */
  readonly conv1d: Tensor;
  readonly A_log: Tensor;
  readonly dt_bias: Tensor;
  readonly Hk: number;
  readonly Hv: number;
  readonly dk: number;
  readonly dv: number;
  readonly K: number;
  /** Conv channels: 2 Hk dk + Hv dv. */
  readonly C: number;
  /** Value heads tiled over the key heads (see the header). */
  private readonly tiled: boolean;
  /** q and k heads as the delta rule sees them (one per value head when tiled). */
  private readonly nk: number;

  constructor(private readonly k: Kernels, w: GatedDeltaNetParams<Weight>, cfg: Qwen3NextConfig) {
    this.Hk = cfg.linear_num_key_heads;
    this.Hv = cfg.linear_num_value_heads;
    this.dk = cfg.linear_key_head_dim;
    this.dv = cfg.linear_value_head_dim;
    this.K = cfg.linear_conv_kernel_dim;
    this.C = 2 * this.Hk * this.dk + this.Hv * this.dv;
    this.tiled = cfg.deltanet_projections.valueHeads === "tiled" && this.Hv > this.Hk;
    this.nk = this.tiled ? this.Hv : this.Hk;
    ({
      in_proj_qkvz: this.in_proj_qkvz,
      in_proj_qkv: this.in_proj_qkv,
      in_proj_z: this.in_proj_z,
      in_proj_ba: this.in_proj_ba,
      in_proj_b: this.in_proj_b,
      in_proj_a: this.in_proj_a,
      out_proj: this.out_proj,
    } = w);
    this.conv1d = k.toVec(w.conv1d);
    this.A_log = k.toVec(w.A_log);
    this.dt_bias = k.toVec(w.dt_bias);
    this.norm = new Qwen3NextRMSNormGated(k, w.norm, cfg.rms_norm_eps);
  }

  /** Zero conv and recurrent state for a new sequence. */
  newState(): DeltaNetState {
    return new DeltaNetState(this.k, this.k.vec(this.C * (this.K - 1)), this.k.vec(this.Hv * this.dk * this.dv));
  }

  /** x [N, hidden] -> out [N, hidden]; `states[s]` is segment s's state, advanced in place. One line per header line. */
  forward(x: Tensor, batch: Batch, states: DeltaNetState[], out: Tensor): void {
    const { mixed, z, b, a } = this.project(x, batch);
    const conv = this.conv(mixed, batch, states);
    const { q, k, v } = this.normalize(conv, batch);
    const { g, beta } = this.gates(a, b, batch);
    const o = this.deltaRule(q, k, v, g, beta, batch, states);
    this.norm.forward(o, z, o);
    this.k.linear(this.out_proj, o, batch.N, out);
    batch.trace?.rows("deltanet.out", [out.length / batch.N], out);
  }

  /** [q | k | v], z, b, a from whichever projection form the checkpoint has. */
  private project(x: Tensor, { N, ws }: Batch): { mixed: Tensor; z: Tensor; b: Tensor; a: Tensor } {
    const { k, Hk, Hv, dk, dv, C } = this;
    const mixed = ws.get("dn.mixed", N * C);
    const z = ws.get("dn.z", N * Hv * dv);
    const b = ws.get("dn.b", N * Hv);
    const a = ws.get("dn.a", N * Hv);
    const heads = { T: N, numKeyHeads: Hk, numValueHeads: Hv };
    if (this.in_proj_qkvz) {
      const qkvz = ws.get("dn.qkvz", N * (C + Hv * dv));
      k.linear(this.in_proj_qkvz, x, N, qkvz);
      k.splitQkvz({ qkvz, ...heads, dk, dv, mixed, z });
    } else {
      k.linear(this.in_proj_qkv!, x, N, mixed);
      k.linear(this.in_proj_z!, x, N, z);
    }
    if (this.in_proj_ba) {
      const ba = ws.get("dn.ba", N * 2 * Hv);
      k.linear(this.in_proj_ba, x, N, ba);
      k.splitBa({ ba, ...heads, b, a });
    } else {
      k.linear(this.in_proj_b!, x, N, b);
      k.linear(this.in_proj_a!, x, N, a);
    }
    return { mixed, z, b, a };
  }

  /** [q | k | v] = silu(conv1d([q | k | v])), per segment with its conv state. */
  private conv(mixed: Tensor, batch: Batch, states: DeltaNetState[]): Tensor {
    const { k, K, C } = this;
    const conv = batch.ws.get("dn.conv", batch.N * C);
    batch.segments.forEach((seg, s) => {
      const rows = (buf: Tensor) => k.view(buf, seg.start * C, (seg.start + seg.T) * C);
      this.record(seg, states[s], rows(mixed));
      k.causalConv1d({ x: rows(mixed), weight: this.conv1d, state: states[s].conv, T: seg.T, C, K, out: rows(conv) });
    });
    batch.trace?.rows("deltanet.conv", [C], conv);
    batch.trace?.whole("deltanet.conv_state", [C, K - 1], states[0].conv);
    return conv;
  }

  /** q = l2norm(q) / sqrt(dk);  k = l2norm(k)  (then tiled per value head when the checkpoint tiles them). */
  private normalize(conv: Tensor, { N, ws }: Batch): { q: Tensor; k: Tensor; v: Tensor } {
    const { k, Hk, Hv, dk, dv, nk } = this;
    const q = ws.get("dn.q", N * Hk * dk);
    const kk = ws.get("dn.k", N * Hk * dk);
    const v = ws.get("dn.v", N * Hv * dv);
    k.splitColumns(conv, [Hk * dk, Hk * dk, Hv * dv], [q, kk, v]);
    k.l2Normalize(q, dk, 1e-6, 1 / Math.sqrt(dk));
    k.l2Normalize(kk, dk, 1e-6, 1);
    if (!this.tiled) return { q, k: kk, v };
    const qt = ws.get("dn.q_tiled", N * nk * dk);
    const kt = ws.get("dn.k_tiled", N * nk * dk);
    k.tileHeads(q, N, Hk, Hv, dk, qt);
    k.tileHeads(kk, N, Hk, Hv, dk, kt);
    return { q: qt, k: kt, v };
  }

  /** beta = sigmoid(b);  g = -exp(A_log) softplus(a + dt_bias). */
  private gates(a: Tensor, b: Tensor, batch: Batch): { g: Tensor; beta: Tensor } {
    const g = batch.ws.get("dn.g", batch.N * this.Hv);
    const beta = batch.ws.get("dn.beta", batch.N * this.Hv);
    this.k.gates(a, b, this.A_log, this.dt_bias, g, beta);
    batch.trace?.rows("deltanet.g", [this.Hv], g);
    batch.trace?.rows("deltanet.beta", [this.Hv], beta);
    return { g, beta };
  }

  /** Per segment: the delta rule over its rows (chunked for a prefill, recurrent for decode and verify steps). */
  private deltaRule(q: Tensor, kk: Tensor, v: Tensor, g: Tensor, beta: Tensor, batch: Batch, states: DeltaNetState[]): Tensor {
    const { k, Hv, dk, dv, nk } = this;
    const o = batch.ws.get("dn.o", batch.N * Hv * dv);
    batch.segments.forEach((seg, s) => {
      const rows = (buf: Tensor, width: number) => k.view(buf, seg.start * width, (seg.start + seg.T) * width);
      const args = {
        q: rows(q, nk * dk),
        k: rows(kk, nk * dk),
        v: rows(v, Hv * dv),
        g: rows(g, Hv),
        beta: rows(beta, Hv),
        state: states[s].recurrent,
        T: seg.T,
        numKeyHeads: nk,
        numValueHeads: Hv,
        dk,
        dv,
        out: rows(o, Hv * dv),
      };
      if (seg.verify) for (const name of ["q", "k", "v", "g", "beta"] as const) k.copy(args[name], states[s].verify!.rows[name]);
      if (seg.T > 1 && !seg.verify) k.deltaRuleChunked(args, DELTA_RULE_CHUNK);
      else k.deltaRuleRecurrent(args);
    });
    batch.trace?.rows("deltanet.core", [Hv, dv], o);
    return o;
  }

  /**
   * Before a verify step of T tokens: one copy of the state, and the step's conv inputs (see VerifyRecord).
   * Any other step forgets the last record (it can no longer be rolled back).
   */
  private record(seg: Segment, state: DeltaNetState, mixed: Tensor): void {
    if (!seg.verify) {
      if (state.verify) state.verify.T = 0;
      return;
    }
    const { k, Hv, dk, dv, C, nk } = this;
    const T = seg.T;
    let r = state.verify;
    if (!r || r.rows.g.length < T * Hv) {
      state.dropRecord();
      const n = Math.max(T, 4);
      r = {
        T: 0,
        conv: k.vec(state.conv.length),
        recurrent: k.vec(state.recurrent.length),
        rows: { mixed: k.vec(n * C), q: k.vec(n * nk * dk), k: k.vec(n * nk * dk), v: k.vec(n * Hv * dv), g: k.vec(n * Hv), beta: k.vec(n * Hv) },
      };
      state.verify = r;
    }
    r.T = T;
    k.copy(state.conv, r.conv);
    k.copy(state.recurrent, r.recurrent);
    k.copy(k.view(mixed, 0, T * C), r.rows.mixed);
  }

  /**
   * Cuts the last verify step back to its first `keep` tokens: the state becomes what feeding only those
   * gives (the copy from before the step, then the kept tokens replayed through the conv and delta rule).
   */
  rollback(state: DeltaNetState, keep: number, ws: Workspace): void {
    const r = state.verify;
    if (!r || r.T === 0) throw new Error("rollback: this DeltaNet state has no verify step to roll back");
    if (!(Number.isInteger(keep) && keep >= 0 && keep <= r.T)) throw new Error(`rollback to ${keep} tokens of a ${r.T}-token verify step`);
    const T = r.T;
    r.T = 0;
    if (keep === T) return;
    const { k, Hv, dk, dv, K, C, nk } = this;
    k.copy(r.conv, state.conv);
    k.copy(r.recurrent, state.recurrent);
    if (keep === 0) return;
    k.causalConv1d({ x: k.view(r.rows.mixed, 0, keep * C), weight: this.conv1d, state: state.conv, T: keep, C, K, out: ws.get("dn.replay_conv", keep * C) });
    const { q, k: kk, v, g, beta } = r.rows;
    k.deltaRuleRecurrent({
      q: k.view(q, 0, keep * nk * dk),
      k: k.view(kk, 0, keep * nk * dk),
      v: k.view(v, 0, keep * Hv * dv),
      g: k.view(g, 0, keep * Hv),
      beta: k.view(beta, 0, keep * Hv),
      state: state.recurrent,
      T: keep,
      numKeyHeads: nk,
      numValueHeads: Hv,
      dk,
      dv,
      out: ws.get("dn.replay_o", keep * Hv * dv),
    });
  }
}
