/**
 * Soak and abuse test of the server, bounded and on loopback only: a `qwen3-next serve` child process (demo
 * checkpoint unless --model) takes a steady load of well-formed streamed chat requests, twice:
 *   1. alone (baseline);
 *   2. with abuse running beside it: streams that disconnect at a random moment, malformed requests (bad JSON,
 *      schema violations, API-key bypass spellings, bodies over the limit, trickled and stalled bodies), and
 *      oversized prompts (one 1,000,000-character word, slow to tokenize and stopped at --prompt-timeout; one
 *      prompt just under the 4 MiB body limit, refused by the context bound before tokenizing).
 * Reports well-formed requests lost (a non-200, an error event, or no [DONE]: must be 0), their latency p50/p99
 * in both phases, the abuse's answers by status (a 5xx would be a bug), and the server's RSS before and after.
 *
 *   node --import tsx bench/soak.ts [--requests 200] [--streams 8] [--abusers 4] [--max-tokens 16]
 *                                   [--time-limit 240] [--model DIR] [--out bench/soak-results.json]
 *
 * Bounded: each phase stops at --requests well-formed requests or --time-limit seconds, whichever is first.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { machineFacts } from "./machine.js";
import { startServeChild, type ServeChild } from "./serve_child.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const int = (name: string, dflt: number): number => {
  const v = Number(arg(name, String(dflt)));
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} expects an integer >= 0`);
  return v;
};
const REQUESTS = int("requests", 200);
const STREAMS = int("streams", 8);
const ABUSERS = int("abusers", 4);
const MAX_TOKENS = int("max-tokens", 16);
const TIME_LIMIT_MS = int("time-limit", 240) * 1000;
const MODEL = process.argv.includes("--model") ? arg("model", "") : undefined;
const OUT = arg("out", path.join(ROOT, "bench/soak-results.json"));
const KEY = "soak-key";
const log = (s: string) => process.stderr.write(`${s}\n`);

function startServer(): Promise<ServeChild> {
  return startServeChild(
    ["--host", "127.0.0.1", "--max-concurrency", "8", "--max-queue", "256", "--prompt-timeout", "10", "--request-timeout", "5",
      "--headers-timeout", "5", ...(MODEL ? ["--model", MODEL] : [])],
    { QWEN3_NEXT_API_KEY: KEY },
  );
}

/** Resident memory of a process, in MiB (Linux /proc). */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };

/** One well-formed streamed chat request: ok when it ends with [DONE] and no error event. */
async function wellFormed(url: string, model: string, i: number): Promise<{ ok: boolean; ms: number; why?: string }> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ model, messages: [{ role: "user", content: `Request ${i}: say something.` }], max_tokens: MAX_TOKENS, seed: i, stream: true }),
    });
    const text = await res.text();
    const ms = performance.now() - t0;
    if (res.status !== 200) return { ok: false, ms, why: `status ${res.status}: ${text.slice(0, 120)}` };
    if (text.includes('"error"')) return { ok: false, ms, why: `error event: ${text.slice(0, 120)}` };
    if (!text.trimEnd().endsWith("data: [DONE]")) return { ok: false, ms, why: "no [DONE]" };
    return { ok: true, ms };
  } catch (err) {
    return { ok: false, ms: performance.now() - t0, why: String(err) };
  }
}

/** Sends raw bytes and resolves with the status line's code (0 when the server closed without answering). */
function raw(url: string, bytes: string, opts: { trickleMs?: number; stallMs?: number } = {}): Promise<number> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(port), "127.0.0.1");
    let got = "";
    s.on("data", (d) => (got += d));
    s.on("error", () => {});
    s.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0)));
    if (opts.trickleMs) {
      let i = 0;
      const t = setInterval(() => {
        if (s.destroyed || i >= bytes.length) return clearInterval(t);
        s.write(bytes[i++]);
      }, opts.trickleMs);
    } else if (opts.stallMs) {
      s.write(bytes.slice(0, bytes.length >> 1));
    } else {
      s.write(bytes); // not end(): a half-closed client is taken as gone; `connection: close` ends it
    }
  });
}

/** One abusive request, chosen by `i`; resolves with its HTTP status (0: connection closed, or aborted by us). */
async function abuse(url: string, model: string, i: number): Promise<{ kind: string; status: number }> {
  const host = new URL(url).host;
  const chat = JSON.stringify({ model, messages: [{ role: "user", content: `abuse ${i}` }], max_tokens: 64, stream: true });
  const req = (target: string, body: string, headers = "") =>
    `POST ${target} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}${headers}\r\n\r\n${body}`;
  switch (i % 9) {
    case 0: {
      // A stream whose client disconnects at a random moment.
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 5 + Math.random() * 300);
      try {
        const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: auth, body: chat, signal: ac.signal });
        await res.text();
        return { kind: "disconnect", status: res.status };
      } catch {
        return { kind: "disconnect", status: 0 };
      }
    }
    case 1:
      return { kind: "bad json", status: await raw(url, req("/v1/chat/completions", '{"model": ', `\r\nauthorization: Bearer ${KEY}`)) };
    case 2:
      return { kind: "schema", status: await raw(url, req("/v1/completions", JSON.stringify({ model, prompt: 5, temperature: "hot" }), `\r\nauthorization: Bearer ${KEY}`)) };
    case 3: {
      const targets = ["/v%31/chat/completions", `http://${host}/v1/chat/completions`, "//v1/chat/completions", "/v1/x/../chat/completions"];
      return { kind: "auth bypass", status: await raw(url, req(targets[(i / 9) % targets.length | 0], chat)) };
    }
    case 4:
      return { kind: "over body limit", status: await raw(url, req("/v1/completions", JSON.stringify({ model, prompt: "x".repeat(5 << 20) }), `\r\nauthorization: Bearer ${KEY}`)) };
    case 5:
      return { kind: "trickled body", status: await raw(url, req("/v1/completions", JSON.stringify({ model, prompt: "slow" }), `\r\nauthorization: Bearer ${KEY}`), { trickleMs: 200 }) };
    case 6:
      return { kind: "stalled body", status: await raw(url, req("/v1/completions", JSON.stringify({ model, prompt: "stall" }), `\r\nauthorization: Bearer ${KEY}`), { stallMs: 1 }) };
    case 7:
      return { kind: "wrong key", status: await raw(url, req("/v1/chat/completions", chat, "\r\nauthorization: Bearer nope")) };
    default: {
      const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: auth, body: JSON.stringify({ model, messages: [{ role: "wizard", content: 1 }] }) });
      await res.text();
      return { kind: "bad role", status: res.status };
    }
  }
}

/** An oversized prompt; resolves with its status and error code. */
async function oversized(url: string, model: string, chars: number): Promise<{ chars: number; status: number; code: string | null; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, { method: "POST", headers: auth, body: JSON.stringify({ model, prompt: "a".repeat(chars), max_tokens: 1 }) });
  const body = (await res.json()) as { error?: { code: string | null } };
  return { chars, status: res.status, code: body.error?.code ?? null, ms: Math.round(performance.now() - t0) };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface Phase {
  requests: number;
  lost: number;
  lostReasons: string[];
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  seconds: number;
}

/** Well-formed load on STREAMS connections until REQUESTS are done or the time limit passes. */
async function phase(url: string, model: string, first: number): Promise<Phase> {
  const t0 = performance.now();
  const lat: number[] = [];
  const lostReasons: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: STREAMS }, async () => {
      while (next < REQUESTS && performance.now() - t0 < TIME_LIMIT_MS) {
        const r = await wellFormed(url, model, first + next++);
        lat.push(r.ms);
        if (!r.ok) lostReasons.push(r.why ?? "?");
      }
    }),
  );
  lat.sort((a, b) => a - b);
  return {
    requests: lat.length,
    lost: lostReasons.length,
    lostReasons: lostReasons.slice(0, 5),
    p50Ms: Math.round(percentile(lat, 50)),
    p99Ms: Math.round(percentile(lat, 99)),
    maxMs: Math.round(lat[lat.length - 1] ?? NaN),
    seconds: Math.round((performance.now() - t0) / 100) / 10,
  };
}

async function main(): Promise<void> {
  const server = await startServer();
  const { url } = server;
  log(`server pid ${server.pid} at ${url}`);
  try {
    const models = (await (await fetch(`${url}/v1/models`, { headers: auth })).json()) as { data: Array<{ id: string }> };
    const model = models.data[0].id;
    // Warm-up (JIT, prompt workers), then the baseline.
    for (let i = 0; i < 4; i++) await wellFormed(url, model, -1 - i);
    const rssStart = rssMiB(server.pid);
    log(`RSS ${rssStart} MiB; baseline: ${REQUESTS} well-formed streamed requests on ${STREAMS} connections...`);
    const baseline = await phase(url, model, 0);
    const rssAfterBaseline = rssMiB(server.pid);
    log(`baseline: lost ${baseline.lost}, p50 ${baseline.p50Ms} ms, p99 ${baseline.p99Ms} ms; RSS ${rssAfterBaseline} MiB`);

    log(`abuse: the same load with ${ABUSERS} abusive clients and two oversized prompts beside it...`);
    let stop = false;
    const abuseCounts: Record<string, Record<string, number>> = {};
    let abuseN = 0;
    const abusers = Array.from({ length: ABUSERS }, async (_, a) => {
      for (let i = a; !stop; i += ABUSERS) {
        const r = await abuse(url, model, i);
        abuseN++;
        (abuseCounts[r.kind] ??= {})[r.status] = ((abuseCounts[r.kind] ??= {})[r.status] ?? 0) + 1;
      }
    });
    const big = [oversized(url, model, 1_000_000), oversized(url, model, 4 * 1024 * 1024 - 1024)];
    const withAbuse = await phase(url, model, 1_000_000);
    stop = true;
    await Promise.all(abusers);
    const oversizedResults = await Promise.all(big);
    // Let disconnected sequences be reaped and the heap settle before the last reading.
    await new Promise((r) => setTimeout(r, 2000));
    const health = (await (await fetch(`${url}/health`)).json()) as Record<string, unknown>;
    const rssEnd = rssMiB(server.pid);
    log(`with abuse: lost ${withAbuse.lost}, p50 ${withAbuse.p50Ms} ms, p99 ${withAbuse.p99Ms} ms; RSS ${rssEnd} MiB; ${abuseN} abusive requests`);

    const fiveXX = Object.values(abuseCounts).reduce((s, c) => s + Object.entries(c).filter(([k]) => Number(k) >= 500).reduce((t, [, n]) => t + n, 0), 0);
    const result = {
      date: new Date().toISOString(),
      machine: machineFacts(),
      model: MODEL ?? "demo checkpoint (random weights, hidden 64, 151,936-token vocabulary)",
      params: { requests: REQUESTS, streams: STREAMS, abusers: ABUSERS, maxTokens: MAX_TOKENS, timeLimitS: TIME_LIMIT_MS / 1000 },
      baseline,
      withAbuse,
      abuse: { requests: abuseN, byKindAndStatus: abuseCounts, fiveXX },
      oversized: oversizedResults,
      rssMiB: { start: rssStart, afterBaseline: rssAfterBaseline, end: rssEnd },
      healthAtEnd: health,
    };
    const tmp = `${OUT}.tmp`;
    writeFileSync(tmp, JSON.stringify(result, null, 2) + "\n");
    renameSync(tmp, OUT);
    const row = (name: string, p: Phase) => `| ${name} | ${p.requests} | ${p.lost} | ${p.p50Ms} ms | ${p.p99Ms} ms | ${p.maxMs} ms |`;
    process.stdout.write(
      [
        "| phase | well-formed requests | lost | p50 | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
        row("alone", baseline),
        row(`with abuse (${abuseN} abusive requests)`, withAbuse),
        "",
        `abusive requests answered 5xx: ${fiveXX}; oversized prompts: ${oversizedResults.map((o) => `${o.chars} chars -> ${o.status} ${o.code} in ${o.ms} ms`).join("; ")}`,
        `server RSS: ${rssStart} MiB at start, ${rssAfterBaseline} MiB after the baseline, ${rssEnd} MiB at the end`,
        `results: ${path.relative(ROOT, OUT)}`,
        "",
      ].join("\n"),
    );
    if (baseline.lost + withAbuse.lost > 0 || fiveXX > 0) process.exitCode = 1;
  } finally {
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`soak: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
