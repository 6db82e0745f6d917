/**
 * Causal grouped-query attention of T new queries over a KV cache of L positions:
 *   out_t = sum_{j <= L-T+t} softmax_j(scale q_t . k_j) v_j, query head h reading kv head h / (H / H_kv).
 */
import type { AttentionArgs } from "../types.js";

export function attention({ q, k, v, T, L, numHeads, numKvHeads, headDim, scale, out }: AttentionArgs): void {
  const group = numHeads / numKvHeads;
  const scores = new Float64Array(L);
  for (let t = 0; t < T; t++) {
    const last = L - T + t; // position of this query: it sees keys 0..last
    for (let h = 0; h < numHeads; h++) {
      const kvh = Math.floor(h / group);
      const qBase = (t * numHeads + h) * headDim;
      let max = -Infinity;
      for (let j = 0; j <= last; j++) {
        const kBase = (j * numKvHeads + kvh) * headDim;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[qBase + d] * k[kBase + d];
        scores[j] = dot * scale;
        if (scores[j] > max) max = scores[j];
      }
      let sum = 0;
      for (let j = 0; j <= last; j++) {
        scores[j] = Math.exp(scores[j] - max);
        sum += scores[j];
      }
      const oBase = (t * numHeads + h) * headDim;
      for (let d = 0; d < headDim; d++) out[oBase + d] = 0;
      for (let j = 0; j <= last; j++) {
        const p = scores[j] / sum;
        const vBase = (j * numKvHeads + kvh) * headDim;
        for (let d = 0; d < headDim; d++) out[oBase + d] += p * v[vBase + d];
      }
    }
  }
}
