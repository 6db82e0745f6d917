/**
 * `qwen3-next quantize --model DIR --type q8_0|q4_k_m|q6_k|q4_0|bf16|f32 --out FILE.gguf`: a safetensors checkpoint
 * written as a llama.cpp `qwen3next`, `qwen35` or `qwen35moe` GGUF file (src/loading/to_gguf.ts), tensor by tensor, with a progress bar
 * on a terminal. The file is written to a temporary name beside FILE and renamed when complete.
 */
import { Command, Option } from "commander";
import { existsSync } from "node:fs";
import path from "node:path";
import { FILE_TYPES, type FileType } from "../io/gguf_tensor_types.js";
import { GGUF_QWEN3NEXT } from "../loading/gguf_layout.js";
import { checkpointToGguf } from "../loading/to_gguf.js";
import { progressBar } from "./progress.js";

interface QuantizeFlags {
  model: string;
  type: FileType;
  out: string;
  name?: string;
  force?: boolean;
}

export function register(program: Command): void {
  program
    .command("quantize")
    .description("write a safetensors checkpoint as a llama.cpp GGUF file (qwen3next, qwen35 or qwen35moe), quantized like llama-quantize")
    .requiredOption("--model <dir>", "the checkpoint folder (config.json, *.safetensors, tokenizer files)")
    .addOption(new Option("--type <type>", "file type: tensor types as llama-quantize picks them").choices(Object.keys(FILE_TYPES)).makeOptionMandatory())
    .requiredOption("--out <file>", "the .gguf file to write")
    .option("--name <name>", "general.name in the file (default: the folder's name)")
    .option("--force", "overwrite --out if it exists")
    .action(run);
}

async function run(o: QuantizeFlags): Promise<void> {
  if (!o.out.endsWith(".gguf")) throw new Error(`--out is ${o.out}, expected a file name ending in .gguf`);
  if (existsSync(o.out) && !o.force) throw new Error(`--out ${o.out} exists (add --force to overwrite it)`);
  const bar = progressBar(`quantizing to ${o.type}`);
  const started = Date.now();
  const r = await checkpointToGguf(o.model, o.out, { fileType: o.type, layout: GGUF_QWEN3NEXT, name: o.name, onProgress: bar.update }).finally(() => bar.done());
  const mix = Object.entries(r.types)
    .sort((a, b) => b[1] - a[1])
    .map(([t, n]) => `${n} ${t}`)
    .join(", ");
  process.stdout.write(`wrote ${path.resolve(o.out)}: ${r.tensors} tensors (${mix}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
