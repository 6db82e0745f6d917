import { describe, expect, it } from "vitest";
import { PrefixCache } from "../../src/server/prefix_cache.js";

/** A state that records whether it was freed (the cache must free exactly what it drops). */
class Tracked {
  freed = false;
  constructor(readonly label: string) {}
  free(): void {
    if (this.freed) throw new Error(`${this.label} freed twice`);
    this.freed = true;
  }
}

const snap = (tokens: number[]) => ({ tokens, state: new Tracked(tokens.join(",")), logits: new Float32Array([tokens.length]) });

describe("PrefixCache", () => {
  it("returns the longest cached prefix of a prompt, or the exact prompt", () => {
    const c = new PrefixCache<Tracked>(4);
    c.insert(snap([1, 2]));
    c.insert(snap([1, 2, 3, 4]));
    c.insert(snap([1, 9]));
    expect(c.lookup([1, 2, 3, 4, 5])?.length).toBe(4);
    expect(c.lookup([1, 2, 3])?.length).toBe(2);
    expect(c.lookup([1, 2, 3, 4])?.snapshot.tokens).toEqual([1, 2, 3, 4]);
    expect(c.lookup([2, 1])).toBeUndefined();
    expect(c.lookup([1])).toBeUndefined();
  });

  it("evicts the least recently used snapshot and frees it", () => {
    const c = new PrefixCache<Tracked>(2);
    const a = snap([1]);
    const b = snap([2]);
    const d = snap([3]);
    c.insert(a);
    c.insert(b);
    c.lookup([1, 5]); // a is now the most recently used
    c.insert(d);
    expect(c.size).toBe(2);
    expect(b.state.freed).toBe(true);
    expect(a.state.freed).toBe(false);
    expect(c.lookup([2])).toBeUndefined();
    c.clear();
    expect(a.state.freed && d.state.freed).toBe(true);
  });

  it("frees a replaced snapshot and, with capacity 0, keeps nothing", () => {
    const c = new PrefixCache<Tracked>(2);
    const first = snap([7, 7]);
    c.insert(first);
    c.insert(snap([7, 7]));
    expect(first.state.freed).toBe(true);
    const off = new PrefixCache<Tracked>(0);
    const s = snap([1]);
    off.insert(s);
    expect(s.state.freed).toBe(true);
    expect(off.lookup([1])).toBeUndefined();
  });
});
