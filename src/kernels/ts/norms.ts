/** Row normalisations: RMSNorm, DeltaNet's gated RMSNorm, L2 normalisation. Rows of width n. */
import type { Vec } from "../types.js";
import { silu } from "../activations.js";

/** out = x / sqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(x: Vec, weight: Vec, eps: number, n: number, out: Vec): void {
  for (let base = 0; base < x.length; base += n) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[base + i] * x[base + i];
    const r = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[base + i] = x[base + i] * r * weight[i];
  }
}

/** out = x / sqrt(mean(x^2) + eps) * weight * silu(z). */
export function gatedRmsNorm(x: Vec, z: Vec, weight: Vec, eps: number, n: number, out: Vec): void {
  for (let base = 0; base < x.length; base += n) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[base + i] * x[base + i];
    const r = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[base + i] = x[base + i] * r * weight[i] * silu(z[base + i]);
  }
}

/** x = x / sqrt(sum(x^2) + eps) * scale, in place. */
export function l2Normalize(x: Vec, n: number, eps: number, scale: number): void {
  for (let base = 0; base < x.length; base += n) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[base + i] * x[base + i];
    const r = scale / Math.sqrt(ss + eps);
    for (let i = 0; i < n; i++) x[base + i] *= r;
  }
}
