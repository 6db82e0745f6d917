/**
 * This machine's memory bandwidth as WASM sees it: a streaming SIMD sum over a large buffer (much larger
 * than the caches), on 1 and on N threads. The kernels' GB/s are reported as fractions of these.
 */
import type { WasmKernels } from "../src/kernels/wasm/kernels.js";
import { bestSeconds } from "./timing.js";

export interface Bandwidth {
  bytes: number;
  /** GB/s (1e9 bytes) by thread count. */
  gbps: Record<number, number>;
}

export function measureBandwidth(k: WasmKernels, bytes: number, reps: number): Bandwidth {
  const arena = k.heap.arenas[0];
  const blocks = 1024;
  const blockFloats = Math.floor(bytes / 4 / blocks / 16) * 16;
  const total = blocks * blockFloats * 4;
  const ptr = arena.alloc(total);
  const out = arena.alloc(blocks * 4);
  if (ptr === null || out === null) throw new Error(`no room for a ${total}-byte bandwidth buffer`);
  arena.f32(ptr, total / 4).fill(1); // touch every page first
  const gbps: Record<number, number> = {};
  const max = k.pool?.size ?? 1;
  for (let threads = 1; threads <= max; threads++) {
    const run = () => {
      const args = [ptr, out, blockFloats, 0, blocks];
      if (threads === 1 || !k.pool) arena.exports.sumBlocks(...args);
      else k.pool.run(arena, "sumBlocks", args, 3, blocks, 1, threads);
    };
    run();
    gbps[threads] = total / bestSeconds(run, reps) / 1e9;
  }
  arena.release(ptr);
  arena.release(out);
  return { bytes: total, gbps };
}
