/**
 * Depthwise causal conv1d with carried state, then SiLU (DeltaNet's short convolution):
 *   y[t, c] = silu(sum_{j<K} w[c, j] * s[t + j, c]),  s = state (K-1 rows) ++ x (T rows);
 * afterwards state = the last K-1 rows of s.
 */
import type { CausalConv1dArgs } from "../types.js";
import { silu } from "../activations.js";

export function causalConv1d({ x, weight, state, T, C, K, out }: CausalConv1dArgs): void {
  const P = K - 1;
  // Input at sequence index r of s: from the state when r < P, else from x.
  const at = (r: number, c: number): number => (r < P ? state[c * P + r] : x[(r - P) * C + c]);
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < C; c++) {
      let acc = 0;
      for (let j = 0; j < K; j++) acc += weight[c * K + j] * at(t + j, c);
      out[t * C + c] = silu(acc);
    }
  }
  // New state: rows T..T+P-1 of s (read before writing: they may come from the old state when T < P).
  const next = new Float64Array(C * P);
  for (let c = 0; c < C; c++) for (let r = 0; r < P; r++) next[c * P + r] = at(T + r, c);
  state.set(next);
}
