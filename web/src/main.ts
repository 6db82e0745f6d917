/**
 * The explorer page: loads a checkpoint into the model worker (the served one, or files picked from disk),
 * runs a prompt, streams the text, then draws the views from the run's trace.
 *
 * Contract for tests and embedding: URL parameters `prompt`, `temperature`, `max_tokens`, `seed`, `autorun=1`
 * (load the served checkpoint and run at once), `threads`, `trace=0` (no views: the model runs untraced, as the CLI
 * runs it, for timing); `window.qwen3next.lastRun` = { tokens, text, ... }
 * once a run finishes, and `window.qwen3next.error` = the last error message shown.
 */
import type { FromWorker, ModelInfo, ModelSource, RunParams, RunResult, ToWorker } from "./protocol.js";
import { RunData } from "./run_data.js";
import { attentionView } from "./views/attention.js";
import { deltanetView } from "./views/deltanet.js";
import { lensView } from "./views/lens.js";
import { mtpView } from "./views/mtp.js";
import { routingView } from "./views/routing.js";
import { timingsView } from "./views/timings.js";

interface LastRun extends Omit<RunResult, "calls" | "vocab"> {
  loadMs: number;
  /** Page-side milliseconds from navigation start to the first generated token (autorun). */
  pageToFirstTokenMs: number;
  model: string;
  /** Each traced forward pass: tokens read, milliseconds, and milliseconds reducing its trace. */
  passes: Array<{ tokens: number; ms: number; reduceMs: number }>;
}
interface Api {
  lastRun: LastRun | null;
  error: string | null;
  info: ModelInfo | null;
  crossOriginIsolated: boolean;
}
const api: Api = { lastRun: null, error: null, info: null, crossOriginIsolated };
(window as unknown as { qwen3next: Api }).qwen3next = api;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const statusEl = $<HTMLSpanElement>("status");
const progressEl = $<HTMLProgressElement>("progress");
const runBtn = $<HTMLButtonElement>("run");
const outputEl = $<HTMLOutputElement>("output");
const modelName = $<HTMLSpanElement>("model-name");

const params = new URLSearchParams(location.search);
const num = (key: string): number | undefined => {
  const v = params.get(key);
  if (v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) {
    showError(`URL parameter ${key}=${v} is not a number`);
    return undefined;
  }
  return n;
};
const promptEl = $<HTMLTextAreaElement>("prompt");
const tempEl = $<HTMLInputElement>("temperature");
const maxEl = $<HTMLInputElement>("max-tokens");
const seedEl = $<HTMLInputElement>("seed");
if (params.has("prompt")) promptEl.value = params.get("prompt")!;
if (num("temperature") !== undefined) tempEl.value = String(num("temperature"));
if (num("max_tokens") !== undefined) maxEl.value = String(num("max_tokens"));
if (num("seed") !== undefined) seedEl.value = String(num("seed"));
const threads = num("threads") ?? Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 8));

function showError(message: string): void {
  api.error = message;
  statusEl.textContent = `Error: ${message}`;
  statusEl.className = "error";
  runBtn.disabled = api.info === null;
}

function setStatus(text: string): void {
  statusEl.textContent = text;
  statusEl.className = "";
}

const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
const send = (m: ToWorker) => worker.postMessage(m);
let workerReady: () => void;
const ready = new Promise<void>((r) => (workerReady = r));
let loaded: (() => void) | null = null;
let firstTokenAt = 0;

worker.onerror = (e) => showError(`the model worker failed: ${e.message}`);
worker.onmessage = (e: MessageEvent<FromWorker>) => {
  const m = e.data;
  switch (m.type) {
    case "progress":
      if (m.phase === "ready") {
        setStatus(crossOriginIsolated ? "ready" : "ready (not cross-origin isolated: one thread only)");
        workerReady();
        return;
      }
      progressEl.max = Math.max(1, m.total);
      progressEl.value = m.done;
      setStatus(m.total > 1 ? `${m.phase}: ${(m.done / 2 ** 20).toFixed(1)} / ${(m.total / 2 ** 20).toFixed(1)} MiB` : m.phase);
      return;
    case "loaded":
      api.info = m.info;
      modelName.textContent = `${m.info.name}: ${m.info.layerTypes.length} layers, ${m.info.numExperts} experts (top-${m.info.topK}), ${m.info.threads} thread${m.info.threads === 1 ? "" : "s"}`;
      setStatus(`loaded in ${(m.info.loadMs / 1000).toFixed(1)} s`);
      progressEl.value = progressEl.max;
      runBtn.disabled = false;
      loaded?.();
      return;
    case "token":
      if (firstTokenAt === 0) firstTokenAt = performance.now();
      outputEl.textContent += m.text;
      return;
    case "done":
      finish(m.result);
      return;
    case "error":
      showError(m.message);
      return;
  }
};

async function load(source: ModelSource): Promise<void> {
  await ready;
  api.info = null;
  runBtn.disabled = true;
  clearViews();
  const done = new Promise<void>((r) => (loaded = r));
  send({ type: "load", source, threads });
  await done;
}

function run(): void {
  const p: RunParams = {
    prompt: promptEl.value,
    temperature: tempEl.value === "" ? undefined : Number(tempEl.value),
    maxTokens: Math.max(1, Math.floor(Number(maxEl.value) || 1)),
    seed: seedEl.value === "" ? undefined : Number(seedEl.value),
    trace: params.get("trace") !== "0",
  };
  outputEl.textContent = "";
  clearViews();
  api.lastRun = null;
  runBtn.disabled = true;
  setStatus("generating…");
  firstTokenAt = 0;
  send({ type: "run", params: p });
}

function finish(r: RunResult): void {
  runBtn.disabled = false;
  const info = api.info!;
  setStatus(`${r.tokens.length} tokens, ${r.tokensPerSecond.toFixed(1)} tok/s (finish: ${r.finishReason})`);
  const { calls: _calls, vocab: _vocab, ...rest } = r;
  if (r.calls.length > 0) drawViews(new RunData(r, info));
  else for (const v of VIEWS) $(`view-${v.id}`).replaceChildren(Object.assign(document.createElement("p"), { className: "note", textContent: "This run was not traced (trace=0)." }));
  // Text that is only whitespace (the demo's random weights like newlines) would look like no output at all.
  if (r.text.length > 0 && r.text.trim() === "") outputEl.textContent = `(whitespace only: ${JSON.stringify(r.text)})`;
  const passes = r.calls.map((c) => ({ tokens: c.tokens.length, ms: c.ms, reduceMs: c.reduceMs }));
  api.lastRun = { ...rest, loadMs: info.loadMs, pageToFirstTokenMs: firstTokenAt, model: info.name, passes };
}

// Views, as tabs (arrow keys move between tabs).
const VIEWS: Array<{ id: string; title: string; make: (d: RunData) => HTMLElement[] }> = [
  { id: "routing", title: "Routing", make: routingView },
  { id: "deltanet", title: "DeltaNet", make: deltanetView },
  { id: "attention", title: "Gated attention", make: attentionView },
  { id: "lens", title: "Logit lens", make: lensView },
  { id: "mtp", title: "MTP", make: mtpView },
  { id: "timings", title: "Timings", make: timingsView },
];
const tabs = $<HTMLElement>("tabs");
const views = $<HTMLElement>("views");
const tabButtons: HTMLButtonElement[] = [];
for (const v of VIEWS) {
  const b = document.createElement("button");
  b.type = "button";
  b.id = `tab-${v.id}`;
  b.textContent = v.title;
  b.setAttribute("role", "tab");
  b.setAttribute("aria-controls", `view-${v.id}`);
  b.addEventListener("click", () => select(v.id));
  b.addEventListener("keydown", (e) => {
    const i = tabButtons.indexOf(b);
    const to = e.key === "ArrowRight" ? i + 1 : e.key === "ArrowLeft" ? i - 1 : -2;
    if (to === -2) return;
    const next = tabButtons[(to + tabButtons.length) % tabButtons.length];
    next.focus();
    next.click();
  });
  tabButtons.push(b);
  tabs.append(b);
  const panel = document.createElement("div");
  panel.id = `view-${v.id}`;
  panel.className = "view";
  panel.setAttribute("role", "tabpanel");
  panel.setAttribute("aria-labelledby", b.id);
  views.append(panel);
}
function select(id: string): void {
  for (const v of VIEWS) {
    const on = v.id === id;
    $(`view-${v.id}`).hidden = !on;
    const b = $(`tab-${v.id}`);
    b.setAttribute("aria-selected", String(on));
    b.tabIndex = on ? 0 : -1;
  }
}
select(params.get("view") ?? "routing");

function clearViews(): void {
  for (const v of VIEWS) $(`view-${v.id}`).replaceChildren(Object.assign(document.createElement("p"), { className: "note", textContent: "Run a prompt to see this view." }));
}
clearViews();

function drawViews(d: RunData): void {
  for (const v of VIEWS) {
    const panel = $(`view-${v.id}`);
    try {
      panel.replaceChildren(...v.make(d));
    } catch (err) {
      panel.replaceChildren(Object.assign(document.createElement("p"), { className: "error", textContent: `This view failed: ${(err as Error).message}` }));
    }
  }
}

// Controls.
$("load-demo").addEventListener("click", () => void load({ kind: "url", base: new URL("model/", location.href).href }));
const pickFolder = $<HTMLInputElement>("pick-folder");
pickFolder.addEventListener("change", () => {
  const files = [...(pickFolder.files ?? [])].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
  if (files.length) void load({ kind: "files", files });
});
const pickFile = $<HTMLInputElement>("pick-file");
pickFile.addEventListener("change", () => {
  const file = pickFile.files?.[0];
  if (file) void load({ kind: "files", files: [{ path: file.name, file }] });
});
runBtn.addEventListener("click", run);
promptEl.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !runBtn.disabled) run();
});

if (params.get("autorun") === "1") {
  void load({ kind: "url", base: new URL("model/", location.href).href }).then(run);
}
