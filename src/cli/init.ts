/**
 * `qwen3-next init --config C --out DIR [--seed S]`: a random-weight checkpoint in its family's published layout
 * (BF16; Qwen3-Next one tensor per expert, Qwen3.5 under `model.language_model.*` with fused experts; `mtp.*`
 * when configured, config.json, generation_config.json, the bundled Qwen3 tokenizer), for demos and tests.
 * `--config demo` writes the built-in demo model's config.
 */
import { Command } from "commander";
import path from "node:path";
import { readJsonFile } from "../io/json.js";
import { writeRandomCheckpoint } from "../init/random_checkpoint.js";
import { DEMO_CONFIG } from "../init/demo.js";
import { finiteNumber } from "./options.js";
import { progressBar } from "./progress.js";

interface InitFlags {
  config: string;
  out: string;
  seed: number;
}

export function register(program: Command): void {
  program
    .command("init")
    .description("write a random-weight checkpoint for a config (Qwen3-Next or Qwen3.5, published layout, BF16, with tokenizer files)")
    .requiredOption("--config <file>", 'a config.json to instantiate, or "demo" for the built-in demo model')
    .requiredOption("--out <dir>", "the folder to create (must not exist or be empty)")
    .option("--seed <n>", "random seed (the same seed gives the same weights)", finiteNumber("--seed"), 0)
    .action(run);
}

async function run(o: InitFlags): Promise<void> {
  if (!Number.isSafeInteger(o.seed)) throw new Error(`--seed is ${o.seed}, expected an integer`);
  const raw = o.config === "demo" ? DEMO_CONFIG : await readJsonFile(o.config);
  const bar = progressBar("writing weights");
  const config = await writeRandomCheckpoint(raw, o.out, { seed: o.seed, onProgress: bar.update });
  bar.done();
  process.stdout.write(
    `wrote a random-weight checkpoint to ${path.resolve(o.out)} (${config.num_hidden_layers} layers, hidden ${config.hidden_size}, vocab ${config.vocab_size}, seed ${o.seed})\n`,
  );
}
