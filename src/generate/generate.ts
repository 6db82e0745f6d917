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
 *
 * With `speculative`, each decode step drafts tokens with the model's MTP head and verifies them in one
 * forward pass (src/generate/speculative.ts): the same tokens greedy, the same distribution sampling, and
 * the same kept state (a continuation holds exactly what plain decoding would have fed).
 */
import { contextLimit, type Qwen3NextConfig } from "../config.js";
import type { Vec } from "../kernels/types.js";
import { StreamDecoder, type QwenTokenizer } from "../tokenizer/tokenizer.js";
import { Sampler, type SamplingParams } from "./sampler.js";
import { AdaptiveDraftLength, roundDraftLength, speculativeRound, type SpeculationCounts, type SpeculativeLM } from "./speculative.js";
import { StopStringText } from "./stop_strings.js";

/** What generation needs of a model (Qwen3NextForCausalLM provides it). */
export interface CausalLM<S extends { free(): void }> {
  readonly config: Qwen3NextConfig;
  newState(): S;
  forward(tokens: readonly number[], state: S, opts: { lastOnly: true; mtp?: boolean }): Promise<Vec>;
}

/** Speculative decoding with the model's MTP head. */
export interface SpeculativeOptions {
  /** Tokens drafted per step (K >= 1). */
  draftTokens: number;
  /**
   * Draft among the first n token ids only (default: all of them): a smaller lm_head product per draft (the
   * output is unchanged; see DraftRequest.vocab in src/model/mtp.ts).
   */
  draftVocabulary?: number;
}

/** Throws a one-line error unless `model` can run speculative decoding with `spec`. */
export function checkSpeculative(model: { config: Qwen3NextConfig }, spec: SpeculativeOptions): void {
  if (!(Number.isInteger(spec.draftTokens) && spec.draftTokens >= 1)) {
    throw new Error(`draft tokens is ${spec.draftTokens}, expected an integer >= 1`);
  }
  if (model.config.mtp_num_hidden_layers === 0) {
    throw new Error("speculative decoding with MTP needs the checkpoint's MTP head, and this one has none (mtp_num_hidden_layers is 0, or no mtp.* tensors)");
  }
  const n = spec.draftVocabulary;
  const V = model.config.vocab_size;
  if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= V)) throw new Error(`draft vocabulary is ${n}, expected an integer in [1, ${V}] (the model's vocabulary)`);
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
  /**
   * Continue a kept sequence (chat): `promptIds` are then only the new tokens, prefilled after
   * `continuation.tokens`; the state is kept (not freed) and `continuation` updated to what it has consumed.
   */
  continuation?: Continuation<{ free(): void }>;
  /** Use at most this many tokens of context (prompt + output; default: the model's whole context). */
  contextSize?: number;
  /** Draft with the MTP head and verify (needs a model with one). */
  speculative?: SpeculativeOptions;
}

/** A sequence kept across generations: its state (null: none yet) and every token the state has consumed. */
export interface Continuation<S extends { free(): void }> {
  state: S | null;
  tokens: number[];
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
  /** Tokens of context before generation: reused (already in a continued state) plus prefilled. */
  promptTokens: number;
  /** Prompt tokens run through the model by this call. */
  prefilledTokens: number;
  /** Prompt tokens that a continued state already held (0 without a continuation). */
  reusedTokens: number;
  /** The output stopped at the context limit (the prompt fitted, the room for output did not). */
  capped: boolean;
  /** Tokens sampled, the stop token included (OpenAI's completion_tokens). */
  completionTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
  /** completionTokens / decodeSeconds. */
  tokensPerSecond: number;
  /** Speculative decoding: draft tokens proposed, and how many of them were accepted (both 0 without it). */
  draftTokens: number;
  acceptedTokens: number;
  /** prefilledTokens / prefillSeconds. */
  prefillTokensPerSecond: number;
}

export interface Generation {
  events: AsyncIterable<GenerateEvent>;
  result: Promise<GenerateResult>;
}

/** Throws a one-line error when `promptTokens` cannot fit the model's context (or `contextSize`, when smaller). */
export function checkPromptLength(config: Qwen3NextConfig, promptTokens: number, contextSize?: number): void {
  const limit = Math.min(contextLimit(config), contextSize ?? Infinity);
  if (promptTokens === 0) throw new Error("the prompt is empty, expected at least one token");
  if (promptTokens >= limit) {
    const hint =
      limit < contextLimit(config)
        ? ` (--ctx-size ${limit}; the model's is ${contextLimit(config)})`
        : config.rope.rope_type === "yarn"
        ? ""
        : `; enable YaRN to extend it, e.g. --rope-scaling '{"rope_type":"yarn","factor":4,"original_max_position_embeddings":${config.max_position_embeddings}}'`;
    throw new Error(`the prompt is ${promptTokens} tokens, the model's context is ${limit} tokens (room for the prompt and at least one new token)${hint}`);
  }
}

export function generate<S extends { free(): void }>(
  model: CausalLM<S> | (CausalLM<S> & SpeculativeLM<S>),
  tokenizer: QwenTokenizer,
  promptIds: readonly number[],
  opts: GenerateOptions,
): Generation {
  checkPromptLength(model.config, (opts.continuation?.tokens.length ?? 0) + promptIds.length, opts.contextSize);
  const V = model.config.vocab_size;
  const outside = promptIds.find((id) => !(Number.isInteger(id) && id >= 0 && id < V));
  if (outside !== undefined) {
    throw new Error(`the prompt has token id ${outside}, but the model's vocabulary has ${V} ids: its tokenizer does not match this checkpoint`);
  }
  if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 1) {
    throw new Error(`max tokens is ${opts.maxTokens}, expected an integer >= 1`);
  }
  if (opts.speculative) {
    checkSpeculative(model, opts.speculative);
    if (!("draftBatch" in model)) throw new Error("this model cannot run speculative decoding (it has no draft/verify steps)");
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
  model: CausalLM<S> | (CausalLM<S> & SpeculativeLM<S>),
  tokenizer: QwenTokenizer,
  prompt: number[],
  opts: GenerateOptions,
  sampler: Sampler,
  emit: (e: GenerateEvent) => void,
): Promise<GenerateResult> {
  const stopIds = new Set(opts.stopIds ?? tokenizer.eosIds);
  const limit = Math.min(contextLimit(model.config), opts.contextSize ?? Infinity);
  const chunk = Math.max(1, opts.prefillChunk ?? 512);
  const text = new StopStringText(opts.stopStrings ?? []);
  const decoder = new StreamDecoder(tokenizer);
  const tokens: number[] = [];
  let completionTokens = 0;
  let finishReason = "length" as GenerateResult["finishReason"]; // set inside handOut too
  const kept = opts.continuation as Continuation<S> | undefined;
  const reused = kept?.tokens.length ?? 0;
  const state = kept?.state ?? model.newState();
  const context = kept ? [...kept.tokens, ...prompt] : prompt; // what the sampler's penalties see as the prompt
  let done = 0; // prompt tokens the state has consumed
  const fed: number[] = []; // generated tokens the state has consumed
  let capped = false;
  const spec = opts.speculative && "draftBatch" in model ? { model, K: new AdaptiveDraftLength(opts.speculative.draftTokens), vocab: opts.speculative.draftVocabulary } : null;
  const counts: SpeculationCounts = { draftTokens: 0, acceptedTokens: 0 };
  // Rows past the tokenizer's vocabulary (padding of the embedding matrix) have no text: never sampled.
  const view = (logits: Vec) => logits.subarray(0, Math.min(tokenizer.vocabSize, logits.length));
  let ended = false;
  /**
   * Hands out newly chosen tokens in order until one ends the generation. Returns how many of them plain
   * decoding would have fed to the state: all but the last, or those before the one that ended it.
   */
  const handOut = (ids: readonly number[]): number => {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      completionTokens++;
      if (stopIds.has(id)) {
        finishReason = "stop";
        ended = true;
        return i;
      }
      tokens.push(id);
      const { emit: delta, stopped } = text.add(decoder.push(id));
      emit({ token: id, text: delta });
      if (stopped) finishReason = "stop";
      if (stopped || tokens.length >= opts.maxTokens) {
        ended = true;
        return i;
      }
      if (context.length + tokens.length >= limit) {
        capped = ended = true;
        return i;
      }
    }
    return ids.length - 1;
  };
  const t0 = performance.now();
  let t1 = t0;
  try {
    let logits: Vec | null = null;
    for (; done < prompt.length; ) {
      if (opts.signal?.aborted) break;
      const n = Math.min(chunk, prompt.length - done);
      logits = await model.forward(prompt.slice(done, done + n), state, { lastOnly: true, mtp: spec !== null });
      done += n;
      opts.onPrefillProgress?.(done, prompt.length);
      await nextTurn();
    }
    t1 = performance.now();
    if (logits === null) finishReason = "abort";
    else if (!opts.signal?.aborted) handOut([sampler.sample(view(logits), tokens, context)]);
    while (logits !== null && !ended) {
      if (opts.signal?.aborted) {
        finishReason = "abort";
        break;
      }
      const id = tokens[tokens.length - 1]; // the last token handed out, not yet fed
      if (spec) {
        const K = roundDraftLength(spec.K.next(), opts.maxTokens - tokens.length, limit - context.length - tokens.length + 1);
        const feed = (ids: number[]) => {
          const f = handOut(ids);
          fed.push(id, ...ids.slice(0, f));
          return f;
        };
        const probe = spec.K.probing ? (accepted: boolean) => spec.K.probed(accepted) : undefined;
        const chosen = await speculativeRound(spec.model, state, id, K, sampler, view, tokens, context, counts, feed, spec.vocab, probe);
        spec.K.update(K, chosen.length - 1);
      } else {
        logits = await model.forward([id], state, { lastOnly: true });
        fed.push(id);
        handOut([sampler.sample(view(logits), tokens, context)]);
      }
      await nextTurn();
    }
  } finally {
    if (kept) {
      kept.state = state;
      kept.tokens = [...context.slice(0, reused + done), ...fed];
    } else state.free();
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
    promptTokens: context.length,
    prefilledTokens: prompt.length,
    reusedTokens: reused,
    capped,
    completionTokens,
    prefillSeconds,
    decodeSeconds,
    tokensPerSecond: decodeSeconds > 0 ? completionTokens / decodeSeconds : 0,
    prefillTokensPerSecond: prefillSeconds > 0 ? prompt.length / prefillSeconds : 0,
    draftTokens: counts.draftTokens,
    acceptedTokens: counts.acceptedTokens,
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
