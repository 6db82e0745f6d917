/**
 * Load through nginx in front of 1 and then 3 `qwen3-next serve` replicas (the demo checkpoint): N chat
 * requests of up to 12 tokens (every other one streamed) at concurrency C. Reports requests/s, latency
 * p50/p99 and how many were lost (hung, broken or errors; expected 0). Writes bench/scale-out-results.json.
 *
 *   node --import tsx bench/scale_out.ts [--requests 96] [--concurrency 12] [--threads 1]
 *
 * Replicas on one machine share its cores: with fewer cores than replicas x threads, 3 replicas cannot
 * be faster than 1; the figure that carries over to separate nodes is "none lost" and the balance.
 */
import { writeFileSync } from "node:fs";
import { nginxBinary, oneRequest, startNginx, startReplica, stopReplica, type LoadResult } from "../test/helpers/cluster.js";
import { machineFacts } from "./machine.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} expects an integer >= 1`);
  return v;
};
const N = arg("requests", 96);
const C = arg("concurrency", 12);
const threads = arg("threads", 1);
const nginx = nginxBinary();
if (!nginx) throw new Error("nginx is not installed (apt-get install nginx-light)");

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const rows = [];
for (const count of [1, 3]) {
  const replicas = await Promise.all(Array.from({ length: count }, () => startReplica(["--threads", String(threads), "--max-concurrency", "8", "--max-queue", String(N)])));
  const lb = await startNginx(nginx, replicas.map((r) => r.port));
  await oneRequest(lb.url, "qwen3-next-demo", -1, false); // warm-up
  const results: LoadResult[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      for (let i = next++; i < N; i = next++) results.push(await oneRequest(lb.url, "qwen3-next-demo", i, i % 2 === 0, 120_000));
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await lb.stop();
  await Promise.all(replicas.map(stopReplica));
  const ok = results.filter((r) => r.outcome === "ok");
  const lat = ok.map((r) => r.ms).sort((a, b) => a - b);
  const byReplica = new Map<string, number>();
  for (const r of ok) byReplica.set(r.upstream.split(", ").at(-1) ?? "", (byReplica.get(r.upstream.split(", ").at(-1) ?? "") ?? 0) + 1);
  const perReplica = [...byReplica.values()];
  rows.push({
    replicas: count,
    requests: N,
    concurrency: C,
    requestsPerS: ok.length / seconds,
    p50Ms: pct(lat, 50),
    p99Ms: pct(lat, 99),
    lost: results.length - ok.length,
    perReplica,
  });
}
console.log(`| replicas | requests/s | p50 | p99 | lost | per replica |`);
console.log(`|---:|---:|---:|---:|---:|---|`);
for (const r of rows) {
  console.log(`| ${r.replicas} | ${r.requestsPerS.toFixed(1)} | ${r.p50Ms.toFixed(0)} ms | ${r.p99Ms.toFixed(0)} ms | ${r.lost} | ${r.perReplica.join(" / ")} |`);
}
writeFileSync(new URL("./scale-out-results.json", import.meta.url), `${JSON.stringify({ date: new Date().toISOString(), machine: machineFacts(), threadsPerReplica: threads, rows }, null, 2)}\n`);
