/** Matrix products against stored weights: y = x W^T (PyTorch's nn.Linear without bias) and row lookup. */
import type { Vec, Weight } from "../types.js";
import { weightRow, type RowScratch } from "../host_weights.js";

/** y[t, o] = sum_i W[o, i] x[t, i] with W [out, in]. Each weight row is widened once and used for every t. */
export function linear(w: Weight, x: Vec, T: number, y: Vec, scratch: RowScratch): void {
  const [outDim, inDim] = w.shape;
  if (w.shape.length !== 2 || x.length < T * inDim || y.length < T * outDim) {
    throw new Error(`linear ${w.name}: weight [${w.shape}] does not fit x of ${x.length} / y of ${y.length} for T=${T}`);
  }
  for (let o = 0; o < outDim; o++) {
    const row = weightRow(w, o, inDim, scratch);
    for (let t = 0; t < T; t++) {
      const base = t * inDim;
      // Four partial sums: independent chains the JIT can overlap.
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      let i = 0;
      for (; i + 3 < inDim; i += 4) {
        a0 += row[i] * x[base + i];
        a1 += row[i + 1] * x[base + i + 1];
        a2 += row[i + 2] * x[base + i + 2];
        a3 += row[i + 3] * x[base + i + 3];
      }
      for (; i < inDim; i++) a0 += row[i] * x[base + i];
      y[t * outDim + o] = a0 + a1 + a2 + a3;
    }
  }
}

/** out = W[id, :] for an embedding table W [V, H]. */
export function embedding(w: Weight, id: number, out: Vec, scratch: RowScratch): void {
  const [V, H] = w.shape;
  if (!Number.isInteger(id) || id < 0 || id >= V) {
    throw new Error(`token id ${id} is out of range, expected an integer in [0, ${V})`);
  }
  const row = weightRow(w, id, H, scratch);
  for (let i = 0; i < H; i++) out[i] = row[i];
}
