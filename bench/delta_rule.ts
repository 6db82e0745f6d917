/**
 * The gated delta rule alone at Qwen3-Next-80B's shape (32 value heads, 16 key heads, dk = dv = 128) over a
 * prefill of T tokens: WASM chunked (chunk 64) and WASM recurrent on 1..N threads, and the TypeScript
 * chunked kernel (float32). Seconds per call and tokens/s.
 * Alone: `node --import tsx bench/delta_rule.ts [--quick] [--threads N] [--tokens T]`.
 */
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { createTsKernels } from "../src/kernels/ts/index.js";
import type { DeltaRuleArgs, Vec } from "../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../src/kernels/wasm/kernels.js";
import { fastestSeconds } from "./timing.js";

export const DELTA_SHAPE = { numValueHeads: 32, numKeyHeads: 16, dk: 128, dv: 128 };

export interface DeltaRuleResult {
  T: number;
  /** Seconds per call by implementation: "wasm-chunked-1t", "wasm-recurrent-2t", "ts-chunked"... */
  seconds: Record<string, number>;
}

/** Deterministic inputs in the model's ranges: about unit-length q (scaled 1/sqrt(dk)) and k, g < 0, beta in (0, 1). */
function inputs(alloc: (n: number) => Vec, T: number): DeltaRuleArgs {
  const { numValueHeads: Hv, numKeyHeads: Hk, dk, dv } = DELTA_SHAPE;
  const fill = (n: number, f: (i: number) => number) => {
    const v = alloc(n);
    for (let i = 0; i < n; i++) v[i] = f(i);
    return v;
  };
  const unit = (scale: number, phase: number) => fill(T * Hk * dk, (i) => (Math.sin(i * 0.37 + phase) * scale) / Math.sqrt(dk / 2));
  return {
    q: unit(1 / Math.sqrt(dk), 0), k: unit(1, 1), v: fill(T * Hv * dv, (i) => Math.sin(i * 0.11)),
    g: fill(T * Hv, (i) => -0.05 - 0.5 * (1 + Math.sin(i))), beta: fill(T * Hv, (i) => 0.5 + 0.4 * Math.sin(i * 0.7)),
    state: alloc(Hv * dk * dv), T, ...DELTA_SHAPE, out: alloc(T * Hv * dv),
  };
}

export function benchDeltaRule(k: WasmKernels, T: number, ms: number, withTs: boolean): DeltaRuleResult {
  const a = inputs((n) => k.vec(n), T);
  const seconds: Record<string, number> = {};
  const max = k.pool?.size ?? 1;
  for (let t = 1; t <= max; t++) {
    k.threads = t;
    seconds[`wasm-chunked-${t}t`] = fastestSeconds(() => k.deltaRuleChunked(a, 64), ms);
    seconds[`wasm-recurrent-${t}t`] = fastestSeconds(() => k.deltaRuleRecurrent(a), ms);
  }
  k.threads = max;
  if (withTs) {
    const ts = createTsKernels("f32");
    const b = inputs((n) => new Float32Array(n), T);
    seconds["ts-chunked"] = fastestSeconds(() => ts.deltaRuleChunked(b, 64), ms, 1);
  }
  for (const v of [a.state, a.out]) if (!Array.from(v).every(Number.isFinite)) throw new Error("delta rule bench: non-finite state or output");
  return { T, seconds };
}

/** Markdown lines: seconds, tokens/s and speed-up over the recurrent scan on the same threads. */
export function deltaRuleTable(r: DeltaRuleResult): string[] {
  const { numValueHeads: Hv, numKeyHeads: Hk, dk, dv } = DELTA_SHAPE;
  const lines = [`Gated delta rule, prefill of ${r.T} tokens (${Hv} value heads, ${Hk} key heads, dk ${dk}, dv ${dv}, chunk 64):`, ""];
  lines.push("| kernel | ms per call | tokens/s | vs recurrent, same threads |");
  lines.push("|---|---:|---:|---:|");
  for (const [name, s] of Object.entries(r.seconds)) {
    const rec = r.seconds[name.replace("chunked", "recurrent")];
    const vs = name.startsWith("wasm-chunked") && rec ? `${(rec / s).toFixed(2)}x` : "-";
    lines.push(`| ${name} | ${(s * 1e3).toFixed(1)} | ${(r.T / s).toFixed(0)} | ${vs} |`);
  }
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
  const quick = args.includes("--quick");
  const k = await createWasmKernels({ threads: opt("--threads", Math.min(2, availableParallelism())) });
  const r = benchDeltaRule(k, opt("--tokens", 512), quick ? 300 : 1500, true);
  console.log(deltaRuleTable(r).join("\n"));
  await k.close();
}
