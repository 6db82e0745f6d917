/** Scalar activations shared by the kernels (each backend applies them elementwise in its own loops). */

/** sigmoid(a) = 1 / (1 + e^-a). */
export function sigmoid(a: number): number {
  return 1 / (1 + Math.exp(-a));
}

/** silu(a) = a * sigmoid(a), written a / (1 + e^-a). */
export function silu(a: number): number {
  return a / (1 + Math.exp(-a));
}

/** softplus(a) = ln(1 + e^a), linear above 20 as in PyTorch. */
export function softplus(a: number): number {
  return a > 20 ? a : Math.log1p(Math.exp(a));
}
