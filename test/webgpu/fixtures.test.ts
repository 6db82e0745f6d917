/**
 * The model itself (src/model/, through the seam's asynchronous kernel interface) on the WebGPU backend
 * (src/kernels/webgpu/backend.ts) against the golden fixtures, as test/fixtures.test.ts checks the CPU backends:
 * every traced tensor within the float32 tolerance, expert ids identical, full pass and prefill-then-decode.
 */
import { afterAll, describe } from "vitest";
import type { Kernels } from "../../src/kernels/types.js";
import { webGpuBackend } from "../../src/kernels/webgpu/backend.js";
import { FIXTURE_MODELS, itMatchesFixture } from "../helpers/fixture_runs.js";
import { TOL } from "../helpers/reference.js";
import { testGpu } from "./gpu.js";

const { gpu, reason } = await testGpu();
afterAll(() => gpu?.close());

describe.skipIf(!gpu)(`the model on the WebGPU backend${reason ? ` (skipped: ${reason})` : ""}`, () => {
  const kernels = gpu ? (webGpuBackend(gpu) as unknown as Kernels) : null!;
  describe.each(FIXTURE_MODELS)("fixture %s", (name) => {
    itMatchesFixture(name, () => kernels, TOL.f32);
  });
});
