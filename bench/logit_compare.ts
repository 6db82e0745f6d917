/**
 * Comparing two models' logits position by position (T rows of V): the largest logit difference, how often
 * the top-1 token agrees, and the mean KL divergence of the next-token distributions (float64); and how
 * peaked the reference's distributions are. Used by bench/quant_accuracy.ts and bench/accumulate_accuracy.ts.
 */

export interface Accuracy {
  maxAbsLogitDiff: number;
  top1Agreement: number;
  meanKL: number;
}

export function compare(ref: Float32Array, q: Float32Array, T: number, V: number): Accuracy {
  let maxAbs = 0;
  let agree = 0;
  let kl = 0;
  for (let t = 0; t < T; t++) {
    const a = ref.subarray(t * V, (t + 1) * V);
    const b = q.subarray(t * V, (t + 1) * V);
    let am = 0;
    let bm = 0;
    for (let v = 0; v < V; v++) {
      maxAbs = Math.max(maxAbs, Math.abs(a[v] - b[v]));
      if (a[v] > a[am]) am = v;
      if (b[v] > b[bm]) bm = v;
    }
    if (am === bm) agree++;
    // log-softmax in float64
    let za = 0;
    let zb = 0;
    for (let v = 0; v < V; v++) {
      za += Math.exp(a[v] - a[am]);
      zb += Math.exp(b[v] - b[bm]);
    }
    const lza = a[am] + Math.log(za);
    const lzb = b[bm] + Math.log(zb);
    let k = 0;
    for (let v = 0; v < V; v++) {
      const la = a[v] - lza;
      k += Math.exp(la) * (la - (b[v] - lzb));
    }
    kl += k;
  }
  return { maxAbsLogitDiff: maxAbs, top1Agreement: agree / T, meanKL: kl / T };
}

/** How peaked the reference's next-token distributions are: mean logit std and mean top-1 minus top-2 margin. */
export function logitSpread(ref: Float32Array, T: number, V: number): { meanLogitStd: number; meanTop1Margin: number; minTop1Margin: number } {
  let std = 0;
  let margin = 0;
  let minMargin = Infinity;
  for (let t = 0; t < T; t++) {
    const a = ref.subarray(t * V, (t + 1) * V);
    let mean = 0;
    for (const x of a) mean += x / V;
    let v2 = 0;
    let first = -Infinity;
    let second = -Infinity;
    for (const x of a) {
      v2 += (x - mean) ** 2 / V;
      if (x > first) [first, second] = [x, first];
      else if (x > second) second = x;
    }
    std += Math.sqrt(v2) / T;
    margin += (first - second) / T;
    minMargin = Math.min(minMargin, first - second);
  }
  return { meanLogitStd: std, meanTop1Margin: margin, minTop1Margin: minMargin };
}
