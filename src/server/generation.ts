/**
 * One request's text generation on the shared scheduler: tokens in, text deltas out.
 *
 *   prompt ids -> Scheduler (batched decode, per-request Sampler) -> token ids
 *              -> StreamDecoder (never a broken UTF-8 character) -> StopStringText -> onText(delta)
 *
 * End-of-sequence ids end the text without being part of it; special tokens are not rendered
 * (`<think>` and `<tool_call>` are not special, so the output parser still sees them).
 */
import { StreamDecoder, type QwenTokenizer } from "../tokenizer/tokenizer.js";
import { Sampler, type SamplingParams } from "../generate/sampler.js";
import { StopStringText } from "../generate/stop_strings.js";
import { ApiError } from "./errors.js";
import type { Scheduler, SchedulableState } from "./scheduler.js";

export interface TextRequest {
  promptTokens: number[];
  sampling: SamplingParams;
  maxTokens: number;
  stop: string[];
  logitBias?: ReadonlyMap<number, number>;
  /** Tokens drafted per step with the MTP head (0 or absent: no speculative decoding). */
  draftTokens?: number;
}

export interface TextResult {
  text: string;
  finishReason: "stop" | "length";
  /** Generated tokens, the end-of-sequence token included (as vLLM counts them). */
  completionTokens: number;
  /** Speculative decoding's draft counts, when the request drafted. */
  speculation?: { draftTokens: number; acceptedTokens: number };
}

/** Thrown (as a rejection) when the request was cancelled, e.g. because its client went away. */
export class CancelledError extends Error {
  override name = "CancelledError";
}

export interface GenerationDeps {
  scheduler: Scheduler<SchedulableState>;
  tokenizer: QwenTokenizer;
}

/**
 * Starts `req` and returns a promise of its result; `onText` receives each new piece of text (never
 * synchronously inside this call). `signal` cancels it: the sequence leaves the scheduler at its next
 * step and its state is freed. Throws ApiError 429/503 at once when the scheduler refuses the request;
 * the promise rejects with CancelledError when cancelled, ApiError 500 when the model fails.
 */
export function startGeneration(
  deps: GenerationDeps,
  req: TextRequest,
  onText: (delta: string) => void,
  signal?: AbortSignal,
): Promise<TextResult> {
  if (signal?.aborted) return Promise.reject(new CancelledError("the request was cancelled before it started"));
  let resolve!: (r: TextResult) => void;
  let reject!: (e: Error) => void;
  const done = new Promise<TextResult>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const decoder = new StreamDecoder(deps.tokenizer, { skipSpecial: true });
  const stops = new StopStringText(req.stop);
  let text = "";
  const out = (delta: string) => {
    if (delta.length === 0) return;
    text += delta;
    onText(delta);
  };
  const onAbort = () => seq.cancel();
  const seq = deps.scheduler.submit({
    prompt: req.promptTokens,
    maxTokens: req.maxTokens,
    stopTokenIds: new Set(deps.tokenizer.eosIds),
    sampler: new Sampler(req.sampling),
    sampleableTokens: deps.tokenizer.vocabSize,
    logitBias: req.logitBias,
    draftTokens: req.draftTokens,
    onToken(id) {
      const { emit, stopped } = stops.add(decoder.push(id));
      out(emit);
      return !stopped;
    },
    onEnd(reason, error) {
      signal?.removeEventListener("abort", onAbort);
      if (reason === "cancelled") return reject(new CancelledError("the request was cancelled"));
      if (reason === "error") {
        return reject(new ApiError(500, `generation failed: ${error?.message ?? "unknown error"}`, "server_error"));
      }
      out(stops.end(stops.stopped ? "" : decoder.flush()));
      resolve({
        text,
        finishReason: reason,
        completionTokens: seq.generated.length,
        ...(req.draftTokens ? { speculation: { ...seq.speculation } } : {}),
      });
    },
  });
  signal?.addEventListener("abort", onAbort, { once: true });
  return done;
}
