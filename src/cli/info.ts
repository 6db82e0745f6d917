/**
 * `qwen3-next info (--model DIR|FILE.gguf | --config FILE) [--context N] [--json]`
 *
 * Describes a model without loading its weights: the architecture from config.json (or a GGUF file's metadata),
 * parameter counts (total and active per token), the memory its weights need and their stored types (from the
 * safetensors or GGUF headers with --model, or from `torch_dtype` with --config), the weight bytes one decoded
 * token reads, and the per-sequence state (KV cache, DeltaNet state) at a context length.
 */
import path from "node:path";
import { Command } from "commander";
import type { Qwen3NextConfig } from "../config.js";
import type { WeightDType } from "../kernels/types.js";
import { planCheckpoint, readConfigFile } from "../loading/checkpoint.js";
import { countParameters, describeArchitecture, sequenceStateBytes, weightBytes } from "../loading/parameters.js";
import { bytesPerToken } from "../loading/bytes_per_token.js";
import { expectedTensors } from "../loading/expected.js";
import { ggufFileOf } from "../loading/model_path.js";
import { DTYPE_BYTES } from "../io/dtype.js";
import { numel } from "../shape.js";
import { positiveInt } from "./options.js";
import { relaxedSimdSupported, resolveSimd, WASM_PATHS } from "../kernels/wasm/simd.js";
import { warnUnknownConfigKeys } from "./config_warnings.js";

export function register(program: Command): void {
  program
    .command("info")
    .description("describe a model (architecture, parameter counts, memory) without loading its weights")
    .option("-m, --model <path>", "checkpoint folder (config.json + safetensors) or a .gguf file")
    .option("--config <file>", "a config.json alone (e.g. the published 80B config)")
    .option("--context <n>", "context length for the per-sequence state", positiveInt("--context"), 4096)
    .option("--json", "print a machine-readable summary")
    .action(async function (this: Command, opts: { model?: string; config?: string; context: number; json?: boolean }) {
      if ((opts.model === undefined) === (opts.config === undefined)) {
        this.error("error: give exactly one of --model DIR or --config FILE", { exitCode: 2 });
      }
      await warnUnknownConfigKeys(opts.model !== undefined ? path.join(opts.model, "config.json") : opts.config!);
      const info = opts.model !== undefined ? await fromModel(opts.model) : await fromConfig(opts.config!);
      const summary = summarize(info, opts.context);
      process.stdout.write(opts.json ? JSON.stringify(summary, null, 2) + "\n" : format(summary));
    });
}

interface Source {
  what: string;
  config: Qwen3NextConfig;
  /** Bytes of weights in memory. */
  memoryBytes: number;
  /** Bytes of weights per stored dtype (the file's type mix), and how many stored tensors have each. */
  weightBytes: Partial<Record<WeightDType, number>>;
  tensors?: Partial<Record<WeightDType, number>>;
  /** Weight bytes one decoded token reads (`bytesPerToken`). */
  bytesPerToken: number;
  weightsFrom: "safetensors headers" | "GGUF header" | "torch_dtype";
  notes: string[];
}

async function fromModel(dir: string): Promise<Source> {
  const plan = await planCheckpoint(dir);
  await plan.store.close();
  const weightBytes: Partial<Record<WeightDType, number>> = {};
  const stored = new Map<string, WeightDType>();
  for (const w of plan.weights) {
    weightBytes[w.storedDType] = (weightBytes[w.storedDType] ?? 0) + w.readBytes;
    stored.set(w.stored, w.storedDType);
  }
  const tensors: Partial<Record<WeightDType, number>> = {};
  for (const d of stored.values()) tensors[d] = (tensors[d] ?? 0) + 1;
  const files = plan.store.files.length;
  const notes = [...plan.notes];
  const gguf = ggufFileOf(dir) !== undefined;
  if (plan.mtpDropped) notes.push(`${gguf ? "the metadata" : "config.json"} asks for an MTP head but the checkpoint has none of its tensors: described without it`);
  return {
    what: gguf ? `${plan.dir} (GGUF: config from its metadata)` : `${dir} (config.json + ${files} safetensors file${files === 1 ? "" : "s"})`,
    config: plan.config,
    memoryBytes: plan.totalBytes,
    weightBytes,
    tensors,
    bytesPerToken: bytesPerToken(plan.config, plan.weights.map((w) => ({ name: w.name, byteLength: w.readBytes }))),
    weightsFrom: gguf ? "GGUF header" : "safetensors headers",
    notes,
  };
}

async function fromConfig(file: string): Promise<Source> {
  const config = await readConfigFile(file);
  const dtype: WeightDType =
    config.torch_dtype === "float32" ? "F32" : config.torch_dtype === "float16" ? "F16" : config.torch_dtype === "float64" ? "F64" : "BF16";
  const all = weightBytes(config, dtype);
  const perToken = bytesPerToken(config, expectedTensors(config).map((t) => ({ name: t.name, byteLength: numel(t.shape) * DTYPE_BYTES[dtype] })));
  return { what: `${path.resolve(file)} (config only)`, config, memoryBytes: all, weightBytes: { [dtype]: all }, bytesPerToken: perToken, weightsFrom: "torch_dtype", notes: [] };
}

function summarize(s: Source, context: number) {
  const p = countParameters(s.config);
  return {
    model: s.what,
    notes: s.notes,
    architecture: describeArchitecture(s.config),
    parameters: { ...p, totalWithoutMtp: p.total - p.mtp },
    weights: { bytes: s.memoryBytes, byDtype: s.weightBytes, tensorsByDtype: s.tensors, bytesPerToken: s.bytesPerToken, from: s.weightsFrom },
    state: { context, float32: sequenceStateBytes(s.config, context, 4), float64: sequenceStateBytes(s.config, context, 8) },
    kernels: kernelBuild(),
  };
}

/** The WASM kernel build the commands that run the model would use here (QWEN3_NEXT_SIMD or auto). */
function kernelBuild() {
  const simd = resolveSimd();
  return { simd, file: WASM_PATHS[simd], relaxedSimdSupported: relaxedSimdSupported() };
}

function format(x: ReturnType<typeof summarize>): string {
  const p = x.parameters;
  const s = x.state.float32;
  const counts = x.weights.tensorsByDtype;
  const dtypes = Object.entries(x.weights.byDtype)
    .sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0))
    .map(([d, b]) => `${d} ${bytes(b ?? 0)}${counts ? ` in ${counts[d as WeightDType]} tensor${counts[d as WeightDType] === 1 ? "" : "s"}` : ""}`)
    .join(", ");
  return [
    `model: ${x.model}`,
    "architecture:",
    ...x.architecture.map((l) => `  ${l}`),
    `parameters: ${billions(p.total)} total (${billions(p.totalWithoutMtp)} without the MTP head), ${billions(p.active)} active per token`,
    `  active counts every non-expert weight plus top-k routed experts, without embedding, lm_head and MTP; with embedding and lm_head: ${billions(p.activeWithEmbeddings)}`,
    `  embedding + lm_head ${billions(p.embeddings)}, routed experts ${billions(p.routedExperts)}, MTP head ${billions(p.mtp)}`,
    `weights: ${bytes(x.weights.bytes)} (${dtypes}; from the ${x.weights.from})`,
    `bytes read per decoded token: ${bytes(x.weights.bytesPerToken)} (every weight as stored, k/E of the routed experts, one embedding row unless tied, no MTP)`,
    `state per sequence at ${x.state.context} tokens: ${bytes(s.total)} in float32 (KV cache ${bytes(s.kvCache)}, DeltaNet state ${bytes(s.deltaState)}, conv state ${bytes(s.convState)}); ${bytes(x.state.float64.total)} in float64`,
    `memory for one sequence: about ${bytes(x.weights.bytes + s.total)} (weights + float32 state)`,
    `wasm kernels: ${x.kernels.simd === "relaxed" ? "relaxed SIMD (fused multiply-add)" : "plain SIMD"}, ${path.basename(x.kernels.file)}${x.kernels.relaxedSimdSupported ? "" : " (this engine lacks relaxed SIMD)"}`,
    ...x.notes.map((n) => `note: ${n}`),
  ].join("\n") + "\n";
}

function billions(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${n}`;
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}
