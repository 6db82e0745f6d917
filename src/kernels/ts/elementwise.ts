/** Elementwise products and gates, residual updates, bias adds and the row softmax. */
import { sigmoid, silu, softplus } from "../activations.js";
import type { Vec } from "../types.js";

/** out = silu(gate) * up. */
export function siluMul(gate: Vec, up: Vec, out: Vec): void {
  for (let i = 0; i < out.length; i++) out[i] = silu(gate[i]) * up[i];
}

/** x = x * sigmoid(gate). */
export function sigmoidMul(x: Vec, gate: Vec): void {
  for (let i = 0; i < x.length; i++) x[i] *= sigmoid(gate[i]);
}

/** y = y + a * x. */
export function axpy(a: number, x: Vec, y: Vec): void {
  for (let i = 0; i < y.length; i++) y[i] += a * x[i];
}

/** Per row of width n: x = exp(x - max) / sum(exp(x - max)), in place. */
export function softmax(x: Vec, n: number): void {
  for (let base = 0; base < x.length; base += n) {
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, x[base + i]);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp(x[base + i] - max);
      x[base + i] = e;
      sum += e;
    }
    for (let i = 0; i < n; i++) x[base + i] /= sum;
  }
}

/** out = sigmoid(x). */
export function sigmoidOf(x: Vec, out: Vec): void {
  for (let i = 0; i < x.length; i++) out[i] = sigmoid(x[i]);
}

/** Per row of width H = A_log.length: beta = sigmoid(b);  g = -exp(A_log) softplus(a + dt_bias). */
export function gates(a: Vec, b: Vec, A_log: Vec, dtBias: Vec, g: Vec, beta: Vec): void {
  const H = A_log.length;
  for (let i = 0; i < a.length; i++) {
    const h = i % H;
    beta[i] = sigmoid(b[i]);
    g[i] = -Math.exp(A_log[h]) * softplus(a[i] + dtBias[h]);
  }
}

/** y[t] += bias per row. */
export function addBias(y: Vec, bias: Vec): void {
  const n = bias.length;
  for (let i = 0; i < y.length; i++) y[i] += bias[i % n];
}

/** x += c. */
export function addScalar(x: Vec, c: number): void {
  for (let i = 0; i < x.length; i++) x[i] += c;
}

/** y[t] += a[t] x[t] per row. */
export function axpyRows(a: Vec, x: Vec, y: Vec): void {
  const width = y.length / a.length;
  for (let i = 0; i < y.length; i++) y[i] += a[Math.floor(i / width)] * x[i];
}
