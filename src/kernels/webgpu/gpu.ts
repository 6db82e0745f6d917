/// <reference types="@webgpu/types" />
/**
 * Getting a WebGPU device: `navigator.gpu` in a browser (or any runtime that has it), the `webgpu` npm
 * package (Dawn) in Node, loaded through `node_gpu.ts` so that browser bundles never see a Node import.
 * Every wait is bounded: a missing or failing adapter is one clear Error, never a hang.
 */

/** How long requestAdapter / requestDevice may take (the software rasteriser is slow to start on a loaded machine). */
export const GPU_TIMEOUT_MS = 60_000;

export interface GpuHandle {
  device: GPUDevice;
  /** The adapter's description: backend, vendor, architecture (for reports). */
  description: string;
  /** Releases the device (and, in Node, the Dawn instance, so the process can exit). */
  close(): void;
}

/** Rejects with `what timed out` after ms, or settles as p does. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The limits this backend asks for: the adapter's own storage-buffer and workgroup limits (the defaults are lower). */
function requiredLimits(a: GPUAdapter): Record<string, number> {
  const l = a.limits;
  return {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
  };
}

/**
 * A device from `navigator.gpu` when the runtime has one, else from Dawn in Node. Throws one line naming
 * what failed (no WebGPU, no adapter, device refused, timeout).
 */
export async function requestGpu(timeoutMs = GPU_TIMEOUT_MS): Promise<GpuHandle> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  let gpu: GPU;
  let release = () => {};
  let adapterOptions: GPURequestAdapterOptions[] = [{}, { featureLevel: "compatibility" }];
  if (nav?.gpu) gpu = nav.gpu;
  else {
    const { nodeGpu } = await import("./node_gpu.js");
    ({ gpu, release, adapterOptions } = await nodeGpu());
  }
  let adapter: GPUAdapter | null = null;
  try {
    for (const opts of adapterOptions) {
      adapter = await withTimeout(gpu.requestAdapter(opts), timeoutMs, "WebGPU requestAdapter");
      if (adapter) break;
    }
    if (!adapter) throw new Error("WebGPU: no adapter (no GPU, and no software driver Dawn accepts: see README, WebGPU backend)");
    const a = adapter;
    const device = await withTimeout(a.requestDevice({ requiredLimits: requiredLimits(a) }), timeoutMs, "WebGPU requestDevice");
    const info = a.info;
    const description = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s).join(" ") || "unnamed adapter";
    return {
      device,
      description,
      close() {
        device.destroy();
        release();
      },
    };
  } catch (e) {
    release();
    throw new Error(`WebGPU backend unavailable: ${(e as Error).message.trim().replace(/\s*\n\s*/g, "; ")}`);
  }
}
