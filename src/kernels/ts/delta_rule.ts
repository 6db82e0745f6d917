/**
 * The gated delta rule (Gated DeltaNet), per value head h with key head h / r (r = value heads / key heads)
 * and state S [dk, dv]:
 *   S = S * exp(g_t);  S = S + k_t (beta_t (v_t - S^T k_t))^T;  o_t = S^T q_t.
 * `deltaRuleRecurrent` is this definition step by step; `deltaRuleChunked` computes the same thing by chunks
 * as `transformers`' `torch_chunk_gated_delta_rule` does (the form used for prefill).
 */
import type { DeltaRuleArgs } from "../types.js";

export function deltaRuleRecurrent(a: DeltaRuleArgs): void {
  const { q, k, v, g, beta, state, T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv, out } = a;
  const r = Hv / Hk;
  const kvMem = new Float64Array(dv);
  for (let h = 0; h < Hv; h++) {
    const S = state.subarray(h * dk * dv, (h + 1) * dk * dv);
    const kh = Math.floor(h / r);
    for (let t = 0; t < T; t++) {
      const qk = (t * Hk + kh) * dk;
      const vb = (t * Hv + h) * dv;
      const decay = Math.exp(g[t * Hv + h]);
      const b = beta[t * Hv + h];
      for (let i = 0; i < dk * dv; i++) S[i] *= decay;
      kvMem.fill(0); // S^T k
      for (let i = 0; i < dk; i++) {
        const ki = k[qk + i];
        for (let j = 0; j < dv; j++) kvMem[j] += S[i * dv + j] * ki;
      }
      for (let j = 0; j < dv; j++) kvMem[j] = b * (v[vb + j] - kvMem[j]); // the delta
      for (let i = 0; i < dk; i++) {
        const ki = k[qk + i];
        for (let j = 0; j < dv; j++) S[i * dv + j] += ki * kvMem[j];
      }
      for (let j = 0; j < dv; j++) {
        let o = 0;
        for (let i = 0; i < dk; i++) o += S[i * dv + j] * q[qk + i];
        out[vb + j] = o;
      }
    }
  }
}

/**
 * Chunked form. Within a chunk of c steps, with G_i = g_1 + ... + g_i (cumulative log decay) and
 * kb_i = beta_i k_i, vb_i = beta_i v_i:
 *   A = (I + L)^-1 with L_ij = beta_i k_i.k_j exp(G_i - G_j) for j < i (solved by forward substitution);
 *   U = A vb,  W = A (kb * exp(G));
 *   v'_i = U_i - W_i S0  (the value each step writes, given the chunk's initial state S0);
 *   o_i = exp(G_i) q_i S0 + sum_{j <= i} q_i.k_j exp(G_i - G_j) v'_j;
 *   S = exp(G_c) S0 + sum_j exp(G_c - G_j) k_j v'_j^T.
 * A shorter last chunk is handled directly (equivalent to transformers' zero padding).
 */
export function deltaRuleChunked(a: DeltaRuleArgs, chunkSize = 64): void {
  const { q, k, v, g, beta, state, T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv, out } = a;
  if (!(Number.isInteger(chunkSize) && chunkSize >= 1)) throw new Error(`chunk size ${chunkSize}, expected an integer >= 1`);
  const r = Hv / Hk;
  const C = chunkSize;
  const G = new Float64Array(C);
  const A = new Float64Array(C * C);
  const U = new Float64Array(C * dv);
  const W = new Float64Array(C * dk);
  const vNew = new Float64Array(C * dv);
  for (let h = 0; h < Hv; h++) {
    const S = state.subarray(h * dk * dv, (h + 1) * dk * dv);
    const kh = Math.floor(h / r);
    const kAt = (t: number) => (t * Hk + kh) * dk; // offset of k_t / q_t of this head
    const vAt = (t: number) => (t * Hv + h) * dv;
    for (let t0 = 0; t0 < T; t0 += C) {
      const c = Math.min(C, T - t0);
      let acc = 0;
      for (let i = 0; i < c; i++) G[i] = acc += g[(t0 + i) * Hv + h];
      // A <- -L (strictly lower), then forward substitution turns it into (I + L)^-1 - I.
      for (let i = 0; i < c; i++) {
        const bi = beta[(t0 + i) * Hv + h];
        for (let j = 0; j < c; j++) {
          if (j >= i) {
            A[i * C + j] = 0;
            continue;
          }
          let dot = 0;
          for (let d = 0; d < dk; d++) dot += k[kAt(t0 + i) + d] * k[kAt(t0 + j) + d];
          A[i * C + j] = -bi * dot * Math.exp(G[i] - G[j]);
        }
      }
      for (let i = 1; i < c; i++) {
        // row_i <- row_i + row_i @ A[:i, :i] (rows above already final), as in transformers.
        for (let j = 0; j < i; j++) {
          let s = A[i * C + j];
          for (let m = j + 1; m < i; m++) s += A[i * C + m] * A[m * C + j];
          A[i * C + j] = s;
        }
      }
      // U = (A + I) vb;  W = (A + I) (kb * exp(G)).
      for (let i = 0; i < c; i++) {
        for (let e = 0; e < dv; e++) {
          let s = beta[(t0 + i) * Hv + h] * v[vAt(t0 + i) + e];
          for (let j = 0; j < i; j++) s += A[i * C + j] * beta[(t0 + j) * Hv + h] * v[vAt(t0 + j) + e];
          U[i * dv + e] = s;
        }
        for (let d = 0; d < dk; d++) {
          let s = beta[(t0 + i) * Hv + h] * Math.exp(G[i]) * k[kAt(t0 + i) + d];
          for (let j = 0; j < i; j++) s += A[i * C + j] * beta[(t0 + j) * Hv + h] * Math.exp(G[j]) * k[kAt(t0 + j) + d];
          W[i * dk + d] = s;
        }
      }
      // v' = U - W S0.
      for (let i = 0; i < c; i++) {
        for (let e = 0; e < dv; e++) {
          let s = U[i * dv + e];
          for (let d = 0; d < dk; d++) s -= W[i * dk + d] * S[d * dv + e];
          vNew[i * dv + e] = s;
        }
      }
      // o_i = exp(G_i) q_i S0 + sum_{j<=i} (q_i . k_j) exp(G_i - G_j) v'_j.
      for (let i = 0; i < c; i++) {
        const qi = kAt(t0 + i);
        const o = vAt(t0 + i);
        const gi = Math.exp(G[i]);
        for (let e = 0; e < dv; e++) {
          let s = 0;
          for (let d = 0; d < dk; d++) s += q[qi + d] * S[d * dv + e];
          out[o + e] = s * gi;
        }
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let d = 0; d < dk; d++) dot += q[qi + d] * k[kAt(t0 + j) + d];
          const w = dot * Math.exp(G[i] - G[j]);
          for (let e = 0; e < dv; e++) out[o + e] += w * vNew[j * dv + e];
        }
      }
      // S = exp(G_c) S0 + sum_j exp(G_c - G_j) k_j v'_j^T.
      const gLast = G[c - 1];
      const decay = Math.exp(gLast);
      for (let x = 0; x < dk * dv; x++) S[x] *= decay;
      for (let j = 0; j < c; j++) {
        const w = Math.exp(gLast - G[j]);
        const kj = kAt(t0 + j);
        for (let d = 0; d < dk; d++) {
          const kd = w * k[kj + d];
          for (let e = 0; e < dv; e++) S[d * dv + e] += kd * vNew[j * dv + e];
        }
      }
    }
  }
}
