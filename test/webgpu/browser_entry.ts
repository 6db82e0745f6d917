/**
 * What test/webgpu/browser.test.ts runs inside Chromium (bundled by Vite): the WebGPU backend on the browser's
 * `navigator.gpu`, checked there against the TypeScript kernels and the float64 TypeScript model. Returns the
 * largest differences; the test asserts on them.
 */
import { parseConfig } from "../../src/config.js";
import { f32ArrayToBf16 } from "../../src/io/dtype.js";
import { quantizeRow } from "../../src/io/ggml_quants.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { Weight } from "../../src/kernels/types.js";
import type { Kernels } from "../../src/kernels/types.js";
import { webGpuBackend } from "../../src/kernels/webgpu/backend.js";
import { WebGpuKernels } from "../../src/kernels/webgpu/kernels.js";
import { listParams, Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { maxScaledDiff, rng, uniform } from "../helpers/random.js";

async function run(): Promise<Record<string, number | string>> {
  const g = await WebGpuKernels.create();
  const ts = createTsKernels("f64");
  const rand = rng(11);
  const out: Record<string, number | string> = { adapter: g.dev.description };
  try {
    // BF16 and Q4_K matrix products.
    for (const dtype of ["BF16", "Q4_K"] as const) {
      const [rows, cols, T] = [37, 256, 5];
      const values = uniform(rand, rows * cols);
      const w = ts.allocWeight("w", dtype, [rows, cols]);
      if (dtype === "BF16") f32ArrayToBf16(values, w.data as Uint16Array);
      else for (let r = 0; r < rows; r++) quantizeRow(dtype, values, r * cols, w.data as Uint8Array, r * 144, cols);
      const x = Float64Array.from(Float32Array.from(uniform(rand, T * cols)));
      const want = new Float64Array(T * rows);
      ts.linear(w, x, T, want);
      const y = g.dev.alloc(T * rows);
      g.linear(w, g.dev.upload(x), T, y);
      out[`linear ${dtype}`] = maxScaledDiff(await g.dev.read(y), want);
    }
    // A small random model: logits of a prefill then two decode steps against the float64 TypeScript model.
    const config = parseConfig({
      model_type: "qwen3_next", vocab_size: 50, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 4, full_attention_interval: 2,
      num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, linear_num_key_heads: 2, linear_num_value_heads: 4, linear_key_head_dim: 8,
      linear_value_head_dim: 8, num_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 16, shared_expert_intermediate_size: 16,
      mtp_num_hidden_layers: 0, tie_word_embeddings: false,
    });
    const weights = new Map<string, Weight>();
    for (const { name, shape } of listParams(config)) {
      const w = ts.allocWeight(name, "BF16", shape);
      const n = (w.data as Uint16Array).length;
      const scale = shape.length === 1 ? 0.1 : 1 / Math.sqrt(shape[shape.length - 1]);
      f32ArrayToBf16(uniform(rand, n, -scale, scale), w.data as Uint16Array);
      weights.set(name, w);
    }
    const src = { get: (name: string) => weights.get(name)!, has: (name: string) => weights.has(name) };
    const cpu = new Qwen3NextForCausalLM(config, ts, src);
    const gpu = new Qwen3NextForCausalLM(config, webGpuBackend(g) as unknown as Kernels, src);
    const ids = [3, 14, 15, 9, 26, 5, 35];
    const [cs, gs] = [cpu.newState(), gpu.newState()];
    let worst = 0;
    for (const piece of [ids.slice(0, 5), ids.slice(5, 6), ids.slice(6)]) {
      const want = await cpu.forward(piece, cs);
      const got = await gpu.forward(piece, gs);
      worst = Math.max(worst, maxScaledDiff(got, want));
    }
    out["model logits"] = worst;
  } finally {
    g.close();
  }
  return out;
}

(globalThis as unknown as { runWebGpuChecks: typeof run }).runWebGpuChecks = run;
