/**
 * The WebGPU backend in the shape of the seam's asynchronous kernel interface (issue 11 part 1, phase 3:
 * `KernelsOf<T, I>` with opaque tensors, `view`, `write`, `read`, a float64 `residual`, `moeExperts`), written
 * against that interface (seam-async's WIP commit 926a7ad). `createModelKernels({ backend: "webgpu" })`
 * (src/kernels/index.ts) returns it, so `loadModel` and every command's `--backend webgpu` run the model on it.
 *
 * Tensors are arena ranges; a residual tensor carries a second range `lo` (the two-float stream, see
 * AXPY_DOUBLE): `read` returns hi + lo in float64, `rmsNorm` reads hi, `axpy` into it adds by two-sum.
 * `moeExperts` runs without reading the router's choices back: every expert runs on every token and only the
 * tokens that chose it take its output (exact, E / k times the expert work of the CPU path: for small models).
 */
import { allocHostWeight, widenWeight } from "../host_weights.js";
import type { Kernels, KernelsOf, Weight, WeightDType } from "../types.js";
import type { Tensor } from "./device.js";
import { WebGpuKernels } from "./kernels.js";
import { AXPY_ROWS_NONZERO, EXPERT_COEF } from "./wgsl/elementwise.js";

/** A device tensor as the model sees it: an arena range, its length, and for the residual stream its low part. */
export interface GpuTensor extends Tensor {
  readonly length: number;
  readonly lo?: Tensor;
}

const tensor = (t: Tensor, lo?: Tensor): GpuTensor => ({ offset: t.offset, n: t.n, length: t.n, lo });
type Mlp = { gate_proj: Weight; up_proj: Weight; down_proj: Weight };

/** A WebGPU device (see `requestGpu`) behind the model's kernel interface. */
export async function createWebGpuKernels(opts: { arenaBytes?: number } = {}): Promise<Kernels> {
  return webGpuBackend(await WebGpuKernels.create(opts)) as unknown as Kernels;
}

export function webGpuBackend(g: WebGpuKernels): KernelsOf<GpuTensor, GpuTensor> & { gpu: WebGpuKernels; close(): void } {
  const dev = g.dev;
  return {
    backend: "webgpu" as const,
    precision: "f32" as const,
    gpu: g,
    close: () => g.close(),

    vec: (n: number): GpuTensor => tensor(dev.alloc(n)),
    residual: (n: number): GpuTensor => tensor(dev.alloc(n), dev.alloc(n)),
    indices: (n: number): GpuTensor => tensor(dev.alloc(n)),
    view(t: GpuTensor, start: number, end: number): GpuTensor {
      const at = (u: Tensor): Tensor => ({ offset: u.offset + start, n: end - start });
      if (start < 0 || end < start || end > t.n) throw new Error(`view [${start}, ${end}) of a tensor of ${t.n}`);
      return tensor(at(t), t.lo ? at(t.lo) : undefined);
    },
    write(t: GpuTensor, data: ArrayLike<number>): void {
      if (!t.lo) return dev.write(t, data);
      // The float64 values as hi (nearest float) + lo (the rest, rounded).
      const hi = Float32Array.from(data);
      dev.write(t, hi);
      dev.write(t.lo, Float32Array.from(hi, (h, i) => data[i] - h));
    },
    async read(t: GpuTensor): Promise<Float32Array | Float64Array> {
      const hi = await dev.read(t);
      if (!t.lo) return hi;
      const lo = await dev.read(t.lo);
      return Float64Array.from(hi, (h, i) => h + lo[i]);
    },
    readIndices: (t: GpuTensor): Promise<Int32Array> => dev.readInts(t),
    free(t: GpuTensor): void {
      dev.release(t);
      if (t.lo) dev.release(t.lo);
    },
    allocWeight: (name: string, dtype: WeightDType, shape: readonly number[]): Weight => allocHostWeight(name, dtype, shape),
    toVec: (w: Weight): GpuTensor => tensor(dev.upload(widenWeight(w, "f64"))),

    linear: (w: Weight, x: GpuTensor, T: number, y: GpuTensor) => g.linear(w, x, T, y),
    embedding(w: Weight, id: number, out: GpuTensor): void {
      g.embedding(w, id, out);
      if (out.lo) dev.fill(out.lo, 0);
    },
    rmsNorm: (x: GpuTensor, weight: GpuTensor, eps: number, n: number, out: GpuTensor) => g.rmsNorm(x, weight, eps, n, out),
    gatedRmsNorm: (x: GpuTensor, z: GpuTensor, weight: GpuTensor, eps: number, n: number, out: GpuTensor) => g.gatedRmsNorm(x, z, weight, eps, n, out),
    l2Normalize: (x: GpuTensor, n: number, eps: number, scale: number) => g.l2Normalize(x, n, eps, scale),
    siluMul: (gate: GpuTensor, up: GpuTensor, out: GpuTensor) => g.siluMul(gate, up, out),
    sigmoidMul: (x: GpuTensor, gate: GpuTensor) => g.sigmoidMul(x, gate),
    axpy(a: number, x: GpuTensor, y: GpuTensor): void {
      if (y.lo) g.axpyResidual(a, x, { hi: y, lo: y.lo });
      else g.axpy(a, x, y);
    },
    softmax: (x: GpuTensor, n: number) => g.softmax(x, n),
    rope: (x: GpuTensor, T: number, H: number, d: number, rd: number, cos: GpuTensor, sin: GpuTensor) => g.rope(x, T, H, d, rd, cos, sin),
    attention: (a: Parameters<WebGpuKernels["attention"]>[0]) => g.attention(a),
    causalConv1d: (a: Parameters<WebGpuKernels["causalConv1d"]>[0]) => g.causalConv1d(a),
    deltaRuleRecurrent: (a: Parameters<WebGpuKernels["deltaRule"]>[0]) => g.deltaRule(a),
    deltaRuleChunked: (a: Parameters<WebGpuKernels["deltaRuleChunked"]>[0], chunkSize?: number) => g.deltaRuleChunked(a, chunkSize),
    router: (a: Parameters<WebGpuKernels["router"]>[0]) => g.router(a),

    /** out[t] += sum_j weights[t, j] expert_{experts[t, j]}(x[t]), the choices staying on the device. */
    moeExperts({ x, experts, weights, T, k, mlps, out }: { x: GpuTensor; experts: GpuTensor; weights: GpuTensor; T: number; k: number; mlps: readonly Mlp[]; out: GpuTensor }): void {
      const H = x.n / T;
      const coef = dev.alloc(T);
      const y = dev.alloc(T * H);
      mlps.forEach((m, e) => {
        const I = m.gate_proj.shape[0];
        const [gate, up] = [dev.alloc(T * I), dev.alloc(T * I)];
        dev.run("expertCoef", EXPERT_COEF, [experts.offset, weights.offset, coef.offset, T, k, e], [], T);
        g.linear(m.gate_proj, x, T, gate);
        g.linear(m.up_proj, x, T, up);
        g.siluMul(gate, up, gate);
        g.linear(m.down_proj, gate, T, y);
        dev.run("axpyRowsNonzero", AXPY_ROWS_NONZERO, [coef.offset, y.offset, out.offset, T * H, H], [], T * H);
        dev.release(gate);
        dev.release(up);
      });
      dev.release(coef);
      dev.release(y);
    },
    splitQkvz: (a: Parameters<WebGpuKernels["splitQkvz"]>[0]) => g.splitQkvz(a),
    splitBa: (a: Parameters<WebGpuKernels["splitBa"]>[0]) => g.splitBa(a),
    splitColumns: (x: GpuTensor, widths: readonly number[], outs: readonly GpuTensor[]) => g.splitColumns(x, widths, outs),
    concatColumns: (xs: readonly GpuTensor[], widths: readonly number[], out: GpuTensor) => g.concatColumns(xs, widths, out),
    tileHeads: (x: GpuTensor, T: number, Hk: number, Hv: number, d: number, out: GpuTensor) => g.tileHeads(x, T, Hk, Hv, d, out),
    gates: (a: GpuTensor, b: GpuTensor, A_log: GpuTensor, dtBias: GpuTensor, gg: GpuTensor, beta: GpuTensor) => g.gates(a, b, A_log, dtBias, gg, beta),
    sigmoid: (x: GpuTensor, out: GpuTensor) => g.sigmoid(x, out),
    addBias: (y: GpuTensor, bias: GpuTensor) => g.addBias(y, bias),
    addScalar: (x: GpuTensor, c: number) => g.addScalar(x, c),
    axpyRows: (a: GpuTensor, x: GpuTensor, y: GpuTensor) => g.axpyRows(a, x, y),
    gatherRows: (x: GpuTensor, width: number, rows: Int32Array, out: GpuTensor) => g.gatherRows(x, width, rows, out),
    scatterAxpyRows: (a: GpuTensor, x: GpuTensor, width: number, rows: Int32Array, y: GpuTensor) => g.scatterAxpyRows(a, x, width, rows, y),
    fill(x: GpuTensor, value: number): void {
      dev.fill(x, value);
      if (x.lo) dev.fill(x.lo, 0);
    },
    copy(src: GpuTensor, dst: GpuTensor): void {
      g.copyTensor(src, dst);
      if (src.lo && dst.lo) g.copyTensor(src.lo, dst.lo);
      else if (dst.lo) dev.fill({ offset: dst.lo.offset, n: src.n }, 0);
    },
    ropeTables: (invFreq: Float64Array, scaling: number, positions: readonly number[], cos: GpuTensor, sin: GpuTensor) => g.ropeTables(invFreq, scaling, positions, cos, sin),
  };
}

export type WebGpuBackend = ReturnType<typeof webGpuBackend>;
