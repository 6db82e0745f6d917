/**
 * Qwen3NextForCausalLM: logits = lm_head(model(ids)), with lm_head = embed_tokens when tie_word_embeddings;
 * plus the MTP head when the checkpoint has one (fed the final hidden states on request; it drafts tokens
 * for speculative decoding, which `step` with `verify` and `rollback` check and cut back). Weights come from
 * a checkpoint (or any `WeightSource`), computation from a `Kernels` implementation, and each sequence's
 * caches live in its `SequenceState`. The model never reads a tensor's elements: each call is one step whose
 * promise settles with what it reads back (logits, and what a trace asks for).
 * Parameters (`qwen3NextParams`, the root of every declaration): model.*, lm_head.weight [V, H] unless tied, mtp.*.
 */
import type { Qwen3NextConfig } from "../config.js";
import { opaque, type HostKernels, type Kernels, type Tensor, type Vec, type Weight } from "../kernels/types.js";
import type { Segment } from "./batch.js";
import { mtpParams, Qwen3NextMTP, withDraftSums, type DraftRequest } from "./mtp.js";
import { recordParams, weightParams, type ParamDecl, type Params } from "./params.js";
import { modelParams, Qwen3NextModel } from "./qwen3_next_model.js";
import { SequenceState } from "./state.js";
import type { Trace } from "./trace.js";
import { Workspace, type WeightSource } from "./weights.js";

/** Every parameter of the model a config describes: the one declaration behind loading, counting and `init`. */
export function qwen3NextParams<W>(p: Params<W>, c: Qwen3NextConfig) {
  return {
    model: modelParams(p.at("model"), c),
    lm_head: c.tie_word_embeddings ? null : p.param("lm_head.weight", c.vocab_size, c.hidden_size),
    mtp: c.mtp_num_hidden_layers > 0 ? mtpParams(p.at("mtp"), c) : null,
  };
}
export type Qwen3NextParams<W> = ReturnType<typeof qwen3NextParams<W>>;

/** Every parameter tensor the config needs (canonical names and shapes), in declaration order. */
export function listParams(c: Qwen3NextConfig): ParamDecl[] {
  return recordParams((p) => qwen3NextParams(p, c));
}

export interface ForwardOptions {
  /** Return only the last row of logits [V] (generation). */
  lastOnly?: boolean;
  /**
   * Collect intermediates: input_ids, hidden.{i}, router.{i}.*, deltanet.{i}.state, final_hidden, logits and,
   * when the model has an MTP head, mtp_logits. Implies `mtp`.
   */
  trace?: Trace;
  /** Also run the MTP head over this call's (h_t, x_{t+1}) pairs, keeping its cache in step. */
  mtp?: boolean;
  /** Called after each decoder layer (for a progress bar during a long prefill). */
  onProgress?: (layersDone: number, layers: number) => void;
}

/** Hidden states left waiting for the MTP head at most (see observeMtp). */
const MTP_MAX_WAITING = 64;

/** A row of `step`: tokens continuing one sequence. */
export interface StepRow {
  tokens: readonly number[];
  state: SequenceState;
  /** A speculative verify step (see `step`). */
  verify?: boolean;
}

export class Qwen3NextForCausalLM {
  readonly model: Qwen3NextModel;
  readonly lm_head: Weight;
  readonly mtp: Qwen3NextMTP | null;
  private readonly ws: Workspace;
  readonly kernels: Kernels;

  /** `src` gives each declared parameter by its canonical name (a loaded checkpoint does, in any layout). */
  constructor(readonly config: Qwen3NextConfig, k: Kernels | HostKernels, src: WeightSource) {
    const kernels = (this.kernels = opaque(k));
    const w = qwen3NextParams(weightParams(src), config);
    this.model = new Qwen3NextModel(kernels, w.model, config);
    this.lm_head = w.lm_head ?? this.model.embed_tokens;
    this.mtp = w.mtp ? new Qwen3NextMTP(kernels, w.mtp, config) : null;
    this.ws = new Workspace(kernels);
  }

  static fromCheckpoint(ckpt: { config: Qwen3NextConfig } & WeightSource, kernels: Kernels | HostKernels): Qwen3NextForCausalLM {
    return new Qwen3NextForCausalLM(ckpt.config, kernels, ckpt);
  }

  /** Empty caches for one sequence. */
  newState(): SequenceState {
    return new SequenceState(
      this.kernels,
      this.model.layers.map((l) => l.newState()),
      this.mtp ? this.mtp.newCaches() : [],
    );
  }

  /**
   * Runs tokens through the model, advancing `state`; settles with logits [T, V] (or only the last row when
   * opts.lastOnly) in a new host array. Prefill uses the chunked delta rule, T == 1 the recurrent step.
   */
  async forward(tokens: readonly number[], state: SequenceState, opts: ForwardOptions = {}): Promise<Vec> {
    const { hidden_size: H, vocab_size: V } = this.config;
    const k = this.kernels;
    this.checkTokens(tokens);
    const T = tokens.length;
    const { trace } = opts;
    const withMtp = this.mtp !== null && (opts.mtp === true || trace !== undefined);
    if (withMtp) this.mtp!.checkInStep(state);
    if (trace) trace.kernels = k;
    const hidden = this.ws.get("lm.hidden", T * H);
    this.model.forward(tokens, [{ state, start: 0, T }], this.ws, hidden, trace, opts.onProgress);
    const rows = opts.lastOnly && !trace ? 1 : T;
    const logits = this.ws.get("lm.logits", rows * V);
    k.linear(this.lm_head, k.view(hidden, (T - rows) * H, T * H), rows, logits);
    const result = k.read(logits);
    if (trace) {
      trace.appendHost("input_ids", [], tokens, "int");
      trace.append("final_hidden", [H], hidden);
      trace.append("logits", [V], logits);
    }
    if (withMtp) this.followMtp(hidden, tokens, state, trace);
    await trace?.settle();
    const out = await result;
    return opts.lastOnly ? out.subarray((rows - 1) * V) : out;
  }

  /**
   * One step for several sequences at once: rows[i].tokens (one or more) continue rows[i].state; matrix
   * products batched across all rows, mixers per sequence. A row with `verify` is a speculative verify step
   * (computed exactly as that many single-token steps, and `rollback` can cut it back to a prefix); with
   * `mtp` its hidden states go to the MTP head. Settles with logits [N, V] (a new host array) and the final
   * hidden states [N, H] (a tensor valid until the next call, for `observeMtp`) for the N rows in order.
   */
  async step(rows: readonly StepRow[]): Promise<{ logits: Vec; hidden: Tensor }> {
    const { hidden_size: H, vocab_size: V } = this.config;
    if (new Set(rows.map((r) => r.state)).size !== rows.length) throw new Error("step: the same state appears twice");
    const tokens: number[] = [];
    const segments: Segment[] = rows.map((r) => {
      this.checkTokens(r.tokens);
      const seg = { state: r.state, start: tokens.length, T: r.tokens.length, verify: r.verify };
      tokens.push(...r.tokens);
      return seg;
    });
    const N = tokens.length;
    const hidden = this.ws.get("lm.hidden", N * H);
    this.model.forward(tokens, segments, this.ws, hidden);
    const logits = this.ws.get("lm.logits", N * V);
    this.kernels.linear(this.lm_head, hidden, N, logits);
    return { logits: await this.kernels.read(logits), hidden };
  }

  /**
   * Cuts the sequence's last verify step (a `step` row with `verify`) back to its first `keep` tokens: every
   * cache (DeltaNet conv and recurrent state, KV caches, position) becomes what feeding only those gives.
   */
  rollback(state: SequenceState, stepTokens: number, keep: number): void {
    if (!(Number.isInteger(keep) && keep >= 0 && keep <= stepTokens)) throw new Error(`rollback: keep ${keep} of ${stepTokens} tokens`);
    const drop = stepTokens - keep;
    this.model.layers.forEach((layer, i) => layer.mixer.rollback(state.layers[i], keep, this.ws));
    state.position -= drop;
  }

  /**
   * Passes rows first .. first + T - 1 of `hidden` (a step's final hidden states, those of `tokens`, just run) to
   * the MTP head (see Qwen3NextMTP).
   */
  observeMtp(hidden: Tensor, tokens: readonly number[], state: SequenceState, first = 0): void {
    const mtp = this.requireMtp();
    mtp.observe(hidden, tokens, state, first);
    // Plain steps between drafts leave hidden states waiting; past a bound they run in one batch.
    if (state.mtpPending!.rows > MTP_MAX_WAITING) withDraftSums(this.kernels, () => mtp.run(this, state, this.ws, undefined, 0));
  }

  /**
   * Drafts K tokens to follow `next` with the MTP head (see Qwen3NextMTP.draft); `pick` turns each step's
   * logits into the draft token.
   */
  draft(state: SequenceState, next: number, K: number, pick: (logits: Vec, j: number) => number | Promise<number>): Promise<number[]> {
    return this.draftBatch([{ state, next, K, pick }]).then((drafts) => drafts[0]);
  }

  /**
   * Drafts for several sequences, each chain step one batch over all of them (see Qwen3NextMTP.draft), with the
   * fastest matrix products (withDraftSums: drafts never reach the output; the switch lasts until the chain's
   * last read settles, so no other step may run on this model meanwhile). Checks the requests before it starts
   * (throws). Settles with each request's drafts.
   */
  draftBatch(requests: readonly DraftRequest[]): Promise<number[][]> {
    if (new Set(requests.map((r) => r.state)).size !== requests.length) throw new Error("draftBatch: the same state appears twice");
    for (const r of requests) {
      this.checkTokens([r.next]);
      if (!(Number.isInteger(r.K) && r.K >= 0)) throw new Error(`draft tokens is ${r.K}, expected an integer >= 0`);
      const V = this.config.vocab_size;
      if (r.vocab !== undefined && !(Number.isInteger(r.vocab) && r.vocab >= 1 && r.vocab <= V)) throw new Error(`draft vocabulary is ${r.vocab}, expected an integer in [1, ${V}]`);
    }
    const mtp = this.requireMtp();
    return withDraftSums(this.kernels, () => mtp.draft(this, this.ws, requests));
  }

  /**
   * One decode step for N independent sequences (token i belongs to states[i]); matrix products batched
   * across sequences, mixers per sequence. Settles with logits [N, V]. Does not run the MTP head.
   */
  async decodeBatch(tokens: readonly number[], states: SequenceState[]): Promise<Vec> {
    if (tokens.length !== states.length) {
      throw new Error(`decodeBatch: ${tokens.length} tokens for ${states.length} states, expected one token per state`);
    }
    if (new Set(states).size !== states.length) throw new Error("decodeBatch: the same state appears twice");
    return (await this.step(states.map((state, i) => ({ tokens: [tokens[i]], state })))).logits;
  }

  /** The MTP head's outputs for the pairs `hidden`/`tokens` complete, traced as mtp_logits. */
  private followMtp(hidden: Tensor, tokens: readonly number[], state: SequenceState, trace?: Trace): void {
    const mtp = this.requireMtp();
    mtp.observe(hidden, tokens, state);
    // Untraced, the head only ever feeds drafts: the fastest products (see withDraftSums), and nobody reads these
    // outputs (the pairs only fill the head's cache).
    const { out, n } = trace ? mtp.run(this, state, this.ws) : withDraftSums(this.kernels, () => mtp.run(this, state, this.ws, undefined, 0));
    if (!trace || n === 0) return;
    const V = this.config.vocab_size;
    const logits = this.ws.get("lm.mtp_logits", n * V);
    this.kernels.linear(this.lm_head, out, n, logits);
    trace.append("mtp_logits", [V], logits);
  }

  private requireMtp(): Qwen3NextMTP {
    if (!this.mtp) throw new Error("this model has no MTP head (mtp_num_hidden_layers is 0)");
    return this.mtp;
  }

  private checkTokens(tokens: readonly number[]): void {
    const V = this.config.vocab_size;
    if (tokens.length === 0) throw new Error("no tokens given, expected at least one token id");
    for (const id of tokens) {
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new Error(`token id ${id} is out of range, expected an integer in [0, ${V})`);
      }
    }
  }
}
