/**
 * `OLD=dir NEW=dir [SHAPE=rows,cols] [COPIES=n] npx tsx bench/quant_ab.ts [TYPES] [T] [plain,relaxed] [ms]`: two
 * builds of the WASM kernels (directories holding kernels.wasm and kernels-relaxed.wasm; NEW defaults to build/)
 * timed on the same weights, q8 products (activation quantization included) of one or T tokens, one thread,
 * alternating 6 rounds, fastest sample: ns per weight-token, new / old, and the largest relative difference
 * between their outputs. COPIES cycles that many copies of the weight (one-token products), so that they come
 * from memory as a model's do: a layout that is faster in cache can be slower streamed (see the README).
 */
import { readFileSync } from "node:fs";
import { relaxedSimdSupported } from "../src/kernels/wasm/simd.js";
import { quantizeRow, quantRowBytes } from "../src/io/ggml_quants.js";
import { fastestSeconds } from "./timing.js";
const args = process.argv.slice(2);
const TYPES = (args[0] ?? "Q8_0,Q4_0,Q4_1,Q5_0,Q5_1,Q4_K,Q5_K,Q6_K").split(",");
const T = Number(args[1] ?? "1");
const builds = (args[2] ?? "plain,relaxed").split(",");
const ms = Number(args[3] ?? "100");
relaxedSimdSupported();
const [rows, cols] = (process.env.SHAPE ?? "2048,4096").split(",").map(Number);
let s = 12345;
const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5) * 0.06;
const values = Float32Array.from({ length: rows * cols }, rand);
const inst = (file: string) => {
  const memory = new WebAssembly.Memory({ initial: 1024, maximum: 65536, shared: true });
  const e = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), { env: { memory, abort: () => { throw new Error("abort"); } } }).exports as any;
  return { e, memory };
};
for (const b of builds) {
  const name = b === "plain" ? "kernels.wasm" : "kernels-relaxed.wasm";
  const v = { old: inst(`${process.env.OLD ?? "build"}/${name}`), new: inst(`${process.env.NEW ?? "build"}/${name}`) };
  for (const dt of TYPES) {
    const rb = quantRowBytes(dt as any, cols);
    const wb = new Uint8Array(rows * rb);
    for (let r = 0; r < rows; r++) quantizeRow(dt as any, values, r * cols, wb, r * rb, cols);
    const fns: Record<string, () => void> = {};
    const ys: Record<string, Float32Array> = {};
    for (const [k, { e, memory }] of Object.entries(v)) {
      const base = (e.heapBase() + 4095) & ~4095;
      const w = base, x = w + Number(process.env.COPIES ?? "1") * wb.length, a = x + T * cols * 4, y = a + T * e.actBytes(cols) + 64;
      const NC = Number(process.env.COPIES ?? "1");
      const need = Math.ceil((w + NC * wb.length + (8 << 20)) / 65536) - memory.buffer.byteLength / 65536; if (need > 0) memory.grow(need);
      for (let c = 0; c < NC; c++) new Uint8Array(memory.buffer, w + c * wb.length, wb.length).set(wb);
      const xf = new Float32Array(memory.buffer, x, T * cols);
      for (let i = 0; i < xf.length; i++) xf[i] = Math.sin(i);
      const kind = dt.endsWith("_K") ? 1 : 0;
      const mv = e[`matvec${dt}Int`], mm = e[`matmul${dt}Int`];
      let ci = 0; const NCc = Number(process.env.COPIES ?? "1"); fns[k] = T === 1 ? () => { e.quantizeActs(x, a, cols, 1, kind); mv(w + (ci = (ci + 1) % NCc) * wb.length, a, y, cols, 0, rows); } : () => { e.quantizeActs(x, a, cols, T, kind); mm(w, a, y, T, rows, cols, 0, rows); };
      fns[k]();
      ys[k] = new Float32Array(memory.buffer, y, T * rows);
    }
    let maxd = 0;
    for (let i = 0; i < ys.old.length; i++) maxd = Math.max(maxd, Math.abs(ys.old[i] - ys.new[i]) / (Math.abs(ys.old[i]) + 1e-30));
    const best: Record<string, number> = { old: Infinity, new: Infinity };
    for (let r = 0; r < 6; r++) for (const k of ["old", "new"]) best[k] = Math.min(best[k], fastestSeconds(fns[k], ms));
    const ns = (k: string) => (best[k] * 1e9) / (rows * cols * T);
    console.log(`${b} ${dt} T=${T}: old ${ns("old").toFixed(3)} new ${ns("new").toFixed(3)} ns/weight-token, new/old ${(best.new / best.old).toFixed(3)}, max rel diff ${maxd.toExponential(1)}`);
  }
}
