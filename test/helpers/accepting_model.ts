/**
 * A checkpoint whose MTP drafts are always right, built from a config (any width):
 *   - every mixer and MLP output projection (`out_proj`, `o_proj`, `down_proj`, biases too) is zero, so each
 *     layer adds nothing and the final hidden state is norm(embed(x)) (norm weights zero: scale 1);
 *   - embedding rows are random unit vectors E_x, and lm_head row y is E_{y-1}: the logits of x peak at
 *     succ(x) = x + 1 (mod vocab), so greedy decoding counts up;
 *   - the MTP `fc` passes the next token's (normed) embedding through ([I | 0]) and its layer adds nothing,
 *     so the head at (h_t, x_{t+1}) proposes succ(x_{t+1}), the model's own next token, at every chain step.
 * With `noise` > 0 every tensor also gets noise * (the random model's value): drafts are then right only
 * sometimes, which makes for every accept/reject pattern.
 */
import type { Qwen3NextConfig } from "../../src/config.js";
import { f32ArrayToBf16 } from "../../src/io/dtype.js";
import type { Weight, WeightDType } from "../../src/kernels/types.js";
import { expectedTensors } from "../../src/loading/expected.js";
import type { WeightSource } from "../../src/model/weights.js";
import { rng } from "./random.js";

/** The token greedy decoding produces after x on an accepting checkpoint. */
export const successor = (x: number, vocab: number): number => (x + 1) % vocab;

/** Tensors that are zero in an accepting checkpoint. */
export function isZeroed(name: string): boolean {
  return /(out_proj|o_proj|down_proj)\.(weight|bias)$/.test(name) || (name.includes("norm") && !name.includes("linear_attn.norm"));
}

/**
 * Rows [r0, r1) of tensor `name` (shape [rows, cols], or [n] as one row) of the accepting checkpoint without
 * noise, into `out`; false for the tensors it leaves random (everything not listed above).
 */
export function acceptingRows(cfg: Qwen3NextConfig, name: string, shape: readonly number[], r0: number, r1: number, out: Float32Array | Float64Array, seed = 1): boolean {
  const cols = shape.length > 1 ? shape[shape.length - 1] : shape[0];
  const V = cfg.vocab_size;
  const H = cfg.hidden_size;
  if (isZeroed(name)) {
    out.fill(0, 0, (r1 - r0) * cols);
    return true;
  }
  const embedRow = (x: number, dst: Float32Array | Float64Array) => {
    const rand = rng((seed * 0x3c6ef372) ^ Math.imul(x + 1, 0x9e3779b1));
    let ss = 0;
    for (let i = 0; i < H; i++) ss += (dst[i] = 2 * rand() - 1) ** 2;
    const s = 1 / Math.sqrt(ss);
    for (let i = 0; i < H; i++) dst[i] *= s;
  };
  if (name === "model.embed_tokens.weight" || name === "lm_head.weight") {
    for (let r = r0; r < r1; r++) {
      const x = name === "lm_head.weight" ? (r - 1 + V) % V : r;
      embedRow(x, out.subarray((r - r0) * H, (r - r0 + 1) * H));
    }
    return true;
  }
  if (name === "mtp.fc.weight") {
    out.fill(0, 0, (r1 - r0) * cols);
    for (let r = r0; r < r1; r++) out[(r - r0) * cols + r] = 1;
    return true;
  }
  return false;
}

/** The accepting checkpoint of `cfg` (untied: lm_head differs from the embedding), held in memory. */
export function acceptingWeights(cfg: Qwen3NextConfig, seed: number, opts: { noise?: number; dtype?: WeightDType } = {}): { config: Qwen3NextConfig } & WeightSource {
  if (cfg.tie_word_embeddings) throw new Error("an accepting checkpoint needs an untied lm_head (tie_word_embeddings false)");
  const noise = opts.noise ?? 0;
  const dtype = opts.dtype ?? "F64";
  const rand = rng(seed);
  const weights = new Map<string, Weight>();
  for (const { name, shape } of expectedTensors(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const rows = shape.length > 1 ? shape[0] : 1;
    const base = new Float64Array(n);
    const set = acceptingRows(cfg, name, shape, 0, rows, base, seed);
    const scale = shape.length > 1 ? 1 / Math.sqrt(shape[shape.length - 1]) : 0.2;
    for (let i = 0; i < n; i++) {
      const r = (2 * rand() - 1) * scale;
      base[i] = set ? base[i] + noise * r : name.endsWith("A_log") || name.endsWith("dt_bias") ? r / scale : r;
    }
    const data = dtype === "BF16" ? f32ArrayToBf16(base) : dtype === "F32" ? Float32Array.from(base) : base;
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
