/**
 * Batched decode on the real-slice model: one `decodeBatch` step for N sequences at once (what the server's
 * scheduler runs), N = 1, 2, 4, 8, with float64 and float32 accumulation. Reports ms per step and total
 * tokens/s; writes bench/batch-results.json.
 *
 *   node --import tsx bench/batch_decode.ts [--threads N] [--steps 6]
 *
 * A step for N sequences reads the shared weights once (lm_head, attention, DeltaNet projections) but the
 * routed experts of every sequence, and does N times the arithmetic: it stays cheaper than N single steps
 * only while the machine has arithmetic to spare.
 */
import { writeFileSync } from "node:fs";
import os from "node:os";
import { createWasmKernels } from "../src/kernels/wasm/kernels.js";
import type { Accumulate } from "../src/kernels/types.js";
import { machineFacts } from "./machine.js";
import { randomWeights, realSliceConfig, sliceModel } from "./real_slice.js";

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} expects an integer >= 1`);
  return v;
};
const threads = arg("threads", os.availableParallelism());
const steps = arg("steps", 6);

interface Row {
  accumulate: Accumulate;
  sequences: number;
  msPerStep: number;
  tokensPerS: number;
  speedupOverOne: number;
}

const rows: Row[] = [];
const config = realSliceConfig();
for (const accumulate of ["f64", "f32"] as const) {
  const k = await createWasmKernels({ threads, accumulate });
  const model = sliceModel(k, config, randomWeights(k, config));
  let single = NaN;
  for (const N of [1, 2, 4, 8]) {
    const states = Array.from({ length: N }, () => model.newState());
    for (const [i, s] of states.entries()) await model.forward([1 + i, 2, 3, 4], s, { lastOnly: true });
    await model.decodeBatch(Array(N).fill(7), states); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await model.decodeBatch(states.map((_, j) => 11 + i * 8 + j), states);
    const ms = (performance.now() - t0) / steps;
    if (N === 1) single = ms;
    rows.push({ accumulate, sequences: N, msPerStep: ms, tokensPerS: (N * 1000) / ms, speedupOverOne: (N * single) / ms });
    console.log(`${accumulate}, ${N} sequence(s): ${ms.toFixed(0)} ms/step, ${((N * 1000) / ms).toFixed(1)} tok/s`);
    states.forEach((s) => s.free());
  }
  await k.close();
}

console.log("\n| accumulate | sequences | ms per step | tokens/s (all sequences) | vs one sequence |");
console.log("|---|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.accumulate} | ${r.sequences} | ${r.msPerStep.toFixed(0)} | ${r.tokensPerS.toFixed(1)} | ${r.speedupOverOne.toFixed(2)}x |`);
}
writeFileSync(
  new URL("./batch-results.json", import.meta.url),
  JSON.stringify({ date: new Date().toISOString(), machine: machineFacts(), threads, steps, rows }, null, 2) + "\n",
);
