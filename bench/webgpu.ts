/**
 * The model on the WebGPU backend (src/kernels/webgpu/) against the WASM backend on small
 * models with random BF16 weights shared by both: prefill and decode tokens/s, interleaved rounds (best of
 * them, the machine being shared), and the largest logit difference between the two on the same tokens. On a
 * machine without a GPU the adapter is Mesa's software rasteriser (llvmpipe): a check of correctness and of
 * the dispatch overhead, not of GPU speed. Writes bench/webgpu-results.json.
 *
 *   node --import tsx bench/webgpu.ts [--prefill 32] [--decode 8] [--rounds 3] [--threads 1]
 */
import { writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { parseConfig, type Qwen3NextConfig } from "../src/config.js";
import { DEMO_CONFIG } from "../src/init/demo.js";
import { createWasmKernels } from "../src/kernels/wasm/kernels.js";
import type { Kernels } from "../src/kernels/types.js";
import { webGpuBackend } from "../src/kernels/webgpu/backend.js";
import { Qwen3NextForCausalLM } from "../src/model/qwen3_next_for_causal_lm.js";
import { WebGpuKernels } from "../src/kernels/webgpu/kernels.js";
import { machineFacts } from "./machine.js";
import { randomWeights, sliceModel } from "./real_slice.js";

const argOf = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const prefill = Number(argOf("prefill", "32"));
const decode = Number(argOf("decode", "8"));
const rounds = Number(argOf("rounds", "3"));
const threads = Number(argOf("threads", "1"));
const log = (s: string) => process.stderr.write(s + "\n");

/** The demo checkpoint's shape (MoE, 4 layers, vocab 151,936) and a wider dense one (hidden 512, 8 layers). */
const MODELS: Array<{ name: string; config: Qwen3NextConfig }> = [
  { name: "demo (hidden 64, 4 layers, 8 experts, vocab 151936)", config: parseConfig(DEMO_CONFIG, "demo") },
  {
    name: "dense (hidden 512, 8 layers, vocab 32768)",
    config: parseConfig(
      { ...DEMO_CONFIG, vocab_size: 32768, hidden_size: 512, intermediate_size: 1536, num_hidden_layers: 8, num_attention_heads: 8, num_key_value_heads: 2, head_dim: 64, linear_key_head_dim: 64, linear_value_head_dim: 64, linear_num_key_heads: 4, linear_num_value_heads: 8, num_experts: 0, mtp_num_hidden_layers: 0 },
      "dense",
    ),
  },
];

interface Timing {
  prefillTokPerS: number;
  decodeTokPerS: number;
  logits: Float32Array;
}

/** Prefill `prefill` tokens on a fresh state, then decode `decode` tokens; tokens/s from the wall time of each phase. */
async function timeRun(forward: (ids: number[], state: unknown) => unknown, newState: () => unknown, V: number): Promise<Timing> {
  const ids = Array.from({ length: prefill }, (_, i) => (i * 7919) % V);
  const state = newState();
  let t = performance.now();
  await forward(ids, state);
  const prefillS = (performance.now() - t) / 1e3;
  t = performance.now();
  let logits = new Float32Array(0);
  for (let i = 0; i < decode; i++) logits = Float32Array.from((await forward([(i * 104729) % V], state)) as ArrayLike<number>);
  const decodeS = (performance.now() - t) / 1e3;
  return { prefillTokPerS: prefill / prefillS, decodeTokPerS: decode / decodeS, logits };
}

const machine = machineFacts();
const loadBefore = os.loadavg()[0];
log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, load ${loadBefore.toFixed(2)}`);
const gpu = await WebGpuKernels.create();
log(`WebGPU adapter: ${gpu.dev.description}`);
const results = [];
for (const { name, config } of MODELS) {
  const k = await createWasmKernels({ threads });
  try {
    const weights = randomWeights(k, config);
    const wasm = sliceModel(k, config, weights);
    const src = { get: (n: string) => weights.get(n)!, has: (n: string) => weights.has(n) };
    const webgpu = new Qwen3NextForCausalLM(config, webGpuBackend(gpu) as unknown as Kernels, src);
    const V = config.vocab_size;
    const best = { wasm: { prefill: 0, decode: 0 }, webgpu: { prefill: 0, decode: 0 } };
    let maxLogitDiff = 0;
    // A first WebGPU step uploads the weights and compiles the pipelines: not timed.
    await webgpu.forward([1, 2], webgpu.newState(), { lastOnly: true });
    for (let r = 0; r < rounds; r++) {
      const a = await timeRun((ids, s) => wasm.forward(ids, s as never, { lastOnly: true }), () => wasm.newState(), V);
      const b = await timeRun((ids, s) => webgpu.forward(ids, s as never, { lastOnly: true }), () => webgpu.newState(), V);
      for (const [key, t] of [["wasm", a], ["webgpu", b]] as const) {
        best[key].prefill = Math.max(best[key].prefill, t.prefillTokPerS);
        best[key].decode = Math.max(best[key].decode, t.decodeTokPerS);
      }
      for (let i = 0; i < V; i++) maxLogitDiff = Math.max(maxLogitDiff, Math.abs(a.logits[i] - b.logits[i]));
      log(`${name} round ${r + 1}: wasm prefill ${a.prefillTokPerS.toFixed(1)} decode ${a.decodeTokPerS.toFixed(1)}; webgpu prefill ${b.prefillTokPerS.toFixed(1)} decode ${b.decodeTokPerS.toFixed(1)} tok/s`);
    }
    results.push({ model: name, ...best, decodeRatio: best.webgpu.decode / best.wasm.decode, prefillRatio: best.webgpu.prefill / best.wasm.prefill, maxLogitDiff });
  } finally {
    await k.close();
  }
}
gpu.close();

const out = fileURLToPath(new URL("./webgpu-results.json", import.meta.url));
writeFileSync(out, JSON.stringify({ machine, adapter: gpu.dev.description, loadAverage: { before: loadBefore, after: os.loadavg()[0] }, prefill, decode, rounds, wasmThreads: threads, results }, null, 2) + "\n");
const rows = results.map(
  (r) =>
    `| ${r.model} | ${r.wasm.prefill.toFixed(1)} | ${r.webgpu.prefill.toFixed(1)} | ${r.wasm.decode.toFixed(1)} | ${r.webgpu.decode.toFixed(1)} | ${r.decodeRatio.toFixed(2)} | ${r.maxLogitDiff.toExponential(1)} |`,
);
process.stdout.write(
  [
    `| model | WASM prefill tok/s (${prefill}) | WebGPU prefill tok/s | WASM decode tok/s | WebGPU decode tok/s | WebGPU / WASM decode | max logit diff |`,
    "|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n") + "\n",
);
