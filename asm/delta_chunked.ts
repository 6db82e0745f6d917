// The gated delta rule in chunked form (prefill), as transformers' `torch_chunk_gated_delta_rule` computes it
// (see src/kernels/ts/delta_rule.ts for the equations). Per chunk the work is a handful of small matrix
// products, done here in float32 SIMD (4 lanes); the triangular solve, which can amplify rounding, is
// float64. The state stays float32 [dk, dv] per head, updated in place once per chunk.
import { ld, st } from "./mem";

// @ts-ignore: decorator
@inline function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

// Element i of a float64 array.
// @ts-ignore: decorator
@inline function ld8(p: usize, i: i32): f64 {
  return load<f64>(p + (<usize>i << 3));
}

// @ts-ignore: decorator
@inline function st8(p: usize, i: i32, v: f64): void {
  store<f64>(p + (<usize>i << 3), v);
}

/** s + sum_{d < ke} a[d] b[d ldb + j] (float32). */
function cell(a: usize, b: usize, ldb: i32, j: i32, ke: i32, s: f32): f32 {
  for (let d = 0; d < ke; d++) s += ld(a, d) * ld(b, d * ldb + j);
  return s;
}

// gemm flags: a is lower triangular (zeros stored above its diagonal), so rows i..i+3 stop the sum at d = i + 4;
// only c's lower triangle is wanted, so rows i..i+3 stop at column i + 4 (columns past that are left as they are).
const A_LOWER = 1;
const C_LOWER = 2;

/**
 * c[i, j] = s cin[i, j] + sum_{d < kd} a[i, d] b[d, j] for i < m, j < n (float32, row strides in floats;
 * cin = 0: no first term; cin may be c). Blocks of 4 rows x 8 columns; scalar tails.
 */
function gemm(a: usize, lda: i32, b: usize, ldb: i32, c: usize, ldc: i32, cin: usize, ldcin: i32, s: f32, m: i32, n: i32, kd: i32, flags: i32): void {
  const sv = f32x4.splat(s);
  const z = f32x4.splat(0);
  const bs = <usize>ldb << 2;
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const ke = flags & A_LOWER ? min(kd, i + 4) : kd;
    const ne = flags & C_LOWER ? min(n, i + 4) : n;
    const a0 = at(a, i * lda), a1 = at(a0, lda), a2 = at(a1, lda), a3 = at(a2, lda);
    let j = 0;
    for (; j + 8 <= ne; j += 8) {
      let c0 = z, c1 = z, c2 = z, c3 = z, c4 = z, c5 = z, c6 = z, c7 = z;
      if (cin) {
        const p = at(cin, i * ldcin + j);
        c0 = f32x4.mul(sv, v128.load(p));
        c1 = f32x4.mul(sv, v128.load(at(p, ldcin)));
        c2 = f32x4.mul(sv, v128.load(at(p, 2 * ldcin)));
        c3 = f32x4.mul(sv, v128.load(at(p, 3 * ldcin)));
        c4 = f32x4.mul(sv, v128.load(p, 16));
        c5 = f32x4.mul(sv, v128.load(at(p, ldcin), 16));
        c6 = f32x4.mul(sv, v128.load(at(p, 2 * ldcin), 16));
        c7 = f32x4.mul(sv, v128.load(at(p, 3 * ldcin), 16));
      }
      let bp = at(b, j);
      for (let d = 0; d < ke; d++) {
        const b0 = v128.load(bp), b1 = v128.load(bp, 16);
        const ad = <usize>d << 2;
        const x0 = v128.load32_splat(a0 + ad), x1 = v128.load32_splat(a1 + ad), x2 = v128.load32_splat(a2 + ad), x3 = v128.load32_splat(a3 + ad);
        c0 = f32x4.add(c0, f32x4.mul(x0, b0));
        c1 = f32x4.add(c1, f32x4.mul(x1, b0));
        c2 = f32x4.add(c2, f32x4.mul(x2, b0));
        c3 = f32x4.add(c3, f32x4.mul(x3, b0));
        c4 = f32x4.add(c4, f32x4.mul(x0, b1));
        c5 = f32x4.add(c5, f32x4.mul(x1, b1));
        c6 = f32x4.add(c6, f32x4.mul(x2, b1));
        c7 = f32x4.add(c7, f32x4.mul(x3, b1));
        bp += bs;
      }
      const q = at(c, i * ldc + j);
      v128.store(q, c0);
      v128.store(at(q, ldc), c1);
      v128.store(at(q, 2 * ldc), c2);
      v128.store(at(q, 3 * ldc), c3);
      v128.store(q, c4, 16);
      v128.store(at(q, ldc), c5, 16);
      v128.store(at(q, 2 * ldc), c6, 16);
      v128.store(at(q, 3 * ldc), c7, 16);
    }
    for (let r = i; r < i + 4; r++) {
      for (let jj = j; jj < ne; jj++) {
        st(c, r * ldc + jj, cell(at(a, r * lda), b, ldb, jj, ke, cin ? s * ld(cin, r * ldcin + jj) : 0));
      }
    }
  }
  for (; i < m; i++) {
    const ke = flags & A_LOWER ? min(kd, i + 1) : kd;
    const ne = flags & C_LOWER ? min(n, i + 1) : n;
    const ar = at(a, i * lda);
    let j = 0;
    for (; j + 4 <= ne; j += 4) {
      let c0 = cin ? f32x4.mul(sv, v128.load(at(cin, i * ldcin + j))) : z;
      let bp = at(b, j);
      for (let d = 0; d < ke; d++) {
        c0 = f32x4.add(c0, f32x4.mul(v128.load32_splat(ar + (<usize>d << 2)), v128.load(bp)));
        bp += bs;
      }
      v128.store(at(c, i * ldc + j), c0);
    }
    for (; j < ne; j++) st(c, i * ldc + j, cell(ar, b, ldb, j, ke, cin ? s * ld(cin, i * ldcin + j) : 0));
  }
}

/** Bytes of scratch one participant of `deltaRuleChunked` uses, for chunks of c steps. */
export function deltaChunkScratchBytes(c: i32, dk: i32, dv: i32): i32 {
  return 8 * (4 * c + c * c) + 4 * (5 * c * dk + 3 * c * dv + 2 * c * c);
}

/**
 * The chunked gated delta rule for value heads h0..h1 (threads split heads), chunks of `chunk` steps (the
 * last may be shorter). q, k [T, Hk, dk]; v, out [T, Hv, dv]; g, beta [T, Hv]; state [Hv, dk, dv], all f32.
 * tmp: an i32 header n (the participants the heads are split over), 16 bytes, then n slots of
 * deltaChunkScratchBytes(min(chunk, T), dk, dv); the call for heads h0.. uses slot h0 / ceil(Hv / n), its
 * participant's index (the pool hands participant p the heads from p ceil(Hv / n)).
 * Per chunk of c steps, with G the cumulative log decay and gl = G[c-1]:
 *   A = (I + L)^-1, L_ij = beta_i k_i.k_j exp(G_i - G_j) (j < i);  U = A (beta v);  W = A (beta exp(G) k);
 *   v' = U - W S;  o = (exp(G) q) S + ((q k^T) o mask_{j<=i} exp(G_i - G_j)) v';
 *   S = exp(gl) S + (exp(gl - G) k)^T v'.
 * Decays are products of the steps' exp(g) (float64): exp(G_i - G_j) = prod_{j<m<=i} exp(g_m), which
 * needs c exponentials per chunk instead of c^2 and cannot overflow.
 */
export function deltaRuleChunked(
  q: usize, k: usize, v: usize, g: usize, beta: usize, state: usize, out: usize, tmp: usize,
  t: i32, hk: i32, hv: i32, dk: i32, dv: i32, chunk: i32, h0: i32, h1: i32,
): void {
  const ratio = hv / hk;
  const C = min(chunk, t);
  const n = load<i32>(tmp);
  const slot = h0 / ((hv + n - 1) / n);
  const E = tmp + 16 + <usize>slot * <usize>deltaChunkScratchBytes(C, dk, dv); // f64 [C] exp(g_i)
  const EG = E + (<usize>C << 3); // f64 [C] exp(G_i)
  const EL = EG + (<usize>C << 3); // f64 [C] exp(gl - G_i)
  const R = EL + (<usize>C << 3); // f64 [C] a row of L before the substitution
  const Af = R + (<usize>C << 3); // f64 [C, C]: -L, then (I + L)^-1 - I
  const KT = Af + (<usize>(C * C) << 3); // [dk, C] k^T
  const KdT = at(KT, dk * C); // [dk, C] (exp(gl - G) k)^T
  const Qg = at(KdT, dk * C); // [C, dk] exp(G) q
  const Kbn = at(Qg, C * dk); // [C, dk] -beta exp(G) k
  const Wn = at(Kbn, C * dk); // [C, dk] -W
  const Vb = at(Wn, C * dk); // [C, dv] beta v
  const U = at(Vb, C * dv); // [C, dv]
  const Vn = at(U, C * dv); // [C, dv] v'
  const Tm = at(Vn, C * dv); // [C, C] k k^T, then A in float32
  const P = at(Tm, C * C); // [C, C] the masked q k^T
  const ldk = hk * dk, ldv = hv * dv; // row strides of q, k and of v, out
  for (let h = h0; h < h1; h++) {
    const S = at(state, h * dk * dv);
    const kh = h / ratio;
    for (let t0 = 0; t0 < t; t0 += C) {
      const c = min(C, t - t0);
      const qc = at(q, t0 * ldk + kh * dk), kc = at(k, t0 * ldk + kh * dk);
      const vc = at(v, t0 * ldv + h * dv), oc = at(out, t0 * ldv + h * dv);
      let eg = 1.0;
      for (let i = 0; i < c; i++) {
        const e = Math.exp(<f64>ld(g, (t0 + i) * hv + h));
        st8(E, i, e);
        eg *= e;
        st8(EG, i, eg);
      }
      let el = 1.0;
      for (let i = c - 1; i >= 0; i--) {
        st8(EL, i, el);
        el *= ld8(E, i);
      }
      for (let i = 0; i < c; i++) {
        const b = <f64>ld(beta, (t0 + i) * hv + h);
        const egi = ld8(EG, i), eli = ld8(EL, i);
        const ki = at(kc, i * ldk), qi = at(qc, i * ldk), vi = at(vc, i * ldv);
        for (let d = 0; d < dk; d++) {
          const kd = <f64>ld(ki, d);
          st(KT, d * C + i, <f32>kd);
          st(KdT, d * C + i, <f32>(kd * eli));
          st(Qg, i * dk + d, <f32>(<f64>ld(qi, d) * egi));
          st(Kbn, i * dk + d, <f32>(-b * egi * kd));
        }
        for (let e = 0; e < dv; e++) st(Vb, i * dv + e, <f32>(b * <f64>ld(vi, e)));
      }
      gemm(kc, ldk, KT, C, Tm, C, 0, 0, 0, c, c, dk, C_LOWER); // k k^T
      gemm(qc, ldk, KT, C, P, C, 0, 0, 0, c, c, dk, C_LOWER); // q k^T
      // -L and the decay mask, with d = exp(G_i - G_j) built from j = i down.
      for (let i = 0; i < c; i++) {
        const bi = <f64>ld(beta, (t0 + i) * hv + h);
        let d = 1.0;
        for (let j = i; j >= 0; j--) {
          if (j < i) st8(Af, i * C + j, -bi * <f64>ld(Tm, i * C + j) * d);
          st(P, i * C + j, <f32>(<f64>ld(P, i * C + j) * d));
          d *= ld8(E, j);
        }
        for (let j = i + 1; j < c; j++) st(P, i * C + j, 0);
      }
      // Forward substitution, as in transformers: row_i += row_i @ A[:i, :i] with the rows above already
      // final. Final row m is zero from column m on, so row_i[j] += sum_{m > j} row_i(old)[m] A[m, j]:
      // axpys of the final rows (float64 pairs), m ascending, from a copy of the old row.
      for (let i = 1; i < c; i++) {
        const row = Af + (<usize>(i * C) << 3);
        memory.copy(R, row, <usize>i << 3);
        for (let m = 1; m < i; m++) {
          const a = ld8(R, m);
          const av = f64x2.splat(a);
          const rm = Af + (<usize>(m * C) << 3);
          const m2 = m & ~1;
          for (let j = 0; j < m2; j += 2) {
            const p = row + (<usize>j << 3);
            v128.store(p, f64x2.add(v128.load(p), f64x2.mul(av, v128.load(rm + (<usize>j << 3)))));
          }
          if (m2 < m) st8(row, m2, ld8(row, m2) + a * ld8(rm, m2));
        }
      }
      for (let i = 0; i < c; i++) {
        for (let j = 0; j < c; j++) st(Tm, i * C + j, j < i ? <f32>ld8(Af, i * C + j) : j == i ? 1 : 0);
      }
      gemm(Tm, C, Vb, dv, U, dv, 0, 0, 0, c, dv, c, A_LOWER); // U = A (beta v)
      gemm(Tm, C, Kbn, dk, Wn, dk, 0, 0, 0, c, dk, c, A_LOWER); // -W
      gemm(Wn, dk, S, dv, Vn, dv, U, dv, 1, c, dv, dk, 0); // v' = U - W S
      gemm(Qg, dk, S, dv, oc, ldv, 0, 0, 0, c, dv, dk, 0); // o = (exp(G) q) S
      gemm(P, C, Vn, dv, oc, ldv, oc, ldv, 1, c, dv, c, A_LOWER); // o += masked (q k^T) v'
      gemm(KdT, C, Vn, dv, S, dv, S, dv, <f32>ld8(EG, c - 1), dk, dv, c, 0); // S = exp(gl) S + ...
    }
  }
}
