/**
 * WASM memory: the arena allocator's invariants, weights spread over several capped instances, and
 * operands staged across instances giving the same numbers as one instance.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { f32ArrayToBf16 } from "../../src/io/dtype.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import { Arena, ALIGN } from "../../src/kernels/wasm/arena.js";
import { createWasmKernels } from "../../src/kernels/wasm/kernels.js";
import { kernelModule, PAGE } from "../../src/kernels/wasm/module.js";
import { maxScaledDiff, rng, uniform } from "../helpers/random.js";

describe("arena allocator", () => {
  it("hands out aligned, disjoint blocks within the cap, and reuses released space", () => {
    const cap = 32 * PAGE;
    fc.assert(
      fc.property(
        fc.array(fc.record({ alloc: fc.boolean(), bytes: fc.integer({ min: 1, max: 200_000 }), pick: fc.nat() }), { maxLength: 60 }),
        (ops) => {
          const arena = new Arena(0, kernelModule(), cap);
          const base = arena.usedBytes; // first address the allocator hands out
          const live: { ptr: number; bytes: number }[] = [];
          for (const op of ops) {
            if (op.alloc || live.length === 0) {
              const ptr = arena.alloc(op.bytes);
              if (ptr === null) {
                expect(arena.usedBytes + op.bytes).toBeGreaterThan(cap - ALIGN); // refused only when it cannot fit
                continue;
              }
              expect(ptr % ALIGN).toBe(0);
              expect(ptr + op.bytes).toBeLessThanOrEqual(cap);
              expect(ptr + op.bytes).toBeLessThanOrEqual(arena.memory.buffer.byteLength);
              for (const b of live) expect(ptr + op.bytes <= b.ptr || b.ptr + b.bytes <= ptr).toBe(true);
              live.push({ ptr, bytes: op.bytes });
            } else {
              const [b] = live.splice(op.pick % live.length, 1);
              arena.release(b.ptr);
            }
          }
          // Everything released: the free blocks coalesce into the whole used range again.
          for (const b of live) arena.release(b.ptr);
          const top = arena.usedBytes;
          if (top > base) expect(arena.alloc(top - base)).toBe(base);
          expect(arena.usedBytes).toBe(top);
        },
      ),
      { numRuns: 30 },
    );
  });

  it("refuses to release what it did not allocate", () => {
    const arena = new Arena(0, kernelModule(), 4 * PAGE);
    expect(() => arena.release(12345)).toThrow(/not a live block/);
  });
});

describe("weights spread over several instances", () => {
  it("places tensors first-fit across capped instances and computes the same products", async () => {
    const cap = 8 * PAGE; // 512 KiB instances, 128 KiB of each kept for scratch
    const k = await createWasmKernels({ maxInstanceBytes: cap });
    const ts = createTsKernels("f32");
    const rand = rng(7);
    const weights = [];
    for (let i = 0; i < 12; i++) {
      const rows = 100 + 13 * i, cols = 257;
      const w = k.allocWeight(`w${i}`, "BF16", [rows, cols]);
      f32ArrayToBf16(uniform(rand, rows * cols), w.data as Uint16Array);
      weights.push(w);
    }
    // 1.06 MB of weights in instances holding 384 KiB each.
    expect(k.heap.arenas.length).toBeGreaterThanOrEqual(3);
    for (const a of k.heap.arenas) expect(a.memory.buffer.byteLength).toBeLessThanOrEqual(cap);
    // Activations live in some arena; each product stages x and y into its weight's arena when needed.
    const x = k.vec(3 * 257);
    x.set(uniform(rand, 3 * 257));
    for (const w of weights) {
      const rows = w.shape[0];
      const got = k.vec(3 * rows), want = new Float32Array(3 * rows);
      k.linear(w, x, 3, got);
      ts.linear(w, x, 3, want);
      expect(maxScaledDiff(got, want)).toBeLessThanOrEqual(1e-5);
    }
    expect(() => k.allocWeight("huge", "F32", [cap / 4])).toThrow(/needs \d+ bytes, more than one WASM instance holds/);
    await k.close();
  });

  it("rejects a weight dtype it cannot compute with", async () => {
    const k = await createWasmKernels();
    expect(() => k.allocWeight("model.x", "I64" as never, [2])).toThrow(/model.x: dtype I64 cannot be a weight of the wasm backend, expected one of BF16, F16, F32, F64, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K/);
  });

  it("rejects an instance cap out of range", async () => {
    await expect(createWasmKernels({ maxInstanceBytes: 1000 })).rejects.toThrow(/maxInstanceBytes is 1000, expected an integer/);
  });

  it("frees vectors back to their arena", async () => {
    const k = await createWasmKernels();
    const a = k.vec(1000);
    const { ptr } = k.heap.locate(a)!;
    k.free(a);
    const b = k.vec(1000);
    expect(k.heap.locate(b)!.ptr).toBe(ptr);
    expect(Array.from(b).every((v) => v === 0)).toBe(true);
  });
});
