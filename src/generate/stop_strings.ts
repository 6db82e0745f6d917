/**
 * Stop strings over streamed text (OpenAI's `stop`, the CLI's `--stop`): the text is cut before the first
 * stop string, and a tail that could still grow into one is held back until it cannot.
 */

/**
 * The generated text with stop strings applied: `add` returns the part now safe to show (text that could still
 * turn into a stop string is held back) and whether a stop string appeared (the text is cut before it).
 */
export class StopStringText {
  value = "";
  stopped = false;
  private shown = 0;
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    this.longest = stops.reduce((m, s) => Math.max(m, s.length), 0);
    if (stops.some((s) => s.length === 0)) throw new Error("a stop string is empty, expected at least one character");
  }

  add(delta: string): { emit: string; stopped: boolean } {
    const from = Math.max(0, this.value.length - this.longest + 1);
    this.value += delta;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.value.indexOf(s, from);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.value = this.value.slice(0, cut);
      this.stopped = true;
      return { emit: this.release(cut), stopped: true };
    }
    return { emit: this.release(this.value.length - this.heldBack()), stopped: false };
  }

  /** Appends the final `delta` (no stop string can complete any more) and returns everything not yet shown. */
  end(delta: string): string {
    if (!this.stopped) {
      const { emit, stopped } = this.add(delta);
      if (stopped) return emit;
    }
    return this.release(this.value.length);
  }

  /** Length of the longest suffix of the text that is a proper prefix of a stop string. */
  private heldBack(): number {
    return this.stops.reduce((n, stop) => Math.max(n, partialTagLength(this.value, stop)), 0);
  }

  private release(upTo: number): string {
    const out = this.value.slice(this.shown, Math.max(this.shown, upTo));
    this.shown = Math.max(this.shown, upTo);
    return out;
  }
}

/** Length of the longest suffix of `s` that is a proper prefix of `tag` (text that may yet become the tag). */
export function partialTagLength(s: string, tag: string): number {
  for (let n = Math.min(s.length, tag.length - 1); n > 0; n--) {
    if (tag.startsWith(s.slice(s.length - n))) return n;
  }
  return 0;
}
