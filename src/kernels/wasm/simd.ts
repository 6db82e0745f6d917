/**
 * Which build of the WASM kernels runs: both come from the same asm/ sources (`npm run build:asm`).
 *
 *   plain    build/kernels.wasm          WASM SIMD 128 (every engine with SIMD)
 *   relaxed  build/kernels-relaxed.wasm  + relaxed SIMD (fused multiply-add `f32x4/f64x2.relaxed_madd`, the
 *                                        int8 dot products); the asm code picks its instructions with the
 *                                        compile-time constant ASC_FEATURE_RELAXED_SIMD
 *
 * Node 20's V8 has relaxed SIMD behind `--experimental-wasm-relaxed-simd`. The flag is process-wide (worker
 * threads see it too) and is read when a module is validated or compiled, so setting it with
 * `v8.setFlagsFromString` before the kernels are compiled is enough; this module does that when it is loaded.
 * Support is then detected by validating a tiny module that uses one relaxed instruction; without support
 * (or without the relaxed file, as in the browser page) the plain build runs.
 *
 * `QWEN3_NEXT_SIMD=plain|relaxed|auto` (or the `simd` kernel option, `--simd`) forces a build; `auto` (the
 * default) takes relaxed when the engine supports it.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type SimdBuild = "plain" | "relaxed";
export type SimdChoice = SimdBuild | "auto";
export const SIMD_CHOICES: readonly SimdChoice[] = ["auto", "plain", "relaxed"];
/** The environment variable that forces a build when no option does. */
export const SIMD_ENV = "QWEN3_NEXT_SIMD";

/** Paths of the two builds, relative to this file in both src/ and dist/ layouts. */
export const WASM_PATHS: Record<SimdBuild, string> = {
  plain: fileURLToPath(new URL("../../../build/kernels.wasm", import.meta.url)),
  relaxed: fileURLToPath(new URL("../../../build/kernels-relaxed.wasm", import.meta.url)),
};

/** The V8 flag that turns relaxed SIMD on in Node 20 (on by default from V8 11.4 / Node 21 on). */
export const RELAXED_SIMD_FLAG = "--experimental-wasm-relaxed-simd";

/**
 * A module whose one function is `f32x4.relaxed_madd(0, 0, 0)`: valid exactly when the engine accepts
 * relaxed SIMD (type () -> v128; v128.const is 0xfd 12, f32x4.relaxed_madd is 0xfd 0x105).
 */
const zeros = (): number[] => new Array<number>(16).fill(0);
const BODY = [0, ...[0xfd, 12, ...zeros()], ...[0xfd, 12, ...zeros()], ...[0xfd, 12, ...zeros()], 0xfd, 0x85, 0x02, 0x0b];
const PROBE = new Uint8Array([
  ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
  ...[1, 5, 1, 0x60, 0, 1, 0x7b], // type section: () -> v128
  ...[3, 2, 1, 0], // function section
  ...[10, BODY.length + 2, 1, BODY.length, ...BODY], // code section
]);

interface NodeProcess {
  env?: Record<string, string | undefined>;
  versions?: { node?: string };
  getBuiltinModule?: (id: string) => unknown;
}
/** Node's `process` (absent in a browser page). */
const proc = (globalThis as { process?: NodeProcess }).process;
const processEnv = (): Record<string, string | undefined> => proc?.env ?? {};

/** Sets the V8 flag (Node only; a no-op where `node:v8` is absent, e.g. in a browser). Idempotent. */
export function enableRelaxedSimdFlag(): void {
  const v8 = proc?.getBuiltinModule?.("node:v8") as { setFlagsFromString(flags: string): void } | undefined;
  if (!v8 || relaxedSimdSupported()) return;
  v8.setFlagsFromString(RELAXED_SIMD_FLAG);
}

/** Whether this engine accepts relaxed SIMD instructions now. */
export function relaxedSimdSupported(): boolean {
  const wasm = (globalThis as unknown as { WebAssembly?: { validate(bytes: Uint8Array): boolean } }).WebAssembly;
  return wasm !== undefined && wasm.validate(PROBE);
}

/** `QWEN3_NEXT_SIMD`, checked: undefined when unset or empty. */
export function simdFromEnv(env: Record<string, string | undefined> = processEnv()): SimdChoice | undefined {
  const v = env[SIMD_ENV];
  if (v === undefined || v === "") return undefined;
  return checkSimdChoice(v, SIMD_ENV);
}

export function checkSimdChoice(v: unknown, what = "simd"): SimdChoice {
  if (!SIMD_CHOICES.includes(v as SimdChoice)) {
    throw new Error(`${what} is ${JSON.stringify(v)}, expected one of ${SIMD_CHOICES.join(", ")}`);
  }
  return v as SimdChoice;
}

/**
 * The build to run for a choice (the option, else QWEN3_NEXT_SIMD, else auto). Forcing `relaxed` where the
 * engine or the file lacks it is an error naming which.
 */
export function resolveSimd(choice?: SimdChoice, env: Record<string, string | undefined> = processEnv()): SimdBuild {
  const c = choice === undefined ? (simdFromEnv(env) ?? "auto") : checkSimdChoice(choice);
  if (c === "plain") return "plain";
  enableRelaxedSimdFlag();
  const engine = relaxedSimdSupported();
  const file = existsSync(WASM_PATHS.relaxed);
  if (c === "relaxed") {
    if (!engine) throw new Error(`relaxed SIMD was asked for but this JavaScript engine does not accept it (Node ${proc?.versions?.node ?? "?"}: ${RELAXED_SIMD_FLAG} had no effect)`);
    if (!file) throw new Error(`relaxed SIMD was asked for but ${WASM_PATHS.relaxed} is missing, expected the output of \`npm run build:asm\``);
    return "relaxed";
  }
  return engine && file ? "relaxed" : "plain";
}

// Set the flag as soon as the kernels' loader is imported, before anything compiles a module.
enableRelaxedSimdFlag();
