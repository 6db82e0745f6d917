/**
 * What `generate` and `chat` share: pick the checkpoint (`--model` or the built-in demo, announced on stderr),
 * load the model (progress bar on a TTY), its tokenizer, chat template and sampling defaults, and turn the
 * sampling flags into `SamplingParams`.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { Command, Option } from "commander";
import { loadModel } from "../model/load.js";
import { readJsonFile } from "../io/json.js";
import { readGgufHeader } from "../io/gguf.js";
import { rawConfigFromGguf } from "../loading/gguf_config.js";
import { ggufFileOf, locateModel } from "../loading/model_path.js";
import { QwenTokenizer } from "../tokenizer/tokenizer.js";
import { ChatTemplate } from "../tokenizer/chat_template.js";
import { defaultSamplingParams, QWEN3_NEXT_INSTRUCT_SAMPLING, samplingParamsError, type SamplingParams } from "../generate/sampler.js";
import { ropeWithScaling } from "../config.js";
import { checkGenerationConfig } from "../generate/generation_config.js";
import { checkSpeculative, type SpeculativeOptions } from "../generate/generate.js";
import { DEMO_CONFIG, ensureDemoCheckpoint, demoNotice } from "../init/demo.js";
import { addKernelOptions, asUsageError, finiteNumber, GENERATION_ACCUMULATE, kernelOptions, positiveInt, type KernelFlags } from "./options.js";
import { progressBar } from "./progress.js";
import { warnUnknownConfigKeys } from "./config_warnings.js";
import type { ServedSession } from "../server/start.js";

export interface SessionFlags extends KernelFlags {
  model?: string;
  ropeScaling?: string;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  repetitionPenalty?: number;
  seed?: number;
  maxTokens?: number;
  ctxSize?: number;
  speculative?: "mtp";
  draftTokens?: number;
}

/** A loaded model with its tokenizer, template and sampling defaults (what `serve` serves, too), and how long loading took. */
export type GenerationSession = ServedSession & { loadSeconds: number };

/** Tokens generated at most when --max-tokens is not given (the demo's output is random, so less of it). */
export const DEFAULT_MAX_TOKENS = 512;
export const DEMO_MAX_TOKENS = 64;

/** Adds --model, the sampling flags, --rope-scaling and the kernel options to `cmd`. */
export function addSessionOptions(cmd: Command): Command {
  cmd
    .option("-m, --model <path>", "checkpoint folder, or a .gguf file (default: the built-in demo checkpoint, random weights)")
    .option("--temperature <t>", "sampling temperature, 0 = greedy (default: the checkpoint's generation_config.json)", finiteNumber("--temperature"))
    .option("--top-k <k>", "keep the k most probable tokens (0: all)", positiveInt("--top-k", 0))
    .option("--top-p <p>", "keep the smallest set of tokens whose probability reaches p", finiteNumber("--top-p"))
    .option("--min-p <p>", "drop tokens below p times the top probability", finiteNumber("--min-p"))
    .option("--presence-penalty <x>", "subtract x from the logits of tokens already generated", finiteNumber("--presence-penalty"))
    .option("--frequency-penalty <x>", "subtract x per earlier occurrence", finiteNumber("--frequency-penalty"))
    .option("--repetition-penalty <x>", "divide (multiply if negative) logits of tokens seen in prompt or output", finiteNumber("--repetition-penalty"))
    .option("--seed <n>", "random seed: the same seed gives the same text (default: drawn, and printed in the stats)", finiteNumber("--seed"))
    .option("-n, --max-tokens <n>", `tokens to generate at most (default ${DEFAULT_MAX_TOKENS}, ${DEMO_MAX_TOKENS} with the demo checkpoint)`, positiveInt("--max-tokens"))
    .option("-c, --ctx-size <n>", "context tokens (prompt + output) to use at most (default: the model's context length)", positiveInt("--ctx-size"))
    .addOption(new Option("--rope-scaling <json>", `override the checkpoint's RoPE scaling, e.g. '{"rope_type":"yarn","factor":4,"original_max_position_embeddings":262144}'`))
    .addOption(new Option("--speculative <method>", "speculative decoding: mtp drafts with the checkpoint's MTP head (same output, faster when drafts are accepted)").choices(["mtp"]))
    .addOption(
      new Option("--draft-tokens <k>", "tokens drafted per step with --speculative (default 1; implies --speculative mtp)")
        .argParser(positiveInt("--draft-tokens"))
        .implies({ speculative: "mtp" }),
    );
  return addKernelOptions(cmd, GENERATION_ACCUMULATE);
}

/** Speculative decoding as the flags ask for it (checked against the loaded model), or undefined. */
export function speculationFromFlags(o: SessionFlags, s: GenerationSession): SpeculativeOptions | undefined {
  if (o.speculative === undefined) return undefined;
  const spec = { draftTokens: o.draftTokens ?? 1 };
  checkSpeculative(s.model, spec);
  return spec;
}

export async function openSession(o: SessionFlags): Promise<GenerationSession> {
  // Bad flag values are reported before anything is loaded or created.
  asUsageError(() => samplingFromFlags(QWEN3_NEXT_INSTRUCT_SAMPLING, o));
  if (o.ropeScaling !== undefined) asUsageError(() => ropeWithScaling(DEMO_CONFIG, o.ropeScaling!));
  const t0 = performance.now();
  let dir: string;
  const isDemo = o.model === undefined;
  if (o.model === undefined) {
    const bar = progressBar("creating the demo checkpoint");
    dir = await ensureDemoCheckpoint({ onProgress: bar.update });
    bar.done();
    process.stderr.write(`${demoNotice(dir)}\n`);
  } else {
    dir = path.resolve(o.model);
    // A checkpoint folder, a .gguf file, or a folder holding one (one-line error otherwise).
    locateModel(dir);
    if (!ggufFileOf(dir)) await warnUnknownConfigKeys(path.join(dir, "config.json"));
  }
  const gguf = ggufFileOf(dir);
  const rawConfig = () => (gguf ? rawConfigFromGguf(readGgufHeader(gguf)) : readJsonFile(path.join(dir, "config.json")));
  const rope = o.ropeScaling === undefined ? undefined : ropeWithScaling(await rawConfig(), o.ropeScaling);
  // A GGUF file carries no sampling defaults: Hugging Face's apply.
  const genFile = gguf ? undefined : path.join(dir, "generation_config.json");
  const defaults = defaultSamplingParams(genFile && existsSync(genFile) ? checkGenerationConfig(await readJsonFile(genFile), genFile) : undefined);
  const sampling = samplingFromFlags(defaults, o);
  const [tokenizer, template] = await Promise.all([QwenTokenizer.load(dir), ChatTemplate.load(dir)]);
  const notes: string[] = [];
  const bar = progressBar("loading weights");
  const model = await loadModel(dir, { ...kernelOptions(o), rope, onProgress: bar.update, onNote: (n) => notes.push(n) });
  bar.done();
  for (const n of notes) process.stderr.write(`note: ${n}\n`);
  return { dir, isDemo, model, tokenizer, template, sampling, loadSeconds: (performance.now() - t0) / 1000 };
}

/** The checkpoint's sampling defaults overridden by the flags given. */
export function samplingFromFlags(defaults: SamplingParams, o: SessionFlags): SamplingParams {
  const p: SamplingParams = {
    temperature: o.temperature ?? defaults.temperature,
    top_k: o.topK ?? defaults.top_k,
    top_p: o.topP ?? defaults.top_p,
    min_p: o.minP ?? defaults.min_p,
    presence_penalty: o.presencePenalty ?? defaults.presence_penalty,
    frequency_penalty: o.frequencyPenalty ?? defaults.frequency_penalty,
    repetition_penalty: o.repetitionPenalty ?? defaults.repetition_penalty,
  };
  if (o.seed !== undefined) p.seed = o.seed;
  const problem = samplingParamsError(p);
  if (problem !== null) throw new Error(`--${problem.replace(/^(\w+)/, (f) => f.replace(/_/g, "-"))}`);
  return p;
}

/** The session's sampling with a seed: --seed, or one drawn now (so the stats can print it and a rerun repeat it). */
export function seeded(s: GenerationSession): SamplingParams & { seed: number } {
  return { ...s.sampling, seed: s.sampling.seed ?? Math.floor(Math.random() * 2 ** 32) };
}

export function maxTokens(o: SessionFlags, s: GenerationSession): number {
  return o.maxTokens ?? (s.isDemo ? DEMO_MAX_TOKENS : DEFAULT_MAX_TOKENS);
}
