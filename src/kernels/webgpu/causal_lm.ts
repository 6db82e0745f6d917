/**
 * The whole Qwen3-Next forward on the WebGPU device, one asynchronous call per step.
 *
 * Transitional: the model (src/model/) drives synchronous kernels over host arrays, so it cannot hold device
 * tensors or wait for the device. Until the seam redesign (issue 11 part 1: named kernel calls, opaque tensors,
 * `await model.forward`) lets src/model/ run on this backend directly, this class restates the model's
 * equations (the headers of src/model/*.ts, which stay the definition) over device tensors. It takes its
 * parameters from the same declaration (`qwen3NextParams`) and keeps every activation and state on the device:
 * a step reads back the logits only, plus the expert ids of each MoE layer (the host picks the expert weights
 * to run), plus what a trace asks for.
 *
 * Not covered here: batched steps of several sequences, speculative drafting, verify and rollback (the MTP head
 * runs on every step's pairs, as `forward` with `mtp` or a trace does on the CPU).
 */
import { rotaryDim, type Qwen3NextConfig } from "../../config.js";
import { weightParams } from "../../model/params.js";
import { qwen3NextParams, type Qwen3NextParams } from "../../model/qwen3_next_for_causal_lm.js";
import { DELTA_RULE_CHUNK } from "../../model/gated_deltanet.js";
import { ropeAttentionScaling, ropeInvFreq } from "../../model/rotary_embedding.js";
import { ropeTables } from "../ts/rope.js";
import type { Trace } from "../../model/trace.js";
import type { WeightSource } from "../../model/weights.js";
import { widenWeight } from "../host_weights.js";
import type { Weight } from "../types.js";
import type { Device, Tensor } from "./device.js";
import type { Residual, WebGpuKernels } from "./kernels.js";

type Layers = Qwen3NextParams<Weight>["model"]["layers"];
type LayerW = Layers[number];
type MlpW = { gate_proj: Weight; up_proj: Weight; down_proj: Weight };

type KV = { k: Tensor; v: Tensor; length: number };

/**
 * A sequence's state on the device: per layer a KV cache or a DeltaNet conv + recurrent state; for the MTP head
 * its layers' KV caches and the final hidden states waiting for their next token (src/model/mtp.ts).
 */
export class WebGpuState {
  position = 0;
  mtpPending: { hidden: Tensor; rows: number; next: number[] } | null = null;
  constructor(
    private readonly dev: Device,
    readonly layers: Array<{ conv: Tensor; rec: Tensor } | KV>,
    readonly mtp: KV[],
  ) {}

  /** Gives the state's device memory back (the state is not used again). */
  free(): void {
    for (const l of [...this.layers, ...this.mtp]) for (const t of "rec" in l ? [l.conv, l.rec] : [l.k, l.v]) this.dev.release(t);
    if (this.mtpPending) this.dev.release(this.mtpPending.hidden);
    this.mtpPending = null;
  }
}

const shifted = (t: Tensor, by: number): Tensor => ({ offset: t.offset + by, n: t.n - by });

export class WebGpuCausalLM {
  private readonly w: Qwen3NextParams<Weight>;
  private readonly lmHead: Weight;
  /** RoPE: inverse frequencies, attention scaling, rotated dims. */
  private readonly rope: { invFreq: Float64Array; scaling: number; rotaryDim: number };
  /** Small parameters on the device, by weight (norm scales already 1 + w). */
  private readonly small = new Map<string, Tensor>();
  /** Tensors of the running step, released at its end. */
  private scratch: Tensor[] = [];

  constructor(readonly config: Qwen3NextConfig, readonly g: WebGpuKernels, src: WeightSource) {
    this.w = qwen3NextParams(weightParams(src), config);
    this.lmHead = this.w.lm_head ?? this.w.model.embed_tokens;
    this.rope = { invFreq: ropeInvFreq(config.rope, rotaryDim(config)), scaling: ropeAttentionScaling(config.rope), rotaryDim: rotaryDim(config) };
  }

  /** Empty state: zero conv and recurrent states, empty KV caches. */
  newState(): WebGpuState {
    const c = this.config;
    const C = 2 * c.linear_num_key_heads * c.linear_key_head_dim + c.linear_num_value_heads * c.linear_value_head_dim;
    return new WebGpuState(
      this.g.dev,
      this.w.model.layers.map((l) =>
        l.linear_attn
          ? {
              conv: this.g.dev.alloc(C * (c.linear_conv_kernel_dim - 1)),
              rec: this.g.dev.alloc(c.linear_num_value_heads * c.linear_key_head_dim * c.linear_value_head_dim),
            }
          : this.newCache(),
      ),
      (this.w.mtp?.layers ?? []).map(() => this.newCache()),
    );
  }

  private newCache(): KV {
    const row = this.config.num_key_value_heads * this.config.head_dim;
    return { k: this.g.dev.alloc(16 * row), v: this.g.dev.alloc(16 * row), length: 0 };
  }

  /**
   * Runs `tokens` through the model, advancing `state`; resolves to logits [T, V] (the last row only with
   * lastOnly). A trace receives hidden.{i}, router.{i}.experts / weights, final_hidden, logits and, with an
   * MTP head, mtp_logits (the head runs with `mtp` or a trace, as on the CPU).
   */
  async forward(tokens: readonly number[], state: WebGpuState, opts: { lastOnly?: boolean; trace?: Trace; mtp?: boolean } = {}): Promise<Float32Array> {
    const c = this.config;
    const { hidden_size: H, vocab_size: V } = c;
    const T = tokens.length;
    if (T === 0) throw new Error("no tokens given, expected at least one token id");
    const { g } = this;
    const trace = opts.trace;
    try {
      const h: Residual = { hi: this.tmp(T * H), lo: this.tmp(T * H) };
      tokens.forEach((id, t) => g.embedding(this.w.model.embed_tokens, id, { offset: h.hi.offset + t * H, n: H }));
      const rope = this.ropeAt(state.position, T);
      for (const [i, layer] of this.w.model.layers.entries()) {
        if (trace) trace.layer = i;
        await this.decoderLayer(layer, h, T, state.layers[i], rope, trace);
        if (trace) {
          const [hi, lo] = [await g.dev.read(h.hi), await g.dev.read(h.lo)];
          trace.appendHost(`hidden.${i}`, [H], Float64Array.from(hi, (v, j) => v + lo[j]), "float");
        }
      }
      if (trace) trace.layer = null;
      const normed = this.tmp(T * H);
      g.rmsNorm(h.hi, this.normScale(this.w.model.norm), c.rms_norm_eps, H, normed);
      const rows = opts.lastOnly && !trace ? 1 : T;
      const logits = this.tmp(rows * V);
      g.linear(this.lmHead, shifted(normed, (T - rows) * H), rows, logits);
      const out = await g.dev.read(logits);
      if (trace) {
        trace.appendHost("input_ids", [], tokens, "int");
        trace.appendHost("final_hidden", [H], await g.dev.read(normed), "float");
        trace.appendHost("logits", [V], out, "float");
      }
      state.position += T;
      if (this.w.mtp && (opts.mtp || trace)) await this.mtpStep(normed, tokens, state, trace);
      return opts.lastOnly ? out.subarray((rows - 1) * V) : out;
    } finally {
      for (const t of this.scratch) g.dev.release(t);
      this.scratch = [];
    }
  }

  /** RoPE tables for positions p0 .. p0 + T - 1 (angles in float64 on the host). */
  private ropeAt(p0: number, T: number): { cos: Tensor; sin: Tensor } {
    const half = this.rope.rotaryDim / 2;
    const [cos, sin] = [new Float64Array(T * half), new Float64Array(T * half)];
    ropeTables(this.rope.invFreq, this.rope.scaling, Array.from({ length: T }, (_, t) => p0 + t), cos, sin);
    return { cos: this.upload(cos), sin: this.upload(sin) };
  }

  /** src/model/decoder_layer.ts: h += mixer(input_layernorm(h)); h += mlp(post_attention_layernorm(h)). */
  private async decoderLayer(layer: LayerW, h: Residual, T: number, st: WebGpuState["layers"][number], rope: { cos: Tensor; sin: Tensor }, trace?: Trace): Promise<void> {
    const { g } = this;
    const c = this.config;
    const H = c.hidden_size;
    const normed = this.tmp(T * H);
    const y = this.tmp(T * H);
    g.rmsNorm(h.hi, this.normScale(layer.input_layernorm), c.rms_norm_eps, H, normed);
    if ("rec" in st) this.deltaNet(layer.linear_attn!, normed, T, st, y);
    else this.attention(layer.self_attn!, normed, T, st, rope, y);
    g.axpyResidual(1, y, h);
    g.rmsNorm(h.hi, this.normScale(layer.post_attention_layernorm), c.rms_norm_eps, H, normed);
    if (layer.mlp.moe) await this.moe(layer.mlp.moe, normed, T, y, trace);
    else this.mlp(layer.mlp.dense!, normed, T, y);
    g.axpyResidual(1, y, h);
  }

  /**
   * src/model/mtp.ts: the final hidden states [T, H] of `tokens` wait for their next token; every pair
   * (h_t, x_{t+1}) now complete runs through the head: u = fc([pre_fc_norm_embedding(embed(x_{t+1})) |
   * pre_fc_norm_hidden(h_t)]), u = mtp.layers.0(u) at position t, out = norm(u); traced as mtp_logits.
   */
  private async mtpStep(hidden: Tensor, tokens: readonly number[], state: WebGpuState, trace?: Trace): Promise<void> {
    const { g } = this;
    const c = this.config;
    const w = this.w.mtp!;
    const { hidden_size: H, vocab_size: V } = c;
    const T = tokens.length;
    // Observe: append the new hidden states; the first token pairs with the previous call's last one.
    const p = state.mtpPending;
    const rows = p?.rows ?? 0;
    let buf = p?.hidden;
    if (!buf || buf.n < (rows + T) * H) {
      const grown = g.dev.alloc(Math.max((rows + T) * H, 2 * (buf?.n ?? 0)));
      if (buf) {
        g.copy(buf, grown, 1, 1, rows * H, 0, 0, 0, 0);
        g.dev.release(buf);
      }
      buf = grown;
    }
    g.copy(hidden, shifted(buf, rows * H), 1, 1, T * H, 0, 0, 0, 0);
    const next = p?.next ?? [];
    if (p && rows > 0) next.push(tokens[0]);
    next.push(...tokens.slice(1));
    // Run the complete pairs.
    const n = next.length;
    if (n > 0) {
      const emb = this.tmp(n * H);
      next.forEach((id, t) => g.embedding(this.w.model.embed_tokens, id, { offset: emb.offset + t * H, n: H }));
      g.rmsNorm(emb, this.normScale(w.pre_fc_norm_embedding), c.rms_norm_eps, H, emb);
      const hid = this.tmp(n * H);
      g.rmsNorm({ offset: buf.offset, n: n * H }, this.normScale(w.pre_fc_norm_hidden), c.rms_norm_eps, H, hid);
      const cat = this.tmp(n * 2 * H);
      g.concatColumns([emb, hid], [H, H], cat);
      const u: Residual = { hi: this.tmp(n * H), lo: this.tmp(n * H) };
      g.linear(w.fc, cat, n, u.hi);
      const cache = state.mtp[0];
      await this.decoderLayer(w.layers[0], u, n, cache, this.ropeAt(cache.length, n));
      const out = this.tmp(n * H);
      g.rmsNorm(u.hi, this.normScale(w.norm), c.rms_norm_eps, H, out);
      if (trace) {
        const logits = this.tmp(n * V);
        g.linear(this.lmHead, out, n, logits);
        trace.appendHost("mtp_logits", [V], await g.dev.read(logits), "float");
      }
    }
    // What is left waiting: the hidden states whose next token is not known yet.
    const left = rows + T - n;
    g.copyTensor({ offset: buf.offset + n * H, n: left * H }, { offset: buf.offset, n: left * H });
    state.mtpPending = { hidden: buf, rows: left, next: [] };
  }

  private tmp(n: number): Tensor {
    const t = this.g.dev.alloc(n);
    this.scratch.push(t);
    return t;
  }

  private upload(x: ArrayLike<number>): Tensor {
    const t = this.g.dev.upload(x);
    this.scratch.push(t);
    return t;
  }

  /** A small parameter widened and resident (computed once): `f` maps the stored values (e.g. 1 + w). */
  private param(w: Weight, f: (x: number) => number = (x) => x): Tensor {
    const key = `${w.name}#${f.toString()}`;
    let t = this.small.get(key);
    if (!t) {
      t = this.g.dev.upload(widenWeight(w, "f64").map(f));
      this.small.set(key, t);
    }
    return t;
  }

  /** Qwen3NextRMSNorm's effective scale 1 + w. */
  private normScale(w: Weight): Tensor {
    return this.param(w, (x) => 1 + x);
  }

  /** src/model/gated_deltanet.ts over device tensors (chunked delta rule for prefill, the recurrent step for decode). */
  private deltaNet(w: NonNullable<LayerW["linear_attn"]>, x: Tensor, N: number, st: { conv: Tensor; rec: Tensor }, out: Tensor): void {
    const { g } = this;
    const c = this.config;
    const [Hk, Hv, dk, dv, K] = [c.linear_num_key_heads, c.linear_num_value_heads, c.linear_key_head_dim, c.linear_value_head_dim, c.linear_conv_kernel_dim];
    const r = Hv / Hk;
    const C = 2 * Hk * dk + Hv * dv;
    const mixed = this.tmp(N * C);
    const z = this.tmp(N * Hv * dv);
    const b = this.tmp(N * Hv);
    const a = this.tmp(N * Hv);
    if (w.in_proj_qkvz) {
      // Per key head [q (dk) | k (dk) | v (r dv) | z (r dv)] -> [all q | all k | all v] and z.
      const group = 2 * dk + 2 * r * dv;
      const qkvz = this.tmp(N * Hk * group);
      g.linear(w.in_proj_qkvz, x, N, qkvz);
      g.copy(qkvz, mixed, N, Hk, dk, Hk * group, group, C, dk);
      g.copy(shifted(qkvz, dk), shifted(mixed, Hk * dk), N, Hk, dk, Hk * group, group, C, dk);
      g.copy(shifted(qkvz, 2 * dk), shifted(mixed, 2 * Hk * dk), N, Hk, r * dv, Hk * group, group, C, r * dv);
      g.copy(shifted(qkvz, 2 * dk + r * dv), z, N, Hk, r * dv, Hk * group, group, Hv * dv, r * dv);
    } else {
      g.linear(w.in_proj_qkv!, x, N, mixed);
      g.linear(w.in_proj_z!, x, N, z);
    }
    if (w.in_proj_ba) {
      // Per key head [b (r) | a (r)].
      const ba = this.tmp(N * 2 * Hv);
      g.linear(w.in_proj_ba, x, N, ba);
      g.copy(ba, b, N, Hk, r, 2 * Hv, 2 * r, Hv, r);
      g.copy(shifted(ba, r), a, N, Hk, r, 2 * Hv, 2 * r, Hv, r);
    } else {
      g.linear(w.in_proj_b!, x, N, b);
      g.linear(w.in_proj_a!, x, N, a);
    }
    const conv = this.tmp(N * C);
    g.causalConv1d({ x: mixed, weight: this.param(w.conv1d), state: st.conv, T: N, C, K, out: conv });
    const q = this.tmp(N * Hk * dk);
    const kk = this.tmp(N * Hk * dk);
    const v = this.tmp(N * Hv * dv);
    g.copy(conv, q, N, 1, Hk * dk, C, 0, Hk * dk, 0);
    g.copy(shifted(conv, Hk * dk), kk, N, 1, Hk * dk, C, 0, Hk * dk, 0);
    g.copy(shifted(conv, 2 * Hk * dk), v, N, 1, Hv * dv, C, 0, Hv * dv, 0);
    g.l2Normalize(q, dk, 1e-6, 1 / Math.sqrt(dk));
    g.l2Normalize(kk, dk, 1e-6, 1);
    // Tiled value heads: value head h reads key head h mod Hk (one q/k head per value head).
    const tiled = c.deltanet_projections.valueHeads === "tiled" && Hv > Hk;
    const tile = (src: Tensor): Tensor => {
      const dst = this.tmp(N * Hv * dk);
      for (let j = 0; j < r; j++) g.copy(src, shifted(dst, j * Hk * dk), N, 1, Hk * dk, Hk * dk, 0, Hv * dk, 0);
      return dst;
    };
    const [qh, kh, nk] = tiled ? [tile(q), tile(kk), Hv] : [q, kk, Hk];
    const beta = this.tmp(N * Hv);
    const gg = this.tmp(N * Hv);
    g.gates(a, b, this.param(w.A_log), this.param(w.dt_bias), gg, beta);
    const o = this.tmp(N * Hv * dv);
    const args = { q: qh, k: kh, v, g: gg, beta, state: st.rec, T: N, numKeyHeads: nk, numValueHeads: Hv, dk, dv, out: o };
    if (N > 1) g.deltaRuleChunked(args, DELTA_RULE_CHUNK);
    else g.deltaRule(args);
    g.gatedRmsNorm(o, z, this.param(w.norm), c.rms_norm_eps, dv, o);
    g.linear(w.out_proj, o, N, out);
  }

  /** src/model/gated_attention.ts over device tensors; the KV cache grows by doubling. */
  private attention(
    w: NonNullable<LayerW["self_attn"]>,
    x: Tensor,
    N: number,
    cache: { k: Tensor; v: Tensor; length: number },
    rope: { cos: Tensor; sin: Tensor },
    out: Tensor,
  ): void {
    const { g } = this;
    const c = this.config;
    const [H, Hkv, d] = [c.num_attention_heads, c.num_key_value_heads, c.head_dim];
    const qg = this.tmp(N * H * 2 * d);
    const kk = this.tmp(N * Hkv * d);
    const vv = this.tmp(N * Hkv * d);
    g.linear(w.q_proj, x, N, qg);
    g.linear(w.k_proj, x, N, kk);
    g.linear(w.v_proj, x, N, vv);
    if (w.bias) {
      g.axpy(1, this.param(w.bias.q), qg);
      g.axpy(1, this.param(w.bias.k), kk);
      g.axpy(1, this.param(w.bias.v), vv);
    }
    // q_proj rows are per head [query (d) | gate (d)].
    const q = this.tmp(N * H * d);
    const gate = this.tmp(N * H * d);
    g.copy(qg, q, N * H, 1, d, 2 * d, 0, d, 0);
    g.copy(shifted(qg, d), gate, N * H, 1, d, 2 * d, 0, d, 0);
    g.rmsNorm(q, this.normScale(w.q_norm), c.rms_norm_eps, d, q);
    g.rmsNorm(kk, this.normScale(w.k_norm), c.rms_norm_eps, d, kk);
    const rd = this.rope.rotaryDim;
    g.rope(q, N, H, d, rd, rope.cos, rope.sin);
    g.rope(kk, N, Hkv, d, rd, rope.cos, rope.sin);
    const row = Hkv * d;
    const L = cache.length + N;
    if (L * row > cache.k.n) {
      for (const key of ["k", "v"] as const) {
        const grown = this.g.dev.alloc(Math.max(L, (2 * cache.k.n) / row) * row);
        g.copy(cache[key], grown, 1, 1, cache.length * row, 0, 0, 0, 0);
        this.g.dev.release(cache[key]);
        cache[key] = grown;
      }
    }
    g.copy(kk, shifted(cache.k, cache.length * row), 1, 1, N * row, 0, 0, 0, 0);
    g.copy(vv, shifted(cache.v, cache.length * row), 1, 1, N * row, 0, 0, 0, 0);
    cache.length = L;
    const o = this.tmp(N * H * d);
    g.attention({ q, k: cache.k, v: cache.v, T: N, L, numHeads: H, numKvHeads: Hkv, headDim: d, scale: 1 / Math.sqrt(d), out: o });
    g.sigmoidMul(o, gate);
    g.linear(w.o_proj, o, N, out);
    if (w.bias) g.axpy(1, this.param(w.bias.o), out);
  }

  /** src/model/mlp.ts: down(silu(gate(x)) * up(x)). */
  private mlp(w: MlpW, x: Tensor, N: number, out: Tensor): void {
    const I = w.gate_proj.shape[0];
    const gate = this.tmp(N * I);
    const up = this.tmp(N * I);
    this.g.linear(w.gate_proj, x, N, gate);
    this.g.linear(w.up_proj, x, N, up);
    this.g.siluMul(gate, up, gate);
    this.g.linear(w.down_proj, gate, N, out);
  }

  /**
   * src/model/sparse_moe_block.ts: routing on the device, the chosen expert ids read back (the host picks which
   * expert weights run), each expert over the rows routed to it, weighted rows added back on the device.
   */
  private async moe(w: NonNullable<LayerW["mlp"]["moe"]>, x: Tensor, N: number, out: Tensor, trace?: Trace): Promise<void> {
    const { g } = this;
    const c = this.config;
    const [H, E, k] = [c.hidden_size, c.num_experts, c.num_experts_per_tok];
    const logits = this.tmp(N * E);
    const experts = this.tmp(N * k);
    const weights = this.tmp(N * k);
    g.linear(w.gate, x, N, logits);
    g.router({ logits, T: N, numExperts: E, k, normalize: c.norm_topk_prob, experts, weights });
    const ids = await g.dev.readInts(experts);
    if (trace) {
      trace.rowsHost("router.experts", [k], ids, "int");
      trace.rowsHost("router.weights", [k], await g.dev.read(weights));
    }
    g.dev.fill(out, 0);
    const slotsOf: number[][] = Array.from({ length: E }, () => []);
    ids.forEach((e, slot) => slotsOf[e].push(slot));
    const xe = this.tmp(N * k * H);
    const ye = this.tmp(N * k * H);
    const rowIdx = this.tmp(N * k);
    const slotIdx = this.tmp(N * k);
    let at = 0; // where this expert's slots start in rowIdx / slotIdx
    for (const [e, slots] of slotsOf.entries()) {
      const n = slots.length;
      if (n === 0) continue;
      const rowsE = shifted(rowIdx, at);
      const slotsE = shifted(slotIdx, at);
      g.dev.writeInts(rowsE, slots.map((s) => Math.floor(s / k)));
      g.dev.writeInts(slotsE, slots);
      g.gatherRowsAt(x, rowsE, n, H, xe);
      this.mlp(w.experts[e], xe, n, ye);
      g.scatterAdd(ye, rowsE, weights, slotsE, n, H, out);
      at += n;
    }
    if (w.shared_expert && w.shared_expert_gate) {
      const gl = this.tmp(N);
      g.linear(w.shared_expert_gate, x, N, gl);
      this.mlp(w.shared_expert, x, N, ye);
      const gate = this.tmp(N * H);
      g.copy(gl, gate, N, H, 1, 1, 0, H, 1); // each row's gate logit across the row
      const shared = { offset: ye.offset, n: N * H };
      g.sigmoidMul(shared, gate);
      g.axpy(1, shared, out);
    }
  }
}
