/**
 * `npx tsx bench/quant_accuracy.ts [--variant moe|dense] [--layers 4] [--experts 16] [--vocab 32768]
 *  [--cache DIR] [--tokens 256] [--decode 16] [--rounds 3] [--build-only]`
 *
 * Quantization accuracy and speed on a random model with Qwen3-Next-80B's layer widths (hidden 2048, DeltaNet
 * 16/32 heads of 128, attention 16/2 heads of 256, experts 512 wide, top-10 plus the shared expert) but only
 * by default 4 layers (3 DeltaNet + 1 attention), 16 experts and vocab 32768, so that the TypeScript quantizer
 * writes its Q4_K_M file in minutes. `--variant dense` makes every layer a dense MLP 512 wide (mlp_only_layers), so the
 * quantization error is seen without router flips (random routers have top-k margins ~1e-3).
 *
 * Builds (or reuses, under --cache) the BF16 safetensors checkpoint (`qwen3-next init`'s writer, seed 1, the
 * GGUF fixture's 512-token tokenizer) and its bf16 / q8_0 / q4_k_m GGUF files (`qwen3-next quantize`'s writer).
 * Then, wasm backend, float32 sums, one thread:
 *   accuracy: the same seeded token ids teacher-forced (one prefill) through the safetensors model and each GGUF:
 *             max |logit diff|, top-1 agreement, mean KL(BF16 || quant) in float64;
 *   q8:       the quantized files again with `accumulate: "q8"` (activations quantized per block, integer dot
 *             products, as llama.cpp) against the exact path on the same file (f64 sums) and against BF16;
 *   speed:    decode tok/s (median token time) for the three GGUFs in interleaved rounds (the quantized ones with
 *             f32 and q8 products in turn), weight bytes per token;
 *   memory:   peak RSS of a separate process loading each file (bench/load_memory.ts) against the file size.
 * Results go to bench/quant-accuracy-results.json (one entry per variant).
 */
import { execFileSync } from "node:child_process";
import { loadavg } from "node:os";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readGgufHeader } from "../src/io/gguf.js";
import { GGUF_QWEN3NEXT } from "../src/loading/gguf_layout.js";
import { checkpointToGguf } from "../src/loading/to_gguf.js";
import { bytesPerToken } from "../src/loading/bytes_per_token.js";
import { loadCheckpoint } from "../src/loading/checkpoint.js";
import { createKernels } from "../src/kernels/index.js";
import type { Accumulate } from "../src/kernels/types.js";
import type { WasmKernels } from "../src/kernels/wasm/kernels.js";
import { Qwen3NextForCausalLM } from "../src/model/qwen3_next_for_causal_lm.js";
import { writeRandomCheckpoint } from "../src/init/random_checkpoint.js";
import { tokenizerFromGguf } from "../src/tokenizer/gguf_tokenizer.js";
import { compare, logitSpread, type Accuracy } from "./logit_compare.js";
import { machineFacts } from "./machine.js";
import { PUBLISHED_CONFIG } from "./real_slice.js";

const args = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const variant = arg("variant", "moe");
if (variant !== "moe" && variant !== "dense") throw new Error(`--variant is ${variant}, expected moe or dense`);
const layers = Number(arg("layers", "4"));
const experts = Number(arg("experts", "16"));
const vocab = Number(arg("vocab", "32768"));
const key = `${variant}-${layers}L-${experts}E-V${vocab}`;
const cache = path.resolve(arg("cache", "/tmp/qwen3-next-quant-accuracy"), key);
const nTokens = Number(arg("tokens", "256"));
const nDecode = Number(arg("decode", "16"));
const rounds = Number(arg("rounds", "3"));
const TYPES = ["bf16", "q8_0", "q4_k_m"] as const;
const FIXTURE_GGUF = "reference/gguf/gguf-q8_0/model.gguf";
const here = path.dirname(fileURLToPath(import.meta.url));

function benchConfig(): Record<string, unknown> {
  const raw = JSON.parse(readFileSync(PUBLISHED_CONFIG, "utf8"));
  // Every 4th layer is attention as in the 80B model; with fewer than 4 layers the last one is.
  const c = { ...raw, num_hidden_layers: layers, full_attention_interval: Math.min(4, layers), num_experts: experts, vocab_size: vocab, mtp_num_hidden_layers: 0 };
  return variant === "dense" ? { ...c, intermediate_size: 512, mlp_only_layers: Array.from({ length: layers }, (_, i) => i) } : c;
}

async function build(): Promise<void> {
  const ckpt = path.join(cache, "ckpt");
  if (!existsSync(ckpt)) {
    mkdirSync(cache, { recursive: true });
    log(`writing the BF16 checkpoint to ${ckpt}`);
    await writeRandomCheckpoint(benchConfig(), ckpt, { seed: 1 });
    const t = tokenizerFromGguf(readGgufHeader(FIXTURE_GGUF));
    writeFileSync(path.join(ckpt, "tokenizer.json"), JSON.stringify(t.tokenizerJson));
    writeFileSync(path.join(ckpt, "tokenizer_config.json"), JSON.stringify(t.tokenizerConfig));
  }
  for (const type of TYPES) {
    const out = path.join(cache, `${type}.gguf`);
    if (existsSync(out)) continue;
    const t = performance.now();
    await checkpointToGguf(ckpt, `${out}.tmp.gguf`, { fileType: type, layout: GGUF_QWEN3NEXT });
    execFileSync("mv", [`${out}.tmp.gguf`, out]);
    log(`quantized ${type} in ${((performance.now() - t) / 1e3).toFixed(1)} s`);
  }
}

function log(s: string): void {
  if (process.stderr.isTTY || process.env.BENCH_LOG) process.stderr.write(`${s}\n`);
}

/** Seeded token ids (a 32-bit LCG), the same for every model. */
function tokenIds(n: number, V: number, seed = 12345): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % V;
  });
}

async function load(file: string): Promise<{ model: Qwen3NextForCausalLM; bytesPerToken: number; kernels: WasmKernels }> {
  const k = (await createKernels({ backend: "wasm", threads: 1, accumulate: "f32" })) as WasmKernels;
  const ckpt = await loadCheckpoint(file, { allocator: k });
  const model = Qwen3NextForCausalLM.fromCheckpoint(ckpt, k);
  const weights = ckpt.names().map((name) => ({ name, byteLength: ckpt.get(name).data.byteLength }));
  return { model, bytesPerToken: bytesPerToken(ckpt.config, weights), kernels: k };
}

/** Peak RSS of a fresh process that loads `file` (bench/load_memory.ts). */
function loadMemory(file: string): { maxRssBytes: number; seconds: number } {
  const out = execFileSync(process.execPath, ["--import", "tsx", path.join(here, "load_memory.ts"), file], { encoding: "utf8" });
  const r = JSON.parse(out.trim().split("\n").pop()!) as { maxRssBytes: number; seconds: number };
  return { maxRssBytes: r.maxRssBytes, seconds: r.seconds };
}

/** Peak RSS of a fresh process that only starts Node, tsx and the WASM kernels (what load_memory.ts adds to a load). */
function baselineRss(): number {
  const src = `const { createKernels } = await import(${JSON.stringify(path.join(here, "../src/kernels/index.ts"))});
await createKernels({ backend: "wasm", threads: 1 }); console.log(process.resourceUsage().maxRSS * 1024); process.exit(0);`;
  return Number(execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", src], { encoding: "utf8" }).trim());
}

async function main(): Promise<void> {
  await build();
  if (args.includes("--build-only")) return;
  const files = Object.fromEntries(TYPES.map((t) => [t, path.join(cache, `${t}.gguf`)])) as Record<(typeof TYPES)[number], string>;

  const memory = Object.fromEntries(TYPES.map((t) => [t, { fileBytes: statSync(files[t]).size, ...loadMemory(files[t]) }]));
  const baselineRssBytes = baselineRss();
  log("memory measured");

  const ref = await load(path.join(cache, "ckpt"));
  const V = ref.model.config.vocab_size;
  const ids = tokenIds(nTokens, V);
  const refLogits = (await ref.model.forward(ids, ref.model.newState())) as Float32Array;
  const models = {} as Record<(typeof TYPES)[number], { model: Qwen3NextForCausalLM; bytesPerToken: number; kernels: WasmKernels }>;
  const accuracy = {} as Record<string, Accuracy>;
  /** q8 products on each quantized file: against the exact path on the same file, and against BF16. */
  const q8 = {} as Record<string, { vsExact: Accuracy; vsBf16: Accuracy }>;
  const run = async (t: (typeof TYPES)[number], acc: Accumulate): Promise<Float32Array> => {
    models[t].kernels.accumulate = acc;
    return (await models[t].model.forward(ids, models[t].model.newState())) as Float32Array;
  };
  for (const t of TYPES) {
    models[t] = await load(files[t]);
    accuracy[t] = compare(refLogits, await run(t, "f32"), nTokens, V);
    log(`${t}: ${JSON.stringify(accuracy[t])}`);
    if (t !== "bf16") {
      const q = await run(t, "q8");
      q8[t] = { vsExact: compare(await run(t, "f64"), q, nTokens, V), vsBf16: compare(refLogits, q, nTokens, V) };
      log(`${t} q8: ${JSON.stringify(q8[t])}`);
    }
  }

  // Decode speed: each round decodes nDecode tokens on every type (and the quantized ones in f32 then q8 mode)
  // in turn, after a 16-token prefill.
  const RUNS = TYPES.flatMap((t) => (t === "bf16" ? [[t, "f32"]] : [[t, "f32"], [t, "q8"]]) as [(typeof TYPES)[number], Accumulate][]);
  const times: Record<string, number[]> = Object.fromEntries(RUNS.map(([t, a]) => [`${t}/${a}`, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [t, acc] of RUNS) {
      const m = models[t].model;
      models[t].kernels.accumulate = acc;
      const state = m.newState();
      await m.forward(ids.slice(0, 16), state, { lastOnly: true });
      for (const id of ids.slice(16, 16 + nDecode)) {
        const s = performance.now();
        await m.forward([id], state, { lastOnly: true });
        times[`${t}/${acc}`].push((performance.now() - s) / 1e3);
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  const c = ref.model.config;
  const result = {
    variant,
    key,
    date: new Date().toISOString(),
    machine: machineFacts(),
    model: {
      note: "random weights; the 80B model's layer widths, fewer layers and experts, smaller vocab",
      hidden_size: c.hidden_size,
      layers: c.layer_types,
      num_experts: c.num_experts,
      num_experts_per_tok: c.num_experts_per_tok,
      moe_intermediate_size: c.moe_intermediate_size,
      mlp_only_layers: c.mlp_only_layers,
      intermediate_size: c.intermediate_size,
      vocab_size: V,
    },
    settings: { backend: "wasm", simd: models.bf16.kernels.simd, loadAverage: loadavg(), accumulate: "f32 (and q8 where said)", threads: 1, teacherForcedTokens: nTokens, decodeTokensPerRound: nDecode, rounds, tokenSeed: 12345, weightSeed: 1 },
    reference: { what: "the BF16 safetensors checkpoint", bytesPerToken: ref.bytesPerToken, ...logitSpread(refLogits, nTokens, V) },
    baselineRssBytes,
    types: Object.fromEntries(
      TYPES.map((t) => [
        t,
        {
          ...accuracy[t],
          bytesPerToken: models[t].bytesPerToken,
          decodeTokPerS: 1 / median(times[`${t}/f32`]),
          ...(t === "bf16" ? {} : { q8: { ...q8[t], decodeTokPerS: 1 / median(times[`${t}/q8`]) } }),
          ...memory[t],
          rssOverFile: memory[t].maxRssBytes / memory[t].fileBytes,
          rssAboveBaselineOverFile: (memory[t].maxRssBytes - baselineRssBytes) / memory[t].fileBytes,
        },
      ]),
    ),
  };
  const file = path.join(here, "quant-accuracy-results.json");
  const all = existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>) : {};
  all[key] = result;
  writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
  const mlp = variant === "dense" ? `dense MLP ${c.intermediate_size} wide` : `${c.num_experts} experts (top-${c.num_experts_per_tok}) + shared`;
  const sp = result.reference;
  console.log(`${variant}: ${c.layer_types.length} layers, hidden ${c.hidden_size}, ${mlp}, vocab ${V}; ${nTokens} teacher-forced tokens`);
  console.log(`BF16 reference logits: mean std ${sp.meanLogitStd.toFixed(3)}, mean top-1 margin ${sp.meanTop1Margin.toFixed(3)}; baseline RSS (Node + tsx + WASM) ${(baselineRssBytes / 2 ** 20).toFixed(0)} MiB`);
  console.log("| type | max abs logit diff | top-1 agree | mean KL | bytes/token | decode tok/s | file | peak load RSS |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const t of TYPES) {
    const r = result.types[t];
    console.log(
      `| ${t} | ${r.maxAbsLogitDiff.toExponential(2)} | ${(100 * r.top1Agreement).toFixed(1)}% | ${r.meanKL.toExponential(2)} | ${(r.bytesPerToken / 2 ** 20).toFixed(1)} MiB | ${r.decodeTokPerS.toFixed(2)} | ${(r.fileBytes / 2 ** 20).toFixed(0)} MiB | ${(r.maxRssBytes / 2 ** 20).toFixed(0)} MiB (${r.rssOverFile.toFixed(2)}x; ${r.rssAboveBaselineOverFile.toFixed(2)}x above baseline) |`,
    );
  }
  console.log("\n| type, q8 products | vs exact path: max abs diff | top-1 | mean KL | vs BF16: top-1 | mean KL | decode tok/s (f32 products) |");
  console.log("|---|---|---|---|---|---|---|");
  for (const t of TYPES) {
    if (t === "bf16") continue;
    const r = result.types[t] as { decodeTokPerS: number; q8?: { vsExact: Accuracy; vsBf16: Accuracy; decodeTokPerS: number } };
    const q = r.q8!;
    console.log(
      `| ${t} | ${q.vsExact.maxAbsLogitDiff.toExponential(2)} | ${(100 * q.vsExact.top1Agreement).toFixed(1)}% | ${q.vsExact.meanKL.toExponential(2)} | ${(100 * q.vsBf16.top1Agreement).toFixed(1)}% | ${q.vsBf16.meanKL.toExponential(2)} | ${q.decodeTokPerS.toFixed(2)} (${r.decodeTokPerS.toFixed(2)}) |`,
    );
  }
  process.exit(0);
}

main().catch((e: unknown) => {
  console.error(`quant_accuracy: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
