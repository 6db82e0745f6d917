/// <reference types="@webgpu/types" />
/**
 * The device-buffer layer of the WebGPU backend.
 *
 *   - Activations live in one storage buffer, the arena, as float32 (integers as their bits); a `Tensor` is an
 *     element range of it. Kernels bind the arena once (read-write) and take element offsets as parameters,
 *     so in-place operations and views need no aliasing rules and no offset alignment.
 *   - Weights stay in their checkpoint dtype (BF16/F16 words, ggml blocks; F32/F64 as float32), resident in
 *     buffers of whole rows no larger than the adapter's storage-binding limit (a large weight is split).
 *   - Work is recorded into one command encoder and submitted on `flush` or `read`; `read` is the only
 *     device-to-host copy (the model reads back once per step).
 */
import type { Weight, WeightDType } from "../types.js";
import { numel } from "../../shape.js";
import { isQuantDType, quantRowBytes } from "../../io/ggml_quants.js";
import type { GpuHandle } from "./gpu.js";

/** An element range [offset, offset + n) of the arena. */
export interface Tensor {
  readonly offset: number;
  readonly n: number;
}

/** A view of `n` elements of t starting at element `start`. */
export function view(t: Tensor, start: number, n: number): Tensor {
  if (start < 0 || n < 0 || start + n > t.n) throw new Error(`view [${start}, ${start + n}) of a tensor of ${t.n}`);
  return { offset: t.offset + start, n };
}

/** One buffer of whole rows [row0, row0 + rows) of a weight. */
export interface WeightChunk {
  buffer: GPUBuffer;
  row0: number;
  rows: number;
}

/** A weight resident on the device, rows split over chunks. Rows are the first dimension, cols the rest. */
export interface DeviceWeight {
  readonly name: string;
  readonly dtype: WeightDType;
  readonly rows: number;
  readonly cols: number;
  readonly chunks: WeightChunk[];
}

/** A uniform parameter: an unsigned integer, or a float ("f"). All are 4 bytes. */
export type Param = number | { f: number } | { i: number };

/** Default size of the activation arena (a device may refuse the whole binding limit: SwiftShader's is 2 GiB). */
export const ARENA_BYTES = 128 << 20;

/** Workgroup size of the one-dimensional kernels. */
export const WG = 64;

export class Device {
  readonly device: GPUDevice;
  readonly description: string;
  /** Largest storage binding, bytes. */
  readonly maxBinding: number;
  private readonly arena: GPUBuffer;
  /** Arena capacity in elements. */
  readonly capacity: number;
  private readonly free: Array<[number, number]> = []; // [offset, n] free ranges, sorted by offset
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private uniforms: GPUBuffer[] = [];
  private readonly weights = new WeakMap<Weight, DeviceWeight>();
  /** Dispatches recorded since the device was made (for tests and benchmarks). */
  dispatches = 0;
  /** Why the device was lost, once it has been (every later call throws it). */
  private lost: string | null = null;

  /**
   * `arenaBytes`: activation arena size (default ARENA_BYTES, capped by the storage binding limit); `maxBinding`:
   * a lower storage binding limit than the adapter's (tests use it to split small weights).
   */
  constructor(private readonly handle: GpuHandle, opts: { arenaBytes?: number; maxBinding?: number } = {}) {
    this.device = handle.device;
    this.description = handle.description;
    this.maxBinding = Math.min(opts.maxBinding ?? Infinity, this.device.limits.maxStorageBufferBindingSize);
    const limit = this.device.limits.maxStorageBufferBindingSize;
    const bytes = Math.min(opts.arenaBytes ?? ARENA_BYTES, limit) & ~15;
    this.capacity = bytes / 4;
    this.arena = this.device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    this.free.push([0, this.capacity]);
    void this.device.lost.then((info) => {
      this.lost = info.message || info.reason || "unknown reason";
    });
  }

  private checkLost(): void {
    if (this.lost !== null) throw new Error(`WebGPU device lost (${this.lost})`);
  }

  close(): void {
    this.pass = null;
    this.encoder = null;
    this.handle.close();
  }

  // ---- the arena -----------------------------------------------------------------------------------------

  /** A zero-filled tensor of n elements (rounded up to 4 for alignment of later copies). */
  alloc(n: number): Tensor {
    const size = Math.max(4, (n + 3) & ~3);
    for (let i = 0; i < this.free.length; i++) {
      const [off, len] = this.free[i];
      if (len < size) continue;
      if (len === size) this.free.splice(i, 1);
      else this.free[i] = [off + size, len - size];
      const t = { offset: off, n };
      this.fill(t, 0);
      return t;
    }
    throw new Error(`WebGPU arena full: ${n} more elements do not fit in ${this.capacity} (${(this.capacity * 4) >> 20} MiB)`);
  }

  /** Elements of the arena not allocated. */
  freeElements(): number {
    return this.free.reduce((s, [, n]) => s + n, 0);
  }

  /** Gives a tensor from `alloc` back (not a view). */
  release(t: Tensor): void {
    const size = Math.max(4, (t.n + 3) & ~3);
    let i = 0;
    while (i < this.free.length && this.free[i][0] < t.offset) i++;
    this.free.splice(i, 0, [t.offset, size]);
    // Merge with neighbours.
    if (i + 1 < this.free.length && this.free[i][0] + this.free[i][1] === this.free[i + 1][0]) {
      this.free[i][1] += this.free[i + 1][1];
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1][0] + this.free[i - 1][1] === this.free[i][0]) {
      this.free[i - 1][1] += this.free[i][1];
      this.free.splice(i, 1);
    }
  }

  /** Host values into t (rounded to float32). Ordered with the recorded work. */
  write(t: Tensor, data: ArrayLike<number>): void {
    if (data.length > t.n) throw new Error(`write of ${data.length} values into a tensor of ${t.n}`);
    // A Float32Array over an ArrayBuffer goes as it is; anything else (other types, shared memory) is copied.
    const f = data instanceof Float32Array && data.buffer instanceof ArrayBuffer ? (data as Float32Array<ArrayBuffer>) : Float32Array.from(data as ArrayLike<number>);
    this.writeBytes(t.offset, new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
  }

  /** Integers into t (stored as their bits, for kernels that read u32/i32). */
  writeInts(t: Tensor, data: ArrayLike<number>): void {
    const u = Int32Array.from(data as ArrayLike<number>);
    this.writeBytes(t.offset, new Uint8Array(u.buffer));
  }

  private writeBytes(offset: number, bytes: Uint8Array<ArrayBuffer>): void {
    // queue.writeBuffer runs before the commands not yet submitted: submit those first to keep the order.
    this.flush();
    let b = bytes;
    if (b.byteLength % 4) {
      b = new Uint8Array((b.byteLength + 3) & ~3);
      b.set(bytes);
    }
    this.device.queue.writeBuffer(this.arena, offset * 4, b);
  }

  /** A host tensor uploaded into a new device tensor. */
  upload(data: ArrayLike<number>): Tensor {
    const t = this.alloc(data.length);
    this.write(t, data);
    return t;
  }

  /** t = value in every element. */
  fill(t: Tensor, value: number): void {
    this.run("fill", FILL, [t.offset, t.n, { f: value }], [], t.n);
  }

  /** The values of t, read back after all recorded work (the only device-to-host copy). */
  async read(t: Tensor): Promise<Float32Array> {
    return new Float32Array(await this.readBytes(t));
  }

  /** The values of t as 32-bit integers. */
  async readInts(t: Tensor): Promise<Int32Array> {
    return new Int32Array(await this.readBytes(t));
  }

  private async readBytes(t: Tensor): Promise<ArrayBuffer> {
    this.checkLost();
    const size = Math.max(4, t.n * 4);
    const staging = this.device.createBuffer({ size: (size + 3) & ~3, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.endPass();
    this.enc().copyBufferToBuffer(this.arena, t.offset * 4, staging, 0, t.n * 4);
    this.flush();
    await staging.mapAsync(GPUMapMode.READ);
    const out = staging.getMappedRange().slice(0, t.n * 4);
    staging.unmap();
    staging.destroy();
    return out;
  }

  // ---- weights ---------------------------------------------------------------------------------------------

  /** The device copy of a host weight, uploaded at first use (whole rows per chunk, each within the binding limit). */
  weight(w: Weight): DeviceWeight {
    let d = this.weights.get(w);
    if (!d) {
      d = this.uploadWeight(w);
      this.weights.set(w, d);
    }
    return d;
  }

  private uploadWeight(w: Weight): DeviceWeight {
    const rows = w.shape[0] ?? 1;
    const cols = w.shape.length <= 1 ? numel(w.shape) : numel(w.shape.slice(1));
    const rowBytes = isQuantDType(w.dtype)
      ? quantRowBytes(w.dtype, cols)
      : w.dtype === "BF16" || w.dtype === "F16"
        ? 2 * cols
        : 4 * cols;
    const perChunk = Math.max(1, Math.floor((this.maxBinding - 4) / rowBytes));
    if (rowBytes + 4 > this.maxBinding) throw new Error(`${w.name}: one row of ${rowBytes} bytes exceeds the adapter's storage binding limit`);
    const bytes = w.dtype === "F64" ? new Uint8Array(Float32Array.from(w.data as Float64Array).buffer) : new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength);
    const chunks: WeightChunk[] = [];
    for (let row0 = 0; row0 < rows; row0 += perChunk) {
      const n = Math.min(perChunk, rows - row0);
      const size = Math.max(4, (n * rowBytes + 3) & ~3);
      const buffer = this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
      new Uint8Array(buffer.getMappedRange()).set(bytes.subarray(row0 * rowBytes, (row0 + n) * rowBytes));
      buffer.unmap();
      chunks.push({ buffer, row0, rows: n });
    }
    return { name: w.name, dtype: w.dtype, rows, cols, chunks };
  }

  // ---- dispatch ----------------------------------------------------------------------------------------------

  private enc(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Submits the recorded work. */
  flush(): void {
    this.endPass();
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      for (const u of this.uniforms) u.destroy();
      this.uniforms = [];
    }
  }

  /** Resolves when everything submitted so far has run. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
  }

  private pipeline(key: string, code: string): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ code });
      p = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
      this.pipelines.set(key, p);
    }
    return p;
  }

  /**
   * Records one dispatch of the kernel `code` (cached under `key`): binding 0 its parameters (a uniform struct
   * of 4-byte scalars in order), binding 1 the arena, bindings 2.. the given weight buffers. `groups` is a
   * workgroup count (spread over x and y when past the per-dimension limit: kernels use `flat_group`) or [x, y, z].
   */
  run(key: string, code: string, params: Param[], buffers: GPUBuffer[], threads: number, groups?: [number, number, number]): void {
    this.checkLost();
    const pipeline = this.pipeline(key, code);
    const words = Math.max(4, (params.length + 3) & ~3);
    const data = new ArrayBuffer(words * 4);
    const u32 = new Uint32Array(data);
    const f32 = new Float32Array(data);
    const i32 = new Int32Array(data);
    params.forEach((p, i) => {
      if (typeof p === "number") {
        if (!(Number.isInteger(p) && p >= 0 && p < 2 ** 32)) throw new Error(`${key}: parameter ${i} is ${p}, expected a u32`);
        u32[i] = p;
      } else if ("f" in p) f32[i] = p.f;
      else i32[i] = p.i;
    });
    const uniform = this.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
    new Uint8Array(uniform.getMappedRange()).set(new Uint8Array(data));
    uniform.unmap();
    this.uniforms.push(uniform);
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: uniform } },
      { binding: 1, resource: { buffer: this.arena } },
      ...buffers.map((buffer, i) => ({ binding: i + 2, resource: { buffer } })),
    ];
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    this.pass ??= this.enc().beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    const [x, y, z] = groups ?? spread(Math.ceil(threads / WG));
    if (x * y * z === 0) return;
    this.pass.dispatchWorkgroups(x, y, z);
    this.dispatches++;
  }
}

/** n workgroups as [x, y, 1] within the per-dimension limit (65535). */
export function spread(n: number): [number, number, number] {
  if (n <= 65535) return [n, 1, 1];
  const y = Math.ceil(n / 65535);
  return [Math.ceil(n / y), y, 1];
}

/**
 * What every kernel shares: the arena binding, the flat thread index of a one-dimensional kernel (dispatched
 * with `spread`), and `exp_f32`, e^x to about 1 ulp. The built-in exp may be far less accurate (Mesa's llvmpipe:
 * about 16 ulp, 1e-6 relative), and the softmaxes, gates and decays of a deep model amplify that past the
 * float32 tolerance of the fixtures. Cody-Waite reduction x = k ln2 + r, |r| <= ln2 / 2, then Cephes' expf
 * polynomial for e^r and an exact scaling by 2^k.
 */
export const PRELUDE = /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> A: array<f32>;
fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * ${WG}u; }
fn exp_f32(x0: f32) -> f32 {
  let x = clamp(x0, -103.0, 88.7);
  let k = floor(x * 1.44269504089 + 0.5);
  let r = (x - k * 0.693359375) - k * -2.12194440e-4;
  let z = r * r;
  let y = (((((1.9875691500e-4 * r + 1.3981999507e-3) * r + 8.3334519073e-3) * r + 4.1665795894e-2) * r
          + 1.6666665459e-1) * r + 5.0000001201e-1) * z + r + 1.0;
  let ki = i32(k);
  // 2^k in two factors: k may be below the smallest normal exponent.
  return ldexp(ldexp(y, ki / 2), ki - ki / 2);
}
`;

const FILL = /* wgsl */ `
struct P { off: u32, n: u32, value: f32 }
@group(0) @binding(0) var<uniform> p: P;
${PRELUDE}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i < p.n) { A[p.off + i] = p.value; }
}`;
