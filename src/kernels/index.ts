/** Picks a kernel implementation: the TypeScript reference ("ts", float32 or float64) or WASM SIMD ("wasm"). */
import { availableParallelism } from "node:os";
import { createTsKernels } from "./ts/index.js";
import type { HostKernels, KernelOptions, Kernels } from "./types.js";

export type { Accumulate, Backend, HostKernels, Kernels, KernelOptions, Precision, Tensor, Vec, Weight, WeightDType } from "./types.js";
export { opaque } from "./types.js";

export async function createKernels(opts: KernelOptions = {}): Promise<HostKernels> {
  const backend = opts.backend ?? "wasm";
  const precision = opts.precision ?? "f32";
  if (precision !== "f32" && precision !== "f64") {
    throw new Error(`precision is ${JSON.stringify(precision)}, expected "f32" or "f64"`);
  }
  if (backend === "ts") return createTsKernels(precision);
  if (backend === "wasm") {
    // WASM SIMD computes in float32; float64 (the oracle mode) runs the TypeScript kernels.
    if (precision === "f64") return createTsKernels("f64");
    const { createWasmKernels } = await import("./wasm/kernels.js");
    return createWasmKernels({ threads: opts.threads ?? availableParallelism(), accumulate: opts.accumulate, simd: opts.simd });
  }
  if (backend === "webgpu") throw new Error("the webgpu backend's tensors live on the device: create it with createModelKernels");
  throw new Error(`backend is ${JSON.stringify(backend)}, expected "ts", "wasm" or "webgpu"`);
}

/**
 * Kernels for the model: the host backends of `createKernels`, or the WebGPU backend (tensors on the device,
 * float32 only), whose device comes from `navigator.gpu` or the `webgpu` package.
 */
export async function createModelKernels(opts: KernelOptions = {}): Promise<HostKernels | Kernels> {
  if (opts.backend !== "webgpu") return createKernels(opts);
  if ((opts.precision ?? "f32") !== "f32") throw new Error(`the webgpu backend computes in float32, got precision ${JSON.stringify(opts.precision)}`);
  const { createWebGpuKernels } = await import("./webgpu/backend.js");
  return createWebGpuKernels();
}

/** What runs the model, for stats and `--json`: backend, precision and, for WASM, the build, sums and threads. */
export function describeKernels(k: Kernels | HostKernels): { backend: string; precision: string; simd?: string; accumulate?: string; threads?: number } {
  const w = k as { simd?: string; accumulate?: string; threads?: number } & { simd?: string; accumulate?: string; threads?: number };
  return k.backend === "wasm" ? { backend: k.backend, precision: k.precision, simd: w.simd, accumulate: w.accumulate, threads: w.threads } : { backend: k.backend, precision: k.precision };
}
