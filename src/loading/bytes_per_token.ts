/**
 * Weight bytes one decoded token reads: every weight of the main model as stored, except that a MoE layer's
 * routed experts count k / E of their bytes (k of the E experts run per token, on average over tokens), the
 * embedding table counts one row (a lookup) unless it is also the lm_head (tied: the whole table is multiplied),
 * and the MTP head is left out. This is what bounds decode speed on a CPU, which streams the weights from memory.
 */
import type { Qwen3NextConfig } from "../config.js";

const ROUTED = /^model\.layers\.\d+\.mlp\.experts\.\d+\./;

export function bytesPerToken(c: Qwen3NextConfig, weights: ReadonlyArray<{ name: string; byteLength: number }>): number {
  let total = 0;
  for (const w of weights) {
    if (w.name.startsWith("mtp.")) continue;
    if (ROUTED.test(w.name)) total += (w.byteLength * c.num_experts_per_tok) / c.num_experts;
    else if (w.name === "model.embed_tokens.weight" && !c.tie_word_embeddings) total += w.byteLength / c.vocab_size;
    else total += w.byteLength;
  }
  return Math.round(total);
}
