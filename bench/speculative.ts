/**
 * Speculative decoding with the MTP head: decode tokens/s with and without it (K = 1, 2, 3 drafts), and the
 * acceptance rate, through `generate` (greedy), on two models of the real slice's width (hidden 2048,
 * DeltaNet 16/32 heads of 128, attention 16/2 of 256, experts 512 wide top-10 + shared, vocab 151936) with
 * an MTP layer:
 *   --model accepting  the accepting checkpoint (test/helpers/accepting_model.ts): every draft is right;
 *   --model random     random weights (the real slice plus a random MTP head): drafts nearly never right,
 *                      which measures what speculation costs when it does not pay (adaptive draft length on).
 * Plain and speculative runs are interleaved (--reps rounds of plain, K=1, K=2, K=3; --ks 2 for plain, K=2 only),
 * each speedup is against the plain run of its own round (median over rounds): the machine may be shared. As
 * the load may change between runs too, each run with plain steps is also compared with plain decoding at the
 * speed of its own plain steps (vsOwnPlainSteps). Per generated token, where
 * a speculative run's time goes: drafting (the MTP head's chain and lm_head), the MTP head over the accepted
 * pairs, the verify step, plain steps, rollback, and the rest (sampling, bookkeeping). Also the cost of the
 * verify step's rollback record (one copy of each DeltaNet state per step) and of a rollback, against a step,
 * drafting for 4 sequences in one batch (the server) against one by one, and the bytes of weights each phase reads (what bounds it when memory-bound). Writes
 * bench/speculative-results.json (one entry per model, layer count and sums).
 *
 * With --dtype q8_0 every 2-D matrix weight whose column count is a multiple of 32 is stored as Q8_0, quantized
 * (src/io/ggml_quants.ts) from the values the BF16 run stores; norms and the rest stay as they are. With
 * `--accumulate q8` (generate's default for GGUF files) quantized products use integer dot products over
 * activations quantized per block (float weights take the f32 path). The results' key and weightBytes
 * (bytes as stored) include the dtype.
 *
 * With --draft-vocab N the drafts choose among the first N ids (the accepting model's tokens count up from
 * 1260, inside them); the results then say which share of README.md's tokens lie below N.
 *
 * With --grammar json_schema the runs go through the server's scheduler with a strict JSON-schema constraint
 * (XGrammar, as `response_format: json_schema`): plain runs on a scheduler without speculation, K = 1..3 on
 * one with it, where drafts and verify rows go under their positions' masks. The grammar's part of a
 * speculative run is also timed: the matcher's calls (next mask, accept, rollback) per verify step, and the
 * masks applied (one per draft and per verify row: a copy of the row and applyMask, timed on a full row in
 * the same process).
 *
 *   node --import tsx bench/speculative.ts --model accepting [--layers 4] [--experts 64] [--tokens 32] [--reps 3] [--ks 1,2,3] [--threads N] [--accumulate f64|f32|q8] [--dtype bf16|q8_0] [--draft-vocab N] [--grammar json_schema]
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import { parseConfig, type Qwen3NextConfig } from "../src/config.js";
import { generate, type GenerateResult } from "../src/generate/generate.js";
import { applyMask, Sampler, type SamplingParams } from "../src/generate/sampler.js";
import { Grammars } from "../src/server/grammar/grammars.js";
import { Scheduler, type TokenConstraint } from "../src/server/scheduler.js";
import { bf16ArrayToF32, f32ArrayToBf16 } from "../src/io/dtype.js";
import { quantizeRow, quantRowBytes } from "../src/io/ggml_quants.js";
import { opaque, type Accumulate, type Weight } from "../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../src/kernels/wasm/kernels.js";
import { expectedTensors } from "../src/loading/expected.js";
import { DeltaNetState, type SequenceState } from "../src/model/state.js";
import { Workspace } from "../src/model/weights.js";
import { bundledTokenizerDir, QwenTokenizer } from "../src/tokenizer/tokenizer.js";
import { acceptingRows } from "../test/helpers/accepting_model.js";
import { machineFacts } from "./machine.js";
import { bf16Words, fillBf16 } from "./matvec.js";
import { PUBLISHED_CONFIG, sliceModel } from "./real_slice.js";

const argv = process.argv;
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
/** Bad arguments: one line on stderr, exit 2 (no stack trace). */
function fail(message: string): never {
  process.stderr.write(`speculative: ${message}\n`);
  process.exit(2);
}
const int = (name: string, dflt: number): number => {
  const v = Number(arg(name, String(dflt)));
  if (!Number.isInteger(v) || v < 1) fail(`--${name} expects an integer >= 1`);
  return v;
};
const kind = arg("model", "accepting");
if (kind !== "accepting" && kind !== "random") fail(`--model is ${kind}, expected accepting or random`);
const layers = int("layers", 4);
const experts = int("experts", 64);
const tokens = int("tokens", 32);
const reps = int("reps", 3);
const draftVocab = argv.includes("--draft-vocab") ? int("draft-vocab", 1) : undefined;
const threads = int("threads", os.availableParallelism());
const draftLengths = arg("ks", "1,2,3").split(",").map(Number);
if (!draftLengths.every((K) => Number.isInteger(K) && K >= 1)) fail("--ks expects draft lengths >= 1, comma-separated");
const accumulate = arg("accumulate", "f64") as Accumulate;
const grammar = argv.includes("--grammar") ? arg("grammar", "") : undefined;
if (grammar !== undefined && grammar !== "json_schema") fail(`--grammar is ${grammar}, expected json_schema`);
if (accumulate !== "f64" && accumulate !== "f32" && accumulate !== "q8") fail(`--accumulate is ${accumulate}, expected f64, f32 or q8`);
const dtype = arg("dtype", "bf16");
if (dtype !== "bf16" && dtype !== "q8_0") fail(`--dtype is ${dtype}, expected bf16 or q8_0`);
/** Whether a tensor of this shape is stored as Q8_0 (with --dtype q8_0: 2-D matrices of whole 32-blocks per row). */
const quantized = (shape: readonly number[]) => dtype === "q8_0" && shape.length === 2 && shape[1] % 32 === 0;
/** Bytes a tensor takes as stored. */
const storedBytes = (shape: readonly number[]) => (quantized(shape) ? shape[0] * quantRowBytes("Q8_0", shape[1]) : shape.reduce((a, b) => a * b, 1) * 2);

function config(): Qwen3NextConfig {
  const raw = JSON.parse(readFileSync(PUBLISHED_CONFIG, "utf8"));
  return parseConfig({ ...raw, num_hidden_layers: layers, num_experts: experts, mtp_num_hidden_layers: 1, tie_word_embeddings: false }, "speculative bench config");
}

/**
 * `fillBf16`'s values (`bf16Words`: the same sequence from the same seed), a chunk at a time: the
 * random BF16 values as float32, for quantizing a tensor row by row without holding it whole.
 */
function bf16Stream(seed: number) {
  const words = bf16Words(seed);
  return (out: Float32Array) => {
    const bits = new Uint16Array(out.length);
    words(bits);
    bf16ArrayToF32(bits, out);
  };
}

/**
 * Every tensor in the kernels' memory: random BF16 as in the real slice, the accepting checkpoint's where it
 * differs; with --dtype q8_0, matrices quantized to Q8_0 from those BF16 values.
 */
function weights(k: WasmKernels, c: Qwen3NextConfig): Map<string, Weight> {
  const map = new Map<string, Weight>();
  const chunk = new Float32Array(1024 * 2 * c.hidden_size);
  expectedTensors(c).forEach((t, i) => {
    if (quantized(t.shape)) return void map.set(t.name, quantizedWeight(k, c, t.name, t.shape, i + 1, chunk));
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

/** A Q8_0 matrix: each row quantized from the BF16 values `weights` would store (accepting rows, else fillBf16's with `seed`). */
function quantizedWeight(k: WasmKernels, c: Qwen3NextConfig, name: string, shape: readonly number[], seed: number, chunk: Float32Array): Weight {
  const [rows, cols] = shape;
  const w = k.allocWeight(name, "Q8_0", shape);
  const data = w.data as Uint8Array;
  const rowBytes = quantRowBytes("Q8_0", cols);
  const per = Math.max(1, Math.floor(chunk.length / cols));
  const bits = new Uint16Array(chunk.length);
  const fill = (fromRows: (r0: number, r1: number, out: Float32Array) => boolean) => {
    for (let r0 = 0; r0 < rows; r0 += per) {
      const r1 = Math.min(rows, r0 + per);
      const out = chunk.subarray(0, (r1 - r0) * cols);
      if (!fromRows(r0, r1, out)) return false;
      for (let r = r0; r < r1; r++) quantizeRow("Q8_0", out, (r - r0) * cols, data, r * rowBytes, cols);
    }
    return true;
  };
  const accepting = kind === "accepting" && fill((r0, r1, out) => {
    if (!acceptingRows(c, name, shape, r0, r1, out)) return false;
    bf16ArrayToF32(f32ArrayToBf16(out, bits.subarray(0, out.length)), out); // the values BF16 stores
    return true;
  });
  if (!accepting) {
    const next = bf16Stream(seed);
    fill((_r0, _r1, out) => (next(out), true));
  }
  return w;
}

/**
 * Bytes of weights a step reads, by phase, when every tensor is read once per step and each row reads its
 * top-k experts (distinct experts for distinct rows): the memory-bound view of the costs. `bound[K - 1]` is
 * the speed-up that view allows at K drafts when every draft is accepted: K + 1 tokens for one verify step
 * of K + 1 rows and K drafts (each an lm_head product over `draftVocab` ids and one MTP layer), against
 * K + 1 steps.
 */
function weightBytes(c: Qwen3NextConfig, draftVocab = c.vocab_size) {
  let dense = 0;
  let expertsPerRow = 0;
  let lmHead = 0;
  let mtpDense = 0;
  let mtpExpertsPerRow = 0;
  for (const t of expectedTensors(c)) {
    const bytes = storedBytes(t.shape);
    const expert = /\.experts\.\d+\./.test(t.name) ? c.num_experts_per_tok / c.num_experts : 0;
    if (t.name === "lm_head.weight") lmHead = bytes;
    else if (t.name.includes("embed_tokens")) continue; // one row per token
    else if (t.name.startsWith("mtp.")) expert ? (mtpExpertsPerRow += bytes * expert) : (mtpDense += bytes);
    else expert ? (expertsPerRow += bytes * expert) : (dense += bytes);
  }
  const verify = (n: number) => dense + Math.min(n * expertsPerRow, expertsPerRow * (c.num_experts / c.num_experts_per_tok)) + lmHead;
  const draft = mtpDense + mtpExpertsPerRow + (lmHead * draftVocab) / c.vocab_size;
  return {
    stepMB: verify(1) / 1e6,
    lmHeadMB: lmHead / 1e6,
    mtpLayerMB: (mtpDense + mtpExpertsPerRow) / 1e6,
    verifyRowsVsStep: [1, 2, 3, 4].map((n) => verify(n) / verify(1)),
    draftVsStep: draft / verify(1),
    bound: [1, 2, 3].map((K) => ((K + 1) * verify(1)) / (verify(K + 1) + K * draft)),
  };
}

const GREEDY: SamplingParams = { temperature: 0, top_k: 0, top_p: 1, min_p: 0, presence_penalty: 0, frequency_penalty: 0, repetition_penalty: 1 };

async function main(): Promise<void> {
  const c = config();
  const k = await createWasmKernels({ threads, accumulate });
  process.stderr.write(`building the ${kind} model (${layers} layers, ${experts} experts, ${dtype})...\n`);
  const model = sliceModel(k, c, weights(k, c));
  const tok = await QwenTokenizer.load(bundledTokenizerDir());
  const prompt = Array.from({ length: 8 }, (_, i) => 1000 + 37 * i);
  // Where the time goes: the model's speculative entry points, timed (nested calls counted once, in the inner one).
  const phases = { draft: 0, mtpPairs: 0, verify: 0, step: 0, rollback: 0, observe: 0, prefill: 0 };
  type Phase = keyof typeof phases;
  const calls = Object.fromEntries(Object.keys(phases).map((p) => [p, 0])) as Record<Phase, number>;
  let inner = 0;
  let current: Phase | null = null;
  const timed = <A extends unknown[], R>(f: (...a: A) => R, phase: (a: A) => Phase | null) => (...a: A): R => {
    const p = phase(a);
    if (p === null || current === "prefill") return f(...a); // the prompt's pass counts whole
    const t = performance.now();
    const before = inner;
    const outer = current;
    if (outer !== p) calls[p]++;
    current = p;
    // Async entry points count until they settle (one runs at a time, so the nesting holds across awaits).
    const done = () => {
      current = outer;
      const d = performance.now() - t;
      phases[p] += d - (inner - before);
      inner = before + d;
    };
    let r: R;
    try {
      r = f(...a);
    } catch (err) {
      done();
      throw err;
    }
    if (r instanceof Promise) return r.finally(done) as R;
    done();
    return r;
  };
  const mtp = model.mtp!;
  mtp.runMany = timed(mtp.runMany.bind(mtp), () => "mtpPairs");
  model.draftBatch = timed(model.draftBatch.bind(model), () => "draft");
  model.step = timed(model.step.bind(model), ([rows]) => (rows.some((r) => r.verify) ? "verify" : "step"));
  model.rollback = timed(model.rollback.bind(model), () => "rollback");
  model.observeMtp = timed(model.observeMtp.bind(model), () => "observe");
  model.forward = timed(model.forward.bind(model), ([ids]) => (ids.length === 1 ? "step" : "prefill"));
  const constrained = grammar === undefined ? undefined : await constrainedRuns(model, tok);
  const runOnce = async (K: number | null) => {
    for (const p of Object.keys(phases) as Phase[]) phases[p] = calls[p] = 0;
    let r: Pick<GenerateResult, "tokens" | "completionTokens" | "decodeSeconds" | "tokensPerSecond" | "draftTokens" | "acceptedTokens">;
    if (constrained) r = await constrained.run(K);
    else {
      const g = generate(model, tok, prompt, { sampling: GREEDY, maxTokens: tokens, stopIds: [], speculative: K === null ? undefined : { draftTokens: K, draftVocabulary: draftVocab } });
      for await (const _ of g.events);
      r = await g.result;
    }
    const per = (ms: number) => ms / r.completionTokens;
    const total = r.decodeSeconds * 1e3;
    const { prefill: _, ...decode } = phases; // the prompt's forward pass (MTP head included) is not decoding
    const msPerToken = Object.fromEntries([...Object.entries(decode).map(([p, ms]) => [p, per(ms)]), ["other", per(total - Object.values(decode).reduce((a, b) => a + b, 0))], ["total", per(total)]]);
    // The run's speed against plain decoding at the load of its own plain steps (robust to a load that
    // changes between runs; a run with no plain steps has none): (steps plain decoding takes) x (this run's
    // time per plain step) / (this run's time). Plain decoding takes one step per token after the first.
    const vsOwnSteps = calls.step >= 4 ? ((r.completionTokens - 1) * phases.step) / calls.step / total : null;
    return { r, msPerToken, plainSteps: calls.step, vsOwnSteps };
  };
  await runOnce(null); // warm up (JIT, workspaces)
  const Ks = [null, ...draftLengths];
  const runs: Awaited<ReturnType<typeof runOnce>>[][] = Ks.map(() => []);
  for (let rep = 0; rep < reps; rep++) {
    for (const [i, K] of Ks.entries()) {
      runs[i].push(await runOnce(K));
      process.stderr.write(`round ${rep + 1}/${reps} K=${K ?? "plain"}: ${runs[i][rep].r.tokensPerSecond.toFixed(2)} tok/s\n`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const plainTokens = runs[0][0].r.tokens;
  const rows = Ks.map((K, i) => {
    const mine = runs[i];
    const best = mine.reduce((a, b) => (a.r.tokensPerSecond >= b.r.tokensPerSecond ? a : b));
    const row = {
      // Bit-identical rows (so identical greedy tokens) with f64 accumulation; f32 matmul rounds differently from matvec.
      sameTokensAsPlain: mine.every((x) => x.r.tokens.join() === plainTokens.join()),
      draftTokens: K ?? 0,
      tokensPerS: best.r.tokensPerSecond,
      // Against the plain run of the same round, median over rounds.
      speedup: median(mine.map((x, rep) => x.r.tokensPerSecond / runs[0][rep].r.tokensPerSecond)),
      speedups: mine.map((x, rep) => x.r.tokensPerSecond / runs[0][rep].r.tokensPerSecond),
      drafted: best.r.draftTokens,
      accepted: best.r.acceptedTokens,
      acceptance: best.r.draftTokens > 0 ? best.r.acceptedTokens / best.r.draftTokens : null,
      msPerToken: best.msPerToken,
      plainSteps: best.plainSteps,
      // Against the run's own plain steps (see runOnce), every round.
      vsOwnPlainSteps: mine.map((x) => x.vsOwnSteps),
      ...(constrained && { grammar: constrained.costs(K) }),
    };
    process.stderr.write(`${JSON.stringify(row)}\n`);
    return row;
  });

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
  // The server's drafting: 4 sequences drafting one token each in one batch, against one at a time.
  const argmax = (z: ArrayLike<number>) => {
    let b = 0;
    for (let i = 1; i < z.length; i++) if (z[i] > z[b]) b = i;
    return b;
  };
  const seqs: SequenceState[] = [];
  for (let i = 0; i < 4; i++) {
    const s = model.newState();
    await model.forward([...prompt, i], s, { mtp: true });
    seqs.push(s);
  }
  const ready = async () => {
    for (const s of seqs) model.observeMtp((await model.step([{ tokens: [7], state: s }])).hidden, [7], s); // a waiting pair each
  };
  let batchedMs = Infinity;
  let aloneMs = Infinity;
  for (let rep = 0; rep < 3; rep++) {
    await ready();
    let t = performance.now();
    await model.draftBatch(seqs.map((state) => ({ state, next: 9, K: 1, pick: argmax })));
    batchedMs = Math.min(batchedMs, performance.now() - t);
    await ready();
    t = performance.now();
    for (const state of seqs) await model.draft(state, 9, 1, argmax);
    aloneMs = Math.min(aloneMs, performance.now() - t);
  }
  seqs.forEach((s) => s.free());
  const overhead = {
    verifyStepMs: stepMs,
    recordCopyMs: copyMs,
    rollbackKeep1Ms: rollbackMs,
    deltanetLayers: dn.length,
    stateBytesPerLayer: (dn[0].recurrent.length + dn[0].conv.length) * 4,
    draft4SequencesBatchedMs: batchedMs,
    draft4SequencesOneByOneMs: aloneMs,
  };
  process.stderr.write(`${JSON.stringify(overhead)}\n`);

  const file = new URL("./speculative-results.json", import.meta.url);
  const all = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : { runs: {} };
  const load = os.loadavg()[0];
  // The same view of the slice and of the whole 80B model (48 layers, 512 experts).
  const full = parseConfig({ ...JSON.parse(readFileSync(PUBLISHED_CONFIG, "utf8")), mtp_num_hidden_layers: 1, tie_word_embeddings: false }, "published config");
  const bytes = { slice: weightBytes(c, draftVocab), model80B: weightBytes(full, draftVocab) };
  process.stderr.write(`${JSON.stringify(bytes)}\n`);
  // How much of real text a draft vocabulary covers: README.md's tokens below it.
  const readme = draftVocab === undefined ? null : tok.encode(readFileSync(new URL("../README.md", import.meta.url), "utf8"));
  const draftVocabulary = readme && { ids: draftVocab, readmeTokensCovered: readme.filter((id) => id < draftVocab!).length / readme.length };
  const key = `${kind}-${layers}layers-${experts}experts-${dtype === "bf16" ? "" : `${dtype}-`}${accumulate}${draftVocab ? `-vocab${draftVocab}` : ""}${grammar ? `-${grammar}` : ""}`;
  all.runs[key] = { date: new Date().toISOString(), machine: machineFacts(), loadAverage: load, threads, dtype, accumulate, tokens, promptTokens: prompt.length, reps, draftVocabulary, grammar, rows, overhead, weightBytes: bytes };
  writeFileSync(file, JSON.stringify(all, null, 2) + "\n");
  await k.close();
}

/**
 * Greedy runs through the server's scheduler under a strict JSON schema (`--grammar json_schema`): `run(K)`
 * decodes `tokens` tokens (fewer when the grammar ends) with K drafts (null: a scheduler without
 * speculation) and times the matcher's calls; `costs(K)` is the grammar's part of K's runs per verify step
 * (per decode step for plain runs).
 */
async function constrainedRuns(model: ReturnType<typeof sliceModel>, tok: QwenTokenizer) {
  const V = model.config.vocab_size;
  const schema = {
    type: "object",
    properties: { name: { type: "string" }, age: { type: "integer" }, tags: { type: "array", items: { type: "string" } } },
    required: ["name", "age", "tags"],
    additionalProperties: false,
  };
  const factory = (await new Grammars(tok, V).forFormat({ type: "json_schema", json_schema: { name: "person", schema, strict: true } }))!;
  const common = { maxConcurrency: 1, maxQueue: 1, prefixCacheSize: 0, prefillChunk: 64, draftVocabulary: draftVocab };
  const plain = new Scheduler(model, common);
  let current = { matcherMs: 0, verifySteps: 0, drafts: 0, accepted: 0, tokens: 0 };
  const spec = new Scheduler(model, { ...common, draftTokens: 3, onSpecDecode: () => void current.verifySteps++ });
  // A row's mask as acceptDrafts and drafting apply it (a copy, then -inf where not allowed): timed here.
  const row = new Float32Array(V).map((_, i) => Math.sin(i));
  const someMask = await (async () => {
    const c = factory();
    const m = await c.nextMask();
    c.accept(tok.encode("{")[0]);
    const m2 = await c.nextMask();
    c.free();
    return [m, m2];
  })();
  let applyMs = Infinity;
  for (let rep = 0; rep < 5; rep++) {
    const t = performance.now();
    for (let i = 0; i < 20; i++) applyMask(row.slice(), someMask[i % 2]);
    applyMs = Math.min(applyMs, (performance.now() - t) / 20);
  }
  const calls = new Map<number | null, (typeof current)[]>();
  return {
    async run(K: number | null) {
      const inner = factory();
      const t = (current = { matcherMs: 0, verifySteps: 0, drafts: 0, accepted: 0, tokens: 0 });
      const time = <A extends unknown[], R>(f: (...a: A) => R) => (...a: A): R => {
        const t0 = performance.now();
        const r = f(...a);
        if (r instanceof Promise) return r.finally(() => (t.matcherMs += performance.now() - t0)) as R;
        t.matcherMs += performance.now() - t0;
        return r;
      };
      const constraint: TokenConstraint = {
        nextMask: time(() => inner.nextMask()),
        accept: time((id: number) => inner.accept(id)),
        rollback: time((n: number) => inner.rollback(n)),
        terminated: time(() => inner.terminated()),
        free: () => inner.free(),
      };
      const out: number[] = [];
      let first = 0;
      const sched = K === null ? plain : spec;
      const seq = await new Promise<ReturnType<typeof sched.submit>>((resolve, reject) => {
        const s = sched.submit({
          prompt: Array.from({ length: 8 }, (_, i) => 1000 + 37 * i), maxTokens: tokens, stopTokenIds: new Set(tok.eosIds), sampler: new Sampler(GREEDY),
          sampleableTokens: tok.vocabSize, constraint, draftTokens: K ?? 0,
          onToken: (id) => (out.length === 0 && (first = performance.now()), out.push(id), true),
          onEnd: (reason, err) => (reason === "error" ? reject(err) : resolve(s)),
        });
      });
      const decodeSeconds = (performance.now() - first) / 1e3;
      const { draftTokens, acceptedTokens } = seq.speculation;
      t.tokens = out.length;
      t.drafts = draftTokens;
      t.accepted = acceptedTokens;
      calls.set(K, [...(calls.get(K) ?? []), t]);
      return { tokens: out, completionTokens: out.length, decodeSeconds, tokensPerSecond: (out.length - 1) / decodeSeconds, draftTokens, acceptedTokens };
    },
    costs(K: number | null) {
      const all = calls.get(K) ?? [];
      const sum = (f: (x: (typeof all)[number]) => number) => all.reduce((a, x) => a + f(x), 0);
      // Decode steps: verify steps and plain ones (the first token comes from the prompt's pass).
      const steps = sum((x) => x.tokens - 1 - x.accepted);
      // Masks applied: one per plain step, per verify row (drafts + 1) and per draft.
      const masks = steps + 2 * sum((x) => x.drafts);
      const grammarMs = sum((x) => x.matcherMs) + masks * applyMs;
      return {
        decodeSteps: steps / all.length,
        verifySteps: sum((x) => x.verifySteps) / all.length,
        matcherMsPerStep: sum((x) => x.matcherMs) / steps,
        masksPerStep: masks / steps,
        applyMsPerMask: applyMs,
        grammarMsPerStep: grammarMs / steps,
        grammarMsPerToken: grammarMs / sum((x) => x.tokens - 1),
      };
    },
  };
}

await main();
