/** Reading the golden fixtures of reference/ and comparing traced tensors against them. */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { toFloat64 } from "../../src/io/dtype.js";
import { readSafetensors } from "../../src/io/safetensors.js";

export const REFERENCE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../reference");

export interface RefTensor {
  shape: number[];
  dtype: string;
  data: Float64Array;
}

/** Every tensor of a reference file as float64 numbers, plus the metadata. */
export async function readReference(file: string): Promise<{ tensors: Map<string, RefTensor>; metadata: Record<string, string> }> {
  const { tensors, metadata } = await readSafetensors(path.join(REFERENCE_DIR, file));
  const out = new Map<string, RefTensor>();
  for (const [name, t] of tensors) out.set(name, { shape: [...t.shape], dtype: t.dtype, data: toFloat64(t.dtype, t.data) });
  return { tensors: out, metadata };
}

/** Largest |a_i - b_i|; throws when the lengths differ. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
