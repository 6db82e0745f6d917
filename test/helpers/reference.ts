/** Reading the golden fixtures of reference/ and comparing traced tensors against them. */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { toFloat64 } from "../../src/io/dtype.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { expect } from "vitest";
import type { Backend, DeltaRuleArgs, HostKernels as Kernels, Precision } from "../../src/kernels/types.js";
import type { Trace } from "../../src/model/trace.js";

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

/** The fixtures' tolerances: float64 within 1e-9, float32 within 1e-3 (expert ids always identical). */
export const TOL: Record<Precision, number> = { f64: 1e-9, f32: 1e-3 };

/** Both backends, both precisions (the wasm backend's f64 mode is the TypeScript backend in float64: weights in JS memory). */
export const COMBOS: Array<[Backend, Precision]> = [["ts", "f64"], ["ts", "f32"], ["wasm", "f64"], ["wasm", "f32"]];

/** Every expected tensor (except the input ids) matches the trace: ids exactly, floats within tol. */
export function expectTraceMatches(trace: Trace, expected: Map<string, RefTensor>, tol: number): void {
  for (const [name, ref] of expected) {
    if (name === "input_ids") continue;
    expect(trace.has(name), `trace has ${name}`).toBe(true);
    const got = trace.get(name);
    expect(got.shape, name).toEqual(ref.shape);
    if (ref.dtype === "I64") expect(Array.from(got.data), name).toEqual(Array.from(ref.data));
    else expect(maxAbsDiff(got.data, ref.data), name).toBeLessThanOrEqual(tol);
  }
}
