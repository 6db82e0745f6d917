/** Randomly configured tiny Qwen3-Next models with random weights held in memory (no files). */
import fc from "fast-check";
import { parseConfig, type Qwen3NextConfig } from "../../src/config.js";
import { f32ArrayToBf16 } from "../../src/io/dtype.js";
import type { Weight, WeightDType } from "../../src/kernels/types.js";
import { expectedTensors } from "../../src/loading/expected.js";
import type { WeightSource } from "../../src/model/weights.js";
import { rng, uniform } from "./random.js";

/** The shape of a small but arbitrary model. */
const tinyShape = fc.record({
    layers: fc.integer({ min: 1, max: 5 }),
    interval: fc.integer({ min: 1, max: 3 }),
    hidden: fc.integer({ min: 4, max: 12 }).map((x) => 2 * x),
    kvHeads: fc.integer({ min: 1, max: 2 }),
    group: fc.integer({ min: 1, max: 3 }),
    headDim: fc.constantFrom(8, 16),
    partial: fc.constantFrom(0.25, 0.5, 1),
    keyHeads: fc.integer({ min: 1, max: 2 }),
    ratio: fc.integer({ min: 1, max: 3 }),
    dk: fc.integer({ min: 2, max: 6 }),
    dv: fc.integer({ min: 2, max: 6 }),
    kernel: fc.integer({ min: 1, max: 4 }),
    sparseStep: fc.integer({ min: 1, max: 2 }),
    mlpOnly: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 2 }),
    experts: fc.integer({ min: 1, max: 6 }),
    topKFrac: fc.double({ min: 0, max: 1, noNaN: true }),
    normTopK: fc.boolean(),
    shared: fc.constantFrom(0, 6),
    tied: fc.boolean(),
    mtp: fc.constantFrom(0, 1),
    yarn: fc.boolean(),
    vocab: fc.integer({ min: 16, max: 40 }),
    bias: fc.boolean(),
  });
type TinyShape = typeof tinyShape extends fc.Arbitrary<infer T> ? T : never;

/** A raw config.json object for a small but arbitrary Qwen3-Next. */
export const tinyConfig = tinyShape.map((c) => ({
    model_type: "qwen3_next",
    vocab_size: c.vocab,
    hidden_size: c.hidden,
    intermediate_size: 10,
    num_hidden_layers: c.layers,
    num_attention_heads: c.kvHeads * c.group,
    num_key_value_heads: c.kvHeads,
    head_dim: c.headDim,
    rope_theta: 10000,
    partial_rotary_factor: c.partial,
    rope_scaling: c.yarn ? { rope_type: "yarn", factor: 4, original_max_position_embeddings: 16 } : null,
    max_position_embeddings: 256,
    linear_conv_kernel_dim: c.kernel,
    linear_key_head_dim: c.dk,
    linear_value_head_dim: c.dv,
    linear_num_key_heads: c.keyHeads,
    linear_num_value_heads: c.keyHeads * c.ratio,
    decoder_sparse_step: c.sparseStep,
    mlp_only_layers: [...new Set(c.mlpOnly.filter((i) => i < c.layers))],
    num_experts: c.experts,
    num_experts_per_tok: 1 + Math.floor(c.topKFrac * (c.experts - 1)),
    norm_topk_prob: c.normTopK,
    moe_intermediate_size: 6,
    shared_expert_intermediate_size: c.shared,
    full_attention_interval: c.interval,
    tie_word_embeddings: c.tied,
    mtp_num_hidden_layers: c.mtp,
    attention_bias: c.bias,
  }));

/**
 * A raw config.json object for a small but arbitrary Qwen3.5 (dense) or Qwen3.5-MoE: nested text_config, RoPE in
 * rope_parameters with a multimodal section, split DeltaNet projections; every layer dense, or every layer MoE.
 */
export const tinyQwen35Config = fc.tuple(tinyShape, fc.boolean()).map(([c, moe]: [TinyShape, boolean]) => {
  const half = (c.headDim * c.partial) / 2;
  const a = Math.floor(half / 3);
  return {
    model_type: moe ? "qwen3_5_moe" : "qwen3_5",
    tie_word_embeddings: c.tied,
    text_config: {
      model_type: moe ? "qwen3_5_moe_text" : "qwen3_5_text",
      vocab_size: c.vocab,
      hidden_size: c.hidden,
      intermediate_size: 10,
      num_hidden_layers: c.layers,
      num_attention_heads: c.kvHeads * c.group,
      num_key_value_heads: c.kvHeads,
      head_dim: c.headDim,
      rope_parameters: {
        rope_type: c.yarn ? "yarn" : "default",
        rope_theta: 10000,
        partial_rotary_factor: c.partial,
        mrope_section: [half - 2 * a, a, a],
        mrope_interleaved: true,
        ...(c.yarn ? { factor: 4, original_max_position_embeddings: 16 } : {}),
      },
      max_position_embeddings: 256,
      linear_conv_kernel_dim: c.kernel,
      linear_key_head_dim: c.dk,
      linear_value_head_dim: c.dv,
      linear_num_key_heads: c.keyHeads,
      linear_num_value_heads: c.keyHeads * c.ratio,
      full_attention_interval: c.interval,
      mtp_num_hidden_layers: c.mtp,
      attention_bias: c.bias,
      ...(moe
        ? {
            num_experts: c.experts,
            num_experts_per_tok: 1 + Math.floor(c.topKFrac * (c.experts - 1)),
            moe_intermediate_size: 6,
            shared_expert_intermediate_size: c.shared,
          }
        : {}),
    },
  };
});

/** Either family. */
export const anyTinyConfig = fc.oneof(tinyConfig, tinyQwen35Config);

/** Random weights for every tensor the config needs, stored as `dtype`. */
export function randomWeights(cfg: Qwen3NextConfig, seed: number, dtype: WeightDType = "F64"): { config: Qwen3NextConfig } & WeightSource {
  const rand = rng(seed);
  const weights = new Map<string, Weight>();
  for (const { name, shape } of expectedTensors(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    // Matrices ~ U(-1, 1) / sqrt(fan_in) keep activations O(1); norm weights near 0 (zero-centred norms).
    const values = name.endsWith("A_log") || name.endsWith("dt_bias")
      ? uniform(rand, n, -1, 1)
      : shape.length === 1
        ? uniform(rand, n, -0.2, 0.2)
        : uniform(rand, n, -1, 1).map((x) => x / Math.sqrt(shape[shape.length - 1]));
    const data = dtype === "BF16" ? f32ArrayToBf16(values) : dtype === "F32" ? Float32Array.from(values) : values;
    weights.set(name, { name, dtype, shape, data });
  }
  return {
    config: cfg,
    get(name) {
      const w = weights.get(name);
      if (!w) throw new Error(`missing tensor ${name}`);
      return w;
    },
    has: (name) => weights.has(name),
  };
}

export function parseTiny(raw: object): Qwen3NextConfig {
  return parseConfig(raw, "random config");
}

/**
 * Row r of the split projections, as a row of the grouped ones (the layout of the Qwen3.5 fixtures' README,
 * written out index by index): in_proj_qkv = [all q; all k; all v] with v in value-head order, in_proj_z in
 * value-head order, in_proj_b / in_proj_a per value head; grouped per key head h: qkvz = [q_h; k_h; v_h; z_h]
 * (dk, dk, r dv, r dv rows), ba = [b_h; a_h] (r, r rows).
 */
export function groupedRowOf(split: "qkv" | "z" | "b" | "a", row: number, c: Qwen3NextConfig): { grouped: "qkvz" | "ba"; row: number } {
  const Hk = c.linear_num_key_heads;
  const dk = c.linear_key_head_dim;
  const r = c.linear_num_value_heads / Hk;
  const rdv = r * c.linear_value_head_dim;
  const group = 2 * dk + 2 * rdv;
  if (split === "b" || split === "a") {
    const h = Math.floor(row / r);
    return { grouped: "ba", row: h * 2 * r + (split === "a" ? r : 0) + (row % r) };
  }
  if (split === "z") return { grouped: "qkvz", row: Math.floor(row / rdv) * group + 2 * dk + rdv + (row % rdv) };
  if (row < Hk * dk) return { grouped: "qkvz", row: Math.floor(row / dk) * group + (row % dk) };
  if (row < 2 * Hk * dk) return { grouped: "qkvz", row: Math.floor((row - Hk * dk) / dk) * group + dk + (row % dk) };
  const v = row - 2 * Hk * dk;
  return { grouped: "qkvz", row: Math.floor(v / rdv) * group + 2 * dk + (v % rdv) };
}

const SPLIT = /^(.*\.linear_attn)\.in_proj_(qkv|z|b|a)\.weight$/;

/**
 * The same weights as `src` (grouped DeltaNet projections) for a config in another projection form: every
 * split projection gathered row by row from the grouped one (`groupedRowOf`); everything else as it is.
 */
export function withProjections(
  src: { config: Qwen3NextConfig } & WeightSource,
  form: Qwen3NextConfig["deltanet_projections"],
): { config: Qwen3NextConfig } & WeightSource {
  const config = { ...src.config, deltanet_projections: form };
  const made = new Map<string, Weight>();
  const get = (name: string): Weight => {
    const m = SPLIT.exec(name);
    if (!m) return src.get(name);
    if (!made.has(name)) {
      const [, prefix, which] = m;
      const part = which as "qkv" | "z" | "b" | "a";
      const H = config.hidden_size;
      const C = 2 * config.linear_num_key_heads * config.linear_key_head_dim + config.linear_num_value_heads * config.linear_value_head_dim;
      const rows = part === "qkv" ? C : part === "z" ? config.linear_num_value_heads * config.linear_value_head_dim : config.linear_num_value_heads;
      const first = src.get(`${prefix}.in_proj_${groupedRowOf(part, 0, config).grouped}.weight`);
      const data = new (first.data.constructor as new (n: number) => Float64Array)(rows * H);
      for (let i = 0; i < rows; i++) {
        const g = groupedRowOf(part, i, config);
        const w = src.get(`${prefix}.in_proj_${g.grouped}.weight`);
        data.set(w.data.subarray(g.row * H, (g.row + 1) * H) as Float64Array, i * H);
      }
      made.set(name, { name, dtype: first.dtype, shape: [rows, H], data });
    }
    return made.get(name)!;
  };
  return { config, get, has: (name) => SPLIT.test(name) || src.has(name) };
}

/**
 * The same weights as `src` (split projections, value heads grouped by key head) with the value heads renumbered
 * in the tiled order of llama.cpp's qwen35 GGUF files: tiled head j = i Hk + kh is grouped head kh r + i. Every
 * per-value-head block moves: v rows of in_proj_qkv, in_proj_z rows, in_proj_b / in_proj_a rows, the v channels
 * of conv1d, A_log, dt_bias, and the columns of out_proj.
 */
export function withTiledValueHeads(src: { config: Qwen3NextConfig } & WeightSource): { config: Qwen3NextConfig } & WeightSource {
  const c = src.config;
  const config = { ...c, deltanet_projections: { ...c.deltanet_projections, valueHeads: "tiled" as const } };
  const Hk = c.linear_num_key_heads;
  const Hv = c.linear_num_value_heads;
  const r = Hv / Hk;
  const dk = c.linear_key_head_dim;
  const dv = c.linear_value_head_dim;
  const groupedOf = (j: number) => (j % Hk) * r + Math.floor(j / Hk);
  const made = new Map<string, Weight>();
  /** Rows [offset + j w, offset + (j + 1) w) of tiled head j from grouped head groupedOf(j), rows of `cols` values. */
  const permuteRows = (w: Weight, offset: number, width: number, cols: number): Weight => {
    const data = (w.data as Float64Array).slice();
    for (let j = 0; j < Hv; j++) {
      const from = (offset + groupedOf(j) * width) * cols;
      data.set((w.data as Float64Array).subarray(from, from + width * cols), (offset + j * width) * cols);
    }
    return { ...w, data };
  };
  const get = (name: string): Weight => {
    const m = /\.linear_attn\.(in_proj_qkv\.weight|in_proj_z\.weight|in_proj_b\.weight|in_proj_a\.weight|conv1d\.weight|A_log|dt_bias|out_proj\.weight)$/.exec(name);
    if (!m) return src.get(name);
    if (!made.has(name)) {
      const w = src.get(name);
      const cols = w.shape.length === 1 ? 1 : w.shape[w.shape.length - 1];
      let out: Weight;
      if (m[1] === "in_proj_qkv.weight") out = permuteRows(w, 2 * Hk * dk, dv, cols);
      else if (m[1] === "conv1d.weight") out = permuteRows(w, 2 * Hk * dk, dv, cols);
      else if (m[1] === "in_proj_z.weight") out = permuteRows(w, 0, dv, cols);
      else if (m[1] === "out_proj.weight") {
        const [H, I] = w.shape;
        const data = (w.data as Float64Array).slice();
        for (let row = 0; row < H; row++) {
          for (let j = 0; j < Hv; j++) {
            for (let e = 0; e < dv; e++) data[row * I + j * dv + e] = (w.data as Float64Array)[row * I + groupedOf(j) * dv + e];
          }
        }
        out = { ...w, data };
      } else out = permuteRows(w, 0, 1, cols);
      made.set(name, out);
    }
    return made.get(name)!;
  };
  return { config, get, has: (name) => src.has(name) };
}
