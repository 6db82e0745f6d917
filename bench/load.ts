/**
 * Load test of the OpenAI-compatible server: N chat requests at concurrency C, with the official `openai`
 * client, against a `qwen3-next serve` it starts itself on a free loopback port (a child process, so the
 * client's timing does not share the server's event loop) and stops at the end.
 *
 *   node --import tsx bench/load.ts [--requests 32] [--concurrency 1,8] [--max-tokens 16] [--stream]
 *                                   [--model DIR] [--backend ts|wasm] [--threads N] [--timeout 600]
 *
 * Reports per concurrency level: requests/s, completion tokens/s, latency p50/p99 (and time to first token
 * when streamed), and how many requests were lost (errors or missing tokens; expected 0). Writes
 * bench/load-results.json. Without --model it serves the demo checkpoint (random weights, hidden 64): the
 * cost per token is then mostly the 151,936-row lm_head, and batching shows as tokens/s rising with C.
 */
import { writeFile, rename } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { startServeChild, type ServeChild } from "./serve_child.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name: string, dflt?: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const N = Number(arg("requests", "32"));
const LEVELS = (arg("concurrency", "1,8") as string).split(",").map(Number);
const MAX_TOKENS = Number(arg("max-tokens", "16"));
const STREAM = process.argv.includes("--stream");
const TIMEOUT_S = Number(arg("timeout", "600"));
if (![N, MAX_TOKENS, TIMEOUT_S, ...LEVELS].every((n) => Number.isInteger(n) && n > 0)) {
  throw new Error("--requests, --concurrency, --max-tokens and --timeout expect positive integers");
}

interface Sample {
  ok: boolean;
  latencyMs: number;
  ttftMs?: number;
  completionTokens: number;
  error?: string;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function startServer(maxConcurrency: number): Promise<ServeChild> {
  const extra = ["model", "backend", "threads"].flatMap((k) => (arg(k) ? [`--${k}`, arg(k) as string] : []));
  return startServeChild(["--max-concurrency", String(maxConcurrency), "--max-queue", String(N), "--prefix-cache", "0", ...extra]);
}

async function one(client: OpenAI, model: string, i: number): Promise<Sample> {
  const t0 = performance.now();
  const req = {
    model,
    messages: [{ role: "user" as const, content: `Request ${i}: write something.` }],
    max_tokens: MAX_TOKENS,
    seed: i,
  };
  const start = t0;
  try {
    if (!STREAM) {
      const r = await client.chat.completions.create(req);
      const tokens = r.usage?.completion_tokens ?? 0;
      return { ok: tokens > 0, latencyMs: performance.now() - start, completionTokens: tokens };
    }
    let ttft: number | undefined;
    let tokens = 0;
    const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    for await (const chunk of stream) {
      if (ttft === undefined && chunk.choices[0]?.delta?.content) ttft = performance.now() - start;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
    return { ok: tokens > 0, latencyMs: performance.now() - start, ttftMs: ttft, completionTokens: tokens };
  } catch (err) {
    return { ok: false, latencyMs: performance.now() - start, completionTokens: 0, error: (err as Error).message };
  }
}

async function level(concurrency: number) {
  const server = await startServer(concurrency);
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "none", maxRetries: 0, timeout: TIMEOUT_S * 1000 });
  const model = (await client.models.list()).data[0].id;
  await one(client, model, -1); // warm-up (not counted)
  const samples: Sample[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < N) samples.push(await one(client, model, next++));
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const health = (await (await fetch(`${server.url}/health`)).json()) as { largestBatch: number };
  const exitCode = await server.stop();
  const ok = samples.filter((s) => s.ok);
  const lat = ok.map((s) => s.latencyMs).sort((a, b) => a - b);
  const ttft = ok.flatMap((s) => (s.ttftMs === undefined ? [] : [s.ttftMs])).sort((a, b) => a - b);
  const tokens = ok.reduce((n, s) => n + s.completionTokens, 0);
  return {
    concurrency,
    requests: N,
    completed: ok.length,
    lost: N - ok.length,
    errors: [...new Set(samples.flatMap((s) => (s.error ? [s.error] : [])))],
    seconds: round(seconds),
    requests_per_s: round(ok.length / seconds),
    completion_tokens: tokens,
    tokens_per_s: round(tokens / seconds),
    latency_ms: { p50: round(percentile(lat, 50)), p99: round(percentile(lat, 99)) },
    ...(STREAM ? { ttft_ms: { p50: round(percentile(ttft, 50)), p99: round(percentile(ttft, 99)) } } : {}),
    largest_batch: health.largestBatch,
    server_exit_code: exitCode,
  };
}

const round = (x: number) => Math.round(x * 100) / 100;

const results = [];
for (const c of LEVELS) {
  const r = await level(c);
  results.push(r);
  console.log(
    `C=${c}: ${r.completed}/${N} ok (lost ${r.lost}), ${r.requests_per_s} req/s, ${r.tokens_per_s} tok/s, ` +
      `latency p50 ${r.latency_ms.p50} ms p99 ${r.latency_ms.p99} ms, largest batch ${r.largest_batch}` +
      (r.errors.length ? `, errors: ${r.errors.join("; ")}` : ""),
  );
}
const report = {
  command: `node --import tsx bench/load.ts ${process.argv.slice(2).join(" ")}`.trim(),
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version },
  model: arg("model") ?? "demo checkpoint (random weights)",
  backend: arg("backend") ?? "default",
  max_tokens: MAX_TOKENS,
  stream: STREAM,
  results,
};
const out = path.join(ROOT, "bench/load-results.json");
await writeFile(`${out}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
await rename(`${out}.tmp`, out);
console.log(`wrote ${path.relative(process.cwd(), out)}`);
if (results.some((r) => r.lost > 0)) process.exitCode = 1;
