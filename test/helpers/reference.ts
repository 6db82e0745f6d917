/** Reading the golden fixtures of reference/ and comparing traced tensors against them. */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { toFloat64 } from "../../src/io/dtype.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import type { DeltaRuleArgs, Kernels } from "../../src/kernels/types.js";

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

/** A `reference/delta-rule-*` fixture: fresh kernel arguments on each `args()` call, and the expected results. */
export interface DeltaRuleFixture {
  /** New copies of q, k, v, g, beta and the initial state in `kernels`' memory, and a zeroed output. */
  args(): DeltaRuleArgs;
  output: Float64Array;
  finalState: Float64Array;
}

export async function readDeltaRuleFixture(file: string, kernels: Kernels): Promise<DeltaRuleFixture> {
  const { tensors } = await readReference(file);
  const [T, heads, dk] = tensors.get("q")!.shape;
  const dv = tensors.get("v")!.shape[2];
  const vec = (name: string) => {
    const v = kernels.vec(tensors.get(name)!.data.length);
    v.set(tensors.get(name)!.data);
    return v;
  };
  return {
    args: () => ({
      q: vec("q"), k: vec("k"), v: vec("v"), g: vec("g"), beta: vec("beta"), state: vec("initial_state"),
      T, numKeyHeads: heads, numValueHeads: heads, dk, dv, out: kernels.vec(T * heads * dv),
    }),
    output: tensors.get("output")!.data,
    finalState: tensors.get("final_state")!.data,
  };
}
