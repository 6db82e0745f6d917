/**
 * `node --cpu-prof --cpu-prof-dir DIR --import tsx bench/decode_profile.ts --model FILE [--threads 1] [--tokens 8]
 *  [--accumulate f32] [--prefill N [--reps 3]]`: where a decode step's time goes. Loads the model, prefills 8 tokens, then decodes
 * `tokens` tokens one at a time, timing every kernel call through the Kernels interface (milliseconds per
 * token by kernel and, for `linear`, by weight name pattern), printed as JSON. With --prefill N it times `reps`
 * prefills of N tokens instead (each on a fresh state, logits of the last token only, as `generate` does),
 * figures per prefill. A kernel calling others (`moeExperts` calls `linear`, `gatherRows`, ...) is charged its
 * own time only. Run it under --cpu-prof for the
 * V8 profile of the same steps. cpuMsPerToken is the process's CPU time (all its threads): on a loaded machine
 * the wall-clock figures include time spent waiting for a core.
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
// --clock cpu: time kernels by the process's CPU time (getrusage, microseconds; all threads: use it on one
// thread), which a loaded machine's waits for a core do not inflate; default wall clock.
const cpuClock = arg("clock", "wall") === "cpu";
const now = cpuClock
  ? () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    }
  : () => performance.now();
const ms: Record<string, number> = {};
const calls: Record<string, number> = {};
/** Time spent in kernels called from the kernel now running (charged to them, not to it). */
let inner = 0;
const wrap = (name: string, key: (a: unknown[]) => string) => {
  const f = k[name] as (...a: unknown[]) => unknown;
  (k as Record<string, unknown>)[name] = (...a: unknown[]) => {
    const outer = inner;
    inner = 0;
    const t = now();
    const r = f(...a);
    const id = key(a);
    const dt = now() - t;
    ms[id] = (ms[id] ?? 0) + dt - inner;
    calls[id] = (calls[id] ?? 0) + 1;
    inner = outer + dt;
    return r;
  };
};
const group = (n: string) => n.replace(/\.\d+\./g, ".N.").replace(/experts\.N\./, "experts.E.");
wrap("linear", (a) => `linear ${group((a[0] as { name: string }).name)}`);
// Every other kernel call (the named layout moves too), by name.
const skip = new Set(["linear", "vec", "free", "allocWeight", "toVec", "freeWeight", "close"]);
for (const n of Object.keys(k)) if (!skip.has(n) && typeof k[n] === "function") wrap(n, () => n);
const V = model.config.vocab_size;
const prefill = Number(arg("prefill", "0"));
const prompt = Array.from({ length: prefill || 8 }, (_, i) => (i * 7919 + 13) % V);
const state = model.newState();
await model.forward(prompt, state, { lastOnly: true });
for (const key of Object.keys(ms)) delete ms[key], delete calls[key];
const n = prefill ? Number(arg("reps", "3")) : Number(arg("tokens", "8"));
const t0 = now();
const w0 = performance.now();
const c0 = process.cpuUsage();
for (let i = 0; i < n; i++) {
  if (prefill) await model.forward(prompt, model.newState(), { lastOnly: true });
  else await model.forward([(i * 104729) % V], state, { lastOnly: true });
}
const total = (now() - t0) / n;
const wall = (performance.now() - w0) / n;
const cpu = process.cpuUsage(c0);
const perToken = Object.entries(ms).map(([name, v]) => [name, v / n] as const).sort((a, b) => b[1] - a[1]);
const kernels = perToken.reduce((s, [, v]) => s + v, 0);
const callsPerToken = Object.values(calls).reduce((s, c) => s + c, 0) / n;
console.log(JSON.stringify({ clock: cpuClock ? "cpu" : "wall", per: prefill ? `prefill of ${prefill} tokens` : "decoded token", msPerToken: total, wallMsPerToken: wall, cpuMsPerToken: (cpu.user + cpu.system) / 1000 / n, kernelsMs: kernels, outsideKernelsMs: total - kernels, callsPerToken, byKernel: Object.fromEntries(perToken.map(([a, b]) => [`${a} (${calls[a] / n}/token)`, +b.toFixed(3)])) }, null, 1));
process.exit(0);
