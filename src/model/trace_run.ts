/**
 * Tracing a run for other runtimes to compare against: the model over a token sequence (optionally
 * prefill-then-decode) with every intermediate collected (`src/io/trace_dump.ts` writes it).
 */
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
export async function traceTokens(
  model: Qwen3NextForCausalLM,
  tokens: readonly number[],
  decodeFrom?: number,
  onProgress?: (layersDone: number, layers: number) => void,
  filter: TraceFilter = {},
): Promise<TraceRun> {
  const T = tokens.length;
  const nPrefill = decodeFrom ?? T;
  if (!Number.isInteger(nPrefill) || nPrefill < 1 || nPrefill > T) {
    throw new Error(`decodeFrom is ${decodeFrom}, expected an integer between 1 and the number of tokens (${T})`);
  }
  const trace = new Trace(filter);
  const state = model.newState();
  await model.forward(tokens.slice(0, nPrefill), state, { trace, onProgress });
  for (const id of tokens.slice(nPrefill)) await model.forward([id], state, { trace });
  return { trace, nPrefill, nDecode: T - nPrefill };
}
