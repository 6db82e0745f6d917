/**
 * BF16 matrix-vector products at Qwen3-Next-80B's real shapes, WASM (1 and N threads) vs the TypeScript
 * kernels: seconds per product, GFLOP/s (2 rows cols / s) and GB/s of weight streamed.
 */
import { createTsKernels } from "../src/kernels/ts/index.js";
import type { Weight } from "../src/kernels/types.js";
import type { WasmKernels } from "../src/kernels/wasm/kernels.js";
import { fastestSeconds } from "./timing.js";

export const SHAPES = [
  { name: "linear_attn.in_proj_qkvz", cols: 2048, rows: 12288 },
  { name: "linear_attn.out_proj", cols: 4096, rows: 2048 },
  { name: "mlp.experts.{e}.gate_proj / up_proj", cols: 2048, rows: 512 },
  { name: "mlp.experts.{e}.down_proj", cols: 512, rows: 2048 },
  { name: "lm_head", cols: 2048, rows: 151936 },
];

export interface MatvecResult {
  name: string;
  rows: number;
  cols: number;
  weightBytes: number;
  /** Seconds per product by implementation: "ts", "wasm-f64acc-1t", "wasm-f32acc-2t"... */
  seconds: Record<string, number>;
}

/** Random BF16 words in about ±0.03 (no subnormals, no NaN). */
export function fillBf16(data: Uint16Array, seed: number): void {
  bf16Words(seed)(data);
}

/** `fillBf16`'s sequence a chunk at a time: each call fills `data` with the next words (one xorshift stream). */
export function bf16Words(seed: number): (data: Uint16Array) => void {
  let s = seed >>> 0 || 1;
  return (data) => {
    for (let i = 0; i < data.length; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      data[i] = (s & 0x807f) | 0x3c00 | ((s >>> 8) & 0x0080);
    }
  };
}

export function benchMatvec(k: WasmKernels, ms: number, withTs: boolean): MatvecResult[] {
  const ts = createTsKernels("f32");
  const results: MatvecResult[] = [];
  for (const { name, rows, cols } of SHAPES) {
    const w: Weight = k.allocWeight(name, "BF16", [rows, cols]);
    fillBf16(w.data as Uint16Array, rows + cols);
    const x = k.vec(cols);
    for (let i = 0; i < cols; i++) x[i] = Math.sin(i);
    const y = k.vec(rows);
    const seconds: Record<string, number> = {};
    const max = k.pool?.size ?? 1;
    for (const acc of ["f64", "f32"] as const) {
      k.accumulate = acc;
      for (let t = 1; t <= max; t++) {
        k.threads = t;
        seconds[`wasm-${acc}acc-${t}t`] = fastestSeconds(() => k.linear(w, x, 1, y), ms);
      }
    }
    k.accumulate = "f64";
    k.threads = max;
    if (withTs) {
      // The TypeScript kernels read the very same weight (a view into WASM memory is an ordinary Uint16Array).
      const yt = new Float32Array(rows);
      seconds.ts = fastestSeconds(() => ts.linear(w, x, 1, yt), ms, 2);
    }
    results.push({ name, rows, cols, weightBytes: rows * cols * 2, seconds });
    k.freeWeight(w);
    k.free(x);
    k.free(y);
  }
  return results;
}
