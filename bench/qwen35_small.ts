/**
 * A Qwen3.5-0.8B-sized model (test/fixtures/published/Qwen3.5-0.8B.config.json: hidden 1024, 24 layers = 18 gated
 * DeltaNet + 6 gated attention, dense SwiGLU 3584, vocab 248,320 tied; random BF16 weights generated straight into
 * the WASM kernels' memory, no files) on 1 and 2 threads: prefill and decode tokens/s, and the weight bytes one
 * decode step reads (every main-model matrix once, the tied embedding twice: its row and the whole lm_head).
 * Writes bench/qwen35-results.json.
 *
 *   node --import tsx bench/qwen35_small.ts [--prefill 64] [--decode 16] [--threads 1,2]
 */
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../src/config.js";
import { countParameters } from "../src/loading/parameters.js";
import { createWasmKernels } from "../src/kernels/wasm/kernels.js";
import { machineFacts } from "./machine.js";
import { randomWeights, runSlice, sliceModel, type SliceResult } from "./real_slice.js";

const CONFIG = new URL("../test/fixtures/published/Qwen3.5-0.8B.config.json", import.meta.url);
const argOf = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const prefill = Number(argOf("prefill", "64"));
const decode = Number(argOf("decode", "16"));
const threadCounts = argOf("threads", "1,2").split(",").map(Number);
const log = (s: string) => process.stderr.write(s + "\n");

const config = parseConfig(JSON.parse(readFileSync(CONFIG, "utf8")), "Qwen3.5-0.8B config.json");
const p = countParameters(config);
// Decode reads every main-model weight once except the embedding table, of which it reads one row, and the
// tied lm_head, which is the whole table; BF16 = 2 bytes.
const bytesPerToken = 2 * (p.total - p.mtp - p.embeddings + config.hidden_size + p.embeddings);
const machine = machineFacts();
const loadBefore = os.loadavg()[0];
log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}`);
log(`Qwen3.5-0.8B shape: ${(p.total / 1e9).toFixed(3)}B parameters (${((p.total - p.mtp) / 1e9).toFixed(3)}B without MTP), ${(bytesPerToken / 1e9).toFixed(2)} GB read per decoded token`);

const results: Array<SliceResult & { accumulate: string; gbPerS: number }> = [];
for (const threads of threadCounts) {
  const k = await createWasmKernels({ threads });
  try {
    log(`${threads} thread(s): generating ${(2 * p.total / 1e9).toFixed(2)} GB of random BF16 weights...`);
    const model = sliceModel(k, config, randomWeights(k, config));
    await runSlice(k, model, 8, 2); // warm-up (JIT, first touches)
    for (const accumulate of ["f64", "f32"] as const) {
      k.accumulate = accumulate;
      const r = await runSlice(k, model, prefill, decode);
      results.push({ ...r, accumulate, gbPerS: (r.decodeTokPerS * bytesPerToken) / 1e9 });
      log(`  accumulate ${accumulate}: prefill ${r.prefillTokPerS.toFixed(1)} tok/s, decode ${r.decodeTokPerS.toFixed(2)} tok/s`);
    }
  } finally {
    await k.close();
  }
}

const out = fileURLToPath(new URL("./qwen35-results.json", import.meta.url));
writeFileSync(out, JSON.stringify({ machine, loadAverage: { before: loadBefore, after: os.loadavg()[0] }, config: "test/fixtures/published/Qwen3.5-0.8B.config.json", parameters: p, bytesPerToken, prefill, decode, results }, null, 2) + "\n");
const rows = results.map((r) => `| ${r.threads} | ${r.accumulate} | ${r.prefillTokPerS.toFixed(1)} | ${r.decodeTokPerS.toFixed(2)} | ${r.gbPerS.toFixed(1)} |`);
process.stdout.write(
  [`| threads | accumulate | prefill tok/s (${prefill} tokens) | decode tok/s | weight GB/s while decoding |`, "|---|---|---|---|---|", ...rows].join("\n") + "\n",
);
