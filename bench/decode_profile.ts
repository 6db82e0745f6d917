/**
 * `node --cpu-prof --cpu-prof-dir DIR --import tsx bench/decode_profile.ts --model FILE [--threads 1] [--tokens 8]
 *  [--accumulate f32]`: where a decode step's time goes. Loads the model, prefills 8 tokens, then decodes
 * `tokens` tokens one at a time, timing every kernel call through the Kernels interface (milliseconds per
 * token by kernel and, for `linear`, by weight name pattern), printed as JSON. Run it under --cpu-prof for the
 * V8 profile of the same steps.
 */
import { loadModel } from "../src/model/load.js";
import type { Kernels } from "../src/kernels/types.js";

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const model = await loadModel(arg("model", ""), { backend: "wasm", threads: Number(arg("threads", "1")), accumulate: arg("accumulate", "f32") as "f32" });
const k = model.kernels as Kernels & Record<string, unknown>;
const ms: Record<string, number> = {};
const wrap = (name: string, key: (a: unknown[]) => string) => {
  const f = k[name] as (...a: unknown[]) => unknown;
  (k as Record<string, unknown>)[name] = (...a: unknown[]) => {
    const t = performance.now();
    const r = f(...a);
    const id = key(a);
    ms[id] = (ms[id] ?? 0) + performance.now() - t;
    return r;
  };
};
const group = (n: string) => n.replace(/\.\d+\./g, ".N.").replace(/experts\.N\./, "experts.E.");
wrap("linear", (a) => `linear ${group((a[0] as { name: string }).name)}`);
for (const n of ["attention", "deltaRuleRecurrent", "deltaRuleChunked", "causalConv1d", "rmsNorm", "gatedRmsNorm", "router", "siluMul", "softmax", "rope", "embedding", "axpy", "l2Normalize", "sigmoidMul"]) wrap(n, () => n);
const V = model.config.vocab_size;
const state = model.newState();
await model.forward(Array.from({ length: 8 }, (_, i) => (i * 7919 + 13) % V), state, { lastOnly: true });
for (const key of Object.keys(ms)) delete ms[key];
const n = Number(arg("tokens", "8"));
const t0 = performance.now();
const c0 = process.cpuUsage();
for (let i = 0; i < n; i++) await model.forward([(i * 104729) % V], state, { lastOnly: true });
const total = (performance.now() - t0) / n;
const cpu = process.cpuUsage(c0);
const cpuMs = (cpu.user + cpu.system) / 1e3 / n;
const perToken = Object.entries(ms).map(([name, v]) => [name, v / n] as const).sort((a, b) => b[1] - a[1]);
const kernels = perToken.reduce((s, [, v]) => s + v, 0);
console.log(JSON.stringify({ msPerToken: total, cpuMsPerToken: cpuMs, kernelsMs: kernels, outsideKernelsMs: total - kernels, byKernel: Object.fromEntries(perToken.map(([a, b]) => [a, +b.toFixed(2)])) }, null, 1));
process.exit(0);
