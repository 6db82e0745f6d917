/**
 * Prompt-prefix cache: the sequence state right after a prompt's prefill, keyed by the prompt's tokens.
 *
 * For attention layers the state is a KV cache, for gated DeltaNet layers a fixed-size recurrent
 * matrix S and a conv window, so a snapshot (`state.clone()`) is all it takes to resume from a prefix:
 *   state(prompt) = prefill(prompt[k:], state(prompt[:k])).
 * An exact hit also returns the prompt's last logits, so it samples exactly as a fresh prefill would.
 * Bounded, least recently used first out.
 */

/** A state whose buffers are handed back explicitly (WASM memory is not garbage collected). */
export interface FreeableState {
  free(): void;
}

export interface Snapshot<S extends FreeableState> {
  tokens: readonly number[];
  state: S;
  /** Logits after the last prompt token. */
  logits: Float32Array | Float64Array;
}

export interface PrefixHit<S extends FreeableState> {
  /** How many leading prompt tokens the snapshot covers. */
  length: number;
  snapshot: Snapshot<S>;
}

export class PrefixCache<S extends FreeableState> {
  // A Map iterates in insertion order: re-inserting on use keeps the least recently used first.
  private readonly entries = new Map<string, Snapshot<S>>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The cached snapshot covering the longest prefix of `prompt` (the whole prompt at best), if any. */
  lookup(prompt: readonly number[]): PrefixHit<S> | undefined {
    let best: Snapshot<S> | undefined;
    let bestKey = "";
    for (const [key, snap] of this.entries) {
      const n = snap.tokens.length;
      if (n > prompt.length || (best && n <= best.tokens.length)) continue;
      if (isPrefix(snap.tokens, prompt)) {
        best = snap;
        bestKey = key;
      }
    }
    if (!best) return undefined;
    this.entries.delete(bestKey);
    this.entries.set(bestKey, best);
    return { length: best.tokens.length, snapshot: best };
  }

  /** Takes ownership of a snapshot (a state nobody else mutates, e.g. a clone); frees what it evicts. */
  insert(snapshot: Snapshot<S>): void {
    if (this.capacity <= 0) return snapshot.state.free();
    const key = snapshot.tokens.join(",");
    this.entries.get(key)?.state.free();
    this.entries.delete(key);
    this.entries.set(key, snapshot);
    while (this.entries.size > this.capacity) {
      const [oldest, snap] = this.entries.entries().next().value as [string, Snapshot<S>];
      this.entries.delete(oldest);
      snap.state.free();
    }
  }

  /** Frees every snapshot. */
  clear(): void {
    for (const snap of this.entries.values()) snap.state.free();
    this.entries.clear();
  }
}

function isPrefix(prefix: readonly number[], of: readonly number[]): boolean {
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== of[i]) return false;
  return true;
}
