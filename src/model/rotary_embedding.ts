/**
 * Rotary position embedding (Qwen3NextRotaryEmbedding): inverse frequencies and cos/sin per position.
 *   default:  inv_freq_j = theta^(-2j / rotary_dim),  j < rotary_dim / 2
 *   linear:   inv_freq_j / factor
 *   YaRN:     d(r) = rotary_dim ln(L / (2 pi r)) / (2 ln theta);  low = max(floor(d(beta_fast)), 0);
 *             high = min(ceil(d(beta_slow)), rotary_dim - 1);  ramp_j = clamp((j - low) / (high - low), 0, 1);
 *             inv_freq_j = (base_j / factor) ramp_j + base_j (1 - ramp_j);  cos and sin scaled by attention_factor
 *             (default 0.1 ln(factor) + 1).
 *   cos[p, j] = cos(p inv_freq_j) * scaling, sin likewise (half width; the rotate-half layout uses each twice).
 */
import type { RopeConfig } from "../config.js";
import type { Kernels, Tensor } from "../kernels/types.js";

export function ropeInvFreq(rope: RopeConfig, rotaryDim: number): Float64Array {
  const half = rotaryDim / 2;
  const base = Float64Array.from({ length: half }, (_, j) => rope.rope_theta ** (-(2 * j) / rotaryDim));
  if (rope.rope_type === "default") return base;
  if (rope.rope_type === "linear") return base.map((f) => f / rope.factor);
  const { low, high } = yarnBounds(rope, rotaryDim);
  return base.map((f, j) => {
    const ramp = Math.min(Math.max((j - low) / (high - low), 0), 1);
    return (f / rope.factor) * ramp + f * (1 - ramp);
  });
}

/** YaRN's correction range: dims below `low` keep their frequency, dims above `high` are divided by the factor. */
export function yarnBounds(rope: RopeConfig, rotaryDim: number): { low: number; high: number } {
  const L = rope.original_max_position_embeddings;
  const d = (rotations: number) => (rotaryDim * Math.log(L / (2 * Math.PI * rotations))) / (2 * Math.log(rope.rope_theta));
  const low = Math.max(Math.floor(d(rope.beta_fast)), 0);
  let high = Math.min(Math.ceil(d(rope.beta_slow)), rotaryDim - 1);
  if (high === low) high += 0.001; // as transformers does, to avoid a division by zero
  return { low, high };
}

/** The multiplier of cos and sin: YaRN's attention factor, 1 otherwise. */
export function ropeAttentionScaling(rope: RopeConfig): number {
  return rope.rope_type === "yarn" ? rope.attention_factor : 1;
}

/** The model's rotary embedding: inverse frequencies from the config, cos/sin for a batch of positions. */
export class Qwen3NextRotaryEmbedding {
  readonly invFreq: Float64Array;
  readonly scaling: number;

  constructor(private readonly k: Kernels, rope: RopeConfig, readonly rotaryDim: number) {
    this.invFreq = ropeInvFreq(rope, rotaryDim);
    this.scaling = ropeAttentionScaling(rope);
  }

  /** cos/sin [positions.length, rotary_dim / 2] into the given buffers. */
  forward(positions: readonly number[], cos: Tensor, sin: Tensor): void {
    this.k.ropeTables(this.invFreq, this.scaling, positions, cos, sin);
  }
}
