/** Rotary embedding in rotate-half layout (pairs i and i + rotaryDim/2), on the leading rotaryDim dims, and its tables. */
import type { Vec } from "../types.js";

export function rope(x: Vec, T: number, numHeads: number, headDim: number, rotaryDim: number, cos: Vec, sin: Vec): void {
  const half = rotaryDim / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < numHeads; h++) {
      const base = (t * numHeads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i];
        const s = sin[t * half + i];
        const a = x[base + i];
        const b = x[base + i + half];
        x[base + i] = a * c - b * s;
        x[base + i + half] = b * c + a * s;
      }
    }
  }
}

/** cos/sin [positions.length, invFreq.length]: cos(p invFreq_j) * scaling, angles in float64. */
export function ropeTables(invFreq: Float64Array, scaling: number, positions: readonly number[], cos: Vec, sin: Vec): void {
  const half = invFreq.length;
  for (let t = 0; t < positions.length; t++) {
    for (let j = 0; j < half; j++) {
      const angle = positions[t] * invFreq[j];
      cos[t * half + j] = Math.cos(angle) * scaling;
      sin[t * half + j] = Math.sin(angle) * scaling;
    }
  }
}
