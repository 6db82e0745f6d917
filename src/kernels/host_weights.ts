/**
 * Reading weights stored in their checkpoint dtype: rows widened on the fly, small tensors widened once.
 * BF16 and F16 widen to float32 exactly, so the same widened row serves float32 and float64 compute.
 */
import { f16ArrayToF32 } from "../io/dtype.js";
import { numel } from "../shape.js";
import { ggmlByteLength } from "../io/ggml_types.js";
import { dequantizeRow, isQuantDType, quantRowBytes } from "../io/ggml_quants.js";
import type { Precision, Vec, Weight, WeightDType } from "./types.js";

/**
 * Widened-row scratch: a float32 buffer and the same bytes as uint32, so a BF16 word widens with one shift
 * (its bits are the top half of the float32's).
 */
export class RowScratch {
  f32 = new Float32Array(0);
  u32 = new Uint32Array(0);
  ensure(n: number): void {
    if (this.f32.length < n) {
      this.f32 = new Float32Array(n);
      this.u32 = new Uint32Array(this.f32.buffer);
    }
  }
}

/**
 * Row `row` of a 2-D weight [rows, n] as numbers; 16-bit rows are widened into the scratch, quantized rows
 * are dequantized into it (ggml's float32 values, bit for bit).
 */
export function weightRow(w: Weight, row: number, n: number, scratch: RowScratch): ArrayLike<number> {
  const start = row * n;
  if (w.dtype === "F32" || w.dtype === "F64") return (w.data as Float32Array | Float64Array).subarray(start, start + n);
  scratch.ensure(n);
  const words = w.data as Uint16Array;
  if (w.dtype === "BF16") {
    const bits = scratch.u32;
    for (let i = 0; i < n; i++) bits[i] = words[start + i] << 16;
    return scratch.f32;
  }
  if (w.dtype === "F16") return f16ArrayToF32(words.subarray(start, start + n), scratch.f32.subarray(0, n));
  if (isQuantDType(w.dtype)) {
    dequantizeRow(w.dtype, w.data as Uint8Array, row * quantRowBytes(w.dtype, n), scratch.f32, n);
    return scratch.f32;
  }
  throw new Error(`${w.name}: dtype ${w.dtype} has no row reader yet`);
}

/** A new vector of the compute precision. */
export function newVec(precision: Precision, n: number): Vec {
  return precision === "f64" ? new Float64Array(n) : new Float32Array(n);
}

/** A zeroed weight in plain JS memory (the TypeScript backend's allocator). */
export function allocHostWeight(name: string, dtype: WeightDType, shape: readonly number[]): Weight {
  const n = numel(shape);
  const data =
    dtype === "F64"
      ? new Float64Array(n)
      : dtype === "F32"
        ? new Float32Array(n)
        : dtype === "BF16" || dtype === "F16"
          ? new Uint16Array(n)
          : new Uint8Array(ggmlByteLength(dtype, shape));
  return { name, dtype, shape: [...shape], data };
}

/** A whole weight widened to the compute precision (for small parameters). */
export function widenWeight(w: Weight, precision: Precision): Vec {
  const n = numel(w.shape);
  const out = newVec(precision, n);
  const row = weightRow(w, 0, n, new RowScratch());
  for (let i = 0; i < n; i++) out[i] = row[i];
  return out;
}
