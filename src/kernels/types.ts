/**
 * The kernel interface: everything the model computes numerically goes through here.
 *
 * `src/model/` says *what* is computed (in the vocabulary of the paper and the checkpoint);
 * a `Kernels` implementation says *how*. Two live behind this interface:
 *   - `src/kernels/ts/`   the TypeScript reference kernels, float32 or float64;
 *   - `src/kernels/wasm/` AssemblyScript-compiled WASM SIMD kernels (float32), weights in WASM memory.
 *
 * Conventions
 *   - Activations are `Vec`s in the compute precision, row-major: [T, n] for T tokens of width n.
 *     Always allocate them with `kernels.vec(n)` (the WASM backend places them in its memory); a
 *     `subarray` of such a vector is a valid argument too (row slices, head slices).
 *   - Weights stay in their checkpoint dtype (`Weight`); BF16/F16 are raw 16-bit words. A linear layer's
 *     weight is [out, in] as in PyTorch. Small parameters (norm weights, conv taps, A_log, dt_bias) are
 *     widened once at load time with `toVec`.
 *   - Functions write into caller-provided outputs and allocate nothing on the hot path. `out` may alias
 *     the input (`x`) wherever a kernel says "in place allowed".
 *   - Row counts are implied: a kernel over rows of width n processes `x.length / n` rows unless told `T`.
 *   - The precision contract (`Residual` below): the residual stream is float64 whatever the precision.
 *
 * Owned by the model work (issue 2); the WASM work (issue 3) implements the same interface.
 */

/** The compute precision of activations (`Vec`). */
export type Precision = "f32" | "f64";
/** An activation in the compute precision, from `vec` (or a subarray of one). */
export type Vec = Float32Array | Float64Array;
/**
 * The precision contract's one exception: the residual stream (the hidden state between decoder layers,
 * [T, hidden]) is float64 in both precisions and lives in plain memory, so float32 rounding does not pile up
 * along the depth (without it the float32 logits of a fixture drift past 1e-3). The mixers and MLPs compute in
 * the chosen precision. It is the operand of exactly three kernels, typed `Vec | Residual` there: `embedding`
 * (out: the stream starts), `rmsNorm` (x: each layer normalises it into a Vec) and `axpy` (y: each layer adds
 * its Vec output to it). Every other operand of every kernel is a `Vec`.
 */
export type Residual = Float64Array;
export type Backend = "ts" | "wasm" | "webgpu";
/**
 * How the WASM matrix products sum: float64 (exact products, one rounding per output), float32, or "q8": for
 * quantized weights, activations quantized per block and integer dot products as llama.cpp (float weights: float32).
 */
export type Accumulate = "f32" | "f64" | "q8";

/** Plain checkpoint dtypes a parameter may be stored in. */
export type FloatDType = "BF16" | "F16" | "F32" | "F64";
/**
 * ggml block-quantized types (GGUF files), kept quantized in memory: `data` holds the raw blocks
 * (a Uint8Array), each row of a weight [out, in] being in / blockSize whole blocks (`src/io/ggml_types.ts`).
 */
export type QuantDType = "Q8_0" | "Q4_0" | "Q4_1" | "Q5_0" | "Q5_1" | "Q4_K" | "Q5_K" | "Q6_K";
/** Every dtype a parameter may be stored in. */
export type WeightDType = FloatDType | QuantDType;
export type WeightData = Uint8Array | Uint16Array | Float32Array | Float64Array;

/** A parameter tensor as stored in the checkpoint (never widened in memory). */
export interface Weight {
  readonly name: string;
  readonly dtype: WeightDType;
  readonly shape: readonly number[];
  readonly data: WeightData;
}

/** Arguments of the causal attention kernel (one layer, one sequence). */
export interface AttentionArgs<T = Vec> {
  /** Queries [T, numHeads, headDim] for the T newest positions (already normed and rotated). */
  q: T;
  /** Key and value cache [L, numKvHeads, headDim]; rows 0..L-1 hold positions 0..L-1, the last T are the new ones. */
  k: T;
  v: T;
  T: number;
  /** Number of cached positions, new ones included (L >= T). Query t sits at position L - T + t. */
  L: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Multiplier of q.k, 1/sqrt(headDim) for Qwen3-Next. */
  scale: number;
  /** Output [T, numHeads, headDim]: softmax_j(scale q_t.k_j, j <= position of t) weighted sum of v_j. */
  out: T;
}

/** Arguments of the depthwise causal conv1d (DeltaNet's short convolution), followed by SiLU. */
export interface CausalConv1dArgs<T = Vec> {
  /** Input [T, C]. */
  x: T;
  /** Taps [C, K] (the checkpoint's [C, 1, K] widened); tap K-1 multiplies the current position. */
  weight: T;
  /**
   * The previous K-1 inputs per channel [C, K-1], oldest first (zeros for a new sequence). Read, then
   * overwritten with the last K-1 inputs of (state ++ x), so a sequence may be split anywhere.
   */
  state: T;
  T: number;
  C: number;
  K: number;
  /** Output [T, C]: y[t, c] = silu(sum_j weight[c, j] * (state ++ x)[t + j, c]). Must not alias x. */
  out: T;
}

/**
 * Arguments of the gated delta rule, for all value heads of one sequence. Per value head h (using key
 * head h / (numValueHeads / numKeyHeads)), with state S [dk, dv]:
 *   S = S * exp(g_t);  S = S + k_t (beta_t (v_t - S^T k_t))^T;  o_t = S^T q_t.
 */
export interface DeltaRuleArgs<T = Vec> {
  /** [T, numKeyHeads, dk], L2-normalised; q already scaled by 1/sqrt(dk). */
  q: T;
  k: T;
  /** [T, numValueHeads, dv]. */
  v: T;
  /** Log decay g (<= 0) and write strength beta, [T, numValueHeads]. */
  g: T;
  beta: T;
  /** Recurrent state [numValueHeads, dk, dv]: read as the initial state, overwritten with the final one. */
  state: T;
  T: number;
  numKeyHeads: number;
  numValueHeads: number;
  dk: number;
  dv: number;
  /** Output [T, numValueHeads, dv]. */
  out: T;
}

/** Arguments of the MoE router: softmax over experts, top-k, optional renormalisation. */
export interface RouterArgs<T = Vec, I = Int32Array> {
  /** Router logits [T, numExperts]; left unchanged. */
  logits: T;
  T: number;
  numExperts: number;
  k: number;
  /** Divide the k chosen probabilities by their sum (`norm_topk_prob`). */
  normalize: boolean;
  /** Output [T, k]: chosen expert ids in descending probability (ties: lower id first). */
  experts: I;
  /** Output [T, k]: their (possibly renormalised) probabilities. */
  weights: T;
}

/** Arguments of `moeExperts`. */
export interface MoeExpertsArgs<T = Vec, I = Int32Array> {
  /** Input rows [T, hidden]. */
  x: T;
  /** The router's choices [T, k] and their weights [T, k]. */
  experts: I;
  weights: T;
  T: number;
  k: number;
  /** Every expert's SwiGLU weights, by expert id: gate_proj, up_proj [I, hidden], down_proj [hidden, I]. */
  mlps: readonly { gate_proj: Weight; up_proj: Weight; down_proj: Weight }[];
  /** Output [T, hidden], accumulated into. */
  out: T;
}

/**
 * Arguments of `splitQkvz`: the grouped projection in_proj_qkvz regrouped (mlx-lm's fix_query_key_value_ordering).
 * With r = numValueHeads / numKeyHeads, each token's row holds per key head h [q (dk) | k (dk) | v (r dv) | z (r dv)].
 */
export interface SplitQkvzArgs<T = Vec> {
  /** [T, numKeyHeads (2 dk + 2 r dv)]. */
  qkvz: T;
  T: number;
  numKeyHeads: number;
  numValueHeads: number;
  dk: number;
  dv: number;
  /** Output [T, C]: conv channels [all q | all k | all v], C = 2 numKeyHeads dk + numValueHeads dv. */
  mixed: T;
  /** Output [T, numValueHeads dv]. */
  z: T;
}

/** Arguments of `splitBa`: in_proj_ba's rows per key head h [b (r) | a (r)] as b and a per value head. */
export interface SplitBaArgs<T = Vec> {
  /** [T, 2 numValueHeads]. */
  ba: T;
  T: number;
  numKeyHeads: number;
  numValueHeads: number;
  /** Outputs [T, numValueHeads]. */
  b: T;
  a: T;
}

/**
 * The kernels over tensors of type T (activations) and I (expert ids). The model sees `Kernels`, whose tensors
 * are opaque; the TypeScript and WASM backends are `HostKernels`, whose tensors are typed arrays in host memory.
 */
export interface KernelsOf<T, I> {
  readonly backend: Backend;
  readonly precision: Precision;

  /** A zero-filled activation vector of n elements in the compute precision. */
  vec(n: number): T;
  /** A zero-filled residual stream of n elements: float64 whatever the precision (see `Residual`). */
  residual(n: number): T;
  /** n zero expert ids (the router's output). */
  indices(n: number): I;
  /** Elements [start, end) of t, sharing its memory (row slices, head slices). */
  view(t: T, start: number, end: number): T;
  /** Sets t's first data.length elements from host numbers. */
  write(t: T, data: ArrayLike<number>): void;
  /**
   * A host copy of t's elements as they are when `read` is called (later kernel calls do not change it); the
   * promise settles once a device has finished the work before it. The one way the model sees numbers.
   */
  read(t: T): Promise<Float32Array | Float64Array>;
  /** The same for expert ids. */
  readIndices(t: I): Promise<Int32Array>;
  /** Gives back a vector from `vec` that will not be used again (a no-op for the TypeScript backend). */
  free(v: T): void;
  /** A weight of this dtype and shape with zeroed `data` that the loader fills in place. */
  allocWeight(name: string, dtype: WeightDType, shape: readonly number[]): Weight;
  /** A (small) weight widened to a new compute-precision vector, flattened row-major. */
  toVec(w: Weight): T;

  /** y[t, o] = sum_i W[o, i] x[t, i]; W [out, in], x [T, in], y [T, out]. y must not alias x. */
  linear(w: Weight, x: T, T: number, y: T): void;
  /** out[i] = W[id, i] for an embedding table W [V, H]. */
  embedding(w: Weight, id: number, out: T): void;

  /** Per row of width n: out = x / sqrt(mean(x^2) + eps) * weight. In place allowed. */
  rmsNorm(x: T, weight: T, eps: number, n: number, out: T): void;
  /** Per row of width n: out = x / sqrt(mean(x^2) + eps) * weight * silu(z). In place allowed (out = x). */
  gatedRmsNorm(x: T, z: T, weight: T, eps: number, n: number, out: T): void;
  /** Per row of width n: x = x / sqrt(sum(x^2) + eps) * scale. In place. */
  l2Normalize(x: T, n: number, eps: number, scale: number): void;

  /** out = silu(gate) * up elementwise, silu(a) = a * sigmoid(a). In place allowed (out = gate or up). */
  siluMul(gate: T, up: T, out: T): void;
  /** x = x * sigmoid(gate) elementwise. In place. */
  sigmoidMul(x: T, gate: T): void;
  /** y = y + a * x elementwise (residual adds with a = 1, weighted expert outputs). */
  axpy(a: number, x: T, y: T): void;
  /** Per row of width n, in place: x = exp(x - max) / sum(exp(x - max)) (the explorer's probabilities). */
  softmax(x: T, n: number): void;

  /**
   * Rotary embedding in rotate-half layout on the first `rotaryDim` dims of each head, in place.
   * x [T, numHeads, headDim]; cos, sin [T, rotaryDim / 2] (attention scaling already applied).
   * For i < rotaryDim/2: (x_i, x_{i+r/2}) = (x_i cos - x_{i+r/2} sin, x_{i+r/2} cos + x_i sin).
   */
  rope(x: T, T: number, numHeads: number, headDim: number, rotaryDim: number, cos: T, sin: T): void;

  /** Causal GQA attention of T new queries over the KV cache. */
  attention(a: AttentionArgs<T>): void;
  /** Depthwise causal conv1d with carried state, then SiLU. */
  causalConv1d(a: CausalConv1dArgs<T>): void;
  /** The gated delta rule, one step at a time (decode, and the definition). */
  deltaRuleRecurrent(a: DeltaRuleArgs<T>): void;
  /**
   * The same result computed by chunks (prefill): the `torch_chunk_gated_delta_rule` algorithm of
   * `transformers`, with a WY/UT transform inside each chunk and the state carried across chunks.
   */
  deltaRuleChunked(a: DeltaRuleArgs<T>, chunkSize?: number): void;
  /** Softmax over the experts, top-k, optional renormalisation. */
  router(a: RouterArgs<T, I>): void;

  // Layout and small elementwise steps: what the model computes between the kernels above.
  /**
   * A MoE block's routed experts (mlx-lm's SwitchGLU): out[t] += sum_j weights[t, j] expert_{experts[t, j]}(x[t])
   * with expert e = down_proj(silu(gate_proj(x)) * up_proj(x)), each expert run once on the rows routed to it.
   */
  moeExperts(a: MoeExpertsArgs<T, I>): void;
  /** Regroups in_proj_qkvz's output (see `SplitQkvzArgs`). */
  splitQkvz(a: SplitQkvzArgs<T>): void;
  /** Regroups in_proj_ba's output (see `SplitBaArgs`). */
  splitBa(a: SplitBaArgs<T>): void;
  /** Rows of x [R, sum(widths)] split by columns: outs[i] [R, widths[i]] gets the i-th block of each row. */
  splitColumns(x: T, widths: readonly number[], outs: readonly T[]): void;
  /** The inverse of splitColumns: out [R, sum(widths)] = [xs[0] | xs[1] | ...] row by row. */
  concatColumns(xs: readonly T[], widths: readonly number[], out: T): void;
  /** x [T, numKeyHeads, d] repeated per value head: out [T, numValueHeads, d], value head h gets key head h mod numKeyHeads. */
  tileHeads(x: T, T: number, numKeyHeads: number, numValueHeads: number, d: number, out: T): void;
  /** Per row of width A_log.length: beta = sigmoid(b);  g = -exp(A_log) softplus(a + dt_bias). */
  gates(a: T, b: T, A_log: T, dt_bias: T, g: T, beta: T): void;
  /** out = sigmoid(x) elementwise. In place allowed. */
  sigmoid(x: T, out: T): void;
  /** y[t] += bias for each row t of y (width bias.length). */
  addBias(y: T, bias: T): void;
  /** x = x + c elementwise. */
  addScalar(x: T, c: number): void;
  /** y[t] += a[t] x[t] for each row t (a [R], x and y [R, width]). */
  axpyRows(a: T, x: T, y: T): void;
  /** out[j] = x[rows[j]] for rows of `width` (experts gathering their tokens). */
  gatherRows(x: T, width: number, rows: Int32Array, out: T): void;
  /** y[rows[j]] += a[j] x[j] for rows of `width` (experts' outputs scattered back, weighted). */
  scatterAxpyRows(a: T, x: T, width: number, rows: Int32Array, y: T): void;
  /** x = value everywhere. */
  fill(x: T, value: number): void;
  /** dst[0 .. src.length) = src (src and dst may overlap). */
  copy(src: T, dst: T): void;
  /**
   * RoPE tables for these positions: cos[t, j] = cos(positions[t] invFreq[j]) * scaling, sin likewise
   * ([T, invFreq.length]); angles in float64.
   */
  ropeTables(invFreq: Float64Array, scaling: number, positions: readonly number[], cos: T, sin: T): void;
}

declare const tensorBrand: unique symbol;
/**
 * An activation as the model sees it: owned by the kernels (WASM memory, a device buffer), never indexed.
 * Every number goes in through a kernel (or `write`) and comes out through `read`.
 */
export interface Tensor {
  readonly [tensorBrand]: "Tensor";
  /** Number of elements. */
  readonly length: number;
}
declare const indexBrand: unique symbol;
/** Expert ids as the model sees them (opaque, like `Tensor`). */
export interface IndexTensor {
  readonly [indexBrand]: "IndexTensor";
  readonly length: number;
}

/** The kernels as the model uses them: opaque tensors. */
export type Kernels = KernelsOf<Tensor, IndexTensor>;
/** The TypeScript and WASM backends: tensors are host typed arrays (what tests and benchmarks index). */
export type HostKernels = KernelsOf<Vec, Int32Array>;

/** A host backend seen through the opaque interface (its typed arrays are the tensors: nothing is copied). */
export function opaque(k: HostKernels | Kernels): Kernels {
  return k as unknown as Kernels;
}

export interface KernelOptions {
  backend?: Backend;
  precision?: Precision;
  /** Worker threads for the WASM backend (ignored by "ts"). */
  threads?: number;
  /**
   * WASM matrix products: "f64" (default) exact products summed in float64, as accurate as the TypeScript
   * kernels; "f32" float32 arithmetic, faster, about 3x the rounding error; "q8" for quantized weights the
   * activations quantized to 8 bits per block and integer dot products, as llama.cpp (float weights as "f32")
   * (ignored by "ts").
   */
  accumulate?: Accumulate;
  /**
   * WASM kernel build: "auto" (default: relaxed SIMD, with fused multiply-add, where the engine accepts it),
   * "plain" or "relaxed" (src/kernels/wasm/simd.ts; the environment variable QWEN3_NEXT_SIMD when unset).
   */
  simd?: "auto" | "plain" | "relaxed";
}
