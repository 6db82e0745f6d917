/**
 * Per-sequence state: everything a sequence carries from one forward call to the next.
 *   - full-attention layers: the KV cache [positions, kv_heads, head_dim] for keys and values;
 *   - gated DeltaNet layers: the conv state [conv channels, kernel - 1] and the recurrent state
 *     [value_heads, dk, dv] (fixed size, whatever the length: a snapshot is a copy of these);
 *   - the MTP head: its own KV caches and the last final hidden state it has not yet paired with a token.
 * `clone()` gives an independent snapshot (prefix reuse, speculative decoding).
 */
import type { Kernels, Vec } from "../kernels/types.js";

/** Keys and values of one attention layer, grown by doubling. */
export class KVCache {
  private kBuf: Vec;
  private vBuf: Vec;
  length = 0;

  constructor(private readonly kernels: Kernels, readonly rowWidth: number, capacity = 16) {
    this.kBuf = kernels.vec(capacity * rowWidth);
    this.vBuf = kernels.vec(capacity * rowWidth);
  }

  /** Appends T positions of keys and values ([T, rowWidth] each). */
  append(k: Vec, v: Vec, T: number): void {
    const need = (this.length + T) * this.rowWidth;
    if (need > this.kBuf.length) {
      const cap = Math.max(need, 2 * this.kBuf.length);
      this.kBuf = this.grow(this.kBuf, cap);
      this.vBuf = this.grow(this.vBuf, cap);
    }
    const at = this.length * this.rowWidth;
    this.kBuf.set(k.subarray(0, T * this.rowWidth), at);
    this.vBuf.set(v.subarray(0, T * this.rowWidth), at);
    this.length += T;
  }

  /** The cached keys and values [length, rowWidth]. */
  get k(): Vec {
    return this.kBuf.subarray(0, this.length * this.rowWidth);
  }
  get v(): Vec {
    return this.vBuf.subarray(0, this.length * this.rowWidth);
  }

  /** Hands the buffers back to the kernels. */
  release(): void {
    this.kernels.free(this.kBuf);
    this.kernels.free(this.vBuf);
    this.length = 0;
  }

  clone(_kernels?: Kernels): KVCache {
    const c = new KVCache(this.kernels, this.rowWidth, Math.max(this.length, 1));
    c.append(this.k, this.v, this.length);
    return c;
  }

  private grow(old: Vec, n: number): Vec {
    const next = this.kernels.vec(n);
    next.set(old.subarray(0, this.length * this.rowWidth));
    this.kernels.free(old);
    return next;
  }
}

/** The two states of a gated DeltaNet layer. */
export class DeltaNetState {
  constructor(
    /** [conv channels, kernel - 1]: the last inputs of the causal conv, oldest first. */
    readonly conv: Vec,
    /** [value_heads, dk, dv]: the delta-rule memory S. */
    readonly recurrent: Vec,
  ) {}

  clone(kernels: Kernels): DeltaNetState {
    const conv = kernels.vec(this.conv.length);
    const recurrent = kernels.vec(this.recurrent.length);
    conv.set(this.conv);
    recurrent.set(this.recurrent);
    return new DeltaNetState(conv, recurrent);
  }
}

export type LayerState = KVCache | DeltaNetState;

export class SequenceState {
  constructor(
    private readonly kernels: Kernels,
    /** One entry per decoder layer, by layer type. */
    readonly layers: LayerState[],
    /** One KV cache per MTP layer (empty without MTP). */
    readonly mtp: KVCache[],
    /** Tokens processed so far (the position of the next token). */
    public position = 0,
    /** The final hidden state of the last token, waiting for the next token to form an MTP input. */
    public mtpPendingHidden: Vec | null = null,
  ) {}

  clone(): SequenceState {
    const pending = this.mtpPendingHidden ? this.kernels.vec(this.mtpPendingHidden.length) : null;
    if (pending && this.mtpPendingHidden) pending.set(this.mtpPendingHidden);
    return new SequenceState(
      this.kernels,
      this.layers.map((l) => l.clone(this.kernels)),
      this.mtp.map((c) => c.clone()),
      this.position,
      pending,
    );
  }

  /** Hands every buffer back to the kernels; the state must not be used afterwards. */
  free(): void {
    for (const l of this.layers) {
      if (l instanceof DeltaNetState) {
        this.kernels.free(l.conv);
        this.kernels.free(l.recurrent);
      } else l.release();
    }
    for (const c of this.mtp) c.release();
    if (this.mtpPendingHidden) this.kernels.free(this.mtpPendingHidden);
  }
}
