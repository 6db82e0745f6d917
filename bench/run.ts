/**
 * `npm run bench [-- --quick] [-- --out FILE]`: the WASM kernels' performance on this machine.
 *   1. memory bandwidth (streaming SIMD sum, 1..N threads);
 *   2. BF16 matvec at Qwen3-Next-80B's shapes, WASM 1..N threads vs TypeScript: GFLOP/s, GB/s, % of bandwidth;
 *   3. the gated delta rule alone at the 80B shape over a 512-token prefill: WASM chunked vs recurrent vs TS;
 *   4. the real-slice model (exact 80B layer sizes, 4 layers, 64 experts, random BF16): prefill and decode
 *      tokens/s on 1..N threads, against the bytes-per-token bandwidth limit, and the 80B decode rate implied.
 * Writes bench/results.json and prints markdown tables.
 */
import { writeFileSync, renameSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { createWasmKernels } from "../src/kernels/wasm/kernels.js";
import { measureBandwidth } from "./bandwidth.js";
import { bytesPerToken } from "./bytes_per_token.js";
import { benchDeltaRule, deltaRuleTable } from "./delta_rule.js";
import { machineFacts } from "./machine.js";
import { benchMatvec } from "./matvec.js";
import { publishedConfig, randomWeights, realSliceConfig, runSlice, sliceModel, type SliceResult } from "./real_slice.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const outArg = args.indexOf("--out");
const out = outArg >= 0 ? args[outArg + 1] : fileURLToPath(new URL("./results.json", import.meta.url));
const threadsArg = args.indexOf("--threads");
const threads = threadsArg >= 0 ? Number(args[threadsArg + 1]) : Math.min(2, availableParallelism());
const log = (s: string) => process.stderr.write(s + "\n");

const f = (x: number, d = 1) => x.toFixed(d);
const GB = 1e9;

async function main(): Promise<void> {
  const machine = machineFacts();
  log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}`);
  const k = await createWasmKernels({ threads });

  log("memory bandwidth...");
  const bandwidth = measureBandwidth(k, quick ? 256 << 20 : 1 << 30, quick ? 3 : 5);
  const bw1 = bandwidth.gbps[1];
  const bwN = bandwidth.gbps[threads] ?? bw1;

  log("BF16 matvec at the real shapes...");
  const matvec = benchMatvec(k, quick ? 300 : 1500, true);

  log("gated delta rule at the real shape, 512-token prefill...");
  const deltaRule = benchDeltaRule(k, 512, quick ? 300 : 1500, true);

  log("real-slice model: generating ~3 GB of random BF16 weights...");
  const cfg = realSliceConfig();
  const weights = randomWeights(k, cfg, (done, total) => {
    if (process.stderr.isTTY) process.stderr.write(`\r  ${done}/${total} tensors`);
  });
  if (process.stderr.isTTY) process.stderr.write("\n");
  const model = sliceModel(k, cfg, weights);
  const prefill = quick ? 16 : 64;
  const decode = quick ? 5 : 15;
  await runSlice(k, model, 4, 2); // warm-up (JIT)
  const slice: SliceResult[] = [];
  for (const acc of ["f64", "f32"] as const) {
    k.accumulate = acc;
    for (let t = 1; t <= threads; t++) {
      k.threads = t;
      log(`  ${acc} accumulation, ${t} thread(s): prefill ${prefill}, decode ${decode}...`);
      slice.push(await runSlice(k, model, prefill, decode));
    }
  }
  const context = prefill + decode / 2;
  const sliceBytes = bytesPerToken(cfg, context);
  const fullBytes = bytesPerToken(publishedConfig(), context);
  const weightBytes = [...weights.values()].reduce((s, w) => s + w.data.byteLength, 0);

  const results = {
    date: new Date().toISOString(),
    machine,
    quick,
    bandwidth,
    matvec: matvec.map((m) => ({
      ...m,
      gflops: Object.fromEntries(Object.entries(m.seconds).map(([k, s]) => [k, (2 * m.rows * m.cols) / s / GB])),
      gbps: Object.fromEntries(Object.entries(m.seconds).map(([k, s]) => [k, m.weightBytes / s / GB])),
    })),
    deltaRule,
    realSlice: {
      config: { layers: cfg.num_hidden_layers, experts: cfg.num_experts, topK: cfg.num_experts_per_tok, weightBytes },
      bytesPerToken: sliceBytes,
      runs: slice,
    },
    full80B: { bytesPerToken: fullBytes },
  };
  const tmp = `${out}.tmp`;
  writeFileSync(tmp, JSON.stringify(results, null, 2) + "\n");
  renameSync(tmp, out);

  // Markdown.
  const lines: string[] = [];
  lines.push(`Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node} (V8 ${machine.v8})${quick ? ", --quick" : ""}`);
  lines.push("");
  lines.push(`Memory bandwidth (streaming WASM SIMD sum of ${f(bandwidth.bytes / 2 ** 20, 0)} MiB): ` +
    Object.entries(bandwidth.gbps).map(([t, g]) => `${f(g)} GB/s on ${t} thread${t === "1" ? "" : "s"}`).join(", "));
  lines.push("");
  const impls = Object.keys(matvec[0].seconds);
  const threadsOf = (impl: string) => Number(/-(\d+)t$/.exec(impl)?.[1] ?? 1);
  lines.push("BF16 matvec, GFLOP/s (GB/s of weights, % of the same thread count's bandwidth):");
  lines.push("");
  lines.push(`| weight | out x in | ${impls.join(" | ")} | wasm-f64acc-1t / ts | wasm-f32acc-1t / ts |`);
  lines.push(`|---|---|${impls.map(() => "---:").join("|")}|---:|---:|`);
  for (const m of results.matvec) {
    const cells = impls.map((i) => {
      const bw = bandwidth.gbps[threadsOf(i)] ?? bw1;
      return `${f(m.gflops[i])} (${f(m.gbps[i])}, ${f((100 * m.gbps[i]) / bw, 0)}%)`;
    });
    const speedup = (i: string) => (m.seconds.ts ? f(m.seconds.ts / m.seconds[i]) + "x" : "-");
    lines.push(`| ${m.name} | ${m.rows} x ${m.cols} | ${cells.join(" | ")} | ${speedup("wasm-f64acc-1t")} | ${speedup("wasm-f32acc-1t")} |`);
  }
  lines.push("");
  lines.push(...deltaRuleTable(deltaRule));
  lines.push("");
  const limit = (bw: number, b: number) => (bw * GB) / b;
  lines.push(`Real slice (80B layer sizes, ${cfg.num_hidden_layers} layers, ${cfg.num_experts} experts, ${f(weightBytes / GB, 2)} GB BF16): ` +
    `${f(sliceBytes.total / 2 ** 20, 0)} MiB read per decoded token (${f(sliceBytes.state / 2 ** 20, 1)} MiB of it state) at context ${context}.`);
  lines.push("");
  lines.push("| accumulate | threads | prefill tok/s | decode tok/s | decode limit from bandwidth tok/s | % of limit | 80B decode tok/s implied |");
  lines.push("|---|---:|---:|---:|---:|---:|---:|");
  for (const r of slice) {
    const bw = bandwidth.gbps[r.threads];
    const lim = limit(bw, sliceBytes.total);
    const effective = r.decodeTokPerS * sliceBytes.total; // bytes/s the slice achieved
    lines.push(`| ${r.accumulate} | ${r.threads} | ${f(r.prefillTokPerS, 2)} | ${f(r.decodeTokPerS, 2)} | ${f(lim, 2)} | ${f((100 * r.decodeTokPerS) / lim, 0)}% | ${f(effective / fullBytes.total, 2)} |`);
  }
  lines.push("");
  lines.push(`Full 80B: ${f(fullBytes.total / GB, 2)} GB read per decoded token (active weights ${f(fullBytes.weights / GB, 2)} GB + state ${f(fullBytes.state / 2 ** 20, 0)} MiB); ` +
    `bandwidth limit ${f(limit(bwN, fullBytes.total), 2)} tok/s on ${threads} thread(s).`);
  console.log(lines.join("\n"));
  await k.close();
}

main().catch((e: unknown) => {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
