/**
 * Bytes one decode step must read, from the config alone: the decode rate's memory-bandwidth limit.
 *   weights: every tensor of the main model at its stored size (BF16: 2 bytes per parameter), except the
 *            routed experts (only top-k of E per MoE layer) and an untied embedding table (one row);
 *   state:   each DeltaNet layer reads and writes its recurrent state [Hv, dk, dv] and conv state (float32);
 *            each attention layer reads its KV cache, L positions of [kv_heads, head_dim] keys and values.
 * The MTP head is not part of a plain decode step.
 */
import type { Qwen3NextConfig } from "../src/config.js";
import { numel } from "../src/shape.js";
import { bytesPerToken as weightBytesPerToken } from "../src/loading/bytes_per_token.js";
import { expectedTensors } from "../src/loading/expected.js";

export interface TokenBytes {
  weights: number;
  state: number;
  total: number;
}

export function bytesPerToken(c: Qwen3NextConfig, contextLen: number, bytesPerParam = 2): TokenBytes {
  // The weights' rule (top-k of E routed experts, one embedding row unless tied, no MTP) is src/loading's.
  const weights = weightBytesPerToken(c, expectedTensors(c).map((t) => ({ name: t.name, byteLength: numel(t.shape) * bytesPerParam })));
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
