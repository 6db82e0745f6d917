/**
 * Bytes one decode step must read, from the config alone: the decode rate's memory-bandwidth limit.
 *   weights: every tensor of the main model at its stored size (BF16: 2 bytes per parameter), except the
 *            routed experts (only top-k of E per MoE layer) and an untied embedding table (one row);
 *   state:   each DeltaNet layer reads and writes its recurrent state [Hv, dk, dv] and conv state (float32);
 *            each attention layer reads its KV cache, L positions of [kv_heads, head_dim] keys and values.
 * The MTP head is not part of a plain decode step.
 */
import type { Qwen3NextConfig } from "../src/config.js";
import { numel } from "../src/io/safetensors.js";
import { expectedTensors } from "../src/loading/expected.js";

export interface TokenBytes {
  weights: number;
  state: number;
  total: number;
}

const ROUTED = /^model\.layers\.(\d+)\.mlp\.experts\.\d+\./;

export function bytesPerToken(c: Qwen3NextConfig, contextLen: number, bytesPerParam = 2): TokenBytes {
  let weights = 0;
  for (const t of expectedTensors(c)) {
    if (t.name.startsWith("mtp.")) continue;
    const n = numel(t.shape);
    const m = ROUTED.exec(t.name);
    if (m) {
      weights += (n * bytesPerParam * c.num_experts_per_tok) / c.num_experts; // top-k of E experts
    } else if (t.name === "model.embed_tokens.weight" && !c.tie_word_embeddings) {
      weights += c.hidden_size * bytesPerParam; // one row (tied: the whole table is the lm_head)
    } else {
      weights += n * bytesPerParam;
    }
  }
  let state = 0;
  const convChannels = 2 * c.linear_num_key_heads * c.linear_key_head_dim + c.linear_num_value_heads * c.linear_value_head_dim;
  for (const type of c.layer_types) {
    if (type === "linear_attention") {
      state += 2 * 4 * c.linear_num_value_heads * c.linear_key_head_dim * c.linear_value_head_dim;
      state += 2 * 4 * convChannels * (c.linear_conv_kernel_dim - 1);
    } else {
      state += 2 * 4 * contextLen * c.num_key_value_heads * c.head_dim;
    }
  }
  return { weights, state, total: weights + state };
}
