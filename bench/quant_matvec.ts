/**
 * `npx tsx bench/quant_matvec.ts [--ms N]`: WASM matrix-vector (one token) and matrix-matrix (8 tokens)
 * products over each weight type at one 80B shape (linear_attn.out_proj [2048, 4096]): microseconds per
 * product, GB/s of weight bytes streamed and ns per weight, 1 and 2 threads, both accumulation modes.
 * Writes bench/quant-results.json and prints a markdown table.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { f32ArrayToBf16 } from "../src/io/dtype.js";
import { quantizeRow, quantRowBytes } from "../src/io/ggml_quants.js";
import type { QuantDType, WeightDType } from "../src/kernels/types.js";
import { createWasmKernels } from "../src/kernels/wasm/kernels.js";
import { machineFacts } from "./machine.js";
import { fastestSeconds } from "./timing.js";

const args = process.argv.slice(2);
const msArg = args.indexOf("--ms");
const ms = msArg >= 0 ? Number(args[msArg + 1]) : 600;
const [rows, cols] = [2048, 4096];
const TYPES: WeightDType[] = ["BF16", "Q8_0", "Q6_K", "Q5_K", "Q4_K", "Q4_0"];

const k = await createWasmKernels({ threads: 2 });
let s = 12345;
const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.06;
const values = Float32Array.from({ length: rows * cols }, rand);
const results: Record<string, unknown>[] = [];
for (const dt of TYPES) {
  const w = k.allocWeight(dt, dt, [rows, cols]);
  if (dt === "BF16") f32ArrayToBf16(values, w.data as Uint16Array);
  else for (let r = 0; r < rows; r++) quantizeRow(dt as QuantDType, values, r * cols, w.data as Uint8Array, r * quantRowBytes(dt as QuantDType, cols), cols);
  for (const T of [1, 8]) {
    const x = k.vec(T * cols);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
    const y = k.vec(T * rows);
    for (const acc of ["f64", "f32"] as const) {
      for (const threads of [1, 2]) {
        k.accumulate = acc;
        k.threads = threads;
        const sec = fastestSeconds(() => k.linear(w, x, T, y), ms);
        results.push({ dtype: dt, T, accumulate: acc, threads, us: sec * 1e6, gbps: w.data.byteLength / sec / 1e9, nsPerWeight: (sec * 1e9) / (rows * cols * T) });
      }
    }
  }
}
await k.close();
const machine = machineFacts();
writeFileSync(fileURLToPath(new URL("./quant-results.json", import.meta.url)), JSON.stringify({ machine, shape: [rows, cols], results }, null, 1) + "\n");
console.log(`${machine.cpu}, ${machine.cores} cores; weight [${rows}, ${cols}]\n`);
console.log("| dtype | T | sums | threads | µs | weight GB/s | ns/weight/token |\n|---|---|---|---|---|---|---|");
for (const r of results as Array<Record<string, number | string>>) {
  console.log(`| ${r.dtype} | ${r.T} | ${r.accumulate} | ${r.threads} | ${(r.us as number).toFixed(0)} | ${(r.gbps as number).toFixed(2)} | ${(r.nsPerWeight as number).toFixed(3)} |`);
}
