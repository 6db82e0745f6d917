/**
 * `qwen3-next generate [PROMPT]` (or -p TEXT, -f FILE, or stdin): one answer, streamed to stdout.
 *
 * The prompt goes through the chat template (with --system, --think/--no-think) unless --raw. The output is
 * parsed as chat parses it, on a terminal and piped, streamed or not: reasoning labelled `[thinking]` (dimmed on
 * a terminal), the answer after `[answer]`, tool calls listed after it; this also splits the output of a
 * template that opens `<think>` in the prompt, where the model writes only `</think>`. With --raw, stdout gets
 * the generated text exactly. --json prints one JSON object instead (the text, and its reasoning, content and
 * tool calls split; usage, timings). A summary line (seed, load time, tokens, tokens/s) goes to stderr. Ctrl-C
 * stops: what was generated is printed, exit 130.
 */
import { readFile } from "node:fs/promises";
import { Command } from "commander";
import { generate, type GenerateResult } from "../generate/generate.js";
import { parseAssistantOutput, StreamingOutputParser, type ParsedOutput } from "../generate/output_parser.js";
import { promptOpensThinking, type ChatMessage } from "../tokenizer/chat_template.js";
import { thinkingSwitch, noSwitchNotice } from "../tokenizer/thinking_mode.js";
import { addSessionOptions, maxTokens, openSession, seeded, speculationFromFlags, type GenerationSession, type SessionFlags } from "./generation_session.js";
import { UsageError } from "./options.js";
import { describeKernels } from "../kernels/index.js";
import { progressBar } from "./progress.js";
import { TerminalWriter } from "./terminal.js";

interface GenerateFlags extends SessionFlags {
  prompt?: string;
  file?: string;
  system?: string;
  think?: boolean;
  raw?: boolean;
  stream: boolean;
  json?: boolean;
  stop?: string[];
}

export function register(program: Command): void {
  const cmd = program
    .command("generate")
    .description("generate text for a prompt (streamed); without --model, a built-in demo checkpoint with random weights")
    .argument("[prompt...]", "the user's message (or -p TEXT, -f FILE; default: read from stdin)")
    .option("-p, --prompt <text>", "the user's message")
    .option("-f, --file <file>", "read the user's message from a file")
    .option("--system <text>", "a system message")
    .option("--think", "let a hybrid-thinking model reason first (enable_thinking true)")
    .option("--no-think", "ask for an answer without reasoning (enable_thinking false)")
    .option("--raw", "no chat template: the prompt is the model's input text as is, and the output is printed as generated")
    .option("--stop <text...>", "stop when one of these strings is generated")
    .option("--no-stream", "print the text once it is complete")
    .option("--json", "print one JSON object: text, reasoning, content, tool_calls, finish_reason, usage, timings");
  addSessionOptions(cmd).action(run);
}

async function run(words: string[], o: GenerateFlags): Promise<void> {
  const given = [words.length > 0 ? "a prompt argument" : null, o.prompt !== undefined ? "--prompt" : null, o.file !== undefined ? "--file" : null].filter((x) => x !== null);
  if (given.length > 1) throw new UsageError(`${given.join(" and ")} both give the prompt; pass one`);
  const userText =
    words.length > 0 ? words.join(" ") : o.prompt ?? (o.file !== undefined ? await readPromptFile(o.file) : process.stdin.isTTY ? undefined : await readStdin());
  if (userText === undefined || userText.length === 0) {
    throw new UsageError("no prompt: pass it as an argument, -p TEXT, -f FILE, or pipe it on stdin");
  }
  // Ctrl-C: while loading, quit at once; while generating, stop and print what was generated; twice, quit.
  const abort = new AbortController();
  let generating = false;
  const onSigint = () => {
    if (!generating || abort.signal.aborted) process.exit(130);
    abort.abort();
  };
  process.on("SIGINT", onSigint);
  const s = await openSession(o);
  const speculative = speculationFromFlags(o, s);
  const sampling = seeded(s);
  if (o.think !== undefined && !o.raw) {
    const notice = noSwitchNotice(thinkingSwitch(s.template), o.think ? "--think" : "--no-think");
    if (notice !== null) process.stderr.write(`note: ${notice}\n`);
  }
  const messages: ChatMessage[] = [];
  if (o.system !== undefined) messages.push({ role: "system", content: o.system });
  messages.push({ role: "user", content: userText });
  const promptText = o.raw ? userText : s.template.render(messages, { enableThinking: o.think });
  const thinkingOpened = !o.raw && promptOpensThinking(promptText);
  const promptIds = s.tokenizer.encode(promptText);

  generating = true;
  const bar = progressBar("prefill", "tokens");
  const g = generate(s.model, s.tokenizer, promptIds, {
    sampling,
    maxTokens: maxTokens(o, s),
    contextSize: o.ctxSize,
    stopStrings: o.stop,
    signal: abort.signal,
    onPrefillProgress: bar.update,
    speculative,
  });
  const out = new TerminalWriter(process.stdout);
  const parser = o.raw || o.json ? null : new StreamingOutputParser({ thinkingOpened });
  const live = o.stream && !o.json;
  let first = true;
  for await (const e of g.events) {
    if (first) bar.done();
    first = false;
    if (!live) continue;
    if (parser) out.writeDeltas(parser.push(e.text));
    else out.write(e.text);
  }
  bar.done();
  const r = await g.result;
  process.removeListener("SIGINT", onSigint);
  if (o.json) {
    const parsed = o.raw ? null : parseAssistantOutput(r.text, { thinkingOpened });
    process.stdout.write(JSON.stringify({ ...jsonResult(r, parsed), kernels: describeKernels(s.model.kernels) }, null, 2) + "\n");
  } else if (parser) {
    if (!live) out.writeDeltas(parser.push(r.text));
    out.writeDeltas(parser.flush());
    const parsed = parser.finish();
    out.endDeltas();
    for (const c of parsed.toolCalls) out.write(`[tool call] ${c.name}(${c.arguments})\n`, "dim");
    for (const err of parsed.errors) out.write(`(${err})\n`, "dim");
  } else {
    if (!live) out.write(r.text);
    out.write("\n");
  }
  process.stderr.write(`${summary(r, s, sampling.seed)}\n`);
  if (r.finishReason === "abort") process.exitCode = 130;
}

/** One line for stderr: seed, load time, sizes, speeds, draft acceptance, why it stopped (and whether the context capped it). */
export function summary(r: GenerateResult, s: GenerationSession, seed: number): string {
  return (
    `[seed ${seed}; loaded in ${s.loadSeconds.toFixed(2)}s; ${r.promptTokens} prompt tokens in ${r.prefillSeconds.toFixed(2)}s (${r.prefillTokensPerSecond.toFixed(1)} tok/s); ` +
    `${r.completionTokens} generated in ${r.decodeSeconds.toFixed(2)}s (${r.tokensPerSecond.toFixed(1)} tok/s); ${draftStats(r)}finish: ${r.finishReason}` +
    `${r.capped ? `; output capped: the context (${r.promptTokens + r.tokens.length} tokens) is full` : ""}]`
  );
}

/** Speculative decoding's acceptance for a stats line ("drafts accepted A/D (x%); "), or "" without drafts. */
export function draftStats(r: GenerateResult): string {
  return r.draftTokens > 0 ? `drafts accepted ${r.acceptedTokens}/${r.draftTokens} (${((100 * r.acceptedTokens) / r.draftTokens).toFixed(0)}%); ` : "";
}

function jsonResult(r: GenerateResult, parsed: ParsedOutput | null) {
  return {
    text: r.text,
    reasoning: parsed?.reasoning ?? null,
    content: parsed ? parsed.content : r.text,
    tool_calls: parsed?.toolCalls.map((c) => ({ type: "function", function: { name: c.name, arguments: c.arguments } })) ?? [],
    parse_errors: parsed?.errors ?? [],
    finish_reason: r.finishReason,
    output_capped: r.capped,
    tokens: r.tokens,
    usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens },
    timings: {
      prefill_seconds: r.prefillSeconds,
      decode_seconds: r.decodeSeconds,
      prefill_tokens_per_second: r.prefillTokensPerSecond,
      tokens_per_second: r.tokensPerSecond,
      draft_tokens: r.draftTokens,
      accepted_tokens: r.acceptedTokens,
    },
  };
}

async function readPromptFile(file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).replace(/\r?\n$/, "");
  } catch (e) {
    throw new Error(`cannot read the prompt file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}
