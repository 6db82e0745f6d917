// MoE routing: p = softmax(logits) over E experts; the k largest (ties: lower id first); optionally
// renormalised to sum to 1. logits [T, E] (unchanged); experts (i32) and weights [T, k]; p: scratch [E] f64.
export function router(logits: usize, t: i32, e: i32, k: i32, normalize: i32, experts: usize, weights: usize, p: usize): void {
  for (let tk = 0; tk < t; tk++) {
    const lr = logits + (<usize>(tk * e) << 2);
    let max = -Infinity;
    for (let i = 0; i < e; i++) max = Math.max(max, <f64>load<f32>(lr + (<usize>i << 2)));
    let sum = 0.0;
    for (let i = 0; i < e; i++) {
      const x = Math.exp(<f64>load<f32>(lr + (<usize>i << 2)) - max);
      store<f64>(p + (<usize>i << 3), x);
      sum += x;
    }
    let chosen = 0.0;
    const er = experts + (<usize>(tk * k) << 2);
    const wr = weights + (<usize>(tk * k) << 2);
    for (let j = 0; j < k; j++) {
      let best = -1;
      let bv = -1.0;
      for (let i = 0; i < e; i++) {
        const x = load<f64>(p + (<usize>i << 3));
        // A NaN probability (non-finite router logits) never compares greater: take the first expert not yet
        // taken, so the ids stay in range and the NaN weights carry the failure to this token's output alone.
        if (x > bv || (best < 0 && x != -2.0)) {
          bv = x;
          best = i;
        }
      }
      store<f64>(p + (<usize>best << 3), -2.0); // taken
      store<i32>(er + (<usize>j << 2), best);
      store<f32>(wr + (<usize>j << 2), <f32>(bv / sum));
      chosen += bv / sum;
    }
    if (normalize) {
      for (let j = 0; j < k; j++) {
        const q = wr + (<usize>j << 2);
        // Renormalise from the f64 probabilities' sum, as the reference divides p by the chosen sum.
        store<f32>(q, <f32>(<f64>load<f32>(q) / chosen));
      }
    }
  }
}
