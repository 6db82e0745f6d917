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
import type { Scheduler, SchedulableState, Sequence, SequenceRequest, TokenConstraint, TokenLogprob } from "./scheduler.js";

export interface TextRequest {
  promptTokens: number[];
  sampling: SamplingParams;
  maxTokens: number;
  stop: string[];
  logitBias?: ReadonlyMap<number, number>;
  /** Completions generated from the prompt (OpenAI `n`; one prefill shared). Default 1. */
  n?: number;
  /** Report each token's logprob and this many alternatives (undefined: no logprobs). */
  topLogprobs?: number;
  /** A fresh grammar per completion (constrained decoding), or undefined. */
  constraint?: () => TokenConstraint;
  /** Tokens drafted per step with the MTP head (0 or absent: no speculative decoding). */
  draftTokens?: number;
}

export interface TextResult {
  text: string;
  finishReason: "stop" | "length";
  /** Generated tokens, the end-of-sequence token included (as vLLM counts them). */
  completionTokens: number;
  /** The generated ids (the end-of-sequence token included). */
  tokens: number[];
  /** With `topLogprobs`: one per generated token. */
  logprobs?: TokenLogprob[];
  /** Leading prompt tokens taken from the prefix cache. */
  cachedTokens: number;
  /** Speculative decoding's draft counts, when the request drafted. */
  speculation?: { draftTokens: number; acceptedTokens: number };
}

/** Timing and token counts of each request, for /metrics (see metrics.ts). */
export interface GenerationObserver {
  /** Seconds from submission to the first generated token of a completion. */
  firstToken(seconds: number): void;
  /** A completion ended normally after `seconds`. */
  finished(r: { seconds: number; promptTokens: number; completionTokens: number; finishReason: "stop" | "length" }): void;
}

/** Thrown (as a rejection) when the request was cancelled, e.g. because its client went away. */
export class CancelledError extends Error {
  override name = "CancelledError";
}

export interface GenerationDeps {
  scheduler: Scheduler<SchedulableState>;
  tokenizer: QwenTokenizer;
  observer?: GenerationObserver;
}

/**
 * Starts `req` and returns a promise of its result; `onText` receives each new piece of text (never
 * synchronously inside this call) with the logprobs of the tokens that completed it. `signal` cancels it:
 * the sequence leaves the scheduler at its next step and its state is freed. Throws ApiError 429/503 at
 * once when the scheduler refuses the request; the promise rejects with CancelledError when cancelled,
 * ApiError 500 when the model fails.
 */
export function startGeneration(
  deps: GenerationDeps,
  req: TextRequest,
  onText: (delta: string, logprobs: TokenLogprob[]) => void,
  signal?: AbortSignal,
): Promise<TextResult> {
  return startGenerations(deps, { ...req, n: 1 }, (_i, delta, lps) => onText(delta, lps), signal).then((r) => r[0]);
}

/** `req.n` completions of one prompt (one shared prefill); `onText` is told which one a delta belongs to. */
export function startGenerations(
  deps: GenerationDeps,
  req: TextRequest,
  onText: (index: number, delta: string, logprobs: TokenLogprob[]) => void,
  signal?: AbortSignal,
): Promise<TextResult[]> {
  if (signal?.aborted) return Promise.reject(new CancelledError("the request was cancelled before it started"));
  const n = req.n ?? 1;
  const submitted = performance.now();
  const runs = Array.from({ length: n }, (_, index) => completion(deps, req, index, submitted, (d, l) => onText(index, d, l)));
  const constraints: TokenConstraint[] = [];
  let seqs;
  try {
    for (const r of runs) {
      if (r.request.constraint) constraints.push(r.request.constraint);
    }
    seqs = deps.scheduler.submitGroup(runs.map((r) => r.request));
  } catch (err) {
    for (const c of constraints) c.free();
    throw err;
  }
  runs.forEach((r, i) => r.bind(seqs[i]));
  const onAbort = () => seqs.forEach((s) => s.cancel());
  signal?.addEventListener("abort", onAbort, { once: true });
  const all = Promise.all(runs.map((r) => r.done));
  // One choice failing fails the request: the others stop too.
  all.catch(() => seqs.forEach((s) => s.cancel()));
  // Every sequence ends (cancelled together), so removing the listener once all settle is enough.
  void Promise.allSettled(runs.map((r) => r.done)).then(() => signal?.removeEventListener("abort", onAbort));
  return all;
}

/** One completion's sequence request and the promise of its result. */
function completion(
  deps: GenerationDeps,
  req: TextRequest,
  index: number,
  submitted: number,
  onText: (delta: string, logprobs: TokenLogprob[]) => void,
) {
  let resolve!: (r: TextResult) => void;
  let reject!: (e: Error) => void;
  const done = new Promise<TextResult>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  done.catch(() => {}); // the caller awaits Promise.all; a second rejection must not go unhandled
  const decoder = new StreamDecoder(deps.tokenizer, { skipSpecial: true });
  const stops = new StopStringText(req.stop);
  let text = "";
  let pending: TokenLogprob[] = [];
  const out = (delta: string) => {
    if (delta.length === 0) return;
    text += delta;
    const lps = pending;
    pending = [];
    onText(delta, lps);
  };
  let seq: Sequence<SchedulableState> | undefined;
  let first = true;
  const firstToken = () => {
    if (first) deps.observer?.firstToken((performance.now() - submitted) / 1000);
    first = false;
  };
  // n > 1 with a seed: each completion gets its own stream (seed, seed + 1, ...), reproducibly.
  const seed = req.sampling.seed;
  const sampling =
    seed !== undefined && index > 0 ? { ...req.sampling, seed: Number.isSafeInteger(seed + index) ? seed + index : seed - index } : req.sampling;
  const request: SequenceRequest = {
    prompt: req.promptTokens,
    maxTokens: req.maxTokens,
    stopTokenIds: new Set(deps.tokenizer.eosIds),
    sampler: new Sampler(sampling),
    sampleableTokens: deps.tokenizer.vocabSize,
    logitBias: req.logitBias,
    topLogprobs: req.topLogprobs,
    constraint: req.constraint?.(),
    draftTokens: req.draftTokens,
    onToken(id, lp) {
      firstToken();
      if (lp) pending.push(lp);
      const { emit, stopped } = stops.add(decoder.push(id));
      out(emit);
      return !stopped;
    },
    onEnd(reason, error) {
      if (reason === "cancelled") return reject(new CancelledError("the request was cancelled"));
      if (reason === "error") {
        return reject(new ApiError(500, `generation failed: ${error?.message ?? "unknown error"}`, "server_error"));
      }
      out(stops.end(stops.stopped ? "" : decoder.flush()));
      const s = seq!;
      if (s.generated.length > 0) firstToken(); // an end token first is not passed to onToken
      deps.observer?.finished({
        seconds: (performance.now() - submitted) / 1000,
        promptTokens: index === 0 ? req.promptTokens.length : 0, // n choices share one prompt
        completionTokens: s.generated.length,
        finishReason: reason,
      });
      resolve({
        text,
        finishReason: reason,
        completionTokens: s.generated.length,
        tokens: s.generated.slice(),
        logprobs: req.topLogprobs === undefined ? undefined : s.logprobs.slice(),
        cachedTokens: s.cachedTokens,
        ...(req.draftTokens ? { speculation: { ...s.speculation } } : {}),
      });
    },
  };
  return { request, done, bind: (s: Sequence<SchedulableState>) => (seq = s) };
}
