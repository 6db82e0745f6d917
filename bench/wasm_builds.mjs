// `REPS=300 node bench/wasm_builds.mjs KERNEL ROWS COLS TOKENS A.wasm B.wasm ...`: one kernel of several WASM
// kernel files side by side (e.g. an older build against build/kernels.wasm and build/kernels-relaxed.wasm), one
// thread, interleaved, fastest of REPS runs each: ms, GB/s of weights, GMAC/s. KERNEL is an export such as
// matmulBF16Exact (TOKENS 1 calls the matvec of the same kind): BF16 or F16 kernels, random BF16 words, x = sin(i).
// Small in-cache shapes measure the arithmetic; on a busy machine take many REPS (the fastest run is the one
// that was not preempted). The first output values are printed to check that the builds agree.
// CHUNK=n (a divisor of ROWS): each timed run calls the kernel on ROWS/n consecutive n-row matrices, as decode
// reads the experts (e.g. 64 matrices of 2048x512 from memory: `CHUNK=2048 ... matmulBF16 131072 512 1 ...`).
import { readFileSync } from "node:fs";
import v8 from "node:v8";
v8.setFlagsFromString("--experimental-wasm-relaxed-simd"); // Node 20: relaxed SIMD is behind this flag
const [fn, rows, cols, T, ...files] = process.argv.slice(2);
const R = +rows, C = +cols, t = +T;
const mem = new WebAssembly.Memory({ initial: 2048, maximum: 65536, shared: true });
const insts = files.map((f) => new WebAssembly.Instance(new WebAssembly.Module(readFileSync(f)), { env: { memory: mem, abort() { throw new Error("abort"); } } }).exports);
const wBytes = R * C * (fn.includes("F32") ? 4 : 2);
const base = 1 << 20;
const xOff = base + wBytes + 4096, xdOff = xOff + t * C * 4 + 4096, yOff = xdOff + t * C * 8 + 4096;
const need = yOff + t * R * 4 + 4096;
if (need > mem.buffer.byteLength) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
const u16 = new Uint16Array(mem.buffer, base, wBytes / 2);
let s = 12345;
for (let i = 0; i < u16.length; i++) { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; u16[i] = (s & 0x807f) | 0x3c00 | ((s >>> 8) & 0x0080); }
const x = new Float32Array(mem.buffer, xOff, t * C);
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
const exact = fn.endsWith("Exact");
if (exact) insts[0].widenF64(xOff, xdOff, t * C);
const xp = exact ? xdOff : xOff;
const CH = +(process.env.CHUNK ?? R);
if (!(CH >= 1 && R % CH === 0)) throw new Error(`CHUNK=${CH} does not divide ROWS=${R}`);
const eb = fn.includes("F32") ? 4 : 2;
const call = (e) => {
  for (let r0 = 0; r0 < R; r0 += CH) {
    const w = base + r0 * C * eb, y = yOff + r0 * t * 4;
    if (t === 1) e[fn.replace("matmul", "matvec")](w, xp, y, C, 0, CH);
    else e[fn](w, xp, y, t, CH, C, 0, CH);
  }
};
const best = files.map(() => Infinity);
const outs = [];
for (let rep = 0; rep < +(process.env.REPS ?? 7); rep++) for (let i = 0; i < insts.length; i++) {
  const t0 = performance.now(); call(insts[i]); best[i] = Math.min(best[i], performance.now() - t0);
  if (rep === 0) outs.push(Float32Array.from(new Float32Array(mem.buffer, yOff, Math.min(8, R))));
}
files.forEach((f, i) => console.log(`${fn} ${R}x${C} T=${t} ${f.padEnd(40)} ${best[i].toFixed(2)} ms  ${(wBytes / best[i] / 1e6).toFixed(1)} GB/s  ${(R * C * t / best[i] / 1e6).toFixed(2)} GMAC/s  y0=${outs[i][0]}`));
