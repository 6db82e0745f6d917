/**
 * Qwen3NextForCausalLM: logits = lm_head(model(ids)), with lm_head = embed_tokens when tie_word_embeddings;
 * plus the MTP head when the checkpoint has one. Weights come from a checkpoint (or any `WeightSource`),
 * computation from a `Kernels` implementation, and each sequence's caches live in its `SequenceState`.
 * Parameters (`qwen3NextParams`, the root of every declaration): model.*, lm_head.weight [V, H] unless tied, mtp.*.
 */
import type { Qwen3NextConfig } from "../config.js";
import type { Kernels, Vec, Weight } from "../kernels/types.js";
import type { Segment } from "./batch.js";
import { mtpParams, Qwen3NextMTP } from "./mtp.js";
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

export class Qwen3NextForCausalLM {
  readonly model: Qwen3NextModel;
  readonly lm_head: Weight;
  readonly mtp: Qwen3NextMTP | null;
  private readonly ws: Workspace;

  /** `src` gives each declared parameter by its canonical name (a loaded checkpoint does, in any layout). */
  constructor(readonly config: Qwen3NextConfig, readonly kernels: Kernels, src: WeightSource) {
    const w = qwen3NextParams(weightParams(src), config);
    this.model = new Qwen3NextModel(kernels, w.model, config);
    this.lm_head = w.lm_head ?? this.model.embed_tokens;
    this.mtp = w.mtp ? new Qwen3NextMTP(kernels, w.mtp, config) : null;
    this.ws = new Workspace(kernels);
  }

  static fromCheckpoint(ckpt: { config: Qwen3NextConfig } & WeightSource, kernels: Kernels): Qwen3NextForCausalLM {
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
   * Runs tokens through the model, advancing `state`; returns logits [T, V] (or only the last row when
   * opts.lastOnly) in a new array. Prefill uses the chunked delta rule, T == 1 the recurrent step.
   */
  forward(tokens: readonly number[], state: SequenceState, opts: ForwardOptions = {}): Vec {
    const { hidden_size: H, vocab_size: V } = this.config;
    this.checkTokens(tokens);
    const T = tokens.length;
    const { trace } = opts;
    const hidden = this.ws.get("lm.hidden", T * H);
    const prevHidden = state.mtpPendingHidden;
    const runMtp = this.mtp !== null && (opts.mtp === true || trace !== undefined);
    // The first (h_t, x_{t+1}) pair of this call sits at position t = position - 1 (pending) or position.
    if (runMtp && (prevHidden !== null || T > 1)) this.checkMtpInStep(state, state.position - (prevHidden ? 1 : 0));
    this.model.forward(tokens, [{ state, start: 0, T }], this.ws, hidden, trace, opts.onProgress);

    const rows = opts.lastOnly && !trace ? 1 : T;
    const logits = this.ws.get("lm.logits", rows * V);
    this.kernels.linear(this.lm_head, hidden.subarray((T - rows) * H, T * H), rows, logits);
    const result = logits.slice();
    if (trace) {
      trace.append("input_ids", [], tokens, "int");
      trace.append("final_hidden", [H], hidden, "float");
      trace.append("logits", [V], result, "float");
    }

    if (runMtp) {
      // Pairs (h_t, x_{t+1}): the pending hidden state of the previous call with this call's first token,
      // then each row of this call with the following token; the last row waits for the next token.
      const pairsH = this.ws.get("lm.mtp_h", T * H);
      const next: number[] = [];
      if (prevHidden) {
        pairsH.set(prevHidden, 0);
        next.push(tokens[0]);
      }
      pairsH.set(hidden.subarray(0, (T - 1) * H), next.length * H);
      next.push(...tokens.slice(1));
      const mtpLogits = this.runMtp(pairsH, next, state);
      if (trace && next.length > 0) trace.append("mtp_logits", [V], mtpLogits, "float");
      state.mtpPendingHidden = this.keep(state.mtpPendingHidden, hidden.subarray((T - 1) * H, T * H));
    } else if (state.mtpPendingHidden) {
      this.kernels.free(state.mtpPendingHidden);
      state.mtpPendingHidden = null;
    }
    return opts.lastOnly ? result.subarray((rows - 1) * V) : result;
  }

  /**
   * One MTP step (speculative drafting): pairs the sequence's pending final hidden state (from the last
   * `forward` with `mtp`) with `token`, advances the MTP cache and returns logits [V] for the token after it.
   */
  mtpStep(token: number, state: SequenceState): Vec {
    if (!this.mtp) throw new Error("this model has no MTP head (mtp_num_hidden_layers is 0)");
    if (!state.mtpPendingHidden) throw new Error("no pending hidden state: run forward with { mtp: true } first");
    this.checkTokens([token]);
    this.checkMtpInStep(state, state.position - 1);
    const logits = this.runMtp(state.mtpPendingHidden, [token], state);
    this.kernels.free(state.mtpPendingHidden);
    state.mtpPendingHidden = null;
    return logits;
  }

  /**
   * One decode step for N independent sequences (token i belongs to states[i]); matrix products batched
   * across sequences, mixers per sequence. Returns logits [N, V]. Does not run the MTP head.
   */
  decodeBatch(tokens: readonly number[], states: SequenceState[]): Vec {
    const { hidden_size: H, vocab_size: V } = this.config;
    if (tokens.length !== states.length) {
      throw new Error(`decodeBatch: ${tokens.length} tokens for ${states.length} states, expected one token per state`);
    }
    if (new Set(states).size !== states.length) throw new Error("decodeBatch: the same state appears twice");
    this.checkTokens(tokens);
    const N = tokens.length;
    const segments: Segment[] = states.map((state, i) => ({ state, start: i, T: 1 }));
    const hidden = this.ws.get("lm.hidden", N * H);
    this.model.forward(tokens, segments, this.ws, hidden);
    for (const s of states) {
      if (s.mtpPendingHidden) this.kernels.free(s.mtpPendingHidden);
      s.mtpPendingHidden = null;
    }
    const logits = this.ws.get("lm.logits", N * V);
    this.kernels.linear(this.lm_head, hidden, N, logits);
    return logits.slice();
  }

  private runMtp(hidden: Vec, next: number[], state: SequenceState): Vec {
    const { hidden_size: H, vocab_size: V } = this.config;
    const n = next.length;
    if (n === 0) return this.kernels.precision === "f64" ? new Float64Array(0) : new Float32Array(0);
    const out = this.ws.get("lm.mtp_out", n * H);
    this.mtp!.forward(this.model, hidden, next, state, this.ws, out);
    const logits = this.ws.get("lm.mtp_logits", n * V);
    this.kernels.linear(this.lm_head, out, n, logits);
    return logits.slice();
  }

  /** A copy of `row` in a kernel vector, reusing `old` when it has the right size. */
  private keep(old: Vec | null, row: Vec): Vec {
    const buf = old && old.length === row.length ? old : this.kernels.vec(row.length);
    if (old && old !== buf) this.kernels.free(old);
    buf.set(row);
    return buf;
  }

  /**
   * The MTP cache holds one row per pair (h_t, x_{t+1}) already run, so the next pair's position t must equal
   * its length; a call without the MTP head (`decodeBatch`, `forward` without `mtp`) leaves it behind.
   */
  private checkMtpInStep(state: SequenceState, t: number): void {
    const cached = state.mtp[0].length;
    if (cached !== t) {
      throw new Error(
        `the MTP head is out of step with this sequence (its cache holds ${cached} positions, expected ${t}): ` +
          "run every forward of the sequence with { mtp: true } (decodeBatch does not run the MTP head)",
      );
    }
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
