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
 * Beyond `maxConcurrency` active and `maxQueue` waiting, `submit` refuses with 429.
 *
 * Per token, in order (`emit`):  raw logits -> logprobs (log-softmax of the raw logits, as vLLM's
 * default `raw_logprobs`) -> grammar mask (disallowed ids to -inf) -> logit_bias -> sampler.
 * A grammar's mask is fetched before the step that needs it (XGrammar's API is asynchronous).
 * `submitGroup` runs n sequences over one prompt (OpenAI `n`): one prefill, then each sibling
 * continues from a clone of the prompt's state.
 *
 * Speculative decoding (`draftTokens`): the sequences that ask for drafts get them from the MTP head before
 * the batched step (all of them in one batch per chain step), and each one's row in that step is [next
 * token, drafts...] as a verify step; it then keeps the accepted drafts plus one token of the model's
 * (src/generate/speculative.ts) and is rolled back to them. Plain and speculative sequences share the one
 * batched step. An accepted token's logprob comes from its verify row, which is the row plain decoding computes
 * for it. Every prefill feeds the MTP head, so every prefix-cache snapshot holds an MTP head in step with its
 * prompt (and never any speculative state). A sequence with a grammar speculates under it: its drafts are
 * drawn and verified under the mask of their own position, the matcher advancing over the drafts while
 * they are drafted and taken back over the rejected ones (see src/generate/speculative.ts).
 * Each verify step is reported to `onSpecDecode(drafted, accepted)` (the vllm:spec_decode_* metrics).
 */
import { ApiError } from "./errors.js";
import { PrefixCache, type FreeableState } from "./prefix_cache.js";
import type { Tensor, Vec } from "../kernels/types.js";
import type { CausalLM } from "../generate/generate.js";
import { applyMask, type Sampler } from "../generate/sampler.js";
import { AdaptiveDraftLength, draftAndProbe, finishRound, probeAccepts, roundDraftLength, type DraftGrammar, type DraftJob, type Drafts, type ProbeJob, type SpeculationCounts, type SpeculativeLM } from "../generate/speculative.js";

/** What the scheduler needs of a per-sequence state (caches of all layers): a snapshot, and `free`. */
export interface SchedulableState extends FreeableState {
  clone(): SchedulableState;
}

/** What the scheduler needs of the model: generation's, plus a batched decode step (`Qwen3NextForCausalLM`). */
export interface DecodeModel<S extends SchedulableState> extends CausalLM<S> {
  /** One decode step for N sequences: token i continues states[i]; returns logits [N, V] row-major. */
  decodeBatch(tokens: readonly number[], states: S[]): Promise<Vec>;
}

/** A model the scheduler can also run speculative decoding on (`Qwen3NextForCausalLM` with an MTP head). */
export type SpeculativeDecodeModel<S extends SchedulableState> = DecodeModel<S> & SpeculativeLM<S>;

export type EndReason = "stop" | "length" | "cancelled" | "error";

/**
 * A grammar restricting the next token (constrained decoding): see src/server/grammar/.
 * The mask has bit (id & 31) of word (id >> 5) set for each allowed id.
 */
export interface TokenConstraint extends DraftGrammar {
  free(): void;
}

/** The log-probability of a generated token and the most likely alternatives at its position. */
export interface TokenLogprob {
  /** The generated token. */
  id: number;
  logprob: number;
  /** The `topLogprobs` most likely ids, most likely first. */
  top: Array<{ id: number; logprob: number }>;
}

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
  /** When set, each token comes with its logprob and this many alternatives (0: none). */
  topLogprobs?: number;
  /** When set, only tokens the grammar allows are sampled (the constraint is freed at the end). */
  constraint?: TokenConstraint;
  /** Tokens to draft per step with the MTP head (0 or absent: none; at most the scheduler's `draftTokens`). */
  draftTokens?: number;
  /** Receives each generated token (with its logprobs when asked); returning false ends the sequence with "stop". */
  onToken(id: number, logprob?: TokenLogprob): boolean;
  /** Called exactly once when the sequence leaves the scheduler. */
  onEnd(reason: EndReason, error?: Error): void;
}

export interface SchedulerOptions {
  maxConcurrency: number;
  maxQueue: number;
  /** Number of prompt snapshots kept for prefix reuse (0 turns the cache off). */
  prefixCacheSize: number;
  /** Prompt tokens prefilled per loop iteration, between decode steps of the others. */
  prefillChunk: number;
  /**
   * Speculative decoding's report (the hook for MTP drafting): call once per verification step with the
   * tokens drafted and how many of them were accepted. `startServer` wires it to /metrics
   * (vllm:spec_decode_num_drafts_total, _num_draft_tokens_total, _num_accepted_tokens_total).
   */
  onSpecDecode?: (draftTokens: number, acceptedTokens: number) => void;
  /** Speculative decoding with the MTP head: the most draft tokens a sequence may ask for (0 or absent: off). */
  draftTokens?: number;
  /** Drafts among the first n token ids only (default: all; see SpeculativeOptions.draftVocabulary). */
  draftVocabulary?: number;
}

export interface SchedulerStats {
  active: number;
  queued: number;
  maxConcurrency: number;
  maxQueue: number;
  prefixCacheEntries: number;
  /** Prompt tokens whose prefill was skipped thanks to the prefix cache, since start. */
  prefixCacheHitTokens: number;
  /** Prompt tokens looked up in the prefix cache, since start (vLLM's prefix_cache_queries). */
  prefixCacheQueryTokens: number;
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
  /** With `topLogprobs` set: one entry per generated token (the end-of-sequence token included). */
  readonly logprobs: TokenLogprob[] = [];
  state: S | undefined;
  /** The token to feed at the next decode step. */
  next = -1;
  /** Prompt tokens already in `state`. */
  prefilled = 0;
  cancelled = false;
  done = false;
  /** Leading prompt tokens taken from the prefix cache (usage.prompt_tokens_details.cached_tokens). */
  cachedTokens = 0;
  /** The grammar's mask for the next token, when constrained (undefined: to be fetched). */
  mask: Int32Array | undefined;
  /** Sequences of the same group (`submitGroup`) waiting for this one's prefill. */
  siblings: Sequence<S>[] = [];
  /** Logits of an exact prefix-cache hit, sampled once the mask is ready. */
  pendingLogits: Vec | undefined;
  /** Speculative decoding: draft tokens verified and accepted so far. */
  readonly speculation: SpeculationCounts = { draftTokens: 0, acceptedTokens: 0 };
  /** Speculative decoding: the draft length of each step (absent: plain decoding). */
  readonly draftLength: AdaptiveDraftLength | undefined;
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
  private queryTokens = 0;
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
    if (!(opts.maxConcurrency >= 1)) throw new Error(`maxConcurrency is ${opts.maxConcurrency}, expected >= 1`);
    if (!(opts.maxQueue >= 0)) throw new Error(`maxQueue is ${opts.maxQueue}, expected >= 0`);
    if (!(opts.prefillChunk >= 1)) throw new Error(`prefillChunk is ${opts.prefillChunk}, expected >= 1`);
    const K = opts.draftTokens ?? 0;
    if (!(Number.isInteger(K) && K >= 0)) throw new Error(`draftTokens is ${K}, expected an integer >= 0`);
    if (K > 0 && !("draftBatch" in model && model.config.mtp_num_hidden_layers > 0)) {
      throw new Error("speculative decoding with MTP needs the checkpoint's MTP head, and this one has none (mtp_num_hidden_layers is 0, or no mtp.* tensors)");
    }
    const n = opts.draftVocabulary;
    if (n !== undefined && !(Number.isInteger(n) && n >= 1 && n <= model.config.vocab_size)) {
      throw new Error(`draftVocabulary is ${n}, expected an integer in [1, ${model.config.vocab_size}] (the model's vocabulary)`);
    }
    this.spec = K > 0 ? (model as SpeculativeDecodeModel<S>) : null;
    this.cache = new PrefixCache<S>(opts.prefixCacheSize);
  }

  get stats(): SchedulerStats {
    return {
      active: this.slotsInUse(),
      queued: this.queued(),
      maxConcurrency: this.opts.maxConcurrency,
      maxQueue: this.opts.maxQueue,
      prefixCacheEntries: this.cache.size,
      prefixCacheHitTokens: this.hitTokens,
      prefixCacheQueryTokens: this.queryTokens,
      completed: this.completed,
      cancelled: this.cancelledCount,
      largestBatch: this.largestBatch,
      draftTokens: this.totals.draftTokens,
      acceptedTokens: this.totals.acceptedTokens,
    };
  }

  /** Queues a sequence; throws ApiError 429 when the queue is full, 503 once closing. */
  submit(request: SequenceRequest): Sequence<S> {
    return this.submitGroup([request])[0];
  }

  /**
   * Queues sequences that share one prompt (OpenAI `n`): the prompt is prefilled once and every other
   * sequence starts from a clone of its state. They hold a slot each. Siblings that have not started
   * yet end with the first one when it is cancelled or fails before its prefill is done.
   */
  submitGroup(requests: SequenceRequest[]): Sequence<S>[] {
    if (this.closed) throw new ApiError(503, "The server is shutting down", "server_error", null, "shutting_down");
    if (requests.length === 0) throw new Error("submitGroup needs at least one request");
    const prompt = requests[0].prompt;
    if (prompt.length === 0) throw new ApiError(400, "The prompt is empty", "invalid_request_error", "prompt");
    for (const request of requests) {
      const K = request.draftTokens ?? 0;
      if (!(Number.isInteger(K) && K >= 0 && K <= (this.opts.draftTokens ?? 0))) {
        throw new ApiError(400, `num_speculative_tokens is ${K}, expected an integer in [0, ${this.opts.draftTokens ?? 0}] (the server's --draft-tokens)`, "invalid_request_error", "num_speculative_tokens");
      }
    }
    if (requests.some((r) => r.prompt.length !== prompt.length || r.prompt.some((t, i) => t !== prompt[i]))) {
      throw new Error("submitGroup: every request of a group must have the same prompt");
    }
    // Room for maxConcurrency running plus maxQueue waiting (queued ones not yet admitted count as either).
    if (this.slotsInUse() + this.queued() + requests.length > this.opts.maxConcurrency + this.opts.maxQueue) {
      throw new ApiError(
        429,
        `The server is busy: ${this.slotsInUse()} requests running and ${this.queued()} queued (--max-queue ${this.opts.maxQueue}); retry later`,
        "rate_limit_error",
        null,
        "queue_full",
      );
    }
    const seqs = requests.map((r) => new Sequence<S>(r, (s) => this.onCancel(s)));
    seqs[0].siblings = seqs.slice(1);
    this.queue.push(seqs[0]);
    this.kick();
    return seqs;
  }

  /** Sequences waiting for admission (a queued group counts each of its sequences). */
  private queued(): number {
    return this.queue.reduce((n, s) => n + 1 + s.siblings.length, 0);
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
      for (const seq of [...this.queue, ...this.active, ...(this.prefilling ? [this.prefilling] : [])]) {
        for (const sib of seq.siblings) sib.cancel();
        seq.cancel();
      }
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
        if (!this.prefilling && this.queue.length > 0 && this.canAdmit(this.queue[0])) {
          this.startPrefill(this.queue.shift()!);
        }
        if (this.prefilling) {
          await this.fetchMasks([this.prefilling, ...this.prefilling.siblings]);
          // A failed grammar ends the sequence (and its waiting siblings) while its mask is fetched.
          if (this.prefilling.done) this.prefilling = undefined;
          else await this.prefillChunk(this.prefilling);
        }
        this.reap();
        await this.fetchMasks(this.active);
        this.reap();
        if (this.active.length > 0) await this.decodeStep();
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

  /** Sequences holding a slot: decoding, or being prefilled (with the siblings waiting for that prefill). */
  private slotsInUse(): number {
    return this.active.length + (this.prefilling ? 1 + this.prefilling.siblings.length : 0);
  }

  /** A group is admitted when all of it fits, or when nothing else runs (a group larger than the limit). */
  private canAdmit(seq: Sequence<S>): boolean {
    const used = this.slotsInUse();
    return used === 0 || used + 1 + seq.siblings.length <= this.opts.maxConcurrency;
  }

  /** Fetches the grammar mask of each constrained sequence that needs one (no await when none does). */
  private async fetchMasks(seqs: readonly Sequence<S>[]): Promise<void> {
    const need = seqs.filter((s) => s.request.constraint && s.mask === undefined && !s.done && !s.cancelled);
    if (need.length === 0) return;
    await Promise.all(
      need.map(async (s) => {
        try {
          s.mask = await s.request.constraint!.nextMask();
        } catch (err) {
          this.finish(s, "error", asError(err));
        }
      }),
    );
  }

  /** Starts a prefill from the longest cached prefix; an exact hit goes straight to its first token. */
  private startPrefill(seq: Sequence<S>): void {
    const prompt = seq.request.prompt;
    try {
      const hit = this.cache.lookup(prompt);
      this.hitTokens += hit?.length ?? 0;
      this.queryTokens += prompt.length;
      seq.state = hit ? (hit.snapshot.state.clone() as S) : this.model.newState();
      seq.prefilled = hit?.length ?? 0;
      seq.cachedTokens = seq.prefilled;
      // An exact hit has nothing left to prefill: its first token is sampled at the next prefill step.
      if (hit && hit.length === prompt.length) seq.pendingLogits = hit.snapshot.logits.slice();
      this.prefilling = seq;
    } catch (err) {
      this.finish(seq, "error", asError(err));
    }
  }

  /**
   * Prefills the next `prefillChunk` prompt tokens of `seq` (the state carries over between chunks, so a
   * long prompt does not stall the other sequences' decoding for its whole length).
   */
  private async prefillChunk(seq: Sequence<S>): Promise<void> {
    const prompt = seq.request.prompt;
    try {
      if (seq.cancelled) return this.finish(seq, "cancelled");
      if (seq.pendingLogits) {
        const logits = seq.pendingLogits;
        seq.pendingLogits = undefined;
        return this.activate(seq, logits);
      }
      const end = Math.min(prompt.length, seq.prefilled + this.opts.prefillChunk);
      const logits = await this.model.forward(prompt.slice(seq.prefilled, end), seq.state!, { lastOnly: true, mtp: this.spec !== null });
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

  /**
   * A prefilled sequence joins the decode batch, with its first token sampled from the prompt's logits;
   * so do its siblings, each from a clone of the prompt's state.
   */
  private activate(seq: Sequence<S>, logits: Vec): void {
    const siblings = seq.siblings;
    seq.siblings = [];
    for (const sib of siblings) {
      if (sib.cancelled) {
        this.finish(sib, "cancelled");
        continue;
      }
      try {
        sib.state = seq.state!.clone() as S;
      } catch (err) {
        this.finish(sib, "error", asError(err));
        continue;
      }
      sib.prefilled = seq.prefilled;
      sib.cachedTokens = seq.cachedTokens;
      this.active.push(sib);
      this.emit(sib, logits);
    }
    this.active.push(seq);
    this.emit(seq, logits);
  }

  /**
   * One batched forward for every active sequence: one token each, or, for a speculative sequence, its next
   * token and its drafts as a verify step.
   */
  private async decodeStep(): Promise<void> {
    let batch = this.active.slice();
    this.largestBatch = Math.max(this.largestBatch, batch.length);
    const V = this.model.config.vocab_size;
    const drafts = new Map<Sequence<S>, Drafts>();
    const probes = new Map<Sequence<S>, Float64Array>();
    let logits: Vec;
    let hidden: Tensor | undefined;
    if (this.spec !== null) {
      // Drafts first, for every drafting sequence in one batch per chain step; a sequence whose drafting
      // fails (its sampler) ends alone, not the whole batch.
      const jobs: { seq: Sequence<S>; job: DraftJob<S> }[] = [];
      // Probes: plain steps that draft one token unverified (AdaptiveDraftLength), in the same batch.
      const probeJobs: { seq: Sequence<S>; job: ProbeJob<S> }[] = [];
      for (const seq of batch) {
        const req = seq.request;
        if (!seq.draftLength) continue;
        // K = 0: a plain step, whose hidden state goes to the MTP head below.
        const K = roundDraftLength(seq.draftLength.next(), req.maxTokens - seq.generated.length, Infinity);
        // A grammar's drafts start from the mask fetched for this step.
        const grammar = req.constraint && seq.mask ? { matcher: req.constraint, mask: seq.mask } : undefined;
        const view = (z: Vec) => this.view(seq, z);
        if (K > 0) jobs.push({ seq, job: { state: seq.state!, next: seq.next, K, sampler: req.sampler, view, history: seq.generated, prompt: req.prompt, vocab: this.opts.draftVocabulary, grammar } });
        else if (seq.draftLength.probing) probeJobs.push({ seq, job: { state: seq.state!, next: seq.next, sampler: req.sampler, view, history: seq.generated, prompt: req.prompt, vocab: this.opts.draftVocabulary, mask: grammar?.mask } });
      }
      if (jobs.length > 0 || probeJobs.length > 0) {
        let results: { drafts: (Drafts | Error)[]; probes: (Float64Array | Error)[] };
        try {
          results = await draftAndProbe(this.spec, jobs.map((j) => j.job), probeJobs.map((j) => j.job));
        } catch (err) {
          results = { drafts: jobs.map(() => asError(err)), probes: probeJobs.map(() => asError(err)) };
        }
        jobs.forEach(({ seq }, i) => {
          const r = results.drafts[i];
          if (r instanceof Error) this.finish(seq, "error", r);
          else drafts.set(seq, r);
        });
        probeJobs.forEach(({ seq }, i) => {
          const r = results.probes[i];
          if (r instanceof Error) this.finish(seq, "error", r);
          else probes.set(seq, r);
        });
      }
      batch = batch.filter((seq) => !seq.done);
      if (batch.length === 0) return;
    }
    try {
      if (this.spec === null) {
        logits = await this.model.decodeBatch(
          batch.map((s) => s.next),
          batch.map((s) => s.state!),
        );
      } else {
        const rows = batch.map((seq) => {
          const d = drafts.get(seq);
          return d ? { tokens: [seq.next, ...d.tokens], state: seq.state!, verify: true } : { tokens: [seq.next], state: seq.state! };
        });
        ({ logits, hidden } = await this.spec.step(rows));
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
          try {
            this.spec!.observeMtp(hidden!, [seq.next], seq.state!, first);
            const q = probes.get(seq);
            const req = seq.request;
            if (q) seq.draftLength.probed(probeAccepts(q, logits.subarray(first * V, (first + 1) * V), req.sampler, (z) => this.view(seq, z), seq.generated, req.prompt, seq.mask));
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
        seq.mask = undefined;
        // The grammar holds the accepted drafts already (finishRound took it back to them).
        const taken = d.grammar?.advanced ?? 0;
        this.totals.draftTokens += d.tokens.length;
        this.totals.acceptedTokens += tokens.length - 1;
        seq.draftLength!.update(d.tokens.length, tokens.length - 1);
        this.opts.onSpecDecode?.(d.tokens.length, tokens.length - 1);
        // Token j came from verify row j, which is the row plain decoding would have computed for it: its
        // logprob is plain decoding's. A sequence cancelled from inside onToken gets no further token (as in
        // plain decoding, one step later).
        for (let j = 0; j < tokens.length; j++) {
          const lp = req.topLogprobs === undefined ? undefined : tokenLogprob(this.raw(seq, logits.subarray((first + j) * V, (first + j + 1) * V)), tokens[j], req.topLogprobs);
          if (!this.deliver(seq, tokens[j], lp, j < taken) || seq.cancelled) break;
        }
      } catch (err) {
        this.finish(seq, "error", asError(err));
      }
    }
  }

  /**
   * The logits a speculative sequence drafts and accepts from: its logit bias added, cut to the sampleable
   * ids (the same as `emit`'s; a grammar's masks go on top, one per position: src/generate/speculative.ts).
   */
  private view(seq: Sequence<S>, logits: Vec): Vec {
    const req = seq.request;
    if (req.logitBias && req.logitBias.size > 0) {
      logits = logits.slice();
      for (const [id, bias] of req.logitBias) if (id < logits.length) logits[id] += bias;
    }
    return this.raw(seq, logits);
  }

  /** The sampleable ids' logits (what logprobs are computed from, before any mask or bias). */
  private raw(seq: Sequence<S>, logits: Vec): Vec {
    return logits.subarray(0, Math.min(seq.request.sampleableTokens, logits.length));
  }

  /** Samples one token from `logits` for `seq` (grammar mask, logit bias) and hands it over with its logprob. */
  private emit(seq: Sequence<S>, logits: Vec): void {
    const req = seq.request;
    try {
      let sampleable = this.raw(seq, logits);
      const raw = sampleable;
      if (seq.mask || (req.logitBias && req.logitBias.size > 0)) sampleable = sampleable.slice();
      if (seq.mask) {
        applyMask(sampleable, seq.mask);
        seq.mask = undefined;
      }
      if (req.logitBias) for (const [id, bias] of req.logitBias) if (id < sampleable.length) sampleable[id] += bias;
      const token = req.sampler.sample(sampleable, seq.generated, req.prompt);
      const lp = req.topLogprobs === undefined ? undefined : tokenLogprob(raw, token, req.topLogprobs);
      this.deliver(seq, token, lp);
    } catch (err) {
      this.finish(seq, "error", asError(err));
    }
  }

  /**
   * Hands `token` over (advancing the grammar unless it has `taken` the token already, recording its logprob) and
   * ends the sequence when it should; returns whether the sequence goes on.
   */
  private deliver(seq: Sequence<S>, token: number, lp?: TokenLogprob, taken = false): boolean {
    const req = seq.request;
    try {
      seq.generated.push(token);
      if (req.constraint && !taken && !req.constraint.accept(token)) {
        return this.finish(seq, "error", new Error(`the grammar rejected token ${token} it had allowed`)), false;
      }
      if (lp) seq.logprobs.push(lp);
      if (req.stopTokenIds.has(token)) return this.finish(seq, "stop"), false;
      const more = req.onToken(token, lp);
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
    seq.request.constraint?.free();
    // Siblings still waiting for this sequence's prefill share its fate.
    for (const sib of seq.siblings.splice(0)) this.finish(sib, reason === "cancelled" ? "cancelled" : "error", error);
    if (reason === "cancelled") this.cancelledCount++;
    else this.completed++;
    try {
      seq.request.onEnd(reason, error);
    } catch {
      // A failing listener must not stop the loop for everyone else.
    }
  }
}

/** log softmax(raw)[token], and the `top` most likely ids with theirs (NaN logits count as impossible). */
export function tokenLogprob(raw: Float32Array | Float64Array, token: number, top: number): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < raw.length; i++) if (raw[i] > max) max = raw[i];
  let sum = 0;
  for (let i = 0; i < raw.length; i++) if (!Number.isNaN(raw[i])) sum += Math.exp(raw[i] - max);
  const lse = max + Math.log(sum);
  const best: Array<{ id: number; logprob: number }> = [];
  if (top > 0) {
    // Insertion into a short sorted list: top <= 20, so O(V * top) at worst and O(V) typically.
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i];
      if (Number.isNaN(v) || (best.length === top && v <= best[top - 1].logprob)) continue;
      let j = best.length;
      while (j > 0 && best[j - 1].logprob < v) j--;
      best.splice(j, 0, { id: i, logprob: v });
      if (best.length > top) best.pop();
    }
    for (const b of best) b.logprob = Math.min(0, b.logprob - lse);
  }
  return { id: token, logprob: Math.min(0, raw[token] - lse), top: best };
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
