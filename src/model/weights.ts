/**
 * Where the model takes its parameters from: anything that returns a `Weight` by its published name
 * (a `LoadedCheckpoint` does), and a workspace of reusable activation buffers.
 */
import type { Kernels, Vec, Weight } from "../kernels/types.js";

export interface WeightSource {
  /** The weight of this published name; throws naming the missing tensor. */
  get(name: string): Weight;
  has(name: string): boolean;
}

/** Checks a weight's shape, naming the tensor and both shapes when it does not match the config. */
export function expectShape(w: Weight, shape: readonly number[]): Weight {
  if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${w.name} has shape [${w.shape.join(", ")}], expected [${shape.join(", ")}] from the config`);
  }
  return w;
}

/**
 * Activation buffers reused across calls, by name: `get("attn.q", n)` returns n elements of a buffer that
 * grows when needed. Two buffers alive at the same time must have different names. Contents are undefined.
 */
export class Workspace {
  private readonly bufs = new Map<string, Vec>();
  private readonly f64 = new Map<string, Float64Array>();
  constructor(private readonly kernels: Kernels) {}

  get(name: string, n: number): Vec {
    let buf = this.bufs.get(name);
    if (!buf || buf.length < n) {
      if (buf) this.kernels.free(buf);
      buf = this.kernels.vec(Math.max(n, buf ? buf.length * 2 : 0));
      this.bufs.set(name, buf);
    }
    return buf.subarray(0, n);
  }

  /** Like `get`, but always float64 in plain memory (the residual stream, whatever the precision). */
  getF64(name: string, n: number): Float64Array {
    let buf = this.f64.get(name);
    if (!buf || buf.length < n) this.f64.set(name, (buf = new Float64Array(Math.max(n, buf ? buf.length * 2 : 0))));
    return buf.subarray(0, n);
  }
}
