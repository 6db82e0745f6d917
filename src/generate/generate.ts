/**
 * Generation for one sequence: prefill the prompt (in chunks, with progress), then decode token by token over
 * the sequence's caches, streaming text deltas that are safe to show (whole characters, no part of a stop
 * string), until an eos id, a stop string, max tokens, the context limit, or an abort.
 *
 *   const g = generate(model, tokenizer, promptIds, { sampling, maxTokens: 256 });
 *   for await (const e of g.events) process.stdout.write(e.text);
 *   const r = await g.result;   // text, tokens, finishReason, timings, tokens/s
 *
 * The work starts at once and runs whether or not `events` is read (events are buffered), yielding to the
 * event loop between forward passes so that an abort signal (Ctrl-C) is seen between tokens.
 */
import type { Qwen3NextConfig } from "../config.js";
import type { Vec } from "../kernels/types.js";
import { StreamDecoder, type QwenTokenizer } from "../tokenizer/tokenizer.js";
import { Sampler, type SamplingParams } from "./sampler.js";
import { StopStringText } from "./stop_strings.js";

/** What generation needs of a model (Qwen3NextForCausalLM provides it). */
export interface CausalLM<S extends { free(): void }> {
  readonly config: Qwen3NextConfig;
  newState(): S;
  forward(tokens: readonly number[], state: S, opts: { lastOnly: true }): Vec;
}

export interface GenerateOptions {
  sampling: SamplingParams;
  maxTokens: number;
  /** Token ids that end the generation (not part of the text). Default: the tokenizer's eos ids. */
  stopIds?: number[];
  /** Strings that end the generation; the text is cut before the first one. */
  stopStrings?: string[];
  signal?: AbortSignal;
  onPrefillProgress?(done: number, total: number): void;
  /** Prompt tokens per prefill forward pass (bounds activation memory, paces progress). Default 512. */
  prefillChunk?: number;
}

export interface GenerateEvent {
  /** The token this text came with, or null for text released at the end (held-back bytes). */
  token: number | null;
  /** Text that is now final: whole characters, never part of a possible stop string. Possibly "". */
  text: string;
}

export interface GenerateResult {
  text: string;
  /** Generated tokens, without the stop token. */
  tokens: number[];
  finishReason: "stop" | "length" | "abort";
  promptTokens: number;
  /** Tokens sampled, the stop token included (OpenAI's completion_tokens). */
  completionTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
  /** completionTokens / decodeSeconds. */
  tokensPerSecond: number;
  /** promptTokens / prefillSeconds. */
  prefillTokensPerSecond: number;
}

export interface Generation {
  events: AsyncIterable<GenerateEvent>;
  result: Promise<GenerateResult>;
}

/**
 * Longest context the model can attend over: `max_position_embeddings`, or with YaRN
 * `factor * original_max_position_embeddings` when that is larger.
 */
export function contextLimit(config: Qwen3NextConfig): number {
  const r = config.rope;
  return r.rope_type === "yarn" ? Math.max(config.max_position_embeddings, Math.floor(r.factor * r.original_max_position_embeddings)) : config.max_position_embeddings;
}

/** Throws a one-line error when `promptTokens` cannot fit the model's context. */
export function checkPromptLength(config: Qwen3NextConfig, promptTokens: number): void {
  const limit = contextLimit(config);
  if (promptTokens === 0) throw new Error("the prompt is empty, expected at least one token");
  if (promptTokens >= limit) {
    const hint =
      config.rope.rope_type === "yarn"
        ? ""
        : `; enable YaRN to extend it, e.g. --rope-scaling '{"rope_type":"yarn","factor":4,"original_max_position_embeddings":${config.max_position_embeddings}}'`;
    throw new Error(`the prompt is ${promptTokens} tokens, the model's context is ${limit} tokens (room for the prompt and at least one new token)${hint}`);
  }
}

export function generate<S extends { free(): void }>(
  model: CausalLM<S>,
  tokenizer: QwenTokenizer,
  promptIds: readonly number[],
  opts: GenerateOptions,
): Generation {
  checkPromptLength(model.config, promptIds.length);
  const V = model.config.vocab_size;
  const outside = promptIds.find((id) => !(Number.isInteger(id) && id >= 0 && id < V));
  if (outside !== undefined) {
    throw new Error(`the prompt has token id ${outside}, but the model's vocabulary has ${V} ids: its tokenizer does not match this checkpoint`);
  }
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1) {
    throw new Error(`max tokens is ${opts.maxTokens}, expected an integer >= 1`);
  }
  const sampler = new Sampler(opts.sampling);
  const queue = new EventQueue<GenerateEvent>();
  const result = run(model, tokenizer, [...promptIds], opts, sampler, (e) => queue.push(e)).then(
    (r) => {
      queue.end();
      return r;
    },
    (err: unknown) => {
      queue.fail(err);
      throw err;
    },
  );
  result.catch(() => undefined); // reported through `result` and `events`; never an unhandled rejection
  return { events: queue, result };
}

async function run<S extends { free(): void }>(
  model: CausalLM<S>,
  tokenizer: QwenTokenizer,
  prompt: number[],
  opts: GenerateOptions,
  sampler: Sampler,
  emit: (e: GenerateEvent) => void,
): Promise<GenerateResult> {
  const stopIds = new Set(opts.stopIds ?? tokenizer.eosIds);
  const limit = contextLimit(model.config);
  const chunk = Math.max(1, opts.prefillChunk ?? 512);
  const text = new StopStringText(opts.stopStrings ?? []);
  const decoder = new StreamDecoder(tokenizer);
  const tokens: number[] = [];
  let completionTokens = 0;
  let finishReason: GenerateResult["finishReason"] = "length";
  const state = model.newState();
  const t0 = performance.now();
  let t1 = t0;
  try {
    let logits: Vec | null = null;
    for (let done = 0; done < prompt.length; ) {
      if (opts.signal?.aborted) break;
      const n = Math.min(chunk, prompt.length - done);
      logits = model.forward(prompt.slice(done, done + n), state, { lastOnly: true });
      done += n;
      opts.onPrefillProgress?.(done, prompt.length);
      await nextTurn();
    }
    t1 = performance.now();
    let position = prompt.length;
    while (logits !== null) {
      if (opts.signal?.aborted) {
        finishReason = "abort";
        break;
      }
      // Rows past the tokenizer's vocabulary (padding of the embedding matrix) have no text: never sampled.
      const id = sampler.sample(logits.subarray(0, Math.min(tokenizer.vocabSize, logits.length)), tokens, prompt);
      completionTokens++;
      if (stopIds.has(id)) {
        finishReason = "stop";
        break;
      }
      tokens.push(id);
      const { emit: delta, stopped } = text.add(decoder.push(id));
      emit({ token: id, text: delta });
      if (stopped) {
        finishReason = "stop";
        break;
      }
      if (tokens.length >= opts.maxTokens || position + 1 >= limit) break;
      logits = model.forward([id], state, { lastOnly: true });
      position++;
      await nextTurn();
    }
    if (logits === null) finishReason = "abort";
  } finally {
    state.free();
  }
  const tail = text.end(finishReason === "stop" && text.stopped ? "" : decoder.flush());
  if (tail.length > 0) emit({ token: null, text: tail });
  const t2 = performance.now();
  const prefillSeconds = (t1 - t0) / 1000;
  const decodeSeconds = (t2 - t1) / 1000;
  return {
    text: text.value,
    tokens,
    finishReason,
    promptTokens: prompt.length,
    completionTokens,
    prefillSeconds,
    decodeSeconds,
    tokensPerSecond: decodeSeconds > 0 ? completionTokens / decodeSeconds : 0,
    prefillTokensPerSecond: prefillSeconds > 0 ? prompt.length / prefillSeconds : 0,
  };
}

/** Lets timers, I/O and signal handlers run between forward passes. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** An async-iterable buffer: the producer pushes, one consumer iterates. */
class EventQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private done = false;
  private error: unknown = null;
  private wake: (() => void) | null = null;

  push(item: T): void {
    this.items.push(item);
    this.notify();
  }
  end(): void {
    this.done = true;
    this.notify();
  }
  fail(err: unknown): void {
    this.error = err ?? new Error("generation failed");
    this.done = true;
    this.notify();
  }
  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.shift()!;
        continue;
      }
      if (this.done) {
        if (this.error !== null) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}
