/**
 * `qwen3-next init --config C --out DIR [--seed S]`: a random-weight checkpoint in its family's published layout
 * (BF16; Qwen3-Next one tensor per expert, Qwen3.5 under `model.language_model.*` with fused experts; `mtp.*`
 * when configured, config.json, generation_config.json, the bundled Qwen3 tokenizer), for demos and tests.
 * `--config demo` writes the built-in demo model's config.
 * It says how much it will write and refuses when the disk has not that much free; it writes into a temporary
 * folder renamed at the end, removed on an error, Ctrl-C or SIGTERM (exit 130).
 */
import { statfs } from "node:fs/promises";
import { existsSync } from "node:fs";
import { Command } from "commander";
import path from "node:path";
import { readJsonFile } from "../io/json.js";
import { checkOutDir, randomCheckpointBytes, writeRandomCheckpoint } from "../init/random_checkpoint.js";
import { DEMO_CONFIG } from "../init/demo.js";
import { finiteNumber, UsageError } from "./options.js";
import { progressBar } from "./progress.js";
import { warnUnknownConfigKeys } from "./config_warnings.js";

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

/** Human-readable size: 1.5 GiB, 20.3 MiB. */
export function formatBytes(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${n.toFixed(1)} ${units[i]}`;
}

async function run(o: InitFlags): Promise<void> {
  if (!Number.isSafeInteger(o.seed)) throw new UsageError(`--seed is ${o.seed}, expected an integer`);
  if (o.config !== "demo") await warnUnknownConfigKeys(o.config);
  const raw = o.config === "demo" ? DEMO_CONFIG : await readJsonFile(o.config);
  const bytes = randomCheckpointBytes(raw);
  const out = path.resolve(o.out);
  checkOutDir(out);
  let parent = path.dirname(out);
  while (!existsSync(parent)) parent = path.dirname(parent);
  const fs = await statfs(parent);
  const free = fs.bavail * fs.bsize;
  if (free < bytes) {
    throw new Error(`${out} needs ${formatBytes(bytes)}, but the disk holding ${parent} has ${formatBytes(free)} free`);
  }
  process.stderr.write(`writing ${formatBytes(bytes)} to ${out} (${formatBytes(free)} free)\n`);
  const abort = new AbortController();
  const stop = () => abort.abort();
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, stop);
  const bar = progressBar("writing weights");
  try {
    const config = await writeRandomCheckpoint(raw, out, { seed: o.seed, onProgress: bar.update, signal: abort.signal });
    bar.done();
    process.stdout.write(
      `wrote a random-weight checkpoint to ${out} (${config.num_hidden_layers} layers, hidden ${config.hidden_size}, vocab ${config.vocab_size}, seed ${o.seed})\n`,
    );
  } catch (e) {
    bar.done();
    if (!abort.signal.aborted) throw e;
    process.stderr.write(`qwen3-next: interrupted; nothing was written to ${out}\n`);
    process.exitCode = 130;
  } finally {
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeListener(sig, stop);
  }
}
