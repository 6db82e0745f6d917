/**
 * One arena = one shared WebAssembly.Memory (at most 4 GiB) + the kernels instantiated on it + an allocator.
 *
 * Allocation is first-fit over a sorted free list with coalescing; the memory grows page by page up to the
 * arena's cap and never shrinks. Blocks are 64-byte aligned (a cache line; v128 loads never straddle one).
 * Typed-array views stay valid after growth because a shared memory's buffer is never detached.
 */
import { instantiate, PAGE, type KernelExports } from "./module.js";

export const ALIGN = 64;
const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

interface Block {
  start: number;
  end: number;
}

export class Arena {
  readonly memory: WebAssembly.Memory;
  readonly exports: KernelExports;
  private top: number; // first byte never handed out
  private readonly free: Block[] = []; // sorted by start, coalesced
  private readonly sizes = new Map<number, number>(); // live block start -> size
  /** Every buffer object this memory has shown (one per growth): identifies views into this arena. */
  readonly buffers = new Set<ArrayBufferLike>();

  constructor(
    readonly index: number,
    module: WebAssembly.Module,
    /** Most bytes this arena may grow to (a multiple of 64 KiB, <= 4 GiB). */
    readonly capBytes: number,
  ) {
    const maximum = Math.floor(capBytes / PAGE);
    this.memory = new WebAssembly.Memory({ initial: 1, maximum, shared: true });
    this.exports = instantiate(module, this.memory);
    this.top = alignUp(Math.max(this.exports.heapBase(), 1024), ALIGN);
    this.buffers.add(this.memory.buffer);
  }

  /** Bytes handed out or free below the top (the arena's committed size). */
  get usedBytes(): number {
    return this.top;
  }

  /** Bytes never handed out above the top (room to grow). */
  get headroom(): number {
    return this.capBytes - this.top;
  }

  /**
   * Allocates `bytes` (aligned); null when the arena cannot hold them. With `zero`, the block reads as zeros
   * (fresh memory already does; a reused block is cleared).
   */
  alloc(bytes: number, zero = false): number | null {
    const size = alignUp(Math.max(bytes, 1), ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.end - b.start >= size) {
        const ptr = b.start;
        b.start += size;
        if (b.start === b.end) this.free.splice(i, 1);
        this.sizes.set(ptr, size);
        if (zero) new Uint8Array(this.buffer(), ptr, size).fill(0);
        return ptr;
      }
    }
    const ptr = this.top;
    if (ptr + size > this.capBytes) return null;
    const have = this.memory.buffer.byteLength;
    if (ptr + size > have) {
      // Grow by at least 1/8 (and 64 MiB): fewer grow calls while loading; untouched pages cost no memory.
      const want = Math.min(this.capBytes, Math.max(ptr + size, have + Math.max(have >> 3, 64 << 20)));
      this.memory.grow(Math.ceil(want / PAGE) - have / PAGE);
    }
    this.buffers.add(this.memory.buffer);
    this.top = ptr + size;
    this.sizes.set(ptr, size);
    return ptr;
  }

  /** Returns a block to the free list (merging with its neighbours). */
  release(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new Error(`arena ${this.index}: release of ${ptr}, which is not a live block`);
    this.sizes.delete(ptr);
    const block = { start: ptr, end: ptr + size };
    let i = 0;
    while (i < this.free.length && this.free[i].start < ptr) i++;
    this.free.splice(i, 0, block);
    // Merge with the next, then with the previous block.
    if (i + 1 < this.free.length && this.free[i + 1].start === block.end) {
      block.end = this.free[i + 1].end;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].end === block.start) {
      this.free[i - 1].end = block.end;
      this.free.splice(i, 1);
    }
  }

  /** The current buffer (recorded, so that views made on it are recognised). */
  buffer(): ArrayBufferLike {
    const buf = this.memory.buffer;
    this.buffers.add(buf);
    return buf;
  }

  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.buffer(), ptr, n);
  }
  u16(ptr: number, n: number): Uint16Array {
    return new Uint16Array(this.buffer(), ptr, n);
  }
  f64(ptr: number, n: number): Float64Array {
    return new Float64Array(this.buffer(), ptr, n);
  }
}

/**
 * An arena's scratch: one block reserved when the arena opens, handed out front to back during one kernel
 * call and reset by the next (calls come one at a time from the calling thread; workers only run inside
 * one). A call that needs more borrows extra blocks from the arena, given back at its reset.
 */
export class Scratch {
  private readonly base: number;
  private used = 0;
  private readonly borrowed: number[] = [];

  constructor(
    private readonly arena: Arena,
    readonly bytes: number,
  ) {
    const base = arena.alloc(bytes);
    if (base === null) throw new Error(`WASM arena ${arena.index} cannot hold its ${bytes}-byte scratch`);
    this.base = base;
  }

  /** Starts a new call: everything handed out before is free again. */
  reset(): void {
    this.used = 0;
    for (const p of this.borrowed.splice(0)) this.arena.release(p);
  }

  /** `bytes` of scratch (64-byte aligned) valid until the next reset. */
  get(bytes: number): number {
    const size = alignUp(Math.max(bytes, 1), ALIGN);
    if (this.used + size <= this.bytes) {
      const ptr = this.base + this.used;
      this.used += size;
      return ptr;
    }
    const ptr = this.arena.alloc(size);
    if (ptr === null) {
      throw new Error(`WASM arena ${this.arena.index} has no room for ${bytes} bytes of scratch, expected a larger instance size`);
    }
    this.borrowed.push(ptr);
    return ptr;
  }
}
