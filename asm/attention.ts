// Causal GQA attention of T new queries over a KV cache of L positions, heads h0..h1 (threads split heads):
//   out_t = sum_{j <= L-T+t} softmax_j(scale q_t . k_j) v_j,   query head h reads kv head h / (H / Hkv).
// q, out [T, H, D]; k, v [L, Hkv, D] float32. Scores, softmax and the weighted sum are float64.
// scratch: per head (L + D) f64 (threads never share a row).
import { dot, promoteLo, promoteHi } from "./mem";

export function attention(
  q: usize, k: usize, v: usize, out: usize, scratch: usize,
  t: i32, l: i32, heads: i32, kvHeads: i32, d: i32, scale: f64, h0: i32, h1: i32,
): void {
  const group = heads / kvHeads;
  const d4 = d & ~3;
  for (let h = h0; h < h1; h++) {
    const kvh = h / group;
    const sc = scratch + (<usize>(h * (l + d)) << 3);
    const acc = sc + (<usize>l << 3);
    for (let tk = 0; tk < t; tk++) {
      const last = l - t + tk;
      const qh = q + (<usize>((tk * heads + h) * d) << 2);
      let max = -Infinity;
      for (let j = 0; j <= last; j++) {
        const s = dot(qh, k + (<usize>((j * kvHeads + kvh) * d) << 2), d) * scale;
        store<f64>(sc + (<usize>j << 3), s);
        max = Math.max(max, s);
      }
      let sum = 0.0;
      for (let j = 0; j <= last; j++) {
        const e = Math.exp(load<f64>(sc + (<usize>j << 3)) - max);
        store<f64>(sc + (<usize>j << 3), e);
        sum += e;
      }
      memory.fill(acc, 0, <usize>d << 3);
      for (let j = 0; j <= last; j++) {
        const p = load<f64>(sc + (<usize>j << 3)) / sum;
        const pv = f64x2.splat(p);
        const vj = v + (<usize>((j * kvHeads + kvh) * d) << 2);
        for (let i = 0; i < d4; i += 4) {
          const x = v128.load(vj + (<usize>i << 2));
          const a = acc + (<usize>i << 3);
          v128.store(a, f64x2.add(v128.load(a), f64x2.mul(pv, promoteLo(x))));
          v128.store(a, f64x2.add(v128.load(a, 16), f64x2.mul(pv, promoteHi(x))), 16);
        }
        for (let i = d4; i < d; i++) {
          const a = acc + (<usize>i << 3);
          store<f64>(a, load<f64>(a) + p * <f64>load<f32>(vj + (<usize>i << 2)));
        }
      }
      const oh = out + (<usize>((tk * heads + h) * d) << 2);
      for (let i = 0; i < d; i++) store<f32>(oh + (<usize>i << 2), <f32>load<f64>(acc + (<usize>i << 3)));
    }
  }
}
