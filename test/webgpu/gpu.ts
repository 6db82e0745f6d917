/**
 * The WebGPU device for the backend's tests: one per test file, on whatever adapter `requestGpu` finds (Mesa's
 * software driver on a machine without a GPU). Without one the tests are skipped with the reason, except under
 * CI=true, where the CI script installs Mesa and a missing adapter is a failure.
 */
import { WebGpuKernels } from "../../src/kernels/webgpu/kernels.js";

export async function testGpu(opts: { maxBinding?: number } = {}): Promise<{ gpu: WebGpuKernels | null; reason: string }> {
  try {
    return { gpu: await WebGpuKernels.create({ arenaBytes: 32 << 20, ...opts }), reason: "" };
  } catch (e) {
    const reason = (e as Error).message;
    if (process.env.CI === "true") throw new Error(`${reason} (CI installs Mesa's EGL/GL packages: see .ci/run)`);
    console.warn(`skipping the WebGPU tests: ${reason}`);
    return { gpu: null, reason };
  }
}
