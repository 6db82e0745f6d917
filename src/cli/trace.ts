/**
 * `qwen3-next trace --model DIR (--tokens 1,2,3 | --tokens-file F) --out dump.safetensors
 *                   [--precision f32|f64] [--decode-from N] [--backend ts|wasm] [--threads N]`
 *
 * Runs the model over the tokens and writes every intermediate (tensor names as in reference/README.md:
 * input_ids, logits, final_hidden, hidden.{i}, router.{i}.experts/.weights, mtp_logits, deltanet.{i}.state)
 * to a safetensors dump, atomically. `compare` checks such a dump against another runtime's.
 */
import { promises as fsp } from "node:fs";
import { Command, Option } from "commander";
import { loadModel } from "../model/load.js";
import { traceTokens, writeTraceDump } from "../model/trace_run.js";
import { addKernelOptions, kernelOptions, parseTokenIds, positiveInt, type KernelFlags } from "./options.js";
import { progressBar } from "./progress.js";

interface TraceFlags extends KernelFlags {
  model: string;
  tokens?: string;
  tokensFile?: string;
  out: string;
  decodeFrom?: number;
}

export function register(program: Command): void {
  const cmd = program
    .command("trace")
    .description("run the model on token ids and dump every intermediate tensor to a safetensors file")
    .requiredOption("--model <dir>", "checkpoint folder (config.json + safetensors)")
    .addOption(new Option("--tokens <ids>", "comma-separated token ids, e.g. 1,2,3").conflicts("tokensFile"))
    .option("--tokens-file <file>", "file of token ids separated by commas, spaces or newlines (or a JSON array)")
    .requiredOption("--out <file>", "where to write the dump (.safetensors)")
    .option("--decode-from <n>", "prefill the first n tokens, then decode the rest one at a time", positiveInt("--decode-from"));
  addKernelOptions(cmd).action(async (o: TraceFlags) => {
    if (o.tokens === undefined && o.tokensFile === undefined) {
      throw new Error("no tokens given: pass --tokens 1,2,3 or --tokens-file FILE");
    }
    const tokens =
      o.tokens !== undefined ? parseTokenIds(o.tokens, "--tokens") : parseTokenIds(await readText(o.tokensFile!), o.tokensFile!);
    if (o.decodeFrom !== undefined && o.decodeFrom > tokens.length) {
      throw new Error(`--decode-from is ${o.decodeFrom}, expected at most the number of tokens (${tokens.length})`);
    }
    const notes: string[] = [];
    const bar = progressBar("loading");
    const model = await loadModel(o.model, { ...kernelOptions(o), onProgress: bar.update, onNote: (n) => notes.push(n) });
    bar.done();
    for (const n of notes) process.stderr.write(`note: ${n}\n`);
    const prefill = progressBar("prefill", "layers");
    const run = traceTokens(model, tokens, o.decodeFrom, prefill.update);
    prefill.done();
    await writeTraceDump(o.out, run, o.precision);
    process.stderr.write(
      `trace: ${tokens.length} tokens (${run.nPrefill} prefill, ${run.nDecode} decode), ${run.trace.names().length} tensors -> ${o.out}\n`,
    );
  });
}

async function readText(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read --tokens-file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
