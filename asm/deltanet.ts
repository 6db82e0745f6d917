// Gated DeltaNet pieces: the causal depthwise conv step and the gated delta rule. Operands and the state
// are float32; arithmetic is float64, each stored result rounded once.
import { ld64, st2, st64, sigmoid } from "./mem";
import { sigmoidPair } from "./exp2";

/**
 * y[t, c] = silu(sum_{j<K} w[c, j] s[t + j, c]) with s = state (K-1 rows, [C, K-1]) ++ x ([T, C]);
 * then state = the last K-1 rows of s; channels c0..c1-1 (threads split channels). `next` is scratch [C, K-1] f32.
 * The SiLU (its f64 exp most of the time) runs on channel pairs (exp2.ts: the scalar function's bits).
 */
export function causalConv1d(x: usize, w: usize, state: usize, out: usize, next: usize, t: i32, c: i32, kw: i32, c0: i32, c1: i32): void {
  const p = kw - 1;
  for (let tk = 0; tk < t; tk++) {
    let ch = c0;
    for (; ch + 2 <= c1; ch += 2) {
      const acc = f64x2.replace_lane(f64x2.splat(convSum(x, w, state, tk, c, kw, ch)), 1, convSum(x, w, state, tk, c, kw, ch + 1));
      st2(out, tk * c + ch, f64x2.mul(acc, sigmoidPair(acc)));
    }
    if (ch < c1) {
      const acc = convSum(x, w, state, tk, c, kw, ch);
      st64(out, tk * c + ch, acc * sigmoid(acc));
    }
  }
  for (let ch = c0; ch < c1; ch++) {
    for (let r = 0; r < p; r++) {
      const i = t + r;
      store<f32>(next + (<usize>(ch * p + r) << 2), i < p ? load<f32>(state + (<usize>(ch * p + i) << 2)) : load<f32>(x + (<usize>((i - p) * c + ch) << 2)));
    }
  }
  memory.copy(state + (<usize>(c0 * p) << 2), next + (<usize>(c0 * p) << 2), <usize>((c1 - c0) * p) << 2);
}

/** sum_{j<K} w[ch, j] s[tk + j, ch] in float64, taps in order. */
// @ts-ignore: decorator
@inline function convSum(x: usize, w: usize, state: usize, tk: i32, c: i32, kw: i32, ch: i32): f64 {
  const p = kw - 1;
  let acc = 0.0;
  for (let j = 0; j < kw; j++) {
    const r = tk + j;
    const s = r < p ? ld64(state, ch * p + r) : ld64(x, (r - p) * c + ch);
    acc += ld64(w, ch * kw + j) * s;
  }
  return acc;
}

/**
 * The gated delta rule for value heads h0..h1 over T steps (threads split heads). Per head, S [dk, dv]:
 *   S = S exp(g_t);  S = S + k_t (beta_t (v_t - S^T k_t))^T;  o_t = S^T q_t.
 * The state is carried in float64 across the T steps (read from and rounded back to the float32 state
 * once per call, as the chunked form does per chunk). Two passes over S per step: u = S^T k, then
 * S = e S + k delta^T fused with o = S^T q, where delta = beta (v - e u).
 * q, k [T, Hk, dk]; v, out [T, Hv, dv]; g, beta [T, Hv]; state [Hv, dk, dv] f32;
 * tmp: scratch per head (2 dv + dk dv) f64.
 */
export function deltaRule(
  q: usize, k: usize, v: usize, g: usize, beta: usize, state: usize, out: usize, tmp: usize,
  t: i32, hk: i32, hv: i32, dk: i32, dv: i32, h0: i32, h1: i32,
): void {
  const ratio = hv / hk;
  if (t == 1) {
    deltaStep(q, k, v, g, beta, state, out, tmp, hk, hv, dk, dv, h0, h1, ratio);
    return;
  }
  const d2 = dv & ~1;
  const n = dk * dv;
  for (let h = h0; h < h1; h++) {
    const S32 = state + (<usize>(h * n) << 2);
    const u = tmp + (<usize>(h * (2 * dv + n)) << 3); // S^T k, then delta
    const o = u + (<usize>dv << 3); // S^T q
    const S = o + (<usize>dv << 3); // the state in float64
    for (let i = 0; i < n; i++) store<f64>(S + (<usize>i << 3), ld64(S32, i));
    const kh = h / ratio;
    for (let tk = 0; tk < t; tk++) {
      const kt = (tk * hk + kh) * dk;
      const vt = (tk * hv + h) * dv;
      const e = Math.exp(ld64(g, tk * hv + h));
      const b = ld64(beta, tk * hv + h);
      memory.fill(u, 0, <usize>dv << 4); // u and o
      for (let i = 0; i < dk; i++) {
        const row = S + (<usize>(i * dv) << 3);
        const ki = ld64(k, kt + i);
        const kv = f64x2.splat(ki);
        for (let j = 0; j < d2; j += 2) {
          const a = u + (<usize>j << 3);
          v128.store(a, f64x2.add(v128.load(a), f64x2.mul(v128.load(row + (<usize>j << 3)), kv)));
        }
        if (d2 < dv) {
          const a = u + (<usize>d2 << 3);
          store<f64>(a, load<f64>(a) + load<f64>(row + (<usize>d2 << 3)) * ki);
        }
      }
      for (let j = 0; j < dv; j++) {
        const a = u + (<usize>j << 3);
        store<f64>(a, b * (ld64(v, vt + j) - e * load<f64>(a)));
      }
      const ev = f64x2.splat(e);
      for (let i = 0; i < dk; i++) {
        const row = S + (<usize>(i * dv) << 3);
        const ki = ld64(k, kt + i), qi = ld64(q, kt + i);
        const kv = f64x2.splat(ki), qv = f64x2.splat(qi);
        for (let j = 0; j < d2; j += 2) {
          const r = row + (<usize>j << 3);
          const sv = f64x2.add(f64x2.mul(ev, v128.load(r)), f64x2.mul(kv, v128.load(u + (<usize>j << 3))));
          v128.store(r, sv);
          const oa = o + (<usize>j << 3);
          v128.store(oa, f64x2.add(v128.load(oa), f64x2.mul(sv, qv)));
        }
        if (d2 < dv) {
          const r = row + (<usize>d2 << 3);
          const sv = e * load<f64>(r) + ki * load<f64>(u + (<usize>d2 << 3));
          store<f64>(r, sv);
          const oa = o + (<usize>d2 << 3);
          store<f64>(oa, load<f64>(oa) + sv * qi);
        }
      }
      for (let j = 0; j < dv; j++) st64(out, vt + j, load<f64>(o + (<usize>j << 3)));
    }
    for (let i = 0; i < n; i++) st64(S32, i, load<f64>(S + (<usize>i << 3)));
  }
}

/**
 * deltaRule for one step (decode), the same arithmetic in the same order without the float64 copy of the
 * state: pass 1 widens S as it reads it (u = S^T k), pass 2 computes each new S element in float64, adds it
 * into o and stores it rounded once to float32, as the T-step form does after its last step. Bit-identical
 * to that form at T = 1, reading the state twice and writing it once instead of widening, re-reading and
 * narrowing a float64 copy. tmp: per head 2 dv f64 (u, o), the T-step form's layout.
 */
function deltaStep(
  q: usize, k: usize, v: usize, g: usize, beta: usize, state: usize, out: usize, tmp: usize,
  hk: i32, hv: i32, dk: i32, dv: i32, h0: i32, h1: i32, ratio: i32,
): void {
  const d2 = dv & ~1;
  const n = dk * dv;
  for (let h = h0; h < h1; h++) {
    const S = state + (<usize>(h * n) << 2);
    const u = tmp + (<usize>(h * (2 * dv + n)) << 3);
    const o = u + (<usize>dv << 3);
    const kt = (h / ratio) * dk;
    const vt = h * dv;
    const e = Math.exp(ld64(g, h));
    const b = ld64(beta, h);
    memory.fill(u, 0, <usize>dv << 4); // u and o
    for (let i = 0; i < dk; i++) {
      const row = S + (<usize>(i * dv) << 2);
      const ki = ld64(k, kt + i);
      const kv = f64x2.splat(ki);
      for (let j = 0; j < d2; j += 2) {
        const a = u + (<usize>j << 3);
        const sv = f64x2.promote_low_f32x4(v128.load64_zero(row + (<usize>j << 2)));
        v128.store(a, f64x2.add(v128.load(a), f64x2.mul(sv, kv)));
      }
      if (d2 < dv) {
        const a = u + (<usize>d2 << 3);
        store<f64>(a, load<f64>(a) + ld64(row, d2) * ki);
      }
    }
    for (let j = 0; j < dv; j++) {
      const a = u + (<usize>j << 3);
      store<f64>(a, b * (ld64(v, vt + j) - e * load<f64>(a)));
    }
    const ev = f64x2.splat(e);
    for (let i = 0; i < dk; i++) {
      const row = S + (<usize>(i * dv) << 2);
      const ki = ld64(k, kt + i), qi = ld64(q, kt + i);
      const kv = f64x2.splat(ki), qv = f64x2.splat(qi);
      for (let j = 0; j < d2; j += 2) {
        const r = row + (<usize>j << 2);
        const s0 = f64x2.promote_low_f32x4(v128.load64_zero(r));
        const sv = f64x2.add(f64x2.mul(ev, s0), f64x2.mul(kv, v128.load(u + (<usize>j << 3))));
        v128.store64_lane(r, f32x4.demote_f64x2_zero(sv), 0);
        const oa = o + (<usize>j << 3);
        v128.store(oa, f64x2.add(v128.load(oa), f64x2.mul(sv, qv)));
      }
      if (d2 < dv) {
        const sv = e * ld64(row, d2) + ki * load<f64>(u + (<usize>d2 << 3));
        st64(row, d2, sv);
        const oa = o + (<usize>d2 << 3);
        store<f64>(oa, load<f64>(oa) + sv * qi);
      }
    }
    for (let j = 0; j < dv; j++) st64(out, vt + j, load<f64>(o + (<usize>j << 3)));
  }
}
