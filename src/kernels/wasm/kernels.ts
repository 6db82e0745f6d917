/**
 * The WASM SIMD kernels behind the `Kernels` interface (float32).
 *
 * Weights live once in WASM memory in their checkpoint dtype (`allocWeight` returns views the loader fills
 * in place); activations from `vec` live there too. A kernel whose operands are all in the arena it runs in
 * works on them directly; an operand elsewhere (another arena, plain JS memory) is staged through that arena's
 * scratch. Matrix products split their rows over the thread pool when the weight is large enough.
 */
import type { AttentionArgs, CausalConv1dArgs, DeltaRuleArgs, HostKernels, KernelOptions, Residual, RouterArgs, Vec, Weight, WeightDType } from "../types.js";
import { hostMoeExperts } from "../host_moe.js";
import { hostTensors } from "../host_tensors.js";
import { createTsKernels } from "../ts/index.js";
import { numel } from "../../shape.js";
import { ggmlByteLength } from "../../io/ggml_types.js";
import { widenWeight } from "../host_weights.js";
import { isQuantDType, QUANT_DTYPES } from "../../io/ggml_quants.js";
import { WasmHeap, type HeapOptions, type Location } from "./heap.js";
import type { Arena } from "./arena.js";
import { ThreadPool } from "./pool.js";
import { Staging } from "./stage.js";
import type { SimdBuild } from "./simd.js";

export interface WasmKernelOptions extends HeapOptions {
  /** Threads including the calling one (default 1). */
  threads?: number;
  /** Smallest weight, in bytes, whose product is split across threads (default 256 KiB). */
  minParallelBytes?: number;
  /**
   * Matrix-product arithmetic. "f64" (default): exact products summed in float64, each output rounded once,
   * as accurate as the TypeScript reference. "f32": float32 products and sums (folded into float64 every
   * 64 columns), about 1.7x faster per thread, about 3x the rounding error. "q8": quantized weights take
   * llama.cpp's integer dot products (the activation row quantized per block to Q8_0 / Q8_1 / Q8_K, asm/quant_int.ts),
   * float weights the "f32" sums.
   */
  accumulate?: Accumulate;
}

export type Accumulate = NonNullable<KernelOptions["accumulate"]>;
const checkAccumulate = (a: unknown): Accumulate => {
  if (a !== "f32" && a !== "f64" && a !== "q8") throw new Error(`accumulate is ${JSON.stringify(a)}, expected "f32", "f64" or "q8"`);
  return a;
};

/** Activation kinds of asm/quant_int.ts's quantizeActs: Q8_K for the K-quants (blocks of 256), else Q8_0 / Q8_1. */
const actKind = (d: WeightDType): number => (d === "Q4_K" || d === "Q5_K" || d === "Q6_K" ? 1 : 0);

/** dtype codes of asm/widen.ts (the plain dtypes these kernels compute with; quantized ones have asm/quant.ts). */
const DT: Partial<Record<WeightDType, number>> = { F32: 0, BF16: 1, F16: 2, F64: -1 };
const storable = (d: WeightDType): boolean => d in DT || isQuantDType(d);

export interface WasmKernels extends HostKernels {
  readonly heap: WasmHeap;
  /** Matrix-product arithmetic (see `WasmKernelOptions.accumulate`); may be switched between calls. */
  accumulate: Accumulate;
  /** The kernel build in use: "relaxed" (relaxed SIMD: fused multiply-add) or "plain" (simd.ts). */
  readonly simd: SimdBuild;
  /** Threads in use (at most the pool's size; set it lower to compare, e.g. in benchmarks). */
  threads: number;
  /** The worker pool (null on one thread). */
  readonly pool: ThreadPool | null;
  /** Gives a weight's WASM memory back (the weight must not be used again). */
  freeWeight(w: Weight): void;
  /** Stops the worker threads (the kernels stay usable on one thread). */
  close(): Promise<void>;
}

export async function createWasmKernels(opts: WasmKernelOptions = {}): Promise<WasmKernels> {
  const threads = opts.threads ?? 1;
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 256)) {
    throw new Error(`threads is ${threads}, expected an integer from 1 to 256`);
  }
  const heap = new WasmHeap(opts);
  let pool = threads > 1 ? await ThreadPool.create(heap.module, heap.arenas, threads) : null;
  let active = threads;
  heap.onNewArena = (a) => pool?.addArena(a);
  const minParallel = opts.minParallelBytes ?? 256 << 10;
  let mode = checkAccumulate(opts.accumulate ?? "f64");
  const ts = createTsKernels("f32");
  /** Where each weight's data lives; weights that arrived in JS memory are copied into WASM memory once. */
  const placed = new WeakMap<object, Location>();

  const weightLoc = (w: Weight): Location => {
    let loc = placed.get(w.data) ?? heap.locate(w.data);
    if (!loc) {
      loc = heap.alloc(w.data.byteLength, w.name);
      new Uint8Array(loc.arena.buffer(), loc.ptr, w.data.byteLength).set(
        new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength),
      );
    }
    placed.set(w.data, loc);
    return loc;
  };

  /**
   * The last quantized activation rows of each arena, kept with a copy of the float rows they came from: the
   * model feeds the same x to several products in a row (gate and up of every routed expert, the shared
   * expert, the DeltaNet input projections), and a byte-equal x with the same width and kind reuses them.
   */
  const quantMemo: ({ x: number; xq: number; cap: number; qcap: number; bytes: number; cols: number; kind: number } | undefined)[] = [];
  /** Maximum activation bytes remembered (larger inputs, long prefills, are quantized every time). */
  const MEMO_BYTES = 256 << 10;
  const quantizeActs = (arena: Arena, xPtr: number, cols: number, tc: number, kind: number, st: Staging): number => {
    const e = arena.exports;
    const bytes = tc * cols * 4;
    const qbytes = tc * (e.actBytes(cols) as number);
    if (bytes > MEMO_BYTES) {
      const xq = st.scratch(qbytes);
      e.quantizeActs(xPtr, xq, cols, tc, kind);
      return xq;
    }
    let m = quantMemo[arena.index];
    if (m && m.bytes === bytes && m.cols === cols && m.kind === kind && e.sameBytes(xPtr, m.x, bytes)) return m.xq;
    if (!m || m.cap < bytes || m.qcap < qbytes) {
      if (m) arena.release(m.x), arena.release(m.xq);
      const x = arena.alloc(MEMO_BYTES), xq = arena.alloc(Math.max(qbytes, e.actBytes(MEMO_BYTES / 4) as number));
      if (x === null || xq === null) {
        if (x !== null) arena.release(x);
        if (xq !== null) arena.release(xq);
        quantMemo[arena.index] = undefined;
        const q = st.scratch(qbytes);
        e.quantizeActs(xPtr, q, cols, tc, kind);
        return q;
      }
      m = quantMemo[arena.index] = { x, xq, cap: MEMO_BYTES, qcap: Math.max(qbytes, e.actBytes(MEMO_BYTES / 4) as number), bytes: 0, cols: 0, kind: -1 };
    }
    e.quantizeActs(xPtr, m.xq, cols, tc, kind);
    e.copyBytes(m.x, xPtr, bytes);
    m.bytes = bytes;
    m.cols = cols;
    m.kind = kind;
    return m.xq;
  };

  /**
   * Runs kernel `fn` whose args[split], args[split + 1] are a range [0, total) (rows, heads), split over the
   * threads when `big` (a wake-up costs microseconds: small jobs stay on the calling thread).
   */
  const runSplit = (arena: Arena, fn: string, args: number[], split: number, total: number, big: boolean, align = 1): void => {
    if (pool && big && total > 1 && active > 1) pool.run(arena, fn, args, split, total, align, active);
    else (arena.exports[fn] as (...a: number[]) => void)(...args);
  };

  /** y = x W^T, T tokens in chunks whose staged x, permuted x and y fit the weight's arena scratch. */
  const linear = (w: Weight, x: Vec, T: number, y: Vec): void => {
    if (w.shape.length !== 2 || x.length < T * w.shape[1] || y.length < T * w.shape[0]) {
      throw new Error(`linear ${w.name}: weight [${w.shape}] does not fit x of ${x.length} / y of ${y.length} for T=${T}`);
    }
    if (w.dtype === "F64") return ts.linear(w, x, T, y);
    const [rows, cols] = w.shape;
    const { arena, ptr: wPtr } = weightLoc(w);
    const e = arena.exports;
    // 16-bit weights are widened in de-interleaved order (asm/widen.ts); F32 and quantized ones take x as is.
    const sixteen = w.dtype === "BF16" || w.dtype === "F16";
    const exact = mode === "f64";
    const int = mode === "q8" && isQuantDType(w.dtype);
    const perToken = int ? cols * 4 + (e.actBytes(cols) as number) + rows * 4 : ((exact ? 4 : 2) * cols + rows) * 4;
    const chunk = Math.max(1, Math.min(T, Math.floor((heap.reserveBytes - 256) / perToken)));
    const parallel = rows >= 8 && w.data.byteLength >= minParallel;
    for (let t0 = 0; t0 < T; t0 += chunk) {
      const tc = Math.min(chunk, T - t0);
      const st = new Staging(heap, [], arena);
      let xPtr = st.ptr(x.subarray(t0 * cols, (t0 + tc) * cols), "in");
      if (sixteen) {
        const xp = st.scratch(tc * cols * 4);
        e.permute8Rows(xPtr, xp, cols, tc);
        xPtr = xp;
      }
      if (exact) {
        const xd = st.scratch(tc * cols * 8);
        e.widenF64(xPtr, xd, tc * cols);
        xPtr = xd;
      } else if (int) {
        xPtr = quantizeActs(arena, xPtr, cols, tc, actKind(w.dtype), st);
      }
      const yPtr = st.ptr(y.subarray(t0 * rows, (t0 + tc) * rows), "out");
      const kind = exact ? "Exact" : int ? "Int" : "";
      if (tc === 1) runSplit(arena, `matvec${w.dtype}${kind}`, [wPtr, xPtr, yPtr, cols, 0, rows], 4, rows, parallel, 4);
      else runSplit(arena, `matmul${w.dtype}${kind}`, [wPtr, xPtr, yPtr, tc, rows, cols, 0, rows], 6, rows, parallel, 4);
      st.done();
    }
  };

  const vec = (n: number): Float32Array => {
    const { arena, ptr } = heap.alloc(n * 4, "an activation vector");
    return arena.f32(ptr, n);
  };

  const checkHeads = (a: DeltaRuleArgs): void => {
    if (!(Number.isInteger(a.numValueHeads / a.numKeyHeads) && a.numValueHeads >= a.numKeyHeads)) {
      throw new Error(`value heads ${a.numValueHeads} are not a multiple of key heads ${a.numKeyHeads}`);
    }
  };

  /** The delta rule's operands staged in one arena: q, k, v, g, beta, state, out addresses. */
  const deltaOperands = (a: DeltaRuleArgs): { st: Staging; ptrs: number[] } => {
    const { T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv } = a;
    const st = new Staging(heap, [a.out, a.state, a.q, a.k, a.v]);
    const ptrs = [
      st.ptr(a.q.subarray(0, T * Hk * dk), "in"),
      st.ptr(a.k.subarray(0, T * Hk * dk), "in"),
      st.ptr(a.v.subarray(0, T * Hv * dv), "in"),
      st.ptr(a.g.subarray(0, T * Hv), "in"),
      st.ptr(a.beta.subarray(0, T * Hv), "in"),
      st.ptr(a.state.subarray(0, Hv * dk * dv), "io"),
      st.ptr(a.out.subarray(0, T * Hv * dv), "out"),
    ];
    return { st, ptrs };
  };

  /** The recurrent scan (asm/deltanet.ts): one step at a time, float64 state within the call. */
  const deltaRule = (a: DeltaRuleArgs): void => {
    checkHeads(a);
    const { T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv } = a;
    const { st, ptrs } = deltaOperands(a);
    const args = [...ptrs, st.scratch(Hv * (2 * dv + dk * dv) * 8), T, Hk, Hv, dk, dv, 0, Hv];
    runSplit(st.arena, "deltaRule", args, 13, Hv, T * Hv * dk * dv >= 1 << 16);
    st.done();
  };

  /** The chunked form (asm/delta_chunked.ts): float32 SIMD matrix products per chunk of `chunkSize` steps. */
  const deltaRuleChunked = (a: DeltaRuleArgs, chunkSize = 64): void => {
    if (!(Number.isInteger(chunkSize) && chunkSize >= 1)) throw new Error(`chunk size ${chunkSize}, expected an integer >= 1`);
    checkHeads(a);
    const { T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv } = a;
    if (T <= 1) return deltaRule(a); // one step (decode): the scan is the same result with less work
    const { st, ptrs } = deltaOperands(a);
    const e = st.arena.exports;
    // Work space: a header holding the number of participants, then one slot each (asm/delta_chunked.ts).
    // An instance capped far below the default size may lack room for a slot per thread: then one thread
    // runs it, and with no room even for one slot the scan computes the same rule.
    const slot = e.deltaChunkScratchBytes(Math.min(chunkSize, T), dk, dv) as number;
    const scratch = (parts: number): number | null => {
      try {
        const p = st.scratch(16 + parts * slot);
        new Int32Array(st.arena.buffer(), p, 1)[0] = parts;
        return p;
      } catch {
        return null;
      }
    };
    const parts = pool && active > 1 ? Math.min(active, Hv) : 1;
    let tmp = scratch(parts);
    const split = tmp !== null && parts > 1;
    tmp ??= parts > 1 ? scratch(1) : null;
    if (tmp === null) return deltaRule(a);
    const args = [...ptrs, tmp, T, Hk, Hv, dk, dv, chunkSize, 0, Hv];
    if (split) runSplit(st.arena, "deltaRuleChunked", args, 14, Hv, T * Hv * dk * dv >= 1 << 16);
    else e.deltaRuleChunked(...args);
    st.done();
  };

  const kernels: WasmKernels = {
    backend: "wasm",
    precision: "f32",
    heap,
    simd: heap.simd,
    get accumulate(): Accumulate {
      return mode;
    },
    set accumulate(a: Accumulate) {
      mode = checkAccumulate(a);
    },
    get threads() {
      return pool ? active : 1;
    },
    set threads(n: number) {
      if (!(Number.isInteger(n) && n >= 1 && n <= (pool?.size ?? 1))) {
        throw new Error(`threads is ${n}, expected an integer from 1 to ${pool?.size ?? 1}`);
      }
      active = n;
    },
    get pool() {
      return pool;
    },
    vec,
    ...hostTensors,
    free(v: Vec): void {
      const loc = v instanceof Float32Array ? heap.locate(v) : null;
      if (loc) loc.arena.release(loc.ptr);
    },
    allocWeight(name: string, dtype: WeightDType, shape: readonly number[]): Weight {
      if (!storable(dtype)) {
        throw new Error(`${name}: dtype ${dtype} cannot be a weight of the wasm backend, expected one of BF16, F16, F32, F64, ${QUANT_DTYPES.join(", ")}`);
      }
      const n = numel(shape);
      const bytes = ggmlByteLength(dtype, shape);
      const { arena, ptr } = heap.alloc(bytes, name);
      const data = isQuantDType(dtype)
        ? new Uint8Array(arena.buffer(), ptr, bytes)
        : dtype === "F64" ? arena.f64(ptr, n) : dtype === "F32" ? arena.f32(ptr, n) : arena.u16(ptr, n);
      return { name, dtype, shape: [...shape], data };
    },
    freeWeight(w: Weight): void {
      const loc = placed.get(w.data) ?? heap.locate(w.data);
      if (!loc) return;
      placed.delete(w.data);
      loc.arena.release(loc.ptr);
    },
    toVec(w: Weight): Vec {
      const v = vec(numel(w.shape));
      v.set(widenWeight(w, "f32"));
      return v;
    },
    linear,
    embedding(w: Weight, id: number, out: Vec): void {
      const [V, H] = w.shape;
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new Error(`token id ${id} is out of range, expected an integer in [0, ${V})`);
      }
      if (w.dtype === "F64") return ts.embedding(w, id, out);
      const loc = weightLoc(w);
      const st = new Staging(heap, [out]);
      if (st.arena !== loc.arena) return ts.embedding(w, id, out); // a row copy: no need to stage the table
      if (isQuantDType(w.dtype)) loc.arena.exports[`dequantRow${w.dtype}`](loc.ptr, id, H, st.ptr(out, "out"));
      else loc.arena.exports.embeddingRow(loc.ptr, id, H, DT[w.dtype]!, st.ptr(out, "out"));
      st.done();
    },
    rmsNorm(x, weight, eps, n, out) {
      if (isResidual(x)) return ts.rmsNorm(x, weight, eps, n, out);
      const st = new Staging(heap, [x, out, weight]);
      st.arena.exports.rmsNorm(st.ptr(x, "in"), st.ptr(weight, "in"), st.ptr(out, "out"), n, x.length / n, eps);
      st.done();
    },
    gatedRmsNorm(x, z, weight, eps, n, out) {
      const st = new Staging(heap, [x, out, z, weight]);
      const e = st.arena.exports;
      e.gatedRmsNorm(st.ptr(x, "in"), st.ptr(z, "in"), st.ptr(weight, "in"), st.ptr(out, "out"), n, x.length / n, eps);
      st.done();
    },
    l2Normalize(x, n, eps, scale) {
      const st = new Staging(heap, [x]);
      st.arena.exports.l2Normalize(st.ptr(x, "io"), n, x.length / n, eps, scale);
      st.done();
    },
    siluMul(gate, up, out) {
      const st = new Staging(heap, [out, gate, up]);
      st.arena.exports.siluMul(st.ptr(gate, "in"), st.ptr(up, "in"), st.ptr(out, "out"), out.length);
      st.done();
    },
    sigmoidMul(x, gate) {
      const st = new Staging(heap, [x, gate]);
      st.arena.exports.sigmoidMul(st.ptr(x, "io"), st.ptr(gate, "in"), x.length);
      st.done();
    },
    axpy(a, x, y) {
      if (isResidual(y)) return ts.axpy(a, x, y);
      const st = new Staging(heap, [y, x]);
      st.arena.exports.axpy(a, st.ptr(x, "in"), st.ptr(y, "io"), y.length);
      st.done();
    },
    softmax(x, n) {
      const st = new Staging(heap, [x]);
      st.arena.exports.softmax(st.ptr(x, "io"), n, x.length / n, st.scratch(n * 8));
      st.done();
    },
    rope(x, T, H, D, R, cos, sin) {
      const st = new Staging(heap, [x, cos, sin]);
      st.arena.exports.rope(st.ptr(x, "io"), T, H, D, R, st.ptr(cos, "in"), st.ptr(sin, "in"));
      st.done();
    },
    attention(a: AttentionArgs) {
      const { T, L, numHeads: H, numKvHeads: Hkv, headDim: D } = a;
      const st = new Staging(heap, [a.out, a.q, a.k, a.v]);
      const args = [
        st.ptr(a.q.subarray(0, T * H * D), "in"),
        st.ptr(a.k.subarray(0, L * Hkv * D), "in"),
        st.ptr(a.v.subarray(0, L * Hkv * D), "in"),
        st.ptr(a.out.subarray(0, T * H * D), "out"),
        st.scratch(H * (L + D) * 8),
        T, L, H, Hkv, D, a.scale, 0, H,
      ];
      // Work ~ T L H D: split heads across threads when it is worth a wake-up.
      runSplit(st.arena, "attention", args, 11, H, T * L * H * D >= 1 << 16);
      st.done();
    },
    causalConv1d(a: CausalConv1dArgs) {
      const { T, C, K } = a;
      const st = new Staging(heap, [a.out, a.x, a.weight, a.state]);
      const args = [
        st.ptr(a.x.subarray(0, T * C), "in"),
        st.ptr(a.weight.subarray(0, C * K), "in"),
        st.ptr(a.state.subarray(0, C * (K - 1)), "io"),
        st.ptr(a.out.subarray(0, T * C), "out"),
        st.scratch(C * Math.max(K - 1, 1) * 4),
        T, C, K, 0, C,
      ];
      // Channels are independent (each its own slice of `next` too): split them when T C K is large.
      runSplit(st.arena, "causalConv1d", args, 8, C, T * C * K >= 1 << 16);
      st.done();
    },
    deltaRuleRecurrent: (a: DeltaRuleArgs) => deltaRule(a),
    deltaRuleChunked: (a: DeltaRuleArgs, chunkSize?: number) => deltaRuleChunked(a, chunkSize),
    router(a: RouterArgs) {
      const { T, numExperts: E, k } = a;
      if (!(Number.isInteger(k) && k >= 1 && k <= E)) throw new Error(`router top-k is ${k}, expected 1..${E}`);
      const st = new Staging(heap, [a.logits, a.experts, a.weights]);
      st.arena.exports.router(
        st.ptr(a.logits.subarray(0, T * E), "in"),
        T, E, k, a.normalize ? 1 : 0,
        st.ptr(a.experts.subarray(0, T * k), "out"),
        st.ptr(a.weights.subarray(0, T * k), "out"),
        st.scratch(E * 8),
      );
      st.done();
    },
    // Layout moves and small elementwise steps: memory-bound loops, run by the TypeScript kernels directly on
    // the WASM memory views (a call into WASM would not be faster).
    splitQkvz: ts.splitQkvz,
    splitBa: ts.splitBa,
    splitColumns: ts.splitColumns,
    concatColumns: ts.concatColumns,
    tileHeads: ts.tileHeads,
    gates: ts.gates,
    sigmoid: ts.sigmoid,
    addBias: ts.addBias,
    addScalar: ts.addScalar,
    axpyRows: ts.axpyRows,
    // The MoE's per-expert row moves (asm/mem.ts): row copies and float64 axpys, the TypeScript kernels' results.
    gatherRows(x, width, rows, out) {
      if (isResidual(x) || isResidual(out)) return ts.gatherRows(x, width, rows, out);
      const st = new Staging(heap, [out, x]);
      st.arena.exports.gatherRows(st.ptr(x, "in"), width, st.ptr(rows, "in"), rows.length, st.ptr(out.subarray(0, rows.length * width), "out"));
      st.done();
    },
    scatterAxpyRows(a, x, width, rows, y) {
      if (isResidual(a) || isResidual(x) || isResidual(y)) return ts.scatterAxpyRows(a, x, width, rows, y);
      const st = new Staging(heap, [y, x, a]);
      const e = st.arena.exports;
      e.scatterAxpyRows(st.ptr(a.subarray(0, rows.length), "in"), st.ptr(x.subarray(0, rows.length * width), "in"), width, st.ptr(rows, "in"), rows.length, st.ptr(y, "io"));
      st.done();
    },
    fill: ts.fill,
    copy: ts.copy,
    ropeTables: ts.ropeTables,
    moeExperts: (a) => moe(a),
    async close() {
      const p = pool;
      pool = null;
      await p?.close();
    },
  };
  const moe = hostMoeExperts(kernels);
  return kernels;
}

/**
 * The residual stream (float64 in plain memory, `Residual` in types.ts) goes to the TypeScript kernel, which
 * reads and updates it in float64: staging it through float32 WASM memory would round it at every add.
 * (`embedding` stages its output exactly: table values are float32 numbers.)
 */
const isResidual = (v: Vec): v is Residual => v instanceof Float64Array;
