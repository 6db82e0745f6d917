/**
 * Speculative decoding with the MTP head: decode tokens/s with and without it (K = 1, 2, 3 drafts), and the
 * acceptance rate, through `generate` (greedy), on two models of the real slice's width (hidden 2048,
 * DeltaNet 16/32 heads of 128, attention 16/2 of 256, experts 512 wide top-10 + shared, vocab 151936) with
 * an MTP layer:
 *   --model accepting  the accepting checkpoint (test/helpers/accepting_model.ts): every draft is right;
 *   --model random     random weights (the real slice plus a random MTP head): drafts nearly never right,
 *                      which measures what speculation costs when it does not pay (adaptive draft length on).
 * Also the cost of the verify step's rollback record (one copy of each DeltaNet state per step) and of a
 * rollback, against a step. Writes bench/speculative-results.json (one entry per model and layer count).
 *
 *   node --import tsx bench/speculative.ts --model accepting [--layers 4] [--experts 64] [--tokens 32] [--threads N] [--accumulate f64|f32]
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { parseConfig, type Qwen3NextConfig } from "../src/config.js";
import { generate, type GenerateResult } from "../src/generate/generate.js";
import type { SamplingParams } from "../src/generate/sampler.js";
import { f32ArrayToBf16 } from "../src/io/dtype.js";
import { opaque, type Accumulate, type Weight } from "../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../src/kernels/wasm/kernels.js";
import { expectedTensors } from "../src/loading/expected.js";
import { DeltaNetState } from "../src/model/state.js";
import { Workspace } from "../src/model/weights.js";
import { bundledTokenizerDir, QwenTokenizer } from "../src/tokenizer/tokenizer.js";
import { acceptingRows } from "../test/helpers/accepting_model.js";
import { machineFacts } from "./machine.js";
import { fillBf16 } from "./matvec.js";
import { PUBLISHED_CONFIG, sliceModel } from "./real_slice.js";

const argv = process.argv;
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const int = (name: string, dflt: number): number => {
  const v = Number(arg(name, String(dflt)));
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} expects an integer >= 1`);
  return v;
};
const kind = arg("model", "accepting");
if (kind !== "accepting" && kind !== "random") throw new Error(`--model is ${kind}, expected accepting or random`);
const layers = int("layers", 4);
const experts = int("experts", 64);
const tokens = int("tokens", 32);
const threads = int("threads", os.availableParallelism());
const accumulate = arg("accumulate", "f64") as Accumulate;
if (accumulate !== "f64" && accumulate !== "f32") throw new Error(`--accumulate is ${accumulate}, expected f64 or f32`);

function config(): Qwen3NextConfig {
  const raw = JSON.parse(readFileSync(PUBLISHED_CONFIG, "utf8"));
  return parseConfig({ ...raw, num_hidden_layers: layers, num_experts: experts, mtp_num_hidden_layers: 1, tie_word_embeddings: false }, "speculative bench config");
}

/** Every tensor in the kernels' memory: random BF16 as in the real slice, the accepting checkpoint's where it differs. */
function weights(k: WasmKernels, c: Qwen3NextConfig): Map<string, Weight> {
  const map = new Map<string, Weight>();
  const chunk = new Float32Array(1024 * 2 * c.hidden_size);
  expectedTensors(c).forEach((t, i) => {
    const w = k.allocWeight(t.name, "BF16", t.shape);
    const data = w.data as Uint16Array;
    const rows = t.shape.length > 1 ? t.shape[0] : 1;
    const cols = t.shape.length > 1 ? t.shape[t.shape.length - 1] : t.shape[0];
    const per = Math.max(1, Math.floor(chunk.length / cols));
    let accepting = kind === "accepting";
    for (let r0 = 0; accepting && r0 < rows; r0 += per) {
      const r1 = Math.min(rows, r0 + per);
      const out = chunk.subarray(0, (r1 - r0) * cols);
      if (!acceptingRows(c, t.name, t.shape, r0, r1, out)) accepting = false;
      else data.set(f32ArrayToBf16(out), r0 * cols);
    }
    if (accepting) return void map.set(t.name, w);
    if (t.name.endsWith("linear_attn.norm.weight")) data.fill(0x3f80);
    else if (t.shape.length > 1) fillBf16(data, i + 1);
    map.set(t.name, w);
  });
  return map;
}

const GREEDY: SamplingParams = { temperature: 0, top_k: 0, top_p: 1, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1 };

async function main(): Promise<void> {
  const c = config();
  const k = await createWasmKernels({ threads, accumulate });
  process.stderr.write(`building the ${kind} model (${layers} layers, ${experts} experts)...\n`);
  const model = sliceModel(k, c, weights(k, c));
  const tok = await QwenTokenizer.load(bundledTokenizerDir());
  const prompt = Array.from({ length: 8 }, (_, i) => 1000 + 37 * i);
  const runOnce = async (K: number | null): Promise<GenerateResult> => {
    const g = generate(model, tok, prompt, { sampling: GREEDY, maxTokens: tokens, stopIds: [], speculative: K === null ? undefined : { draftTokens: K } });
    for await (const _ of g.events);
    return g.result;
  };
  await runOnce(null); // warm up (JIT, workspaces)
  const rows = [];
  let plainTokPerS = 0;
  let plainTokens: number[] = [];
  for (const K of [null, 1, 2, 3]) {
    // Best of two runs: the machine is shared, the slower run is the noisier one.
    const [a, b] = [await runOnce(K), await runOnce(K)];
    const r = a.tokensPerSecond >= b.tokensPerSecond ? a : b;
    if (K === null) {
      plainTokPerS = r.tokensPerSecond;
      plainTokens = r.tokens;
    }
    const row = {
      // Bit-identical rows (so identical greedy tokens) with f64 accumulation; f32 matmul rounds differently from matvec.
      sameTokensAsPlain: r.tokens.join() === plainTokens.join(),
      draftTokens: K ?? 0,
      tokensPerS: r.tokensPerSecond,
      speedup: r.tokensPerSecond / plainTokPerS,
      drafted: r.draftTokens,
      accepted: r.acceptedTokens,
      acceptance: r.draftTokens > 0 ? r.acceptedTokens / r.draftTokens : null,
    };
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }

  // The verify step's record and a rollback, against the step itself (K = 3: 4 tokens).
  const state = model.newState();
  await model.forward(prompt, state, { mtp: true });
  const time = async (f: () => unknown, n: number) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) await f();
    return (performance.now() - t) / n;
  };
  const fed = [5, 6, 7, 8];
  // A verify step of 4 tokens, all kept (the record's copy is its only extra cost)...
  const stepMs = await time(async () => {
    await model.step([{ tokens: fed, state, verify: true }]);
    model.rollback(state, 4, 4);
  }, 3);
  // The record's copy, and a DeltaNet rollback keeping 1 of 4 tokens (restore the copy, replay 1 token).
  await model.step([{ tokens: fed, state, verify: true }]);
  const dnLayers = model.model.layers.flatMap((l, i) => (l.linear_attn ? [{ dn: l.linear_attn, st: state.layers[i] as DeltaNetState }] : []));
  const dn = dnLayers.map((l) => l.st);
  const copyMs = await time(() => dn.forEach((l) => (opaque(k).copy(l.recurrent, l.verify!.recurrent), opaque(k).copy(l.conv, l.verify!.conv))), 20);
  const ws = new Workspace(opaque(k));
  const rollbackMs = await time(() => {
    for (const { dn: layer, st } of dnLayers) {
      st.verify!.T = 4; // replay the same record again
      layer.rollback(st, 1, ws);
    }
  }, 20);
  const overhead = { verifyStepMs: stepMs, recordCopyMs: copyMs, rollbackKeep1Ms: rollbackMs, deltanetLayers: dn.length, stateBytesPerLayer: (dn[0].recurrent.length + dn[0].conv.length) * 4 };
  process.stderr.write(`${JSON.stringify(overhead)}\n`);

  const file = new URL("./speculative-results.json", import.meta.url);
  const all = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : { runs: {} };
  const load = os.loadavg()[0];
  all.runs[`${kind}-${layers}layers-${experts}experts-${accumulate}`] = { date: new Date().toISOString(), machine: machineFacts(), loadAverage: load, threads, accumulate, tokens, promptTokens: prompt.length, rows, overhead };
  writeFileSync(file, JSON.stringify(all, null, 2) + "\n");
  await k.close();
}

await main();
