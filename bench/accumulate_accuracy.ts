/**
 * `node --import tsx bench/accumulate_accuracy.ts [--layers 4] [--experts 16] [--vocab 32768] [--prefill 128]
 *  [--decode 32] [--threads 2]`
 *
 * How far the fast matrix-product arithmetic moves the model from the exact one, on a random model with
 * Qwen3-Next-80B's layer widths (hidden 2048, DeltaNet 16/32 heads of 128, attention 16/2 heads of 256, experts
 * 512 wide, top-10 plus the shared expert), by default 4 layers (3 DeltaNet + 1 attention), 16 experts and
 * vocab 32768, random BF16 weights generated in memory (bench/real_slice.ts). The same seeded token ids run
 * teacher-forced through the model: a `prefill`-token prompt in one call (the matrix-matrix kernels), then
 * `decode` tokens one at a time (the matrix-vector kernels). Against the exact path (`--accumulate f64`:
 * exact products summed in float64, the plain build; the relaxed build is bit-identical there), for each of
 *   f32 sums, plain SIMD build      (products and sums in float32, folded into float64 every 128 columns for one token, 64 for several)
 *   f32 sums, relaxed SIMD build    (the same with fused multiply-adds: one rounding less per term)
 * it reports the largest logit difference, top-1 agreement and mean KL(exact || fast), prompt and decode
 * positions apart. Writes bench/accumulate-accuracy-results.json.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../src/config.js";
import { createWasmKernels, type WasmKernels } from "../src/kernels/wasm/kernels.js";
import { compare, logitSpread, type Accuracy } from "./logit_compare.js";
import { machineFacts } from "./machine.js";
import { PUBLISHED_CONFIG, randomWeights, sliceModel } from "./real_slice.js";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";

const args = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const layers = Number(arg("layers", "4"));
const experts = Number(arg("experts", "16"));
const vocab = Number(arg("vocab", "32768"));
const prefill = Number(arg("prefill", "128"));
const decode = Number(arg("decode", "32"));
const threads = Number(arg("threads", "2"));
const out = fileURLToPath(new URL("./accumulate-accuracy-results.json", import.meta.url));
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Seeded token ids (a 32-bit LCG), as bench/quant_accuracy.ts draws them. */
function tokenIds(n: number, V: number, seed = 12345): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % V;
  });
}

async function main(): Promise<void> {
  const raw = JSON.parse(readFileSync(PUBLISHED_CONFIG, "utf8"));
  const config = parseConfig(
    { ...raw, num_hidden_layers: layers, full_attention_interval: Math.min(4, layers), num_experts: experts, vocab_size: vocab, mtp_num_hidden_layers: 0 },
    "accumulate-accuracy config",
  );
  const V = config.vocab_size;
  const ids = tokenIds(prefill + decode, V);

  /** Logits of the prompt (one call) and of each decoded token (one call each), [prefill + decode, V]. */
  const run = async (k: WasmKernels, model: ReturnType<typeof sliceModel>): Promise<{ logits: Float32Array; prefillS: number; decodeS: number }> => {
    const logits = new Float32Array((prefill + decode) * V);
    const state = model.newState();
    let t = performance.now();
    logits.set(await model.forward(ids.slice(0, prefill), state), 0);
    const prefillS = (performance.now() - t) / 1e3;
    t = performance.now();
    for (let i = 0; i < decode; i++) logits.set(await model.forward([ids[prefill + i]], state), (prefill + i) * V);
    return { logits, prefillS, decodeS: (performance.now() - t) / 1e3 };
  };

  const modes = [
    { name: "exact (f64 sums)", simd: "plain", accumulate: "f64" },
    { name: "exact (f64 sums), relaxed build", simd: "relaxed", accumulate: "f64" },
    { name: "f32 sums, plain build", simd: "plain", accumulate: "f32" },
    { name: "f32 sums, relaxed build", simd: "relaxed", accumulate: "f32" },
  ] as const;
  const kernels: Record<string, { k: WasmKernels; model: ReturnType<typeof sliceModel> }> = {};
  for (const simd of ["plain", "relaxed"] as const) {
    const k = await createWasmKernels({ threads, simd });
    // The same seeds: both builds hold identical weights.
    kernels[simd] = { k, model: sliceModel(k, config, randomWeights(k, config)) };
  }
  const results: Array<{ mode: string; simd: string; accumulate: string; prompt: Accuracy; decode: Accuracy; all: Accuracy; prefillS: number; decodeS: number }> = [];
  let ref: Float32Array | undefined;
  for (const m of modes) {
    const { k, model } = kernels[m.simd];
    k.accumulate = m.accumulate;
    const r = await run(k, model);
    ref ??= r.logits;
    const P = prefill * V;
    const acc = {
      prompt: compare(ref.subarray(0, P), r.logits.subarray(0, P), prefill, V),
      decode: compare(ref.subarray(P), r.logits.subarray(P), decode, V),
      all: compare(ref, r.logits, prefill + decode, V),
    };
    results.push({ mode: m.name, simd: m.simd, accumulate: m.accumulate, ...acc, prefillS: r.prefillS, decodeS: r.decodeS });
    log(`${m.name}: prompt ${JSON.stringify(acc.prompt)} decode ${JSON.stringify(acc.decode)}`);
  }
  const result = {
    date: new Date().toISOString(),
    machine: machineFacts(),
    loadavg: loadavg(),
    model: {
      note: "random BF16 weights (bench/real_slice.ts's fill); the 80B model's layer widths, fewer layers and experts, smaller vocab",
      hidden_size: config.hidden_size,
      layers: config.layer_types,
      num_experts: config.num_experts,
      num_experts_per_tok: config.num_experts_per_tok,
      vocab_size: V,
    },
    settings: { threads, prefillTokens: prefill, decodeTokens: decode, tokenSeed: 12345 },
    reference: { what: "exact products summed in float64 (--accumulate f64), plain build", ...logitSpread(ref!, prefill + decode, V) },
    results,
  };
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  const sp = result.reference;
  console.log(`${layers} layers, hidden ${config.hidden_size}, ${experts} experts (top-${config.num_experts_per_tok}) + shared, vocab ${V}; ${prefill} prompt + ${decode} decoded tokens, teacher-forced`);
  console.log(`exact logits: mean std ${sp.meanLogitStd.toFixed(3)}, mean top-1 margin ${sp.meanTop1Margin.toFixed(3)}, smallest ${sp.minTop1Margin.toExponential(1)}`);
  console.log("| arithmetic | max abs logit diff (prompt / decode) | top-1 agree (prompt / decode) | mean KL (prompt / decode) |");
  console.log("|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.mode} | ${r.prompt.maxAbsLogitDiff.toExponential(1)} / ${r.decode.maxAbsLogitDiff.toExponential(1)} | ${(100 * r.prompt.top1Agreement).toFixed(1)}% / ${(100 * r.decode.top1Agreement).toFixed(1)}% | ${r.prompt.meanKL.toExponential(1)} / ${r.decode.meanKL.toExponential(1)} |`,
    );
  }
  for (const { k } of Object.values(kernels)) await k.close();
  process.exit(0);
}

main().catch((e: unknown) => {
  console.error(`accumulate_accuracy: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
