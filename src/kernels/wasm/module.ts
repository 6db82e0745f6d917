/**
 * The compiled AssemblyScript kernels (`build/kernels.wasm` and `build/kernels-relaxed.wasm`, built by
 * `npm run build:asm` from `asm/`; simd.ts picks one).
 *
 * The module imports its memory (`env.memory`, shared, up to 4 GiB), so one compiled module is instantiated
 * once per memory ("arena") and once more per worker thread on the same shared memory.
 */
import { readFileSync, existsSync } from "node:fs";
import { WASM_PATHS, type SimdBuild } from "./simd.js";

/** The exports of asm/index.ts: every argument is an address or a count (numbers; addresses < 4 GiB). */
export interface KernelExports {
  heapBase(): number;
  permute8(x: number, xp: number, n: number): void;
  permute8Rows(x: number, xp: number, n: number, t: number): void;
  /** matvec{BF16,F16,F32}[Exact](w, x, y, cols, r0, r1), matmul{...}[Exact](w, x, y, t, rows, cols, r0, r1). */
  widenF64(x: number, xd: number, n: number): void;
  sumF32(p: number, n: number): number;
  [name: string]: (...args: number[]) => number | void;
}

/** Path of the plain-SIMD build (the one every engine runs). */
export const WASM_PATH = WASM_PATHS.plain;

/** Bytes in one WebAssembly page. */
export const PAGE = 65536;
/** The most pages one 32-bit memory can have (4 GiB). */
export const MAX_PAGES = 65536;

const compiled: Partial<Record<SimdBuild, WebAssembly.Module>> = {};

/** The compiled module of a build (default plain), compiled once per process. */
export function kernelModule(build: SimdBuild = "plain"): WebAssembly.Module {
  const done = compiled[build];
  if (done) return done;
  const file = WASM_PATHS[build];
  if (!existsSync(file)) {
    throw new Error(`WASM kernels not built: ${file} is missing, expected the output of \`npm run build:asm\``);
  }
  return (compiled[build] = new WebAssembly.Module(readFileSync(file)));
}

/** Instantiates the kernels on a memory (synchronous: the module is small). */
export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const abort = (): never => {
    throw new Error("WASM kernel aborted");
  };
  const instance = new WebAssembly.Instance(module, { env: { memory, abort } });
  return instance.exports as unknown as KernelExports;
}
