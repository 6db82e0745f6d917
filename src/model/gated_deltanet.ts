/**
 * Qwen3NextGatedDeltaNet (`linear_attn`), with r = value_heads / key_heads:
 *   in_proj_qkvz(x) per key head = [q (dk) | k (dk) | v (r dv) | z (r dv)];  in_proj_ba(x) per key head = [b (r) | a (r)]
 *   [q | k | v] = silu(conv1d([all q | all k | all v]))      (depthwise causal, width linear_conv_kernel_dim)
 *   q = l2norm(q) / sqrt(dk);  k = l2norm(k)                  (l2norm(x) = x / sqrt(sum(x^2) + 1e-6))
 *   beta = sigmoid(b);  g = -exp(A_log) softplus(a + dt_bias)
 *   per value head h (key head h / r), state S [dk, dv]:  S = S exp(g_t);  S += k_t (beta_t (v_t - S^T k_t))^T;  o_t = S^T q_t
 *   y = out_proj(norm(o, z)),  norm(o, z) = o / sqrt(mean(o^2) + eps) * w * silu(z)  (per head, over dv)
 * Prefill (T > 1) uses the chunked form of the delta rule, decode (T = 1) the recurrent step; both equal.
 */
import type { Qwen3NextConfig } from "../config.js";
import { sigmoid, softplus } from "../kernels/ts/elementwise.js";
import type { Kernels, Vec, Weight } from "../kernels/types.js";
import type { Batch } from "./batch.js";
import { Qwen3NextRMSNormGated } from "./rms_norm.js";
import { DeltaNetState } from "./state.js";
import { param, type WeightSource } from "./weights.js";

/** Chunk length of the chunked delta rule during prefill (as in transformers and the FLA kernels). */
export const DELTA_RULE_CHUNK = 64;

export class Qwen3NextGatedDeltaNet {
  readonly in_proj_qkvz: Weight;
  readonly in_proj_ba: Weight;
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

  constructor(private readonly k: Kernels, src: WeightSource, prefix: string, cfg: Qwen3NextConfig) {
    const hidden = cfg.hidden_size;
    this.Hk = cfg.linear_num_key_heads;
    this.Hv = cfg.linear_num_value_heads;
    this.dk = cfg.linear_key_head_dim;
    this.dv = cfg.linear_value_head_dim;
    this.K = cfg.linear_conv_kernel_dim;
    const { Hk, Hv, dk, dv, K } = this;
    this.C = 2 * Hk * dk + Hv * dv;
    this.in_proj_qkvz = param(src, `${prefix}.in_proj_qkvz.weight`, [2 * Hk * dk + 2 * Hv * dv, hidden]);
    this.in_proj_ba = param(src, `${prefix}.in_proj_ba.weight`, [2 * Hv, hidden]);
    this.out_proj = param(src, `${prefix}.out_proj.weight`, [hidden, Hv * dv]);
    this.convWeight = k.toVec(param(src, `${prefix}.conv1d.weight`, [this.C, 1, K]));
    this.negA = k.toVec(param(src, `${prefix}.A_log`, [Hv]));
    this.negA.forEach((x, h) => (this.negA[h] = -Math.exp(x)));
    this.dtBias = k.toVec(param(src, `${prefix}.dt_bias`, [Hv]));
    this.norm = new Qwen3NextRMSNormGated(k, src, `${prefix}.norm.weight`, dv, cfg.rms_norm_eps);
  }

  /** Zero conv and recurrent state for a new sequence. */
  newState(): DeltaNetState {
    return new DeltaNetState(this.k.vec(this.C * (this.K - 1)), this.k.vec(this.Hv * this.dk * this.dv));
  }

  /** x [N, hidden] -> out [N, hidden]; `states[s]` is segment s's state, advanced in place. */
  forward(x: Vec, batch: Batch, states: DeltaNetState[], out: Vec): void {
    const { k, Hk, Hv, dk, dv, K, C } = this;
    const { N, ws } = batch;
    const r = Hv / Hk;
    const qkvz = ws.get("dn.qkvz", N * (2 * Hk * dk + 2 * Hv * dv));
    const ba = ws.get("dn.ba", N * 2 * Hv);
    k.linear(this.in_proj_qkvz, x, N, qkvz);
    k.linear(this.in_proj_ba, x, N, ba);

    // Regroup the per-key-head projections into conv channels [all q | all k | all v], z, b and a.
    const mixed = ws.get("dn.mixed", N * C);
    const z = ws.get("dn.z", N * Hv * dv);
    const b = ws.get("dn.b", N * Hv);
    const a = ws.get("dn.a", N * Hv);
    const group = 2 * dk + 2 * r * dv;
    for (let t = 0; t < N; t++) {
      for (let h = 0; h < Hk; h++) {
        const src = qkvz.subarray((t * Hk + h) * group, (t * Hk + h + 1) * group);
        mixed.set(src.subarray(0, dk), t * C + h * dk);
        mixed.set(src.subarray(dk, 2 * dk), t * C + Hk * dk + h * dk);
        mixed.set(src.subarray(2 * dk, 2 * dk + r * dv), t * C + 2 * Hk * dk + h * r * dv);
        z.set(src.subarray(2 * dk + r * dv, group), (t * Hk + h) * r * dv);
        for (let j = 0; j < r; j++) {
          b[t * Hv + h * r + j] = ba[t * 2 * Hv + h * 2 * r + j];
          a[t * Hv + h * r + j] = ba[t * 2 * Hv + h * 2 * r + r + j];
        }
      }
    }

    const conv = ws.get("dn.conv", N * C);
    batch.segments.forEach((seg, s) => {
      const rows = (buf: Vec) => buf.subarray(seg.start * C, (seg.start + seg.T) * C);
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
        q: rows(q, Hk * dk),
        k: rows(kk, Hk * dk),
        v: rows(v, Hv * dv),
        g: rows(g, Hv),
        beta: rows(beta, Hv),
        state: states[s].recurrent,
        T: seg.T,
        numKeyHeads: Hk,
        numValueHeads: Hv,
        dk,
        dv,
        out: rows(o, Hv * dv),
      };
      if (seg.T > 1) k.deltaRuleChunked(args, DELTA_RULE_CHUNK);
      else k.deltaRuleRecurrent(args);
    });

    batch.trace?.rows("deltanet.core", [Hv, dv], o);
    this.norm.forward(o, z, o);
    k.linear(this.out_proj, o, N, out);
    batch.trace?.rows("deltanet.out", [out.length / N], out);
  }
}
