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
 * stored in the same order, so the order only matters where a value head meets its key head (`tileKeyHeads`).
 */
import type { Qwen3NextConfig } from "../config.js";
import { sigmoid, softplus } from "../kernels/activations.js";
import type { Kernels, Vec, Weight } from "../kernels/types.js";
import type { Batch } from "./batch.js";
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

export class Qwen3NextGatedDeltaNet {
  /** The input projections of the checkpoint's form (see the header); the others are null. */
  readonly in_proj_qkvz: Weight | null;
  readonly in_proj_qkv: Weight | null;
  readonly in_proj_z: Weight | null;
  readonly in_proj_ba: Weight | null;
  readonly in_proj_b: Weight | null;
  readonly in_proj_a: Weight | null;
  readonly out_proj: Weight;
  readonly norm: Qwen3NextRMSNormGated;
  /** Conv taps [channels, kernel], -exp(A_log) and dt_bias per value head. */
  private readonly convWeight: Vec;
  private readonly negA: Vec;
  private readonly dtBias: Vec;
  readonly Hk: number;
  readonly Hv: number;
  readonly dk: number;
  readonly dv: number;
  readonly K: number;
  /** Conv channels: 2 Hk dk + Hv dv. */
  readonly C: number;
  /** Value heads tiled over the key heads (see the header). */
  private readonly tiled: boolean;

  constructor(private readonly k: Kernels, w: GatedDeltaNetParams<Weight>, cfg: Qwen3NextConfig) {
    this.Hk = cfg.linear_num_key_heads;
    this.Hv = cfg.linear_num_value_heads;
    this.dk = cfg.linear_key_head_dim;
    this.dv = cfg.linear_value_head_dim;
    this.K = cfg.linear_conv_kernel_dim;
    this.C = 2 * this.Hk * this.dk + this.Hv * this.dv;
    this.tiled = cfg.deltanet_projections.valueHeads === "tiled" && this.Hv > this.Hk;
    ({
      in_proj_qkvz: this.in_proj_qkvz,
      in_proj_qkv: this.in_proj_qkv,
      in_proj_z: this.in_proj_z,
      in_proj_ba: this.in_proj_ba,
      in_proj_b: this.in_proj_b,
      in_proj_a: this.in_proj_a,
      out_proj: this.out_proj,
    } = w);
    this.convWeight = k.toVec(w.conv1d);
    this.negA = k.toVec(w.A_log);
    this.negA.forEach((x, h) => (this.negA[h] = -Math.exp(x)));
    this.dtBias = k.toVec(w.dt_bias);
    this.norm = new Qwen3NextRMSNormGated(k, w.norm, cfg.rms_norm_eps);
  }

  /** Zero conv and recurrent state for a new sequence. */
  newState(): DeltaNetState {
    return new DeltaNetState(this.k.vec(this.C * (this.K - 1)), this.k.vec(this.Hv * this.dk * this.dv));
  }

  /** x [N, hidden] -> out [N, hidden]; `states[s]` is segment s's state, advanced in place. */
  forward(x: Vec, batch: Batch, states: DeltaNetState[], out: Vec): void {
    const { k, Hk, Hv, dk, dv, K, C } = this;
    const { N, ws } = batch;
    // [q | k | v] in conv channel order, z, b and a, from whichever projection form the checkpoint has.
    const mixed = ws.get("dn.mixed", N * C);
    const z = ws.get("dn.z", N * Hv * dv);
    const b = ws.get("dn.b", N * Hv);
    const a = ws.get("dn.a", N * Hv);
    if (this.in_proj_qkvz) {
      const qkvz = ws.get("dn.qkvz", N * (C + Hv * dv));
      k.linear(this.in_proj_qkvz, x, N, qkvz);
      ungroupQKVZ(qkvz, N, Hk, dk, (Hv / Hk) * dv, mixed, z);
    } else {
      k.linear(this.in_proj_qkv!, x, N, mixed);
      k.linear(this.in_proj_z!, x, N, z);
    }
    if (this.in_proj_ba) {
      const ba = ws.get("dn.ba", N * 2 * Hv);
      k.linear(this.in_proj_ba, x, N, ba);
      ungroupBA(ba, N, Hk, Hv / Hk, b, a);
    } else {
      k.linear(this.in_proj_b!, x, N, b);
      k.linear(this.in_proj_a!, x, N, a);
    }

    const conv = ws.get("dn.conv", N * C);
    batch.segments.forEach((seg, s) => {
      const rows = (buf: Vec) => buf.subarray(seg.start * C, (seg.start + seg.T) * C);
      if (seg.verify) this.beginVerify(states[s], seg.T, rows(mixed));
      k.causalConv1d({ x: rows(mixed), weight: this.convWeight, state: states[s].conv, T: seg.T, C, K, out: rows(conv) });
    });

    batch.trace?.rows("deltanet.conv", [C], conv);
    batch.trace?.whole("deltanet.conv_state", [C, K - 1], states[0].conv);
    const q = ws.get("dn.q", N * Hk * dk);
    const kk = ws.get("dn.k", N * Hk * dk);
    const v = ws.get("dn.v", N * Hv * dv);
    for (let t = 0; t < N; t++) {
      const row = conv.subarray(t * C, (t + 1) * C);
      q.set(row.subarray(0, Hk * dk), t * Hk * dk);
      kk.set(row.subarray(Hk * dk, 2 * Hk * dk), t * Hk * dk);
      v.set(row.subarray(2 * Hk * dk), t * Hv * dv);
    }
    k.l2Normalize(q, dk, 1e-6, 1 / Math.sqrt(dk));
    k.l2Normalize(kk, dk, 1e-6, 1);
    // Tiled value heads: one q and k head per value head, so that the delta rule's grouped mapping is the identity.
    const qh = this.tiled ? tileKeyHeads(q, N, Hk, Hv, dk, ws.get("dn.q_tiled", N * Hv * dk)) : q;
    const kh = this.tiled ? tileKeyHeads(kk, N, Hk, Hv, dk, ws.get("dn.k_tiled", N * Hv * dk)) : kk;
    const nk = this.tiled ? Hv : Hk;

    const g = ws.get("dn.g", N * Hv);
    const beta = ws.get("dn.beta", N * Hv);
    for (let t = 0; t < N; t++) {
      for (let h = 0; h < Hv; h++) {
        beta[t * Hv + h] = sigmoid(b[t * Hv + h]);
        g[t * Hv + h] = this.negA[h] * softplus(a[t * Hv + h] + this.dtBias[h]);
      }
    }
    batch.trace?.rows("deltanet.g", [Hv], g);
    batch.trace?.rows("deltanet.beta", [Hv], beta);

    const o = ws.get("dn.o", N * Hv * dv);
    batch.segments.forEach((seg, s) => {
      const rows = (buf: Vec, width: number) => buf.subarray(seg.start * width, (seg.start + seg.T) * width);
      const args = {
        q: rows(qh, nk * dk),
        k: rows(kh, nk * dk),
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
      if (seg.verify) {
        const r = states[s].verify!.rows;
        for (const [name, width] of [["q", nk * dk], ["k", nk * dk], ["v", Hv * dv], ["g", Hv], ["beta", Hv]] as const) {
          r[name].set(args[name].subarray(0, seg.T * width)); // args are this segment's rows already
        }
      }
      if (seg.T > 1 && !seg.verify) k.deltaRuleChunked(args, DELTA_RULE_CHUNK);
      else k.deltaRuleRecurrent(args);
    });

    batch.trace?.rows("deltanet.core", [Hv, dv], o);
    this.norm.forward(o, z, o);
    k.linear(this.out_proj, o, N, out);
    batch.trace?.rows("deltanet.out", [out.length / N], out);
  }

  /** Before a verify step of T tokens: one copy of the state, and the step's conv inputs (see VerifyRecord). */
  private beginVerify(state: DeltaNetState, T: number, mixed: Vec): void {
    const { k, Hv, dk, dv, C } = this;
    const nk = this.tiled ? Hv : this.Hk; // q and k heads as the delta rule sees them
    let r = state.verify;
    if (!r || r.rows.g.length < T * Hv) {
      if (r) for (const buf of [r.conv, r.recurrent, ...Object.values(r.rows)]) k.free(buf);
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
    r.conv.set(state.conv);
    r.recurrent.set(state.recurrent);
    r.rows.mixed.set(mixed.subarray(0, T * C));
  }

  /**
   * Cuts the last verify step back to its first n tokens: the state becomes what feeding only those n tokens
   * gives (the copy from before the step, then the n recorded tokens replayed through the conv and delta rule).
   */
  rollback(state: DeltaNetState, n: number, ws: Workspace): void {
    const r = state.verify;
    if (!r || r.T === 0) throw new Error("rollback: this DeltaNet state has no verify step to roll back");
    if (!(Number.isInteger(n) && n >= 0 && n <= r.T)) throw new Error(`rollback to ${n} tokens of a ${r.T}-token verify step`);
    const T = r.T;
    r.T = 0;
    if (n === T) return;
    const { k, Hv, dk, dv, K, C } = this;
    const nk = this.tiled ? Hv : this.Hk;
    state.conv.set(r.conv);
    state.recurrent.set(r.recurrent);
    if (n === 0) return;
    k.causalConv1d({ x: r.rows.mixed.subarray(0, n * C), weight: this.convWeight, state: state.conv, T: n, C, K, out: ws.get("dn.replay_conv", n * C) });
    const { q, k: kk, v, g, beta } = r.rows;
    k.deltaRuleRecurrent({
      q: q.subarray(0, n * nk * dk),
      k: kk.subarray(0, n * nk * dk),
      v: v.subarray(0, n * Hv * dv),
      g: g.subarray(0, n * Hv),
      beta: beta.subarray(0, n * Hv),
      state: state.recurrent,
      T: n,
      numKeyHeads: nk,
      numValueHeads: Hv,
      dk,
      dv,
      out: ws.get("dn.replay_o", n * Hv * dv),
    });
  }
}

/**
 * The grouped projection's rows per key head [q (dk) | k (dk) | v (rdv) | z (rdv)], for N tokens, regrouped into
 * conv channels [all q | all k | all v] (`mixed` [N, C]) and z [N, Hk rdv] (mlx-lm's fix_query_key_value_ordering).
 */
export function ungroupQKVZ(qkvz: Vec, N: number, Hk: number, dk: number, rdv: number, mixed: Vec, z: Vec): void {
  const C = 2 * Hk * dk + Hk * rdv;
  const group = 2 * dk + 2 * rdv;
  for (let t = 0; t < N; t++) {
    for (let h = 0; h < Hk; h++) {
      const src = qkvz.subarray((t * Hk + h) * group, (t * Hk + h + 1) * group);
      mixed.set(src.subarray(0, dk), t * C + h * dk);
      mixed.set(src.subarray(dk, 2 * dk), t * C + Hk * dk + h * dk);
      mixed.set(src.subarray(2 * dk, 2 * dk + rdv), t * C + 2 * Hk * dk + h * rdv);
      z.set(src.subarray(2 * dk + rdv, group), (t * Hk + h) * rdv);
    }
  }
}

/** The grouped projection's rows per key head [b (r) | a (r)], for N tokens, as b and a [N, Hk r] per value head. */
export function ungroupBA(ba: Vec, N: number, Hk: number, r: number, b: Vec, a: Vec): void {
  const Hv = Hk * r;
  for (let t = 0; t < N; t++) {
    for (let h = 0; h < Hk; h++) {
      for (let j = 0; j < r; j++) {
        b[t * Hv + h * r + j] = ba[t * 2 * Hv + h * 2 * r + j];
        a[t * Hv + h * r + j] = ba[t * 2 * Hv + h * 2 * r + r + j];
      }
    }
  }
}

/** Key-head rows x [N, Hk, d] repeated for tiled value heads: out [N, Hv, d], value head h gets key head h mod Hk. */
export function tileKeyHeads(x: Vec, N: number, Hk: number, Hv: number, d: number, out: Vec): Vec {
  for (let t = 0; t < N; t++) {
    for (let h = 0; h < Hv; h++) out.set(x.subarray((t * Hk + (h % Hk)) * d, (t * Hk + (h % Hk) + 1) * d), (t * Hv + h) * d);
  }
  return out;
}
