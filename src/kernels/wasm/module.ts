/**
 * The compiled AssemblyScript kernels (`build/kernels.wasm`, built by `npm run build:asm` from `asm/`).
 *
 * The module imports its memory (`env.memory`, shared, up to 4 GiB), so one compiled module is instantiated
 * once per memory ("arena") and once more per worker thread on the same shared memory.
 */
import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

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

/** Path of the release build, relative to this file in both src/ and dist/ layouts. */
export const WASM_PATH = fileURLToPath(new URL("../../../build/kernels.wasm", import.meta.url));

/** Bytes in one WebAssembly page. */
export const PAGE = 65536;
/** The most pages one 32-bit memory can have (4 GiB). */
export const MAX_PAGES = 65536;

let compiled: WebAssembly.Module | undefined;

/** The compiled module, compiled once per process. */
export function kernelModule(): WebAssembly.Module {
  if (compiled) return compiled;
  if (!existsSync(WASM_PATH)) {
    throw new Error(`WASM kernels not built: ${WASM_PATH} is missing, expected the output of \`npm run build:asm\``);
  }
  compiled = new WebAssembly.Module(readFileSync(WASM_PATH));
  return compiled;
}

/** Instantiates the kernels on a memory (synchronous: the module is small). */
export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const abort = (): never => {
    throw new Error("WASM kernel aborted");
  };
  const instance = new WebAssembly.Instance(module, { env: { memory, abort } });
  return instance.exports as unknown as KernelExports;
}
