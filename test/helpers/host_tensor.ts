/** A host backend's tensor (TypeScript, WASM) is the typed array it wraps: tests may look inside it. */
import type { Tensor, Vec } from "../../src/kernels/types.js";

export function hostTensor(t: Tensor): Vec {
  return t as unknown as Vec;
}
