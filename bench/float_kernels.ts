/**
 * `node --import tsx bench/float_kernels.ts [--quick] [--ms N] [--shapes a,b] [--out FILE]`: the float
 * (BF16) matrix products of both kernel builds side by side, interleaved: plain SIMD vs relaxed SIMD, float64
 * (exact) vs float32 sums, 1 and 2 threads; matvec (one token, decode) and matmul (64 tokens, prefill), GB/s
 * of weights against the streaming bandwidth of the same thread count. Writes bench/float-kernels-results.json.
 */
import { writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import type { Weight } from "../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../src/kernels/wasm/kernels.js";
import { measureBandwidth } from "./bandwidth.js";
import { machineFacts } from "./machine.js";
import { fillBf16, SHAPES } from "./matvec.js";
import { fastestSeconds } from "./timing.js";

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes("--quick");
const ms = Number(arg("--ms") ?? (quick ? 300 : 1000));
const T = Number(arg("--tokens") ?? 64);
const out = arg("--out") ?? fileURLToPath(new URL("./float-kernels-results.json", import.meta.url));
const threads = Math.min(2, availableParallelism());
const wanted = arg("--shapes")?.split(",");
const shapes = SHAPES.filter((s, i) => !wanted || wanted.includes(String(i)) || wanted.includes(s.name));
const log = (s: string) => process.stderr.write(s + "\n");

interface Row {
  shape: string;
  rows: number;
  cols: number;
  tokens: number;
  simd: string;
  accumulate: string;
  threads: number;
  seconds: number;
  /** Weight bytes streamed per second (GB/s, 1e9). */
  gbps: number;
  /** Multiply-adds per second / 1e9 (GFLOP/s = 2x). */
  gmacs: number;
}

async function main(): Promise<void> {
  const machine = machineFacts();
  log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}; load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  const builds: Record<string, WasmKernels> = {
    plain: await createWasmKernels({ threads, simd: "plain" }),
    relaxed: await createWasmKernels({ threads, simd: "relaxed" }),
  };
  const bandwidth = measureBandwidth(builds.plain, quick ? 256 << 20 : 512 << 20, quick ? 3 : 5);
  log(`bandwidth: ${Object.entries(bandwidth.gbps).map(([t, g]) => `${g.toFixed(1)} GB/s on ${t}`).join(", ")}`);
  const rows: Row[] = [];
  for (const { name, rows: R, cols: C } of shapes) {
    const ws: Record<string, { w: Weight; x: Float32Array; y: Float32Array }> = {};
    for (const [b, k] of Object.entries(builds)) {
      const w = k.allocWeight(name, "BF16", [R, C]);
      fillBf16(w.data as Uint16Array, R + C);
      const tokens = name === "lm_head" ? 1 : T; // the vocabulary product runs for one token per sequence
      const x = k.vec(tokens * C) as Float32Array;
      for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
      ws[b] = { w, x, y: k.vec(tokens * R) as Float32Array };
    }
    for (const tokens of name === "lm_head" ? [1] : [1, T]) {
      for (const acc of ["f64", "f32"] as const) {
        for (let t = 1; t <= threads; t++) {
          // Interleaved: plain, relaxed, plain, relaxed (each the fastest of its samples).
          const best: Record<string, number> = { plain: Infinity, relaxed: Infinity };
          for (let rep = 0; rep < 2; rep++) {
            for (const [b, k] of Object.entries(builds)) {
              k.accumulate = acc;
              k.threads = t;
              const { w, x, y } = ws[b];
              best[b] = Math.min(best[b], fastestSeconds(() => k.linear(w, x, tokens, y), ms / 2));
            }
          }
          for (const b of Object.keys(builds)) {
            const s = best[b];
            rows.push({ shape: name, rows: R, cols: C, tokens, simd: b, accumulate: acc, threads: t, seconds: s, gbps: (R * C * 2) / s / 1e9, gmacs: (R * C * tokens) / s / 1e9 });
          }
          const [p, r] = [rows.at(-2)!, rows.at(-1)!];
          log(
            `${name.padEnd(38)} T=${String(tokens).padStart(2)} ${acc} ${t}t: plain ${p.gbps.toFixed(1)} GB/s ${p.gmacs.toFixed(1)} GMAC/s | relaxed ${r.gbps.toFixed(1)} GB/s ${r.gmacs.toFixed(1)} GMAC/s (${(p.seconds / r.seconds).toFixed(2)}x)`,
          );
        }
      }
    }
    for (const [b, k] of Object.entries(builds)) {
      k.freeWeight(ws[b].w);
      k.free(ws[b].x);
      k.free(ws[b].y);
    }
  }
  writeFileSync(out, JSON.stringify({ machine, loadavg: loadavg(), bandwidthGBps: bandwidth.gbps, rows }, null, 2) + "\n");
  log(`wrote ${out}`);
  for (const k of Object.values(builds)) await k.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
