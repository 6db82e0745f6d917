/**
 * Compares two safetensors dumps tensor by tensor (e.g. a `trace` of another runtime against this one's, or
 * against `reference/<model>/expected.safetensors`), and finds the first tensor, in computation order, that
 * diverges.
 *
 * Float tensors: element i is within tolerance when |a_i - b_i| <= atol + rtol * |b_i| (numpy's allclose, B is
 *   the reference); NaN matches only NaN, and infinities only the same infinity. Reported: max |a - b|, max
 *   |a - b| / |b| over b != 0, the number of elements over tolerance and where the largest error is.
 * Integer tensors (either side an integer dtype, e.g. router expert ids): compared exactly; reported: the number
 *   of differing elements and the first one.
 * A shape mismatch fails the tensor. Tensors present in one file only are listed, not failed.
 */
import { isFloatDType, toFloat64, type SafetensorsDType } from "./dtype.js";
import { numel } from "../shape.js";
import { SafetensorsFile } from "./safetensors.js";
import type { NameMap } from "./name_map.js";

/** Axis names of a dump tensor by its kind (see reference/README.md); unknown names: token, then dim, dim2... */
export function axesOf(name: string, rank: number): string[] {
  const kind = name.replace(/\.\d+\./, ".");
  const known: Record<string, string[]> = {
    "deltanet.state": ["head", "dk", "dv"],
    "deltanet.conv_state": ["channel", "tap"],
    "attention.k_cache": ["position", "kv_head", "dim"],
    "attention.v_cache": ["position", "kv_head", "dim"],
    "attention.q": ["token", "head", "dim"],
    "attention.k": ["token", "kv_head", "dim"],
    "attention.gate": ["token", "head", "dim"],
    "deltanet.core": ["token", "head", "dv"],
    "deltanet.g": ["token", "head"],
    "deltanet.beta": ["token", "head"],
    "router.experts": ["token", "slot"],
    "router.weights": ["token", "slot"],
    logits: ["token", "vocab"],
    mtp_logits: ["token", "vocab"],
  };
  const axes = known[kind];
  if (axes !== undefined && axes.length === rank) return axes;
  return Array.from({ length: rank }, (_, d) => (d === 0 ? "token" : d === 1 ? "dim" : `dim${d}`));
}

export interface Tolerance {
  atol: number;
  rtol: number;
}

/** Where the largest error is: its multi-index, the axes' names, and for [tokens, ...] tensors the token. */
export interface Worst {
  index: number[];
  /** What each index counts, e.g. ["token", "head", "dim"] or ["head", "dk", "dv"] for a DeltaNet state. */
  axes: string[];
  token: number | null;
  a: number;
  b: number;
}

export interface TensorComparison {
  name: string;
  kind: "float" | "integer";
  shapeA: readonly number[];
  shapeB: readonly number[];
  dtypeA: SafetensorsDType;
  dtypeB: SafetensorsDType;
  /** "ok", "over" (some element out of tolerance or a differing integer), or "shape" (shapes differ). */
  status: "ok" | "over" | "shape";
  /** Float: max |a - b| (Infinity where NaN/inf disagree). Integer: null. */
  maxAbs: number | null;
  /** Float: max |a - b| / |b| over elements with b != 0. Integer: null. */
  maxRel: number | null;
  /** Elements out of tolerance (float) or differing (integer). */
  over: number;
  count: number;
  /** Float: the element with the largest |a - b|; integer: the first differing element; null if all equal. */
  worst: Worst | null;
}

export interface CompareReport {
  a: string;
  b: string;
  tolerance: Tolerance;
  /** Shared tensors in computation order. */
  tensors: TensorComparison[];
  onlyInA: string[];
  onlyInB: string[];
  /** The first shared tensor (in computation order) that is not "ok". */
  firstDivergence: TensorComparison | null;
  ok: boolean;
}

/** Compares two element arrays of the same shape (given as numbers). */
export function compareValues(
  name: string,
  a: { dtype: SafetensorsDType; shape: readonly number[]; values: Float64Array },
  b: { dtype: SafetensorsDType; shape: readonly number[]; values: Float64Array },
  tol: Tolerance,
): TensorComparison {
  const kind = isFloatDType(a.dtype) && isFloatDType(b.dtype) ? "float" : "integer";
  const base = { name, kind, shapeA: a.shape, shapeB: b.shape, dtypeA: a.dtype, dtypeB: b.dtype, count: numel(b.shape) } as const;
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    return { ...base, status: "shape", maxAbs: null, maxRel: null, over: 0, worst: null };
  }
  const x = a.values;
  const y = b.values;
  let over = 0;
  let worstAt = -1;
  if (kind === "integer") {
    for (let i = 0; i < y.length; i++) {
      if (x[i] !== y[i]) {
        if (over++ === 0) worstAt = i;
      }
    }
    return { ...base, status: over ? "over" : "ok", maxAbs: null, maxRel: null, over, worst: worst(name, b.shape, worstAt, x, y) };
  }
  let maxAbs = 0;
  let maxRel = 0;
  for (let i = 0; i < y.length; i++) {
    const ai = x[i];
    const bi = y[i];
    let err: number;
    if (ai === bi || (Number.isNaN(ai) && Number.isNaN(bi))) err = 0;
    else if (Number.isNaN(ai) || Number.isNaN(bi) || !Number.isFinite(ai) || !Number.isFinite(bi)) err = Infinity;
    else err = Math.abs(ai - bi);
    // An infinite error is always over (rtol * |b| would be NaN or infinite when b is infinite).
    if (err === Infinity || err > tol.atol + tol.rtol * Math.abs(bi)) over++;
    if (err > maxAbs) {
      maxAbs = err;
      worstAt = i;
    }
    if (bi !== 0 && err / Math.abs(bi) > maxRel) maxRel = err / Math.abs(bi);
  }
  return { ...base, status: over ? "over" : "ok", maxAbs, maxRel, over, worst: worst(name, b.shape, worstAt, x, y) };
}

function worst(name: string, shape: readonly number[], flat: number, x: Float64Array, y: Float64Array): Worst | null {
  if (flat < 0) return null;
  const index: number[] = new Array(shape.length);
  let rest = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    index[d] = rest % shape[d];
    rest = Math.floor(rest / shape[d]);
  }
  const axes = axesOf(name, shape.length);
  return { index, axes, token: axes[0] === "token" ? index[0] : null, a: x[flat], b: y[flat] };
}

/** Order of a layer's tensors: the mixer's internals as computed, its states, then the MLP's, then the layer output. */
const LAYER_ORDER = [
  "attention.q", "attention.k", "attention.gate", "attention.k_cache", "attention.v_cache", "attention.out",
  "deltanet.conv", "deltanet.conv_state", "deltanet.g", "deltanet.beta", "deltanet.core", "deltanet.state", "deltanet.out",
  "router.experts", "router.weights", "moe.shared", "moe.shared_gate", "moe.out", "mlp.out",
];

/**
 * Sort key putting dump tensors in computation order: input_ids, embedding; then per layer i (in order) its
 * tensors in LAYER_ORDER (other `<kind>.{i}.*` names after the known ones), its output `hidden.{i}`; then
 * final_hidden, logits, mtp_* and any other names alphabetically.
 */
export function computationOrder(name: string): [number, number, number, string] {
  if (name === "input_ids") return [0, 0, 0, name];
  if (name === "embedding") return [0, 1, 0, name];
  const m = /^([A-Za-z_]+)\.(\d+)(\..*)?$/.exec(name);
  if (m) {
    const known = LAYER_ORDER.indexOf(`${m[1]}${m[3] ?? ""}`);
    const sub = m[1] === "hidden" ? LAYER_ORDER.length + 1 : known >= 0 ? known : LAYER_ORDER.length;
    return [1, Number(m[2]), sub, name];
  }
  if (name === "final_hidden") return [2, 0, 0, name];
  if (name === "logits") return [3, 0, 0, name];
  if (name.startsWith("mtp")) return [4, 0, 0, name];
  return [5, 0, 0, name];
}

/** Comparator of dump tensor names by `computationOrder` (the order `compare` reports in and `trace` writes). */
export function byComputationOrder(x: string, y: string): number {
  const a = computationOrder(x);
  const b = computationOrder(y);
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2] || (a[3] < b[3] ? -1 : a[3] > b[3] ? 1 : 0);
}

/** The layer a dump tensor belongs to (`hidden.3` -> 3), or null. */
export function layerOf(name: string): number | null {
  const m = /^[A-Za-z_]+\.(\d+)(\..*)?$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * Compares two dump files, reading one pair of tensors at a time; `map` renames A's tensors to B's names first.
 * Throws SafetensorsError on bad input.
 */
export async function compareFiles(pathA: string, pathB: string, tol: Tolerance, map?: NameMap): Promise<CompareReport> {
  const fa = await SafetensorsFile.open(pathA);
  let fb: SafetensorsFile;
  try {
    fb = await SafetensorsFile.open(pathB);
  } catch (e) {
    await fa.close();
    throw e;
  }
  try {
    // Our name -> A's name (the first A tensor mapped to it).
    const inA = new Map<string, string>();
    for (const n of fa.names()) if (!inA.has(map ? map.map(n) : n)) inA.set(map ? map.map(n) : n, n);
    const shared = [...inA.keys()].filter((n) => fb.has(n)).sort(byComputationOrder);
    const tensors: TensorComparison[] = [];
    for (const name of shared) {
      const ta = await fa.read(inA.get(name)!);
      const tb = await fb.read(name);
      tensors.push(
        compareValues(
          name,
          { dtype: ta.dtype, shape: ta.shape, values: toFloat64(ta.dtype, ta.data) },
          { dtype: tb.dtype, shape: tb.shape, values: toFloat64(tb.dtype, tb.data) },
          tol,
        ),
      );
    }
    const firstDivergence = tensors.find((t) => t.status !== "ok") ?? null;
    return {
      a: pathA,
      b: pathB,
      tolerance: tol,
      tensors,
      onlyInA: [...inA.keys()].filter((n) => !fb.has(n)).sort(byComputationOrder),
      onlyInB: fb.names().filter((n) => !inA.has(n)).sort(byComputationOrder),
      firstDivergence,
      ok: firstDivergence === null,
    };
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
