/**
 * The kernel interface: everything the model computes numerically goes through here.
 *
 * `src/model/` says *what* is computed (in the vocabulary of the paper and the checkpoint);
 * a `Kernels` implementation says *how*. Two live behind this interface:
 *   - `src/kernels/ts/`   the TypeScript reference kernels, float32 or float64;
 *   - `src/kernels/wasm/` AssemblyScript-compiled WASM SIMD kernels (float32), weights in WASM memory.
 *
 * Conventions
 *   - Activations are `Vec`s in the compute precision, row-major, [T, n] for T tokens.
 *   - Weights stay in their checkpoint dtype (`Weight`); BF16/F16 are raw 16-bit words.
 *   - Functions write into caller-provided outputs and allocate nothing on the hot path.
 *
 * DRAFT: owned by the model work (issue 2); the WASM work (issue 3) implements the same interface.
 */

export type Precision = "f32" | "f64";
export type Vec = Float32Array | Float64Array;

/** Checkpoint dtypes a parameter may be stored in. */
export type WeightDType = "BF16" | "F16" | "F32" | "F64";
export type WeightData = Uint16Array | Float32Array | Float64Array;

/** A parameter tensor as stored in the checkpoint (never widened in memory). */
export interface Weight {
  readonly name: string;
  readonly dtype: WeightDType;
  readonly shape: readonly number[];
  readonly data: WeightData;
}
