/**
 * Qwen3NextRMSNorm (zero-centred):  y = x / sqrt(mean(x^2) + eps) * (1 + w)
 * Qwen3NextRMSNormGated (DeltaNet's output norm, plain weight):  y = x / sqrt(mean(x^2) + eps) * w * silu(z)
 * Their weight [size] is declared by the module that holds the norm.
 */
import type { Kernels, Tensor, Weight } from "../kernels/types.js";

export class Qwen3NextRMSNorm {
  /** The effective scale 1 + w. */
  private readonly scale: Tensor;
  readonly size: number;

  constructor(private readonly k: Kernels, weight: Weight, private readonly eps: number) {
    this.size = weight.shape[0];
    this.scale = k.toVec(weight);
    k.addScalar(this.scale, 1);
  }

  /** Normalises each row of width `size`; out may be x. */
  forward(x: Tensor, out: Tensor): void {
    this.k.rmsNorm(x, this.scale, this.eps, this.size, out);
  }
}

export class Qwen3NextRMSNormGated {
  private readonly weight: Tensor;
  readonly size: number;

  constructor(private readonly k: Kernels, weight: Weight, private readonly eps: number) {
    this.size = weight.shape[0];
    this.weight = k.toVec(weight);
  }

  /** Normalises each row of width `size` and gates it with silu(z); out may be x. */
  forward(x: Tensor, z: Tensor, out: Tensor): void {
    this.k.gatedRmsNorm(x, z, this.weight, this.eps, this.size, out);
  }
}
