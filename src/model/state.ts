/**
 * Per-sequence state: everything a sequence carries from one forward call to the next.
 *   - full-attention layers: the KV cache [positions, kv_heads, head_dim] for keys and values;
 *   - gated DeltaNet layers: the conv state [conv channels, kernel - 1] and the recurrent state
 *     [value_heads, dk, dv] (fixed size, whatever the length: a snapshot is a copy of these);
 *   - the MTP head: its own KV caches and the final hidden states it has not yet paired with their next token.
 * `clone()` gives an independent snapshot (prefix reuse). A speculative verify step leaves in each DeltaNet
 * state a `VerifyRecord` (the state before the step and the step's per-token inputs) so that the step can be
 * cut back to an accepted prefix without keeping one state copy per token.
 */
import type { Kernels, Tensor } from "../kernels/types.js";

/** What every mixer's per-sequence state does: snapshot and hand back its buffers. */
export interface MixerState {
  /** An independent copy. */
  clone(): MixerState;
  /** Hands the buffers back to the kernels; the state must not be used afterwards. */
  release(): void;
}

/** Keys and values of one attention layer, grown by doubling. */
export class KVCache implements MixerState {
  private kBuf: Tensor;
  private vBuf: Tensor;
  length = 0;
  /** The length before the last step when it was a verify step (what a rollback cuts back to, plus the kept tokens). */
  verifyFrom: number | null = null;

  constructor(private readonly kernels: Kernels, readonly rowWidth: number, capacity = 16) {
    this.kBuf = kernels.vec(capacity * rowWidth);
    this.vBuf = kernels.vec(capacity * rowWidth);
  }

  /** Appends T positions of keys and values ([T, rowWidth] each). */
  append(k: Tensor, v: Tensor, T: number): void {
    const need = (this.length + T) * this.rowWidth;
    if (need > this.kBuf.length) {
      const cap = Math.max(need, 2 * this.kBuf.length);
      this.kBuf = this.grow(this.kBuf, cap);
      this.vBuf = this.grow(this.vBuf, cap);
    }
    const at = this.length * this.rowWidth;
    const end = at + T * this.rowWidth;
    this.kernels.copy(this.kernels.view(k, 0, T * this.rowWidth), this.kernels.view(this.kBuf, at, end));
    this.kernels.copy(this.kernels.view(v, 0, T * this.rowWidth), this.kernels.view(this.vBuf, at, end));
    this.length += T;
  }

  /** The cached keys and values [length, rowWidth]. */
  get k(): Tensor {
    return this.kernels.view(this.kBuf, 0, this.length * this.rowWidth);
  }
  get v(): Tensor {
    return this.kernels.view(this.vBuf, 0, this.length * this.rowWidth);
  }

  /** Forgets every position from `length` on (speculative rollback). */
  truncate(length: number): void {
    if (!(Number.isInteger(length) && length >= 0 && length <= this.length)) {
      throw new Error(`cannot truncate a KV cache of ${this.length} positions to ${length}`);
    }
    this.length = length;
  }

  /** Hands the buffers back to the kernels. */
  release(): void {
    this.kernels.free(this.kBuf);
    this.kernels.free(this.vBuf);
    this.length = 0;
  }

  clone(): KVCache {
    const c = new KVCache(this.kernels, this.rowWidth, Math.max(this.length, 1));
    c.append(this.k, this.v, this.length);
    return c;
  }

  private grow(old: Tensor, n: number): Tensor {
    const next = this.kernels.vec(n);
    this.kernels.copy(this.kernels.view(old, 0, this.length * this.rowWidth), next);
    this.kernels.free(old);
    return next;
  }
}

/**
 * What a verify step of T tokens leaves behind in a DeltaNet state: the conv and recurrent states before the
 * step (one copy of each), and the step's per-token conv inputs and delta-rule inputs. Cutting the step back
 * to its first n tokens restores the copies and replays those n tokens (no matrix products). Buffers are
 * kept and reused from one step to the next.
 */
export interface VerifyRecord {
  /** Tokens in the recorded step (0: nothing to roll back). */
  T: number;
  conv: Tensor;
  recurrent: Tensor;
  /** Per token: conv input [T, C]; q, k [T, Hk dk]; v [T, Hv dv]; g, beta [T, Hv]. */
  rows: { mixed: Tensor; q: Tensor; k: Tensor; v: Tensor; g: Tensor; beta: Tensor };
}

/** The two states of a gated DeltaNet layer. */
export class DeltaNetState implements MixerState {
  /** Left by the last verify step (see VerifyRecord); null before any. */
  verify: VerifyRecord | null = null;

  constructor(
    private readonly kernels: Kernels,
    /** [conv channels, kernel - 1]: the last inputs of the causal conv, oldest first. */
    readonly conv: Tensor,
    /** [value_heads, dk, dv]: the delta-rule memory S. */
    readonly recurrent: Tensor,
  ) {}

  /** Hands the buffers (and the verify record's) back to the kernels. */
  release(): void {
    this.kernels.free(this.conv);
    this.kernels.free(this.recurrent);
    this.dropRecord();
  }

  /** Hands the verify record's buffers back (the next verify step makes a new one). */
  dropRecord(): void {
    const r = this.verify;
    if (r) for (const v of [r.conv, r.recurrent, ...Object.values(r.rows)]) this.kernels.free(v);
    this.verify = null;
  }

  clone(): DeltaNetState {
    const k = this.kernels;
    const conv = k.vec(this.conv.length);
    const recurrent = k.vec(this.recurrent.length);
    k.copy(this.conv, conv);
    k.copy(this.recurrent, recurrent);
    return new DeltaNetState(k, conv, recurrent);
  }
}

export type LayerState = KVCache | DeltaNetState;

/**
 * The MTP head's inputs still to run: final hidden states h_s .. h_{s+m-1} of the main model (rows [m, H]) and
 * the tokens x_{s+1} .. x_{s+m-1} known to follow all but the last (the pairs (h_t, x_{t+1}) the head takes).
 */
export interface MtpPending {
  hidden: Tensor;
  rows: number;
  next: number[];
}

export class SequenceState {
  constructor(
    private readonly kernels: Kernels,
    /** One entry per decoder layer, by layer type. */
    readonly layers: LayerState[],
    /** One KV cache per MTP layer (empty without MTP). */
    readonly mtp: KVCache[],
    /** Tokens processed so far (the position of the next token). */
    public position = 0,
    /** Final hidden states waiting for the MTP head (see `Qwen3NextMTP.observe`). */
    public mtpPending: MtpPending | null = null,
  ) {}

  clone(): SequenceState {
    let pending: MtpPending | null = null;
    if (this.mtpPending) {
      const hidden = this.kernels.vec(this.mtpPending.hidden.length);
      this.kernels.copy(this.mtpPending.hidden, hidden);
      pending = { hidden, rows: this.mtpPending.rows, next: [...this.mtpPending.next] };
    }
    return new SequenceState(
      this.kernels,
      this.layers.map((l) => l.clone()),
      this.mtp.map((c) => c.clone()),
      this.position,
      pending,
    );
  }

  /** Hands every buffer back to the kernels; the state must not be used afterwards. */
  free(): void {
    for (const l of this.layers) l.release();
    for (const c of this.mtp) c.release();
    if (this.mtpPending) this.kernels.free(this.mtpPending.hidden);
    this.mtpPending = null;
  }
}
