/**
 * Options shared by every command that runs the model: `--backend`, `--threads`, `--precision`, `--accumulate`,
 * `--simd`;
 * and the parsers of flag values the commands share (numbers, token id lists).
 *
 *   addKernelOptions(cmd);              // in register()
 *   loadModel(dir, kernelOptions(opts)) // in the action
 */
import { Command, InvalidArgumentError, Option } from "commander";
import type { Accumulate, Backend, KernelOptions, Precision } from "../kernels/types.js";
import { SIMD_CHOICES, SIMD_ENV, type SimdChoice } from "../kernels/wasm/simd.js";

/** A mistake in how the command was called (a missing input, flags that conflict): exit code 2, not 1. */
export class UsageError extends Error {}

/** Runs `f`, turning the one-line error it throws about a flag's value into a usage error. */
export function asUsageError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw e instanceof Error && !(e instanceof UsageError) ? new UsageError(e.message) : e;
  }
}

export interface KernelFlags {
  backend: Backend;
  threads?: number;
  precision: Precision;
  accumulate: Accumulate;
  simd?: SimdChoice;
}

/** The default backend for commands that run the model. */
export const DEFAULT_BACKEND: Backend = "wasm";

export function backendOption(): Option {
  return new Option("--backend <name>", "kernels: ts (TypeScript reference), wasm (WASM SIMD) or webgpu (WebGPU device, float32)")
    .choices(["ts", "wasm", "webgpu"])
    .default(DEFAULT_BACKEND);
}

export function threadsOption(): Option {
  return new Option("-t, --threads <n>", "worker threads for the wasm backend (default: all cores)").argParser(positiveInt("--threads"));
}

export function precisionOption(): Option {
  return new Option("--precision <p>", "compute precision: f32, or f64 (ts backend)").choices(["f32", "f64"]).default("f32");
}

/**
 * The matrix-product arithmetic a command uses when --accumulate is not given: `generate`, `chat` and `serve`
 * take the fastest one whose accuracy against the exact path is measured in the README: "q8" (integer dot
 * products over 8-bit activations for quantized weights, bench/quant_accuracy.ts; float32 sums for float
 * weights, bench/accumulate_accuracy.ts); `trace`, an oracle, takes exact float64 sums.
 */
export const GENERATION_ACCUMULATE: Accumulate = "q8";
export const TRACE_ACCUMULATE: Accumulate = "f64";

export function accumulateOption(dflt: Accumulate): Option {
  return new Option(
    "--accumulate <p>",
    "wasm matrix-product sums: f64 (exact products summed in float64, one rounding; what the fixtures are checked with), f32 (float32 sums, faster: see the README's Performance) or q8 (quantized weights: 8-bit activations and integer dot products, as llama.cpp; float weights as f32)",
  )
    .choices(["f64", "f32", "q8"])
    .default(dflt);
}

export function simdOption(): Option {
  return new Option(
    "--simd <build>",
    `wasm kernel build: auto (relaxed SIMD with fused multiply-add where Node accepts it), plain or relaxed (default: $${SIMD_ENV}, else auto)`,
  ).choices([...SIMD_CHOICES]);
}

/** Adds the kernel options to `cmd`, with its default matrix-product arithmetic. */
export function addKernelOptions(cmd: Command, accumulate: Accumulate): Command {
  return cmd
    .addOption(backendOption())
    .addOption(threadsOption())
    .addOption(precisionOption())
    .addOption(accumulateOption(accumulate))
    .addOption(simdOption());
}

/** The kernel choice from a command's parsed options. */
export function kernelOptions(o: KernelFlags): KernelOptions {
  return { backend: o.backend, threads: o.threads, precision: o.precision, accumulate: o.accumulate, simd: o.simd };
}

/** A commander argument parser for a (safe) integer >= 1 (or >= min). */
export function positiveInt(flag: string, min = 1): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${flag} expects an integer >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
}

/** A commander argument parser for a finite number. */
export function finiteNumber(flag: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n)) throw new InvalidArgumentError(`${flag} expects a number, got ${JSON.stringify(v)}`);
    return n;
  };
}

/** Token ids from text: integers separated by commas and/or whitespace, or a JSON array of integers. */
export function parseTokenIds(text: string, where: string): number[] {
  const parts = text.trim().replace(/^\[|\]$/g, "").split(/[\s,]+/).filter((p) => p !== "");
  if (parts.length === 0) throw new Error(`${where}: no token ids found, expected integers like 1,2,3`);
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new Error(`${where}: "${p}" is not a token id, expected a non-negative integer`);
    return Number(p);
  });
}
