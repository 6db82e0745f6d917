/// <reference types="@webgpu/types" />
/**
 * WebGPU in Node: the `webgpu` npm package (Dawn, prebuilt). The only Node-specific module of the backend.
 *
 * Backend choice: `QWEN3_WEBGPU_BACKEND` (a Dawn backend name: vulkan, opengles, ...) when set; otherwise Dawn's
 * default first, then OpenGL ES on EGL (which Mesa's software driver llvmpipe provides on a machine without
 * a GPU; Dawn refuses Vulkan's lavapipe). EGL is told to need no display (`EGL_PLATFORM=surfaceless`)
 * unless the environment says otherwise.
 */

export interface NodeGpu {
  gpu: GPU;
  /** Drops the Dawn instance (a live one keeps Node's event loop running). */
  release: () => void;
  /** requestAdapter options to try in order. */
  adapterOptions: GPURequestAdapterOptions[];
}

export async function nodeGpu(): Promise<NodeGpu> {
  let mod: { create(options: string[]): GPU; globals: object };
  try {
    mod = (await import("webgpu")) as unknown as typeof mod;
  } catch (e) {
    throw new Error(`WebGPU backend unavailable: the webgpu package did not load (${(e as Error).message.split("\n")[0]})`);
  }
  Object.assign(globalThis, mod.globals); // GPUBufferUsage, GPUMapMode, ...
  const wanted = process.env.QWEN3_WEBGPU_BACKEND;
  if (!wanted || wanted === "opengles" || wanted === "opengl") process.env.EGL_PLATFORM ??= "surfaceless";
  let gpu: GPU | null = null;
  if (wanted) gpu = mod.create([`backend=${wanted}`]);
  else {
    // Dawn's default backend (Vulkan, Metal, D3D12) when it has a real adapter; else OpenGL ES.
    const first = mod.create([]);
    const a = await first.requestAdapter().catch(() => null);
    gpu = a ? first : mod.create(["backend=opengles"]);
  }
  let held: GPU | null = gpu;
  return {
    gpu: held,
    release: () => {
      held = null;
    },
    adapterOptions: [{}, { featureLevel: "compatibility" }],
  };
}
