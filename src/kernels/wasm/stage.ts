/**
 * Operands of one kernel call, as addresses in one arena. An operand already in that arena is used in place;
 * one elsewhere (another arena, plain JS memory, a Float64Array) is copied into the arena's scratch before
 * the call and, if the kernel writes it, copied back after.
 */
import type { Arena } from "./arena.js";
import type { WasmHeap } from "./heap.js";

export type Operand = Float32Array | Float64Array | Int32Array;
/** in: read by the kernel; out: written; io: both. */
export type Mode = "in" | "out" | "io";

export class Staging {
  private readonly writeBack: (() => void)[] = [];
  readonly arena: Arena;

  /** Runs in `arena` when given, else in the arena of the first operand living in WASM memory (else the first). */
  constructor(
    private readonly heap: WasmHeap,
    operands: readonly Operand[],
    arena?: Arena,
  ) {
    for (const v of operands) {
      if (!(v instanceof Float64Array)) arena ??= heap.locate(v)?.arena;
    }
    this.arena = arena ?? heap.arenas[0];
    heap.scratch[this.arena.index].reset();
  }

  /** The address of `v` in this arena. */
  ptr(v: Operand, mode: Mode): number {
    if (!(v instanceof Float64Array)) {
      const loc = this.heap.locate(v);
      if (loc && loc.arena === this.arena) return loc.ptr;
    }
    const n = v.length;
    const ptr = this.scratch(n * 4);
    const view = v instanceof Int32Array ? new Int32Array(this.arena.buffer(), ptr, n) : this.arena.f32(ptr, n);
    if (mode !== "out") view.set(v);
    if (mode !== "in") this.writeBack.push(() => v.set(view));
    return ptr;
  }

  /** A scratch block of this arena for the duration of the call. */
  scratch(bytes: number): number {
    return this.heap.scratch[this.arena.index].get(bytes);
  }

  /** Copies staged outputs back. */
  done(): void {
    for (const f of this.writeBack) f();
  }
}
