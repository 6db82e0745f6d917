/**
 * Timing helpers. Kernel throughput is the fastest sample (tinybench), like the bandwidth probe's best of n:
 * on a shared machine the slower samples measure the other processes; the fastest one measures the code.
 */
import { Bench } from "tinybench";

/** Fastest seconds per call of `fn`, sampled for about `ms` milliseconds (at least `minIter` calls). */
export function fastestSeconds(fn: () => void, ms: number, minIter = 3): number {
  const bench = new Bench({ time: ms, iterations: minIter, warmupTime: Math.min(200, ms / 4), warmupIterations: 1 });
  bench.add("task", fn);
  bench.runSync();
  const r = bench.tasks[0].result as { latency?: { min: number }; error?: unknown };
  if (!r.latency) throw new Error(`benchmark failed: ${String(r.error)}`);
  return r.latency.min / 1e3;
}

/** Shortest of n timed runs of `fn`, in seconds. */
export function bestSeconds(fn: () => void, n: number): number {
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn();
    best = Math.min(best, (performance.now() - t) / 1e3);
  }
  return best;
}
