/**
 * Where the model takes its parameters from: anything that returns a `Weight` by its published name
 * (a `LoadedCheckpoint` does), and a workspace of reusable activation buffers.
 */
import type { Kernels, Tensor, Weight } from "../kernels/types.js";

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
  private readonly bufs = new Map<string, Tensor>();
  constructor(private readonly kernels: Kernels) {}

  get(name: string, n: number): Tensor {
    return this.grown(name, n, (m) => this.kernels.vec(m));
  }

  /** Like `get`, but a residual stream (float64 whatever the precision). */
  residual(name: string, n: number): Tensor {
    return this.grown(`residual:${name}`, n, (m) => this.kernels.residual(m));
  }

  private grown(name: string, n: number, alloc: (n: number) => Tensor): Tensor {
    let buf = this.bufs.get(name);
    if (!buf || buf.length < n) {
      if (buf) this.kernels.free(buf);
      buf = alloc(Math.max(n, buf ? buf.length * 2 : 0));
      this.bufs.set(name, buf);
    }
    return this.kernels.view(buf, 0, n);
  }
}
