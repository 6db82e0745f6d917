/**
 * `npx tsx bench/quant_matvec.ts [--ms N] [--types Q8_0,Q4_K] [--rounds 3]`: WASM matrix-vector (one token) and
 * matrix-matrix (8 tokens) products over each weight type at one 80B shape (linear_attn.out_proj [2048, 4096]):
 * microseconds per product, GB/s of weight bytes streamed and ns per weight, 1 and 2 threads, both kernel builds
 * (plain and relaxed SIMD), each matrix-product mode: f64 (exact sums), f32 (weights decoded to float32) and q8
 * (quantized weights: activations quantized per block, integer dot products as llama.cpp; float weights take the
 * f32 path there, so BF16 has no q8 row). The modes are interleaved: `--rounds` rounds, each timing every mode
 * for ms / rounds, the fastest sample kept, so a busy machine slows them alike.
 * Writes bench/quant-results.json and prints a markdown table.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { f32ArrayToBf16 } from "../src/io/dtype.js";
import { isQuantDType, quantizeRow, quantRowBytes } from "../src/io/ggml_quants.js";
import type { QuantDType, WeightDType } from "../src/kernels/types.js";
import { createWasmKernels } from "../src/kernels/wasm/kernels.js";
import { relaxedSimdSupported } from "../src/kernels/wasm/simd.js";
import { machineFacts } from "./machine.js";
import { fastestSeconds } from "./timing.js";

const args = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const ms = Number(arg("ms", "600"));
const rounds = Number(arg("rounds", "3"));
const [rows, cols] = [2048, 4096];
const TYPES = arg("types", "BF16,Q8_0,Q4_0,Q4_1,Q5_0,Q5_1,Q4_K,Q5_K,Q6_K").split(",") as WeightDType[];
const BUILDS = relaxedSimdSupported() ? (["plain", "relaxed"] as const) : (["plain"] as const);

let s = 12345;
const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.06;
const values = Float32Array.from({ length: rows * cols }, rand);
const results: Record<string, unknown>[] = [];
for (const simd of BUILDS) {
  const k = await createWasmKernels({ threads: 2, simd });
  for (const dt of TYPES) {
    const w = k.allocWeight(dt, dt, [rows, cols]);
    if (dt === "BF16") f32ArrayToBf16(values, w.data as Uint16Array);
    else for (let r = 0; r < rows; r++) quantizeRow(dt as QuantDType, values, r * cols, w.data as Uint8Array, r * quantRowBytes(dt as QuantDType, cols), cols);
    const modes = isQuantDType(dt) ? (["f64", "f32", "q8"] as const) : (["f64", "f32"] as const);
    for (const T of [1, 8]) {
      const x = k.vec(T * cols);
      for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
      const y = k.vec(T * rows);
      for (const threads of [1, 2]) {
        k.threads = threads;
        const best: Record<string, number> = {};
        for (let round = 0; round < rounds; round++) {
          for (const acc of modes) {
            k.accumulate = acc;
            best[acc] = Math.min(best[acc] ?? Infinity, fastestSeconds(() => k.linear(w, x, T, y), ms / rounds));
          }
        }
        for (const acc of modes) {
          const sec = best[acc];
          results.push({ simd, dtype: dt, T, accumulate: acc, threads, us: sec * 1e6, gbps: w.data.byteLength / sec / 1e9, nsPerWeight: (sec * 1e9) / (rows * cols * T) });
        }
      }
      k.free(x);
      k.free(y);
    }
    k.freeWeight(w);
  }
  await k.close();
}
const machine = machineFacts();
const note = "machine shared with other jobs while measured (see loadAverage); modes interleaved in rounds, fastest sample";
writeFileSync(
  fileURLToPath(new URL("./quant-results.json", import.meta.url)),
  JSON.stringify({ machine, loadAverage: (await import("node:os")).loadavg(), note, shape: [rows, cols], rounds, msPerConfig: ms, results }, null, 1) + "\n",
);
console.log(`${machine.cpu}, ${machine.cores} cores; weight [${rows}, ${cols}]\n`);
console.log("| build | dtype | T | sums | threads | µs | weight GB/s | ns/weight/token |\n|---|---|---|---|---|---|---|---|");
for (const r of results as Array<Record<string, number | string>>) {
  console.log(`| ${r.simd} | ${r.dtype} | ${r.T} | ${r.accumulate} | ${r.threads} | ${(r.us as number).toFixed(0)} | ${(r.gbps as number).toFixed(2)} | ${(r.nsPerWeight as number).toFixed(3)} |`);
}
