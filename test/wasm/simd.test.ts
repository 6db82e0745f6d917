/**
 * The two kernel builds (src/kernels/wasm/simd.ts): which one runs, that the relaxed one really uses relaxed
 * SIMD, that worker threads accept it, and that exact (f64) products agree bit for bit across builds (the
 * products are exact in float64, so a fused multiply-add rounds the same as a multiply then an add).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { f32ArrayToBf16, f32ArrayToF16 } from "../../src/io/dtype.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { WeightDType } from "../../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/kernels.js";
import { RELAXED_SIMD_FLAG, relaxedSimdSupported, resolveSimd, WASM_PATHS } from "../../src/kernels/wasm/simd.js";
import { maxScaledDiff, rng, uniform } from "../helpers/random.js";

/** Node 20.16 and later have process.getBuiltinModule, through which the flag is set; Node 22 has relaxed SIMD on. */
const [major, minor] = process.versions.node.split(".").map(Number);
const nodeHasRelaxed = major > 20 || (major === 20 && minor >= 16);

describe("choosing the build", () => {
  it("auto picks relaxed where the engine accepts it; plain and relaxed can be forced", () => {
    expect(relaxedSimdSupported()).toBe(nodeHasRelaxed);
    expect(resolveSimd(undefined, {})).toBe(nodeHasRelaxed ? "relaxed" : "plain");
    expect(resolveSimd("auto", { QWEN3_NEXT_SIMD: "plain" })).toBe(nodeHasRelaxed ? "relaxed" : "plain");
    expect(resolveSimd(undefined, { QWEN3_NEXT_SIMD: "plain" })).toBe("plain");
    expect(resolveSimd("plain", { QWEN3_NEXT_SIMD: "relaxed" })).toBe("plain");
    if (nodeHasRelaxed) expect(resolveSimd(undefined, { QWEN3_NEXT_SIMD: "relaxed" })).toBe("relaxed");
  });

  it("rejects an unknown choice in one line naming where it came from", () => {
    expect(() => resolveSimd(undefined, { QWEN3_NEXT_SIMD: "avx" })).toThrow(/^QWEN3_NEXT_SIMD is "avx", expected one of auto, plain, relaxed$/);
    expect(() => resolveSimd("fast" as never, {})).toThrow(/^simd is "fast", expected one of auto, plain, relaxed$/);
  });

  it("the kernels report the build they run", async () => {
    for (const simd of ["plain", "relaxed"] as const) {
      if (simd === "relaxed" && !nodeHasRelaxed) continue;
      const k = await createWasmKernels({ threads: 1, simd });
      expect(k.simd).toBe(simd);
      expect(k.heap.simd).toBe(simd);
      await k.close();
    }
  });

  it("kernels created without the option run the build QWEN3_NEXT_SIMD names (each test project sets it)", async () => {
    const k = await createWasmKernels({ threads: 1 });
    expect(k.simd).toBe(process.env.QWEN3_NEXT_SIMD ?? resolveSimd(undefined, {}));
    await k.close();
  });
});

describe.runIf(nodeHasRelaxed)("the relaxed build", () => {
  it("needs relaxed SIMD (invalid without the V8 flag) where the plain build does not", () => {
    // A fresh process with the flag explicitly off: only the plain build validates there.
    const script = `const fs = require("node:fs");
      console.log(JSON.stringify([${JSON.stringify(WASM_PATHS.plain)}, ${JSON.stringify(WASM_PATHS.relaxed)}].map((f) => WebAssembly.validate(fs.readFileSync(f)))));`;
    const r = spawnSync(process.execPath, [`--no-${RELAXED_SIMD_FLAG.slice(2)}`, "-e", script], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual([true, false]);
  });

  it("validates inside a worker thread once this process has set the flag", async () => {
    const bytes = readFileSync(WASM_PATHS.relaxed);
    const worker = new Worker(
      `const { parentPort, workerData } = require("node:worker_threads"); parentPort.postMessage(WebAssembly.validate(workerData));`,
      { eval: true, workerData: bytes },
    );
    const valid = await new Promise((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    await worker.terminate();
    expect(valid).toBe(true);
  });
});

describe.runIf(nodeHasRelaxed)("plain and relaxed builds side by side", () => {
  let plain: WasmKernels;
  let relaxed: WasmKernels;
  beforeAll(async () => {
    plain = await createWasmKernels({ threads: 2, minParallelBytes: 0, simd: "plain" });
    relaxed = await createWasmKernels({ threads: 2, minParallelBytes: 0, simd: "relaxed" });
  });
  afterAll(async () => {
    await plain.close();
    await relaxed.close();
  });

  const run = (k: WasmKernels, dtype: WeightDType, rows: number, cols: number, T: number, values: Float64Array, x: Float64Array): Float32Array => {
    const w = k.allocWeight("w", dtype, [rows, cols]);
    if (dtype === "BF16") f32ArrayToBf16(values, w.data as Uint16Array);
    else if (dtype === "F16") f32ArrayToF16(values, w.data as Uint16Array);
    else (w.data as Float32Array).set(values);
    const xv = k.vec(T * cols);
    xv.set(x);
    const y = k.vec(T * rows);
    k.linear(w, xv, T, y);
    const out = Float32Array.from(y);
    k.freeWeight(w);
    k.free(xv);
    k.free(y);
    return out;
  };

  it("exact (f64) products agree bit for bit, on two threads, one token or many", () => {
    plain.accumulate = relaxed.accumulate = "f64";
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 19 }),
        fc.constantFrom<WeightDType>("BF16", "F16", "F32"), fc.integer(),
        (rows, cols, T, dtype, seed) => {
          const rand = rng(seed);
          const values = uniform(rand, rows * cols);
          const x = uniform(rand, T * cols);
          expect(Array.from(run(relaxed, dtype, rows, cols, T, values, x))).toEqual(Array.from(run(plain, dtype, rows, cols, T, values, x)));
        },
      ),
      { numRuns: 40 },
    );
  });

  it("float32 (f32) products stay within float32 summation error of the float64 sums in both builds", () => {
    plain.accumulate = relaxed.accumulate = "f32";
    const f64 = createTsKernels("f64");
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 19 }),
        fc.constantFrom<WeightDType>("BF16", "F16", "F32"), fc.integer(),
        (rows, cols, T, dtype, seed) => {
          const rand = rng(seed);
          const values = uniform(rand, rows * cols);
          const x = uniform(rand, T * cols);
          const w = f64.allocWeight("w", dtype, [rows, cols]);
          if (dtype === "BF16") f32ArrayToBf16(values, w.data as Uint16Array);
          else if (dtype === "F16") f32ArrayToF16(values, w.data as Uint16Array);
          else (w.data as Float32Array).set(values);
          const want = new Float32Array(T * rows);
          f64.linear(w, Float64Array.from(Float32Array.from(x)), T, want);
          for (const k of [plain, relaxed]) expect(maxScaledDiff(run(k, dtype, rows, cols, T, values, x), want)).toBeLessThanOrEqual(2e-6 * Math.sqrt(cols));
        },
      ),
      { numRuns: 40 },
    );
    plain.accumulate = relaxed.accumulate = "f64";
  });
});
