/**
 * Qwen3NextRMSNorm (zero-centred):  y = x / sqrt(mean(x^2) + eps) * (1 + w)
 * Qwen3NextRMSNormGated (DeltaNet's output norm, plain weight):  y = x / sqrt(mean(x^2) + eps) * w * silu(z)
 */
import type { Kernels, Vec } from "../kernels/types.js";
import { param, type WeightSource } from "./weights.js";

export class Qwen3NextRMSNorm {
  /** The effective scale 1 + w. */
  private readonly scale: Vec;

  constructor(private readonly k: Kernels, src: WeightSource, name: string, readonly size: number, private readonly eps: number) {
    this.scale = k.toVec(param(src, name, [size]));
    for (let i = 0; i < size; i++) this.scale[i] += 1;
  }

  /** Normalises each row of width `size`; out may be x. */
  forward(x: Vec, out: Vec): void {
    this.k.rmsNorm(x, this.scale, this.eps, this.size, out);
  }
}

export class Qwen3NextRMSNormGated {
  private readonly weight: Vec;

  constructor(private readonly k: Kernels, src: WeightSource, name: string, readonly size: number, private readonly eps: number) {
    this.weight = k.toVec(param(src, name, [size]));
  }

  /** Normalises each row of width `size` and gates it with silu(z); out may be x. */
  forward(x: Vec, z: Vec, out: Vec): void {
    this.k.gatedRmsNorm(x, z, this.weight, this.eps, this.size, out);
  }
}
