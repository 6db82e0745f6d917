/**
 * A grammar for tests on tiny vocabularies, written without XGrammar: after the accepted tokens h it allows
 * the ids i with hash(seed, h, i) mod 3 != 0 (one id picked by the hash when that leaves none), so the mask
 * changes with every token; accepting `stop` ends it (no next mask then, as XGrammar's matcher refuses
 * one). It keeps its whole history, so a test can compare its state with the tokens delivered, and counts
 * what the scheduler asked of it.
 */
import type { TokenConstraint } from "../../src/server/scheduler.js";

export class ToyGrammar implements TokenConstraint {
  /** The accepted tokens: the grammar's whole state. */
  readonly history: number[] = [];
  /** Tokens taken back by `rollback`, `terminated` calls that found it ended, and `free` calls. */
  rolledBack = 0;
  endsSeen = 0;
  freed = 0;

  constructor(
    readonly vocab: number,
    readonly seed: number,
    readonly stop = -1,
  ) {}

  /** Whether `id` may follow `h` (default: the history). */
  allows(id: number, h: readonly number[] = this.history): boolean {
    if (h.includes(this.stop)) return false;
    let any = false;
    for (let i = 0; i < this.vocab; i++) any ||= hash(this.seed, h, i) % 3 !== 0;
    return any ? hash(this.seed, h, id) % 3 !== 0 : id === hash(this.seed, h, -1) % this.vocab;
  }

  async nextMask(): Promise<Int32Array> {
    if (this.history.includes(this.stop)) throw new Error("ToyGrammar: no next mask after the stop token");
    const mask = new Int32Array(Math.ceil(this.vocab / 32));
    for (let id = 0; id < this.vocab; id++) if (this.allows(id)) mask[id >> 5] |= 1 << (id & 31);
    return mask;
  }

  accept(id: number): boolean {
    if (!this.allows(id)) return false;
    this.history.push(id);
    return true;
  }

  rollback(n: number): void {
    if (!(n >= 0 && n <= this.history.length)) throw new Error(`ToyGrammar: cannot take back ${n} of ${this.history.length} tokens`);
    this.history.length -= n;
    this.rolledBack += n;
  }

  terminated(): boolean {
    const ended = this.history.includes(this.stop);
    if (ended) this.endsSeen++;
    return ended;
  }

  free(): void {
    this.freed++;
  }
}

/** FNV-1a over (seed, h, i). */
function hash(seed: number, h: readonly number[], i: number): number {
  let x = 0x811c9dc5;
  for (const v of [seed, ...h, -7, i]) x = Math.imul(x ^ (v & 0xffff), 0x01000193) >>> 0;
  return x;
}
