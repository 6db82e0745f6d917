/// <reference types="@webgpu/types" />
/**
 * The WebGPU kernels: the computations of `Kernels` (src/kernels/types.ts) and the model's layout operations
 * (splits, gathers, gates) over device tensors. Each call records dispatches; nothing is read back until the
 * caller asks (`Device.read`). Float32 arithmetic throughout; the residual stream is kept as two floats (see
 * `axpyResidual`).
 */
import type { Weight } from "../types.js";
import { isQuantDType, quantRowBytes } from "../../io/ggml_quants.js";
import { Device, type Param, spread, type Tensor, view, WG } from "./device.js";
import { embeddingShader, linearRowsShader, linearShader, TOKEN_TILE } from "./wgsl/linear.js";
import { GATED_RMS_NORM, L2_NORMALIZE, RMS_NORM, SOFTMAX } from "./wgsl/norms.js";
import { ADD_SCALAR, AXPY, AXPY_DOUBLE, AXPY_ROWS, COPY, GATES, GATHER, ROPE, SCATTER_ADD, SIGMOID, SIGMOID_MUL, SILU_MUL } from "./wgsl/elementwise.js";
import { ropeTables as hostRopeTables } from "../ts/rope.js";
import { ATTENTION, CAUSAL_CONV1D, DELTA_RULE, ROUTER } from "./wgsl/attention.js";
import { DELTA_RULE_CHUNK_STATE, DELTA_RULE_CHUNKED, MAX_CHUNK } from "./wgsl/delta_chunked.js";
import { requestGpu } from "./gpu.js";

/** The residual stream as hi + lo float pairs (both [T, hidden]). */
export interface Residual {
  hi: Tensor;
  lo: Tensor;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

export class WebGpuKernels {
  /**
   * Matrix products with a thread per row (true) or a workgroup per row (false). Default: a thread per row on a
   * CPU rasteriser (an adapter whose description names llvmpipe, SwiftShader or lavapipe), else a workgroup.
   */
  rowPerThread: boolean;

  constructor(readonly dev: Device) {
    this.rowPerThread = /llvmpipe|swiftshader|lavapipe|software/i.test(dev.description);
  }

  /** A device from `requestGpu` (navigator.gpu or Dawn in Node) with an arena of `arenaBytes` (default ARENA_BYTES). */
  static async create(opts: { arenaBytes?: number; maxBinding?: number; timeoutMs?: number } = {}): Promise<WebGpuKernels> {
    const handle = await requestGpu(opts.timeoutMs);
    handle.device.pushErrorScope("out-of-memory");
    handle.device.pushErrorScope("validation");
    const dev = new Device(handle, opts);
    const errors = [await handle.device.popErrorScope(), await handle.device.popErrorScope()].filter((e) => e !== null);
    if (errors.length > 0) {
      dev.close();
      throw new Error(`WebGPU: the activation arena of ${(dev.capacity * 4) >> 20} MiB was refused (${errors[0]!.message.split("\n")[0]}); pass a smaller arenaBytes`);
    }
    return new WebGpuKernels(dev);
  }

  close(): void {
    this.dev.close();
  }

  /** y [T, out] = x [T, in] W^T, W [out, in] resident in its stored dtype (split in row chunks). */
  linear(w: Weight, x: Tensor, T: number, y: Tensor): void {
    const d = this.dev.weight(w);
    check(w.shape.length === 2 && x.n >= T * d.cols && y.n >= T * d.rows, `linear ${w.name}: weight [${w.shape}] does not fit x of ${x.n} / y of ${y.n} for T=${T}`);
    const rb = isQuantDType(d.dtype) ? quantRowBytes(d.dtype, d.cols) : 0;
    for (const c of d.chunks) {
      const params: Param[] = [x.offset, y.offset, T, d.cols, rb, c.rows, d.rows, c.row0, { f: 1 }, 0];
      if (this.rowPerThread) {
        const [gx, gy] = spread(Math.ceil(c.rows / WG));
        this.dev.run(`linearRows.${d.dtype}`, linearRowsShader(d.dtype), params, [c.buffer], 0, [gx, gy, Math.ceil(T / TOKEN_TILE)]);
      } else {
        const [gx, gy] = spread(c.rows);
        this.dev.run(`linear.${d.dtype}`, linearShader(d.dtype), params, [c.buffer], 0, [gx, gy, Math.ceil(T / TOKEN_TILE)]);
      }
    }
  }

  /** out = W[id, :] of an embedding table W [V, H]. */
  embedding(w: Weight, id: number, out: Tensor): void {
    const d = this.dev.weight(w);
    check(Number.isInteger(id) && id >= 0 && id < d.rows, `token id ${id} is out of range, expected an integer in [0, ${d.rows})`);
    const c = d.chunks.find((c) => id >= c.row0 && id < c.row0 + c.rows)!;
    const rb = isQuantDType(d.dtype) ? quantRowBytes(d.dtype, d.cols) : 0;
    this.dev.run(`embedding.${d.dtype}`, embeddingShader(d.dtype), [out.offset, id - c.row0, d.cols, rb], [c.buffer], d.cols);
  }

  /** Per row of width n: out = x / sqrt(mean(x^2) + eps) * weight. In place allowed. */
  rmsNorm(x: Tensor, weight: Tensor, eps: number, n: number, out: Tensor): void {
    const rows = x.n / n;
    this.dev.run("rmsNorm", RMS_NORM, [x.offset, weight.offset, out.offset, n, rows, { f: eps }], [], 0, spread(rows));
  }

  /** Per row of width n: out = x / sqrt(mean(x^2) + eps) * weight * silu(z). In place allowed. */
  gatedRmsNorm(x: Tensor, z: Tensor, weight: Tensor, eps: number, n: number, out: Tensor): void {
    const rows = x.n / n;
    this.dev.run("gatedRmsNorm", GATED_RMS_NORM, [x.offset, z.offset, weight.offset, out.offset, n, rows, { f: eps }], [], 0, spread(rows));
  }

  /** Per row of width n: x = x / sqrt(sum(x^2) + eps) * scale. */
  l2Normalize(x: Tensor, n: number, eps: number, scale: number): void {
    const rows = x.n / n;
    this.dev.run("l2Normalize", L2_NORMALIZE, [x.offset, n, rows, { f: eps }, { f: scale }], [], 0, spread(rows));
  }

  /** out = silu(gate) * up. */
  siluMul(gate: Tensor, up: Tensor, out: Tensor): void {
    this.dev.run("siluMul", SILU_MUL, [gate.offset, up.offset, out.offset, out.n], [], out.n);
  }

  /** x = x * sigmoid(gate). */
  sigmoidMul(x: Tensor, gate: Tensor): void {
    this.dev.run("sigmoidMul", SIGMOID_MUL, [x.offset, gate.offset, x.n], [], x.n);
  }

  /**
   * y += a x; `a` a number or a one-element device tensor (a routing weight). When x is shorter than y it is a
   * row added to every row of y (a bias).
   */
  axpy(a: number | Tensor, x: Tensor, y: Tensor): void {
    check(y.n % x.n === 0, `axpy: y of ${y.n} is not rows of x's ${x.n}`);
    const [av, at, has] = typeof a === "number" ? [a, 0, 0] : [0, a.offset, 1];
    this.dev.run("axpy", AXPY, [x.offset, y.offset, y.n, x.n, { f: av }, at, has], [], y.n);
  }

  /** (hi, lo) += a x with an exact two-sum (the residual stream; see AXPY_DOUBLE). */
  axpyResidual(a: number | Tensor, x: Tensor, r: Residual): void {
    const [av, at, has] = typeof a === "number" ? [a, 0, 0] : [0, a.offset, 1];
    this.dev.run("axpyResidual", AXPY_DOUBLE, [x.offset, r.hi.offset, r.lo.offset, r.hi.n, { f: av }, at, has, { f: 1 }, 0], [], r.hi.n);
  }

  /** Rotate-half RoPE on the first rotaryDim dims of each head, in place; cos, sin [T, rotaryDim / 2]. */
  rope(x: Tensor, T: number, numHeads: number, headDim: number, rotaryDim: number, cos: Tensor, sin: Tensor): void {
    const half = rotaryDim / 2;
    this.dev.run("rope", ROPE, [x.offset, cos.offset, sin.offset, T, numHeads, headDim, half], [], T * numHeads * half);
  }

  /** Causal GQA attention of T queries over a cache of L positions (see AttentionArgs); scores in a scratch tensor. */
  attention(a: { q: Tensor; k: Tensor; v: Tensor; T: number; L: number; numHeads: number; numKvHeads: number; headDim: number; scale: number; out: Tensor }): void {
    check(a.T <= 65535 && a.numHeads <= 65535, `attention: ${a.T} tokens x ${a.numHeads} heads exceeds the dispatch limit`);
    const s = this.dev.alloc(a.T * a.numHeads * a.L);
    this.dev.run(
      "attention",
      ATTENTION,
      [a.q.offset, a.k.offset, a.v.offset, a.out.offset, s.offset, a.T, a.L, a.numHeads, a.numKvHeads, a.headDim, { f: a.scale }],
      [],
      0,
      [a.numHeads, a.T, 1],
    );
    this.dev.release(s); // reused only by later dispatches, which run after this one
  }

  /** Depthwise causal conv1d with carried state [C, K-1], then SiLU (see CausalConv1dArgs). */
  causalConv1d(a: { x: Tensor; weight: Tensor; state: Tensor; T: number; C: number; K: number; out: Tensor }): void {
    check(a.K >= 1 && a.K <= 17, `causalConv1d: kernel size ${a.K}, expected 1..17`);
    this.dev.run("causalConv1d", CAUSAL_CONV1D, [a.x.offset, a.weight.offset, a.state.offset, a.out.offset, a.T, a.C, a.K], [], a.C);
  }

  /** The gated delta rule step by step for T tokens (see DeltaRuleArgs); the state is updated in place. */
  deltaRule(a: { q: Tensor; k: Tensor; v: Tensor; g: Tensor; beta: Tensor; state: Tensor; T: number; numKeyHeads: number; numValueHeads: number; dk: number; dv: number; out: Tensor }): void {
    this.dev.run(
      "deltaRule",
      DELTA_RULE,
      [a.q.offset, a.k.offset, a.v.offset, a.g.offset, a.beta.offset, a.state.offset, a.out.offset, a.T, a.numKeyHeads, a.numValueHeads, a.dk, a.dv],
      [],
      a.numValueHeads * a.dv,
    );
  }

  /**
   * The same result by chunks of `chunkSize` <= 64 steps (prefill): the algorithm of the TypeScript
   * `deltaRuleChunked`, one workgroup per value head.
   */
  deltaRuleChunked(
    a: { q: Tensor; k: Tensor; v: Tensor; g: Tensor; beta: Tensor; state: Tensor; T: number; numKeyHeads: number; numValueHeads: number; dk: number; dv: number; out: Tensor },
    chunkSize = MAX_CHUNK,
  ): void {
    check(Number.isInteger(chunkSize) && chunkSize >= 1 && chunkSize <= MAX_CHUNK, `chunk size ${chunkSize}, expected an integer in [1, ${MAX_CHUNK}]`);
    const C = Math.min(chunkSize, a.T);
    const scratch = this.dev.alloc(a.numValueHeads * C * (2 * a.dv + a.dk + 1));
    for (let t0 = 0; t0 < a.T; t0 += C) {
      this.dev.run(
        "deltaRuleChunked",
        DELTA_RULE_CHUNKED,
        [a.q.offset, a.k.offset, a.v.offset, a.g.offset, a.beta.offset, a.state.offset, a.out.offset, scratch.offset, a.T, a.numKeyHeads, a.numValueHeads, a.dk, a.dv, C, t0],
        [],
        0,
        [a.numValueHeads, 1, 1],
      );
      this.dev.run(
        "deltaRuleChunkState",
        DELTA_RULE_CHUNK_STATE,
        [a.k.offset, a.state.offset, scratch.offset, a.T, a.numKeyHeads, a.numValueHeads, a.dk, a.dv, C, t0],
        [],
        a.numValueHeads * a.dk * a.dv,
      );
    }
    this.dev.release(scratch);
  }

  /** Softmax over experts, top-k (ties: lower id), optional renormalisation; experts as integer bits [T, k]. */
  router(a: { logits: Tensor; T: number; numExperts: number; k: number; normalize: boolean; experts: Tensor; weights: Tensor }): void {
    this.dev.run("router", ROUTER, [a.logits.offset, a.experts.offset, a.weights.offset, a.T, a.numExperts, a.k, a.normalize ? 1 : 0], [], a.T);
  }

  /** DeltaNet's gates per row of width A_log.n: beta = sigmoid(b), g = -exp(A_log) softplus(a + dt_bias). */
  gates(a: Tensor, b: Tensor, A_log: Tensor, dtBias: Tensor, g: Tensor, beta: Tensor): void {
    this.dev.run("gates", GATES, [b.offset, a.offset, A_log.offset, dtBias.offset, beta.offset, g.offset, b.n, A_log.n], [], b.n);
  }

  /** out = sigmoid(x). In place allowed. */
  sigmoid(x: Tensor, out: Tensor): void {
    this.dev.run("sigmoid", SIGMOID, [x.offset, out.offset, x.n], [], x.n);
  }

  /** y[t] += bias for each row t of y. */
  addBias(y: Tensor, bias: Tensor): void {
    this.axpy(1, bias, y);
  }

  /** x += c. */
  addScalar(x: Tensor, c: number): void {
    this.dev.run("addScalar", ADD_SCALAR, [x.offset, x.n, { f: c }], [], x.n);
  }

  /** y[t] += a[t] x[t] for each row t (a [R], x and y [R, width]). */
  axpyRows(a: Tensor, x: Tensor, y: Tensor): void {
    this.dev.run("axpyRows", AXPY_ROWS, [a.offset, x.offset, y.offset, y.n, y.n / a.n], [], y.n);
  }

  /** Per row of width n, in place: x = exp(x - max) / sum(exp(x - max)). */
  softmax(x: Tensor, n: number): void {
    const rows = x.n / n;
    this.dev.run("softmax", SOFTMAX, [x.offset, n, rows], [], 0, spread(rows));
  }

  /** RoPE tables for these positions (angles in float64 on the host, then written): cos, sin [T, invFreq.length]. */
  ropeTables(invFreq: Float64Array, scaling: number, positions: readonly number[], cos: Tensor, sin: Tensor): void {
    const [c, s] = [new Float64Array(positions.length * invFreq.length), new Float64Array(positions.length * invFreq.length)];
    hostRopeTables(invFreq, scaling, positions, c, s);
    this.dev.write(cos, c);
    this.dev.write(sin, s);
  }

  /** Per key head [q (dk) | k (dk) | v (r dv) | z (r dv)] -> mixed [all q | all k | all v], z (see SplitQkvzArgs). */
  splitQkvz(a: { qkvz: Tensor; T: number; numKeyHeads: number; numValueHeads: number; dk: number; dv: number; mixed: Tensor; z: Tensor }): void {
    const { qkvz, T, numKeyHeads: Hk, dk, mixed, z } = a;
    const rdv = (a.numValueHeads / Hk) * a.dv;
    const C = 2 * Hk * dk + Hk * rdv;
    const group = 2 * dk + 2 * rdv;
    const at = (t: Tensor, k: number): Tensor => ({ offset: t.offset + k, n: t.n - k });
    this.copy(qkvz, mixed, T, Hk, dk, Hk * group, group, C, dk);
    this.copy(at(qkvz, dk), at(mixed, Hk * dk), T, Hk, dk, Hk * group, group, C, dk);
    this.copy(at(qkvz, 2 * dk), at(mixed, 2 * Hk * dk), T, Hk, rdv, Hk * group, group, C, rdv);
    this.copy(at(qkvz, 2 * dk + rdv), z, T, Hk, rdv, Hk * group, group, Hk * rdv, rdv);
  }

  /** Per key head [b (r) | a (r)] -> b, a per value head (see SplitBaArgs). */
  splitBa(a: { ba: Tensor; T: number; numKeyHeads: number; numValueHeads: number; b: Tensor; a: Tensor }): void {
    const { ba, T, numKeyHeads: Hk, numValueHeads: Hv } = a;
    const r = Hv / Hk;
    this.copy(ba, a.b, T, Hk, r, 2 * Hv, 2 * r, Hv, r);
    this.copy({ offset: ba.offset + r, n: ba.n - r }, a.a, T, Hk, r, 2 * Hv, 2 * r, Hv, r);
  }

  /** Rows of x [R, sum(widths)] split by columns into outs[i] [R, widths[i]]. */
  splitColumns(x: Tensor, widths: readonly number[], outs: readonly Tensor[]): void {
    const W = widths.reduce((s, w) => s + w, 0);
    let at = 0;
    widths.forEach((w, i) => {
      this.copy({ offset: x.offset + at, n: x.n - at }, outs[i], x.n / W, 1, w, W, 0, w, 0);
      at += w;
    });
  }

  /** out [R, sum(widths)] = [xs[0] | xs[1] | ...] row by row. */
  concatColumns(xs: readonly Tensor[], widths: readonly number[], out: Tensor): void {
    const W = widths.reduce((s, w) => s + w, 0);
    let at = 0;
    widths.forEach((w, i) => {
      this.copy(xs[i], { offset: out.offset + at, n: out.n - at }, out.n / W, 1, w, w, 0, W, 0);
      at += w;
    });
  }

  /** x [T, Hk, d] repeated per value head: out [T, Hv, d], value head h gets key head h mod Hk. */
  tileHeads(x: Tensor, T: number, Hk: number, Hv: number, d: number, out: Tensor): void {
    for (let j = 0; j < Hv / Hk; j++) this.copy(x, { offset: out.offset + j * Hk * d, n: out.n - j * Hk * d }, T, 1, Hk * d, Hk * d, 0, Hv * d, 0);
  }

  /**
   * Strided block copy: for r < R, h < H: width values from src + r ss1 + h ss2 to dst + r ds1 + h ds2
   * (the layout changes: regrouping projections, splitting q/k/v, concatenation).
   */
  copy(src: Tensor, dst: Tensor, R: number, H: number, width: number, ss1: number, ss2: number, ds1: number, ds2: number): void {
    const n = R * H * width;
    if (n === 0) return;
    check((R - 1) * ss1 + (H - 1) * ss2 + width <= src.n && (R - 1) * ds1 + (H - 1) * ds2 + width <= dst.n, "copy: blocks outside the tensors");
    this.dev.run("copy", COPY, [src.offset, dst.offset, R, H, width, ss1, ss2, ds1, ds2], [], n);
  }

  /** dst[j] = src[idx[j]] for rows of width w, the row ids on the device (integer bits, n of them). */
  gatherRowsAt(src: Tensor, idx: Tensor, n: number, w: number, dst: Tensor): void {
    this.dev.run("gather", GATHER, [src.offset, idx.offset, dst.offset, n, w], [], n * w);
  }

  /** dst[idx[j]] += weights[wi[j]] src[j] for j < n, rows of width w (in order of j per destination row). */
  scatterAdd(src: Tensor, idx: Tensor, weights: Tensor, wi: Tensor, n: number, w: number, dst: Tensor): void {
    const rows = dst.n / w;
    this.dev.run("scatterAdd", SCATTER_ADD, [src.offset, idx.offset, weights.offset, wi.offset, dst.offset, n, w, rows], [], rows * w);
  }

  /** out[j] = x[rows[j]] for rows of `width` (row ids from the host). */
  gatherRows(x: Tensor, width: number, rows: Int32Array, out: Tensor): void {
    const idx = this.dev.alloc(rows.length);
    this.dev.writeInts(idx, rows);
    this.gatherRowsAt(x, idx, rows.length, width, out);
    this.dev.release(idx);
  }

  /** y[rows[j]] += a[j] x[j] for rows of `width` (row ids from the host). */
  scatterAxpyRows(a: Tensor, x: Tensor, width: number, rows: Int32Array, y: Tensor): void {
    const idx = this.dev.alloc(rows.length);
    const wi = this.dev.alloc(rows.length);
    this.dev.writeInts(idx, rows);
    this.dev.writeInts(wi, Int32Array.from(rows, (_, j) => j));
    this.scatterAdd(x, idx, a, wi, rows.length, width, y);
    this.dev.release(idx);
    this.dev.release(wi);
  }

  /** x = value everywhere. */
  fill(x: Tensor, value: number): void {
    this.dev.fill(x, value);
  }

  /** dst[0 .. src.n) = src; the ranges may overlap (then through a temporary). */
  copyTensor(src: Tensor, dst: Tensor): void {
    const n = src.n;
    const overlap = src.offset < dst.offset + n && dst.offset < src.offset + n && src.offset !== dst.offset;
    if (!overlap) return this.copy(src, dst, 1, 1, n, 0, 0, 0, 0);
    const tmp = this.dev.alloc(n);
    this.copy(src, tmp, 1, 1, n, 0, 0, 0, 0);
    this.copy(tmp, dst, 1, 1, n, 0, 0, 0, 0);
    this.dev.release(tmp);
  }
}

export { view };
