/**
 * `qwen3-next trace --model DIR|FILE.gguf (--tokens 1,2,3 | --tokens-file F) --out dump.safetensors
 *                   [--only PATTERNS] [--layers LIST] [--precision f32|f64] [--decode-from N] [--backend ts|wasm] [--threads N]`
 *
 * Runs the model over the tokens and writes every module's output and the internals runtimes get wrong
 * (names and shapes in README.md, "Using it as an oracle": embedding, attention.{i}.q/k/gate/k_cache/v_cache/out,
 * deltanet.{i}.conv/conv_state/g/beta/core/state/out, router.{i}.*, moe.{i}.shared/shared_gate/out,
 * hidden.{i}, final_hidden, logits, mtp_logits) to a safetensors dump, atomically. `--only 'attention.*.q,hidden.*'`
 * and `--layers 0,3-5` keep it small. `compare` checks such a dump against another runtime's.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { Command, Option } from "commander";
import { loadModel } from "../model/load.js";
import { writeTraceDump } from "../io/trace_dump.js";
import { traceTokens } from "../model/trace_run.js";
import { addKernelOptions, kernelOptions, parseTokenIds, positiveInt, TRACE_ACCUMULATE, UsageError, asUsageError, type KernelFlags } from "./options.js";
import { progressBar } from "./progress.js";
import { warnUnknownConfigKeys } from "./config_warnings.js";

interface TraceFlags extends KernelFlags {
  model: string;
  tokens?: string;
  tokensFile?: string;
  out: string;
  decodeFrom?: number;
  only?: string;
  layers?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command("trace")
    .description("run the model on token ids and dump every intermediate tensor to a safetensors file")
    .requiredOption("-m, --model <path>", "checkpoint folder (config.json + safetensors) or a .gguf file")
    .addOption(new Option("--tokens <ids>", "comma-separated token ids, e.g. 1,2,3").conflicts("tokensFile"))
    .option("--tokens-file <file>", "file of token ids separated by commas, spaces or newlines (or a JSON array)")
    .requiredOption("--out <file>", "where to write the dump (.safetensors)")
    .option("--decode-from <n>", "prefill the first n tokens, then decode the rest one at a time", positiveInt("--decode-from"))
    .option("--only <patterns>", "keep only tensors whose names match these comma-separated patterns (* = anything), e.g. 'attention.*.q,hidden.*'")
    .option("--layers <list>", "keep only these layers' tensors, e.g. 0,3-5 (names outside the layers are kept)");
  addKernelOptions(cmd, TRACE_ACCUMULATE).action(async (o: TraceFlags) => {
    if (o.tokens === undefined && o.tokensFile === undefined) {
      throw new UsageError("no tokens given: pass --tokens 1,2,3 or --tokens-file FILE");
    }
    const tokens =
      o.tokens !== undefined ? asUsageError(() => parseTokenIds(o.tokens!, "--tokens")) : parseTokenIds(await readText(o.tokensFile!), o.tokensFile!);
    const filter = { only: o.only?.split(",").map((p) => p.trim()).filter((p) => p !== ""), layers: o.layers === undefined ? undefined : parseLayers(o.layers) };
    if (o.decodeFrom !== undefined && o.decodeFrom > tokens.length) {
      throw new UsageError(`--decode-from is ${o.decodeFrom}, expected at most the number of tokens (${tokens.length})`);
    }
    await warnUnknownConfigKeys(path.join(o.model, "config.json"));
    const notes: string[] = [];
    const bar = progressBar("loading");
    const model = await loadModel(o.model, { ...kernelOptions(o), onProgress: bar.update, onNote: (n) => notes.push(n) });
    bar.done();
    for (const n of notes) process.stderr.write(`note: ${n}\n`);
    const prefill = progressBar("prefill", "layers");
    const run = await traceTokens(model, tokens, o.decodeFrom, prefill.update, filter);
    prefill.done();
    await writeTraceDump(o.out, { ...run, tensors: run.trace.tensors() }, o.precision);
    process.stderr.write(
      `trace: ${tokens.length} tokens (${run.nPrefill} prefill, ${run.nDecode} decode), ${run.trace.names().length} tensors -> ${o.out}\n`,
    );
  });
}

/** "0,3-5" -> [0, 3, 4, 5]. */
function parseLayers(text: string): number[] {
  return text.split(",").flatMap((part) => {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) {
      throw new UsageError(`--layers: "${part}" is not a layer or a range, expected e.g. 0,3-5`);
    }
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
  });
}

async function readText(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read --tokens-file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
