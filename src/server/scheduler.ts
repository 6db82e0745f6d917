/**
 * The one scheduler every request goes through: continuous batching over a causal LM.
 *
 * Each loop iteration
 *   1. prefills the next chunk of at most one prompt (a queued sequence is admitted while fewer than
 *      `maxConcurrency` hold a slot, resuming from a cached prefix snapshot when there is one); when its
 *      prompt is done, samples its first token and adds it to the decode batch;
 *   2. advances every active sequence by one token with a single `decodeBatch` call (the matrix
 *      products are batched across sequences);
 *   3. yields to the event loop, so HTTP I/O (new requests, disconnects, SSE writes) proceeds.
 * Every sequence owns its sampler (and so its seeded random stream), and the logits row it samples
 * from depends only on its own tokens, so its output is the one it would get alone.
 *
 * Speculative decoding (`draftTokens`): a sequence that asks for drafts gets them from the MTP head before
 * the batched step, and its row in that step is [next token, drafts...] as a verify step; it then keeps the
 * accepted drafts plus one token of the model's (src/generate/speculative.ts) and is rolled back to them.
 * Plain and speculative sequences share the one batched step. Every prefill feeds the MTP head, so every
 * prefix-cache snapshot holds an MTP head in step with its prompt (and never any speculative state).
 * Beyond `maxConcurrency` active and `maxQueue` waiting, `submit` refuses with 429.
 */
import { ApiError } from "./errors.js";
import { PrefixCache, type FreeableState } from "./prefix_cache.js";
import type { Vec } from "../kernels/types.js";
import type { CausalLM } from "../generate/generate.js";
import type { Sampler } from "../generate/sampler.js";
import { AdaptiveDraftLength, draftTokens, finishRound, roundDraftLength, type Drafts, type SpeculationCounts, type SpeculativeLM } from "../generate/speculative.js";

/** What the scheduler needs of a per-sequence state (caches of all layers): a snapshot, and `free`. */
export interface SchedulableState extends FreeableState {
  clone(): SchedulableState;
}

/** What the scheduler needs of the model: generation's, plus a batched decode step (`Qwen3NextForCausalLM`). */
export interface DecodeModel<S extends SchedulableState> extends CausalLM<S> {
  /** One decode step for N sequences: token i continues states[i]; returns logits [N, V] row-major. */
  decodeBatch(tokens: readonly number[], states: S[]): Vec;
}

/** A model the scheduler can also run speculative decoding on (`Qwen3NextForCausalLM` with an MTP head). */
export type SpeculativeDecodeModel<S extends SchedulableState> = DecodeModel<S> & SpeculativeLM<S>;

export type EndReason = "stop" | "length" | "cancelled" | "error";

export interface SequenceRequest {
  prompt: number[];
  /** Upper bound on generated tokens (the end-of-sequence token included). */
  maxTokens: number;
  /** Tokens that end the sequence (not passed to `onToken`). */
  stopTokenIds: ReadonlySet<number>;
  sampler: Sampler;
  /** Only ids below this are sampled: the tokenizer's ids (a checkpoint's logits may have padding rows). */
  sampleableTokens: number;
  /** OpenAI `logit_bias`: added to the logit of each listed token before sampling. */
  logitBias?: ReadonlyMap<number, number>;
  /** Receives each generated token; returning false ends the sequence with "stop" (e.g. a stop string). */
  onToken(id: number): boolean;
  /** Called exactly once when the sequence leaves the scheduler. */
  onEnd(reason: EndReason, error?: Error): void;
  /** Tokens to draft per step with the MTP head (0 or absent: none; at most the scheduler's `draftTokens`). */
  draftTokens?: number;
}

export interface SchedulerOptions {
  maxConcurrency: number;
  maxQueue: number;
  /** Number of prompt snapshots kept for prefix reuse (0 turns the cache off). */
  prefixCacheSize: number;
  /** Prompt tokens prefilled per loop iteration, between decode steps of the others. */
  prefillChunk: number;
  /** Speculative decoding with the MTP head: the most draft tokens a sequence may ask for (0 or absent: off). */
  draftTokens?: number;
}

export interface SchedulerStats {
  active: number;
  queued: number;
  maxConcurrency: number;
  maxQueue: number;
  prefixCacheEntries: number;
  /** Prompt tokens whose prefill was skipped thanks to the prefix cache, since start. */
  prefixCacheHitTokens: number;
  completed: number;
  cancelled: number;
  /** Most sequences advanced by one decodeBatch call, since start. */
  largestBatch: number;
  /** Speculative decoding since start: draft tokens verified, and of which accepted. */
  draftTokens: number;
  acceptedTokens: number;
}

/** A sequence inside the scheduler; `cancel()` frees its slot at the next step. */
export class Sequence<S extends SchedulableState = SchedulableState> {
  readonly generated: number[] = [];
  state: S | undefined;
  /** The token to feed at the next decode step. */
  next = -1;
  /** Prompt tokens already in `state`. */
  prefilled = 0;
  /** Speculative decoding: draft tokens verified and accepted so far. */
  readonly speculation: SpeculationCounts = { draftTokens: 0, acceptedTokens: 0 };
  /** Speculative decoding: the draft length of each step (absent: plain decoding). */
  readonly draftLength: AdaptiveDraftLength | undefined;
  cancelled = false;
  done = false;
  constructor(
    readonly request: SequenceRequest,
    private readonly onCancel: (seq: Sequence<S>) => void,
  ) {
    this.draftLength = request.draftTokens ? new AdaptiveDraftLength(request.draftTokens) : undefined;
  }

  cancel(): void {
    if (this.done || this.cancelled) return;
    this.cancelled = true;
    this.onCancel(this);
  }
}

export class Scheduler<S extends SchedulableState> {
  private readonly queue: Sequence<S>[] = [];
  private active: Sequence<S>[] = [];
  /** The sequence whose prompt is being prefilled, chunk by chunk (one at a time). */
  private prefilling: Sequence<S> | undefined;
  private readonly cache: PrefixCache<S>;
  private running = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private hitTokens = 0;
  private completed = 0;
  private cancelledCount = 0;
  private largestBatch = 0;
  private readonly totals: SpeculationCounts = { draftTokens: 0, acceptedTokens: 0 };
  /** The model's speculative steps, when `draftTokens` > 0. */
  private readonly spec: SpeculativeDecodeModel<S> | null;

  constructor(
    private readonly model: DecodeModel<S> | SpeculativeDecodeModel<S>,
    private readonly opts: SchedulerOptions,
  ) {
    const K = opts.draftTokens ?? 0;
    if (!(Number.isInteger(K) && K >= 0)) throw new Error(`draftTokens is ${K}, expected an integer >= 0`);
    if (K > 0 && !("draft" in model && model.config.mtp_num_hidden_layers > 0)) {
      throw new Error("speculative decoding with MTP needs the checkpoint's MTP head, and this one has none (mtp_num_hidden_layers is 0, or no mtp.* tensors)");
    }
    this.spec = K > 0 ? (model as SpeculativeDecodeModel<S>) : null;
    if (!(opts.maxConcurrency >= 1)) throw new Error(`maxConcurrency is ${opts.maxConcurrency}, expected >= 1`);
    if (!(opts.maxQueue >= 0)) throw new Error(`maxQueue is ${opts.maxQueue}, expected >= 0`);
    if (!(opts.prefillChunk >= 1)) throw new Error(`prefillChunk is ${opts.prefillChunk}, expected >= 1`);
    this.cache = new PrefixCache<S>(opts.prefixCacheSize);
  }

  get stats(): SchedulerStats {
    return {
      active: this.slotsInUse(),
      queued: this.queue.length,
      maxConcurrency: this.opts.maxConcurrency,
      maxQueue: this.opts.maxQueue,
      prefixCacheEntries: this.cache.size,
      prefixCacheHitTokens: this.hitTokens,
      completed: this.completed,
      cancelled: this.cancelledCount,
      largestBatch: this.largestBatch,
      draftTokens: this.totals.draftTokens,
      acceptedTokens: this.totals.acceptedTokens,
    };
  }

  /** Queues a sequence; throws ApiError 429 when the queue is full, 503 once closing. */
  submit(request: SequenceRequest): Sequence<S> {
    if (this.closed) throw new ApiError(503, "The server is shutting down", "server_error", null, "shutting_down");
    if (request.prompt.length === 0) throw new ApiError(400, "The prompt is empty", "invalid_request_error", "prompt");
    const K = request.draftTokens ?? 0;
    if (!(Number.isInteger(K) && K >= 0 && K <= (this.opts.draftTokens ?? 0))) {
      throw new ApiError(400, `num_speculative_tokens is ${K}, expected an integer in [0, ${this.opts.draftTokens ?? 0}] (the server's --draft-tokens)`, "invalid_request_error", "num_speculative_tokens");
    }
    // Room for maxConcurrency running plus maxQueue waiting (queued ones not yet admitted count as either).
    if (this.slotsInUse() + this.queue.length >= this.opts.maxConcurrency + this.opts.maxQueue) {
      throw new ApiError(
        429,
        `The server is busy: ${this.slotsInUse()} requests running and ${this.queue.length} queued (--max-queue ${this.opts.maxQueue}); retry later`,
        "rate_limit_error",
        null,
        "queue_full",
      );
    }
    const seq = new Sequence<S>(request, (s) => this.onCancel(s));
    this.queue.push(seq);
    this.kick();
    return seq;
  }

  /** Stops admitting new requests; resolves when every sequence has ended, cancelling those left after `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    this.closed = true;
    const idle = this.whenIdle();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), graceMs)));
    const outcome = await Promise.race([idle.then(() => "idle" as const), timeout]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      for (const seq of [...this.queue, ...this.active, ...(this.prefilling ? [this.prefilling] : [])]) seq.cancel();
      await idle;
    }
    this.cache.clear();
  }

  private whenIdle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private onCancel(seq: Sequence<S>): void {
    const i = this.queue.indexOf(seq);
    if (i >= 0) {
      // Not started yet: leave at once. A started one is removed by the loop (which owns the batch) at its next step.
      this.queue.splice(i, 1);
      this.finish(seq, "cancelled");
    }
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    // Start on a later turn of the event loop: callbacks never run inside `submit`, so the caller
    // can finish setting up (e.g. send the SSE headers) before the first token arrives.
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      while (this.queue.length > 0 || this.active.length > 0 || this.prefilling) {
        if (!this.prefilling && this.slotsInUse() < this.opts.maxConcurrency && this.queue.length > 0) {
          this.startPrefill(this.queue.shift()!);
        }
        if (this.prefilling) this.prefillChunk(this.prefilling);
        this.reap();
        if (this.active.length > 0) this.decodeStep();
        this.reap();
        await new Promise<void>((r) => setImmediate(r));
      }
    } catch (err) {
      // A bug here must not leave requests waiting forever: end them all with the error.
      for (const seq of [...this.queue.splice(0), ...this.active, ...(this.prefilling ? [this.prefilling] : [])]) {
        this.finish(seq, "error", asError(err));
      }
      this.active = [];
      this.prefilling = undefined;
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Sequences holding a slot: decoding, or being prefilled. */
  private slotsInUse(): number {
    return this.active.length + (this.prefilling ? 1 : 0);
  }

  /** Starts a prefill from the longest cached prefix; an exact hit goes straight to its first token. */
  private startPrefill(seq: Sequence<S>): void {
    const prompt = seq.request.prompt;
    try {
      const hit = this.cache.lookup(prompt);
      this.hitTokens += hit?.length ?? 0;
      seq.state = hit ? (hit.snapshot.state.clone() as S) : this.model.newState();
      seq.prefilled = hit?.length ?? 0;
      if (hit && hit.length === prompt.length) return this.activate(seq, hit.snapshot.logits.slice());
      this.prefilling = seq;
    } catch (err) {
      this.finish(seq, "error", asError(err));
    }
  }

  /**
   * Prefills the next `prefillChunk` prompt tokens of `seq` (the state carries over between chunks, so a
   * long prompt does not stall the other sequences' decoding for its whole length).
   */
  private prefillChunk(seq: Sequence<S>): void {
    const prompt = seq.request.prompt;
    try {
      if (seq.cancelled) return this.finish(seq, "cancelled");
      const end = Math.min(prompt.length, seq.prefilled + this.opts.prefillChunk);
      const logits = this.model.forward(prompt.slice(seq.prefilled, end), seq.state!, { lastOnly: true, mtp: this.spec !== null });
      seq.prefilled = end;
      if (end < prompt.length) return;
      if (this.opts.prefixCacheSize > 0) {
        this.cache.insert({ tokens: prompt.slice(), state: seq.state!.clone() as S, logits: logits.slice() });
      }
      if (seq.cancelled) return this.finish(seq, "cancelled");
      this.activate(seq, logits);
    } catch (err) {
      this.finish(seq, "error", asError(err));
    } finally {
      if (seq.done || seq.prefilled === prompt.length) this.prefilling = undefined;
    }
  }

  /** A prefilled sequence joins the decode batch, with its first token sampled from the prompt's logits. */
  private activate(seq: Sequence<S>, logits: Vec): void {
    this.active.push(seq);
    this.emit(seq, logits);
  }

  /**
   * One batched forward for every active sequence: one token each, or, for a speculative sequence, its next
   * token and its drafts as a verify step.
   */
  private decodeStep(): void {
    let batch = this.active.slice();
    this.largestBatch = Math.max(this.largestBatch, batch.length);
    const V = this.model.config.vocab_size;
    const drafts = new Map<Sequence<S>, Drafts>();
    let logits: Vec;
    let hidden: Vec | undefined;
    if (this.spec !== null) {
      // Drafts first, each sequence on its own: one that fails to draft ends alone, not the whole batch.
      for (const seq of batch) {
        const req = seq.request;
        if (!seq.draftLength) continue;
        // K = 0: a plain step, whose hidden state goes to the MTP head below.
        const K = roundDraftLength(seq.draftLength.next(), req.maxTokens - seq.generated.length, Infinity);
        try {
          if (K > 0) drafts.set(seq, draftTokens(this.spec, seq.state!, seq.next, K, req.sampler, (z) => this.view(seq, z), seq.generated, req.prompt));
        } catch (err) {
          this.finish(seq, "error", asError(err));
        }
      }
      batch = batch.filter((seq) => !seq.done);
      if (batch.length === 0) return;
    }
    try {
      if (this.spec === null) {
        logits = this.model.decodeBatch(
          batch.map((s) => s.next),
          batch.map((s) => s.state!),
        );
      } else {
        const rows = batch.map((seq) => {
          const d = drafts.get(seq);
          return d ? { tokens: [seq.next, ...d.tokens], state: seq.state!, verify: true } : { tokens: [seq.next], state: seq.state! };
        });
        ({ logits, hidden } = this.spec.step(rows));
      }
    } catch (err) {
      for (const seq of batch) this.finish(seq, "error", asError(err));
      return;
    }
    let row = 0;
    for (const seq of batch) {
      const d = drafts.get(seq);
      const first = row;
      row += 1 + (d?.tokens.length ?? 0);
      if (seq.done || seq.cancelled) continue;
      if (!d) {
        if (seq.draftLength) {
          const H = this.model.config.hidden_size;
          try {
            this.spec!.observeMtp(hidden!.subarray(first * H, (first + 1) * H), [seq.next], seq.state!);
          } catch (err) {
            this.finish(seq, "error", asError(err));
            continue;
          }
        }
        this.emit(seq, logits.subarray(first * V, (first + 1) * V));
        continue;
      }
      try {
        const req = seq.request;
        const tokens = finishRound(this.spec!, seq.state!, seq.next, d, { logits, hidden: hidden!, first }, req.sampler, (z) => this.view(seq, z), seq.generated, req.prompt, seq.speculation);
        this.totals.draftTokens += d.tokens.length;
        this.totals.acceptedTokens += tokens.length - 1;
        seq.draftLength!.update(d.tokens.length, tokens.length - 1);
        // A sequence cancelled from inside onToken gets no further token (as in plain decoding, one step later).
        for (const token of tokens) if (!this.deliver(seq, token) || seq.cancelled) break;
      } catch (err) {
        this.finish(seq, "error", asError(err));
      }
    }
  }

  /** The logits `seq` samples from: its logit bias added, cut to the sampleable ids. */
  private view(seq: Sequence<S>, logits: Vec): Vec {
    const req = seq.request;
    if (req.logitBias && req.logitBias.size > 0) {
      logits = logits.slice();
      for (const [id, bias] of req.logitBias) if (id < logits.length) logits[id] += bias;
    }
    return logits.subarray(0, Math.min(req.sampleableTokens, logits.length));
  }

  /** Samples one token from `logits` for `seq` and hands it over. */
  private emit(seq: Sequence<S>, logits: Vec): void {
    try {
      const req = seq.request;
      this.deliver(seq, req.sampler.sample(this.view(seq, logits), seq.generated, req.prompt));
    } catch (err) {
      this.finish(seq, "error", asError(err));
    }
  }

  /** Hands `token` over and ends the sequence when it should; returns whether the sequence goes on. */
  private deliver(seq: Sequence<S>, token: number): boolean {
    const req = seq.request;
    try {
      seq.generated.push(token);
      if (req.stopTokenIds.has(token)) return this.finish(seq, "stop"), false;
      const more = req.onToken(token);
      if (!more) return this.finish(seq, "stop"), false;
      if (seq.generated.length >= req.maxTokens) return this.finish(seq, "length"), false;
      seq.next = token;
      return true;
    } catch (err) {
      this.finish(seq, "error", asError(err));
      return false;
    }
  }

  /** Removes ended and cancelled sequences from the active set. */
  private reap(): void {
    for (const seq of this.active) if (seq.cancelled && !seq.done) this.finish(seq, "cancelled");
    this.active = this.active.filter((s) => !s.done);
  }

  private finish(seq: Sequence<S>, reason: EndReason, error?: Error): void {
    if (seq.done) return;
    seq.done = true;
    seq.state?.free();
    seq.state = undefined;
    if (reason === "cancelled") this.cancelledCount++;
    else this.completed++;
    try {
      seq.request.onEnd(reason, error);
    } catch {
      // A failing listener must not stop the loop for everyone else.
    }
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
