/**
 * `NODE_LLAMA_CPP=/path/to/node_modules/node-llama-cpp node --import tsx bench/vs_llama_cpp.ts --model A.gguf[,B.gguf]
 *  [--threads 1,2] [--pp 64] [--tg 32] [--reps 2] [--accumulate f32|f64] [--simd auto|plain|relaxed] [--llama-cpu VARIANT]
 *  [--out FILE]`
 *
 * The same GGUF file in both engines, runs interleaved (ours, llama.cpp, ours, ...): prompt processing of `pp`
 * tokens and generation of `tg` tokens one at a time (fixed token ids, no sampling), best of `reps` after one
 * untimed warm-up run each, tok/s and the ratio, on each thread count. Decode is also set against the bandwidth roofline: the weight bytes one
 * decoded token reads (`qwen3-next info`'s bytes per token) over the streaming bandwidth measured in the same
 * run on as many threads. CPU seconds (process.cpuUsage around each phase) are recorded too: on a machine
 * shared with other work, tokens per CPU-second compare the engines' efficiency where wall time also measures
 * who got the cores. Our side runs what `generate` runs by default (q8 products: integer dots for quantized
 * weights, float32 sums for float ones; the relaxed SIMD build where Node has it) unless --accumulate / --simd
 * say otherwise.
 *
 * llama.cpp is node-llama-cpp's prebuilt CPU build (3.21.1 was used), loaded from the folder named by
 * NODE_LLAMA_CPP (it is not a dependency of this project: install it in a scratch folder with
 * `npm i -E node-llama-cpp@3.21.1`). llama.cpp is timed through node-llama-cpp's controlledEvaluate, one call
 * per decoded token, each call's last token asking for the next one (greedy), so that llama.cpp computes the
 * logits (lm_head) as our side does; its JS call overhead is included. node-llama-cpp ships llama.cpp's CPU backend
 * built for several instruction sets (libggml-cpu-sse42.so, -haswell (AVX2), -zen4 (AVX-512 VNNI/BF16), ...) and
 * loads the best one the CPU has; `--llama-cpu haswell` (or any variant it ships) runs llama.cpp with only that
 * one, from a hard-linked copy of the node_modules folder in the OS temp dir with the other variants left out:
 * `sse42` is llama.cpp at our vector width (128 bits, no FMA), `haswell` at AVX2's 256. The backend that was
 * loaded (llama.cpp's own log line) is recorded with each entry. Results are
 * merged into bench/vs-llama-cpp-results.json (one entry per file and thread count).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { readGgufHeader } from "../src/io/gguf.js";
import type { WasmKernels } from "../src/kernels/wasm/kernels.js";
import { bytesPerToken } from "../src/loading/bytes_per_token.js";
import { planCheckpoint } from "../src/loading/checkpoint.js";
import { loadModel } from "../src/model/load.js";
import { GENERATION_ACCUMULATE } from "../src/cli/options.js";
import type { Accumulate } from "../src/kernels/types.js";
import { measureBandwidth } from "./bandwidth.js";
import { machineFacts } from "./machine.js";

const args = process.argv.slice(2);
const arg = (name: string, dflt?: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
/** Bad arguments: one line on stderr, exit 2 (no stack trace). */
function fail(message: string): never {
  process.stderr.write(`vs_llama_cpp: ${message}\n`);
  process.exit(2);
}
const models = arg("model")?.split(",");
if (!models) fail("--model FILE.gguf[,FILE2.gguf] is required");
const threadList = (arg("threads") ?? [...new Set([1, Math.min(2, availableParallelism())])].join(",")).split(",").map(Number);
const pp = Number(arg("pp", "64"));
const tg = Number(arg("tg", "32"));
const reps = Number(arg("reps", "2"));
const accumulate = arg("accumulate", GENERATION_ACCUMULATE) as Accumulate;
const simd = arg("simd", "auto") as "auto" | "plain" | "relaxed";
const out = arg("out") ?? fileURLToPath(new URL("./vs-llama-cpp-results.json", import.meta.url));
const cpuVariant = arg("llama-cpu");
const nlcHome = process.env.NODE_LLAMA_CPP;
if (!nlcHome) fail("set NODE_LLAMA_CPP to a node_modules/node-llama-cpp folder (npm i -E node-llama-cpp@3.21.1 in a scratch folder)");
const log = (s: string) => process.stderr.write(`${s}\n`);

/** The CPU backend builds under a node_modules folder's @node-llama-cpp prebuilt bins: variant -> files. */
function cpuBackends(modules: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const scope = path.join(modules, "@node-llama-cpp");
  for (const pkg of existsSync(scope) ? readdirSync(scope) : []) {
    const bins = path.join(scope, pkg, "bins");
    for (const dir of existsSync(bins) ? readdirSync(bins) : []) {
      for (const f of readdirSync(path.join(bins, dir))) {
        const m = /^libggml-cpu-(.+)\.so$/.exec(f);
        if (m) found.set(m[1], [...(found.get(m[1]) ?? []), path.join(pkg, "bins", dir, f)]);
      }
    }
  }
  return found;
}

/**
 * node-llama-cpp at `home` with llama.cpp's CPU backend restricted to `variant`: a hard-linked copy of its
 * node_modules folder (made once, reused) whose prebuilt bins keep only libggml-cpu-<variant>.so.
 */
function withOnlyCpuVariant(home: string, variant: string): string {
  const modules = path.dirname(home);
  const backends = cpuBackends(modules);
  if (!backends.has(variant)) fail(`--llama-cpu ${variant}: node-llama-cpp ships no libggml-cpu-${variant}.so; expected one of ${[...backends.keys()].sort().join(", ")}`);
  const copy = path.join(tmpdir(), `qwen3-next-bench-llama-cpu-${variant}`, "node_modules");
  if (!existsSync(copy)) {
    const staging = `${copy}.partial`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(path.dirname(copy), { recursive: true });
    execFileSync("cp", ["-al", modules, staging]);
    const scope = path.join(staging, "@node-llama-cpp");
    for (const [name, files] of backends) if (name !== variant) for (const f of files) rmSync(path.join(scope, f));
    execFileSync("mv", [staging, copy]);
  }
  return path.join(copy, path.basename(home));
}
const nlcDir = cpuVariant ? withOnlyCpuVariant(nlcHome, cpuVariant) : nlcHome;

/** The slice of node-llama-cpp's API used here (it is not a dependency, so no types are imported). */
type EvaluateItem = number | [number, { generateNext: { token: boolean; options: { temperature: number } } }];
interface Sequence {
  controlledEvaluate(input: EvaluateItem[]): Promise<unknown[]>;
  dispose(): void;
}
interface LlamaContext {
  getSequence(): Sequence;
  dispose(): Promise<void>;
}
interface NodeLlamaCpp {
  getLlama(o: { gpu: false; logLevel: "debug"; logger: (level: string, message: string) => void }): Promise<{
    loadModel(o: { modelPath: string }): Promise<{
      createContext(o: { contextSize: number; batchSize: number; threads: number }): Promise<LlamaContext>;
      dispose(): Promise<void>;
    }>;
  }>;
}
const nlc = (await import(pathToFileURL(path.join(nlcDir, "dist/index.js")).href)) as NodeLlamaCpp;
/** llama.cpp's log: the CPU backend it loaded is kept; errors and warnings are shown; the rest is dropped. */
let llamaCpuBackend = "?";
const llama = await nlc.getLlama({
  gpu: false,
  logLevel: "debug",
  logger: (level, message) => {
    const m = /loaded CPU backend from .*?(libggml-cpu-[\w-]+\.so)/.exec(message);
    if (m) llamaCpuBackend = m[1];
    else if (level === "error" || level === "fatal") log(`[llama.cpp] ${message.trim()}`);
  },
});
const nlcVersion = (JSON.parse(readFileSync(path.join(nlcDir, "package.json"), "utf8")) as { version: string }).version;

interface Entry {
  model: string;
  fileType: string;
  threads: number;
  pp: number;
  tg: number;
  reps: number;
  ours: { accumulate: string; simd: string; ppTokPerS: number; tgTokPerS: number; ppTokPerCpuS: number; tgTokPerCpuS: number };
  llama: { engine: string; cpuBackend: string; ppTokPerS: number; tgTokPerS: number; ppTokPerCpuS: number; tgTokPerCpuS: number };
  ratio: { pp: number; tg: number; ppPerCpuS: number; tgPerCpuS: number };
  bytesPerToken: number;
  bandwidthGBps: number;
  rooflineTgTokPerS: number;
  pctRoofline: { ours: number; llama: number };
  loadavgBefore: number[];
  loadavgAfter: number[];
  date: string;
}
const entries: Entry[] = [];

/** Wall seconds and CPU seconds (this process, every thread: both engines run in it) of one phase. */
interface PhaseTime {
  wall: number;
  cpu: number;
}
type Phase = [PhaseTime, PhaseTime];
const phase = (): (() => PhaseTime) => {
  const t = performance.now();
  const c = process.cpuUsage();
  return () => {
    const d = process.cpuUsage(c);
    return { wall: (performance.now() - t) / 1e3, cpu: (d.user + d.system) / 1e6 };
  };
};

for (const model of models) {
  const plan = await planCheckpoint(model);
  await plan.store.close();
  const perToken = bytesPerToken(plan.config, plan.weights.map((w) => ({ name: w.name, byteLength: w.readBytes })));
  const fileType = String(readGgufHeader(model).metadata.get("general.file_type")?.value ?? "?");
  const maxThreads = Math.max(...threadList);
  log(`${path.basename(model)}: loading (ours, ${maxThreads} threads)...`);
  const ours = await loadModel(model, { backend: "wasm", threads: maxThreads, accumulate, simd });
  const k = ours.kernels as unknown as WasmKernels;
  const bandwidth = measureBandwidth(k, 512 << 20, 3);
  log(`bandwidth: ${JSON.stringify(bandwidth.gbps)} GB/s; ${(perToken / 2 ** 20).toFixed(0)} MiB read per decoded token; kernels ${k.simd}, ${k.accumulate} sums`);
  const V = ours.config.vocab_size;
  const ids = Array.from({ length: pp + tg }, (_, i) => (i * 7919 + 13) % V);
  log(`${path.basename(model)}: loading (llama.cpp)...`);
  const lm = await llama.loadModel({ modelPath: model });

  const runOurs = async (): Promise<Phase> => {
    const state = ours.newState();
    const p = phase();
    await ours.forward(ids.slice(0, pp), state, { lastOnly: true });
    const ppT = p();
    const g = phase();
    for (const id of ids.slice(pp)) await ours.forward([id], state, { lastOnly: true });
    return [ppT, g()];
  };

  for (const threads of threadList) {
    k.threads = threads;
    const ctx = await lm.createContext({ contextSize: pp + tg + 16, batchSize: pp, threads });
    const runLlama = async (): Promise<Phase> => {
      const seq = ctx.getSequence();
      try {
        // The last token of each call asks for the next token (greedy), so llama.cpp computes its logits as we
        // do; without that request it skips the output layer (lm_head: over half the bytes of a real-slice step).
        const withLogits = (t: number[]): EvaluateItem[] => t.map((id, i) => (i === t.length - 1 ? [id, { generateNext: { token: true, options: { temperature: 0 } } }] : id));
        const p = phase();
        await seq.controlledEvaluate(withLogits(ids.slice(0, pp)));
        const ppT = p();
        const g = phase();
        for (const id of ids.slice(pp)) await seq.controlledEvaluate(withLogits([id]));
        return [ppT, g()];
      } finally {
        seq.dispose();
      }
    };
    // One untimed run of each first: JIT tiers, page faults of the weights, thread start-up.
    await runOurs();
    await runLlama();
    const before = loadavg();
    const best = { ours: [Infinity, Infinity], llama: [Infinity, Infinity] };
    const cpu = { ours: [Infinity, Infinity], llama: [Infinity, Infinity] };
    for (let r = 0; r < reps; r++) {
      for (const [name, run] of [["ours", runOurs], ["llama", runLlama]] as const) {
        const [a, b] = await run();
        best[name] = [Math.min(best[name][0], a.wall), Math.min(best[name][1], b.wall)];
        cpu[name] = [Math.min(cpu[name][0], a.cpu), Math.min(cpu[name][1], b.cpu)];
        log(`  ${threads}t rep ${r + 1} ${name}: pp ${(pp / a.wall).toFixed(1)} tok/s (${(pp / a.cpu).toFixed(1)} per CPU-s), tg ${(tg / b.wall).toFixed(2)} tok/s (${(tg / b.cpu).toFixed(2)} per CPU-s)`);
      }
    }
    await ctx.dispose();
    const bw = bandwidth.gbps[threads] ?? bandwidth.gbps[1];
    const roofline = (bw * 1e9) / perToken;
    const e: Entry = {
      model: path.basename(model),
      fileType,
      threads,
      pp,
      tg,
      reps,
      ours: { accumulate: k.accumulate, simd: k.simd, ppTokPerS: pp / best.ours[0], tgTokPerS: tg / best.ours[1], ppTokPerCpuS: pp / cpu.ours[0], tgTokPerCpuS: tg / cpu.ours[1] },
      llama: { engine: `llama.cpp (node-llama-cpp ${nlcVersion}, prebuilt CPU)`, cpuBackend: llamaCpuBackend, ppTokPerS: pp / best.llama[0], tgTokPerS: tg / best.llama[1], ppTokPerCpuS: pp / cpu.llama[0], tgTokPerCpuS: tg / cpu.llama[1] },
      ratio: { pp: best.llama[0] / best.ours[0], tg: best.llama[1] / best.ours[1], ppPerCpuS: cpu.llama[0] / cpu.ours[0], tgPerCpuS: cpu.llama[1] / cpu.ours[1] },
      bytesPerToken: perToken,
      bandwidthGBps: bw,
      rooflineTgTokPerS: roofline,
      pctRoofline: { ours: (100 * tg) / best.ours[1] / roofline, llama: (100 * tg) / best.llama[1] / roofline },
      loadavgBefore: before,
      loadavgAfter: loadavg(),
      date: new Date().toISOString(),
    };
    entries.push(e);
  }
  await lm.dispose();
  await k.close();
}

const m = machineFacts();
const file = existsSync(out) ? (JSON.parse(readFileSync(out, "utf8")) as { entries?: Record<string, Entry> }) : {};
const all = { machine: m, entries: { ...(file.entries ?? {}) } };
for (const e of entries) all.entries[`${e.model} ${e.threads}t ${e.ours.accumulate} ${e.ours.simd}${cpuVariant ? ` vs ${cpuVariant}` : ""}`] = e;
writeFileSync(out, `${JSON.stringify(all, null, 2)}\n`);
console.log(`${m.cpu}, pp${pp} / tg${tg}, best of ${reps}, interleaved; load average at the start ${entries[0]?.loadavgBefore.map((l) => l.toFixed(1)).join(" ")}\n`);
console.log(`llama.cpp CPU backend: ${llamaCpuBackend}${cpuVariant ? ` (only --llama-cpu ${cpuVariant} offered)` : " (the best of those node-llama-cpp ships, for this CPU)"}\n`);
console.log(`| file | threads | ours pp${pp} | llama.cpp pp${pp} | ratio (per CPU-s) | ours tg${tg} | llama.cpp tg${tg} | ratio (per CPU-s) | roofline tg | ours % | llama.cpp % |`);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const e of entries) {
  console.log(
    `| ${e.model} | ${e.threads} | ${e.ours.ppTokPerS.toFixed(1)} | ${e.llama.ppTokPerS.toFixed(1)} | ${e.ratio.pp.toFixed(2)} (${e.ratio.ppPerCpuS.toFixed(2)}) | ${e.ours.tgTokPerS.toFixed(2)} | ${e.llama.tgTokPerS.toFixed(2)} | ${e.ratio.tg.toFixed(2)} (${e.ratio.tgPerCpuS.toFixed(2)}) | ${e.rooflineTgTokPerS.toFixed(1)} | ${e.pctRoofline.ours.toFixed(0)}% | ${e.pctRoofline.llama.toFixed(0)}% |`,
  );
}
process.exit(0);
