/**
 * The "real-slice" model: Qwen3-Next-80B's exact layer sizes (hidden 2048, DeltaNet 16/32 heads of 128,
 * attention 16/2 heads of 256, experts 512 wide, top-10 plus the shared expert, vocab 151936) with
 * 4 layers (3 DeltaNet + 1 attention) and 64 experts: random BF16 weights generated straight into the
 * kernels' allocator (no files, ~3 GB). Decode and prefill tokens/s on 1..N threads.
 */
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseConfig, type Qwen3NextConfig } from "../src/config.js";
import { expectedTensors } from "../src/loading/expected.js";
import type { Weight } from "../src/kernels/types.js";
import type { WasmKernels } from "../src/kernels/wasm/kernels.js";
import { Qwen3NextForCausalLM } from "../src/model/qwen3_next_for_causal_lm.js";
import { fillBf16 } from "./matvec.js";

export const PUBLISHED_CONFIG = new URL("../test/fixtures/published/Qwen3-Next-80B-A3B-Instruct.config.json", import.meta.url);

export function publishedConfig(): Qwen3NextConfig {
  return parseConfig(JSON.parse(readFileSync(PUBLISHED_CONFIG, "utf8")), "Qwen3-Next-80B-A3B-Instruct config.json");
}

export function realSliceConfig(): Qwen3NextConfig {
  const raw = JSON.parse(readFileSync(PUBLISHED_CONFIG, "utf8"));
  return parseConfig({ ...raw, num_hidden_layers: 4, num_experts: 64, mtp_num_hidden_layers: 0 }, "real-slice config");
}

/** Every tensor of the config allocated in the kernels' memory and filled with random BF16. */
export function randomWeights(k: WasmKernels, c: Qwen3NextConfig, onTensor?: (done: number, total: number) => void): Map<string, Weight> {
  const tensors = expectedTensors(c);
  const map = new Map<string, Weight>();
  tensors.forEach((t, i) => {
    const w = k.allocWeight(t.name, "BF16", t.shape);
    // Zero-centred norms stay 0 (scale 1); the DeltaNet output norm is a plain scale: 1.0; the rest random.
    if (t.name.endsWith("linear_attn.norm.weight")) (w.data as Uint16Array).fill(0x3f80);
    else if (t.shape.length > 1) fillBf16(w.data as Uint16Array, i + 1);
    map.set(t.name, w);
    onTensor?.(i + 1, tensors.length);
  });
  return map;
}

export interface SliceResult {
  threads: number;
  accumulate: string;
  prefillTokens: number;
  prefillTokPerS: number;
  decodeTokens: number;
  decodeTokPerS: number;
}

/**
 * Prefill `prefill` tokens (best of two runs on fresh states), then decode `decode` tokens one at a time;
 * decode tokens/s is from the median token time, robust to other processes briefly taking a core.
 */
export async function runSlice(k: WasmKernels, model: Qwen3NextForCausalLM, prefill: number, decode: number): Promise<SliceResult> {
  const V = model.config.vocab_size;
  const ids = Array.from({ length: prefill }, (_, i) => (i * 7919) % V);
  let prefillS = Infinity;
  let state = model.newState();
  for (let run = 0; run < 2; run++) {
    state = model.newState();
    const t = performance.now();
    await model.forward(ids, state, { lastOnly: true });
    prefillS = Math.min(prefillS, (performance.now() - t) / 1e3);
  }
  const times: number[] = [];
  for (let i = 0; i < decode; i++) {
    const t = performance.now();
    await model.forward([(i * 104729) % V], state, { lastOnly: true });
    times.push((performance.now() - t) / 1e3);
  }
  times.sort((a, b) => a - b);
  const median = times.length ? times[Math.floor(times.length / 2)] : NaN;
  return { threads: k.threads, accumulate: k.accumulate, prefillTokens: prefill, prefillTokPerS: prefill / prefillS, decodeTokens: decode, decodeTokPerS: 1 / median };
}

export function sliceModel(k: WasmKernels, c: Qwen3NextConfig, weights: Map<string, Weight>): Qwen3NextForCausalLM {
  const src = {
    get(name: string): Weight {
      const w = weights.get(name);
      if (!w) throw new Error(`real-slice model has no tensor ${name}`);
      return w;
    },
    has: (name: string) => weights.has(name),
  };
  return new Qwen3NextForCausalLM(c, k, src);
}

/**
 * Run directly: `node --import tsx bench/real_slice.ts [--prefill 64] [--decode 8] [--threads 1,2]
 * [--accumulate f64,f32] [--simd auto]`: the real slice's prefill and decode tok/s for each thread count and
 * arithmetic, as JSON lines on stdout (the full benchmark, with tables, is `npm run bench`).
 */
async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const arg = (name: string, dflt: string): string => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : dflt;
  };
  const threads = arg("threads", "1,2").split(",").map(Number);
  const { createWasmKernels } = await import("../src/kernels/wasm/kernels.js");
  const k = await createWasmKernels({ threads: Math.max(...threads), simd: arg("simd", "auto") as "auto" });
  const cfg = realSliceConfig();
  const model = sliceModel(k, cfg, randomWeights(k, cfg));
  runSlice(k, model, 4, 2); // warm-up (JIT)
  for (const acc of arg("accumulate", "f64,f32").split(",")) {
    for (const t of threads) {
      k.accumulate = acc as "f64" | "f32";
      k.threads = t;
      console.log(JSON.stringify({ simd: (k as { simd?: string }).simd ?? "plain", ...runSlice(k, model, Number(arg("prefill", "64")), Number(arg("decode", "8"))) }));
    }
  }
  await k.close();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
