/**
 * Scale-out on loopback: three `qwen3-next serve` replicas behind nginx (standing in for a Kubernetes
 * Service), load through nginx, and one replica stopped with SIGTERM mid-load, as a rolling update or a
 * node drain does. Expected: no request hangs; those in flight on the stopped replica complete (or end
 * with a clean error); new ones go to the other two; its /ready flips to 503 before it stops listening;
 * it exits 0.
 *
 * Needs Debian's nginx (`apt-get install nginx-light`; .ci/run installs it). Without it the test is
 * skipped with the reason printed, except under CI=true, where it fails.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nginxBinary, oneRequest, startNginx, startReplica, stopReplica, type LoadResult, type Nginx, type Replica } from "../helpers/cluster.js";
import { TEST_CACHE } from "./harness.js";

const nginx = nginxBinary();
const ci = process.env.CI === "true";
if (!nginx) {
  const why = "scale-out test: nginx is not installed (apt-get install nginx-light)";
  if (ci) throw new Error(`${why}; CI=true requires it`);
  console.warn(`skipped: ${why}`);
}

describe.skipIf(!nginx)("scale-out: 3 replicas behind nginx, one stopped mid-load", () => {
  let replicas: Replica[] = [];
  let lb: Nginx | undefined;
  beforeAll(async () => {
    // --drain-delay 2: /ready answers 503 for 2 s before the listener closes; --grace 30 lets in-flight requests finish.
    replicas = await Promise.all(
      [0, 1, 2].map(() => startReplica(["--drain-delay", "2", "--grace", "30", "--max-concurrency", "4"], { QWEN3_NEXT_CACHE: TEST_CACHE })),
    );
    lb = await startNginx(nginx!, replicas.map((r) => r.port));
  }, 120_000);
  afterAll(async () => {
    await lb?.stop();
    await Promise.all(replicas.map(stopReplica));
  });

  it("loses no request, drains the stopped replica, and sends new requests to the others", async () => {
    const url = lb!.url;
    const [a, victim, c] = replicas;
    // X-Upstream lists every replica nginx tried; the last one answered.
    const servedBy = (r: LoadResult) => r.upstream.split(", ").at(-1);
    const results: LoadResult[] = [];
    let stopAt = 0;
    let exitedAt = Infinity;
    let stop = false;
    let n = 0;
    // 6 clients, each sending requests one after another (every other one streamed).
    const clients = Array.from({ length: 6 }, async () => {
      while (!stop) {
        const i = n++;
        results.push(await oneRequest(url, "qwen3-next-demo", i, i % 2 === 0));
      }
    });

    // Warm up until every replica has answered, then SIGTERM one while requests are in flight on it.
    for (let i = 0; i < 600 && new Set(results.filter((r) => r.outcome === "ok").map(servedBy)).size < 3; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(new Set(results.map(servedBy))).toEqual(new Set(replicas.map((r) => `127.0.0.1:${r.port}`)));
    // SIGTERM while the victim has a request in flight (its /health counts the active ones), not by luck.
    let health = { completed: 0, active: 0 };
    for (let i = 0; i < 500; i++) {
      health = (await (await fetch(`${victim.url}/health`)).json()) as { completed: number; active: number };
      if (health.active > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    stopAt = performance.now();
    victim.proc.kill("SIGTERM");

    // Readiness flips: 503 while draining, then the port closes.
    const readiness: number[] = [];
    while (victim.proc.exitCode === null && performance.now() - stopAt < 40_000) {
      readiness.push(await fetch(`${victim.url}/ready`).then((r) => r.status, () => 0));
      await new Promise((r) => setTimeout(r, 100));
    }
    const code = await victim.exit;
    exitedAt = performance.now();
    // Keep the load on the two others for a while.
    const countAfter = () => results.filter((r) => r.startedAt > exitedAt).length;
    for (let i = 0; i < 600 && countAfter() < 30; i++) await new Promise((r) => setTimeout(r, 50));
    stop = true;
    await Promise.all(clients);

    expect(code).toBe(0);
    expect(readiness[0]).toBe(503);
    expect(readiness).not.toContain(200);
    expect(health.completed).toBeGreaterThan(0);

    const bad = results.filter((r) => r.outcome === "hung" || r.outcome === "broken");
    expect(bad, JSON.stringify(bad.slice(0, 3))).toEqual([]);
    // In flight on the victim at SIGTERM: they finished within --grace (no clean errors were even needed).
    const inFlight = results.filter((r) => servedBy(r) === `127.0.0.1:${victim.port}` && r.startedAt < stopAt && r.startedAt + r.ms > stopAt);
    expect(inFlight.length).toBeGreaterThan(0);
    expect(inFlight.every((r) => r.outcome === "ok")).toBe(true);
    const errors = results.filter((r) => r.outcome === "error");
    expect(errors, JSON.stringify(errors.slice(0, 3))).toEqual([]);
    // After it exited, every request was answered by the other two.
    const after = results.filter((r) => r.startedAt > exitedAt);
    expect(after.length).toBeGreaterThanOrEqual(30);
    for (const r of after) expect([`127.0.0.1:${a.port}`, `127.0.0.1:${c.port}`]).toContain(servedBy(r));
    expect(after.every((r) => r.outcome === "ok")).toBe(true);
  }, 240_000);
});
