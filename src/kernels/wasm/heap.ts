/**
 * All WASM memory of one kernel set: a list of arenas (one 32-bit memory each). A model larger than one
 * memory (any real Qwen3-Next: 160 GB of BF16) spreads over many: each tensor goes, first-fit, to the first
 * arena with room, and a new arena is opened when none has. Each arena reserves a scratch block where
 * kernels on its weights stage activations that live elsewhere.
 */
import { Arena, Scratch } from "./arena.js";
import { kernelModule, MAX_PAGES, PAGE } from "./module.js";
import { resolveSimd, type SimdBuild, type SimdChoice } from "./simd.js";

export interface HeapOptions {
  /** Which kernel build runs (simd.ts): "auto" (default: relaxed SIMD where supported), "plain" or "relaxed". */
  simd?: SimdChoice;
  /** Cap on one instance's memory in bytes (default and maximum 4 GiB); small caps test the spreading. */
  maxInstanceBytes?: number;
}

/** Where a typed array lives: its arena and byte address there. */
export interface Location {
  arena: Arena;
  ptr: number;
}

export class WasmHeap {
  /** The kernel build in use. */
  readonly simd: SimdBuild;
  readonly module: WebAssembly.Module;
  readonly arenas: Arena[] = [];
  readonly scratch: Scratch[] = [];
  readonly capBytes: number;
  /** Scratch reserved in each arena (activations staged for its weights, kernel work space). */
  readonly reserveBytes: number;
  /** Called for each arena opened after it is set (the thread pool shares new memories with its workers). */
  onNewArena: ((a: Arena) => void) | undefined;

  constructor(opts: HeapOptions = {}) {
    this.simd = resolveSimd(opts.simd);
    this.module = kernelModule(this.simd);
    const cap = opts.maxInstanceBytes ?? MAX_PAGES * PAGE;
    if (!(Number.isInteger(cap) && cap >= 4 * PAGE && cap <= MAX_PAGES * PAGE)) {
      throw new Error(`maxInstanceBytes is ${cap}, expected an integer from ${4 * PAGE} to ${MAX_PAGES * PAGE}`);
    }
    this.capBytes = Math.floor(cap / PAGE) * PAGE;
    this.reserveBytes = Math.min(16 << 20, Math.floor(this.capBytes / 4));
    this.openArena();
  }

  private openArena(): Arena {
    const arena = new Arena(this.arenas.length, this.module, this.capBytes);
    this.arenas.push(arena);
    this.scratch.push(new Scratch(arena, this.reserveBytes));
    this.onNewArena?.(arena);
    return arena;
  }

  /** Places `bytes` (zero-filled) first-fit over the arenas, opening one if none has room. */
  alloc(bytes: number, what: string): Location {
    for (const arena of this.arenas) {
      const ptr = arena.alloc(bytes, true);
      if (ptr !== null) return { arena, ptr };
    }
    const arena = this.openArena();
    const ptr = arena.alloc(bytes, true);
    if (ptr === null) {
      throw new Error(
        `${what} needs ${bytes} bytes, more than one WASM instance holds (${this.capBytes} bytes less a ${this.reserveBytes}-byte reserve)`,
      );
    }
    return { arena, ptr };
  }

  /** The arena and address of a typed array living in WASM memory, or null for ordinary JS memory. */
  locate(a: ArrayBufferView): Location | null {
    for (const arena of this.arenas) if (arena.buffers.has(a.buffer)) return { arena, ptr: a.byteOffset };
    return null;
  }

  /** Total bytes committed by all arenas. */
  get committedBytes(): number {
    return this.arenas.reduce((s, a) => s + a.memory.buffer.byteLength, 0);
  }
}
