/** Elementwise products, residual updates and the row softmax. */
import { sigmoid, silu } from "../activations.js";
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
