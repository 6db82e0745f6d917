/**
 * Tracing a run for other runtimes to compare against: the model over a token sequence (optionally
 * prefill-then-decode) with every intermediate collected, written as a safetensors dump whose tensor names
 * are the reference fixtures' (see reference/README.md).
 */
import { byComputationOrder } from "../io/compare-dumps.js";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors.js";
import type { Precision } from "../kernels/types.js";
import type { Qwen3NextForCausalLM } from "./qwen3_next_for_causal_lm.js";
import { Trace, type TraceFilter } from "./trace.js";

export interface TraceRun {
  trace: Trace;
  nPrefill: number;
  nDecode: number;
}

/**
 * Runs `tokens` through a fresh sequence with tracing on. With `decodeFrom = N` the first N tokens are one
 * prefill call and the rest are decoded one token per call; otherwise everything is one call.
 */
export function traceTokens(
  model: Qwen3NextForCausalLM,
  tokens: readonly number[],
  decodeFrom?: number,
  onProgress?: (layersDone: number, layers: number) => void,
  filter: TraceFilter = {},
): TraceRun {
  const T = tokens.length;
  const nPrefill = decodeFrom ?? T;
  if (!Number.isInteger(nPrefill) || nPrefill < 1 || nPrefill > T) {
    throw new Error(`decodeFrom is ${decodeFrom}, expected an integer between 1 and the number of tokens (${T})`);
  }
  const trace = new Trace(filter);
  const state = model.newState();
  model.forward(tokens.slice(0, nPrefill), state, { trace, onProgress });
  for (const id of tokens.slice(nPrefill)) model.forward([id], state, { trace });
  return { trace, nPrefill, nDecode: T - nPrefill };
}

/** The traced tensors as safetensors entries in computation order: integers as I64, floats as F64 or F32 by precision. */
export function traceTensors(trace: Trace, precision: Precision): TensorToWrite[] {
  return trace
    .tensors()
    .sort((a, b) => byComputationOrder(a.name, b.name))
    .map((t) => {
      if (t.kind === "int") return { name: t.name, dtype: "I64", shape: t.shape, data: BigInt64Array.from(t.data, (x) => BigInt(x)) };
      return precision === "f64"
        ? { name: t.name, dtype: "F64", shape: t.shape, data: t.data }
        : { name: t.name, dtype: "F32", shape: t.shape, data: Float32Array.from(t.data) };
    });
}

/** Writes a traced run atomically, with `n_prefill` / `n_decode` (and `precision`) as metadata. */
export async function writeTraceDump(file: string, run: TraceRun, precision: Precision): Promise<void> {
  await writeSafetensors(file, traceTensors(run.trace, precision), {
    n_prefill: String(run.nPrefill),
    n_decode: String(run.nDecode),
    precision,
  });
}
