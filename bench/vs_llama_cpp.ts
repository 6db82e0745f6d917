/**
 * `NODE_LLAMA_CPP=/path/to/node_modules/node-llama-cpp npx tsx bench/vs_llama_cpp.ts --model FILE.gguf
 *  [--threads N] [--pp 64] [--tg 32] [--reps 2] [--accumulate f32|f64]`
 *
 * The same GGUF file in both engines, runs interleaved (ours, llama.cpp, ours, ...): prompt processing of `pp`
 * tokens and generation of `tg` tokens one at a time (fixed token ids, no sampling), best of `reps`, tok/s and
 * the ratio. llama.cpp is node-llama-cpp's prebuilt CPU build (3.21.1 was used), loaded from the folder named
 * by NODE_LLAMA_CPP (it is not a dependency of this project: install it in a scratch folder with
 * `npm i -E node-llama-cpp@3.21.1`). llama.cpp's decode is timed through node-llama-cpp's
 * evaluateWithoutGeneratingNewTokens, one call per token, so its JS call overhead is included.
 */
import { availableParallelism } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { loadModel } from "../src/model/load.js";
import { machineFacts } from "./machine.js";

const args = process.argv.slice(2);
const arg = (name: string, dflt?: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const model = arg("model");
if (!model) throw new Error("--model FILE.gguf is required");
const threads = Number(arg("threads", String(Math.min(2, availableParallelism()))));
const pp = Number(arg("pp", "64"));
const tg = Number(arg("tg", "32"));
const reps = Number(arg("reps", "2"));
const accumulate = (arg("accumulate", "f32") as "f32" | "f64");
const nlcDir = process.env.NODE_LLAMA_CPP;
if (!nlcDir) throw new Error("set NODE_LLAMA_CPP to a node_modules/node-llama-cpp folder (npm i -E node-llama-cpp@3.21.1 in a scratch folder)");

const ours = await loadModel(model, { backend: "wasm", threads, accumulate });
const V = ours.config.vocab_size;
const ids = Array.from({ length: pp + tg }, (_, i) => (i * 7919 + 13) % V);

/** The slice of node-llama-cpp's API used here (it is not a dependency, so no types are imported). */
interface Sequence {
  evaluateWithoutGeneratingNewTokens(tokens: number[]): Promise<void>;
  dispose(): void;
}
interface NodeLlamaCpp {
  getLlama(o: { gpu: false }): Promise<{
    loadModel(o: { modelPath: string }): Promise<{
      createContext(o: { contextSize: number; batchSize: number; threads: number }): Promise<{ getSequence(): Sequence; dispose(): Promise<void> }>;
      dispose(): Promise<void>;
    }>;
  }>;
}
const nlc = (await import(pathToFileURL(path.join(nlcDir, "dist/index.js")).href)) as NodeLlamaCpp;
const llama = await nlc.getLlama({ gpu: false });
const lm = await llama.loadModel({ modelPath: model });
const ctx = await lm.createContext({ contextSize: pp + tg + 16, batchSize: pp, threads });

async function runOurs(): Promise<[number, number]> {
  const state = ours.newState();
  let t = performance.now();
  await ours.forward(ids.slice(0, pp), state);
  const ppS = (performance.now() - t) / 1e3;
  t = performance.now();
  for (const id of ids.slice(pp)) await ours.forward([id], state);
  return [ppS, (performance.now() - t) / 1e3];
}

async function runLlama(): Promise<[number, number]> {
  const seq = ctx.getSequence();
  try {
    let t = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(ids.slice(0, pp));
    const ppS = (performance.now() - t) / 1e3;
    t = performance.now();
    for (const id of ids.slice(pp)) await seq.evaluateWithoutGeneratingNewTokens([id]);
    return [ppS, (performance.now() - t) / 1e3];
  } finally {
    seq.dispose();
  }
}

const best = { ours: [Infinity, Infinity], llama: [Infinity, Infinity] };
for (let r = 0; r < reps; r++) {
  for (const [name, run] of [["ours", runOurs], ["llama", runLlama]] as const) {
    const [a, b] = await run();
    best[name] = [Math.min(best[name][0], a), Math.min(best[name][1], b)];
  }
}
await ctx.dispose();
await lm.dispose();
const tps = (n: number, s: number) => n / s;
const row = (name: string, [a, b]: number[]) => `| ${name} | ${tps(pp, a).toFixed(1)} | ${tps(tg, b).toFixed(1)} |`;
const m = machineFacts();
console.log(`${path.basename(model)}: ${m.cpu}, ${threads} thread(s), pp${pp} / tg${tg}, best of ${reps}, ours with --accumulate ${accumulate}\n`);
console.log(`| engine | pp${pp} tok/s | tg${tg} tok/s |\n|---|---|---|`);
console.log(row("qwen3-next-ts (wasm)", best.ours));
console.log(row("llama.cpp (node-llama-cpp 3.21.1)", best.llama));
console.log(`| ratio ours / llama.cpp | ${(best.llama[0] / best.ours[0]).toFixed(2)} | ${(best.llama[1] / best.ours[1]).toFixed(2)} |`);
process.exit(0);
