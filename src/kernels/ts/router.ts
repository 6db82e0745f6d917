/** MoE routing: probabilities = softmax over experts; the k largest (ties: lower id); optionally renormalised. */
import type { RouterArgs } from "../types.js";

export function router({ logits, T, numExperts: E, k, normalize, experts, weights }: RouterArgs): void {
  const p = new Float64Array(E);
  const order = new Int32Array(E);
  for (let t = 0; t < T; t++) {
    let max = -Infinity;
    for (let e = 0; e < E; e++) max = Math.max(max, logits[t * E + e]);
    let sum = 0;
    for (let e = 0; e < E; e++) sum += p[e] = Math.exp(logits[t * E + e] - max);
    for (let e = 0; e < E; e++) {
      p[e] /= sum;
      order[e] = e;
    }
    order.sort((a, b) => p[b] - p[a] || a - b);
    let chosen = 0;
    for (let j = 0; j < k; j++) chosen += p[order[j]];
    for (let j = 0; j < k; j++) {
      experts[t * k + j] = order[j];
      weights[t * k + j] = normalize ? p[order[j]] / chosen : p[order[j]];
    }
  }
}
