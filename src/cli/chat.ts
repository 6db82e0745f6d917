/**
 * `qwen3-next chat`: an interactive conversation. Each message you type is a user turn; the answer streams back
 * (reasoning labelled, and dimmed on a terminal). The model state is kept between turns, so each turn prefills
 * only the new message (see chat_transcript.ts); the stats line after each answer says how many tokens were
 * prefilled and how many reused.
 *   /help    the commands          /think   toggle thinking (templates with a thinking switch)
 *   /reset   forget the history    /exit    quit (also Ctrl-D, or Ctrl-C at the prompt)
 * Multi-line input: end a line with \ to continue it, or put the message between lines of """.
 * A line starting with // sends the rest with one /. Ctrl-C during an answer stops that answer.
 * Lines piped on stdin work the same way.
 */
import readline from "node:readline";
import { Command } from "commander";
import { generate, type GenerateResult } from "../generate/generate.js";
import { StreamingOutputParser } from "../generate/output_parser.js";
import { thinkingSwitch, noSwitchNotice } from "../tokenizer/thinking_mode.js";
import { ChatTranscript } from "./chat_transcript.js";
import { addSessionOptions, maxTokens, openSession, seeded, speculationFromFlags, type SessionFlags } from "./generation_session.js";
import { draftStats } from "./generate.js";
import { TerminalWriter } from "./terminal.js";

interface ChatFlags extends SessionFlags {
  system?: string;
  think?: boolean;
}

export const CHAT_HELP = [
  "/help    show this help",
  "/think   toggle thinking for the next turns (templates with a thinking switch)",
  "/reset   forget the conversation (the --system message stays)",
  "/exit    quit (also /quit, Ctrl-D, or Ctrl-C at the prompt)",
  'Multi-line: end a line with \\ to continue it, or put the message between lines of """.',
  "A message that starts with / : type // (sent with one /).",
].join("\n");

export function register(program: Command): void {
  const cmd = program
    .command("chat")
    .description("chat interactively, keeping the model state between turns (/help lists the commands); without --model, a demo checkpoint with random weights")
    .option("--system <text>", "a system message for the whole conversation")
    .option("--think", "start with thinking on (enable_thinking true)")
    .option("--no-think", "start with thinking off (enable_thinking false)");
  addSessionOptions(cmd).action(run);
}

/** Joins typed lines into messages: a trailing \ continues a line, """ lines open and close a block. */
export class MessageAssembler {
  private parts: string[] = [];
  private block = false;

  /** The complete message once `line` ends it, else null (more lines needed). */
  push(line: string): string | null {
    if (line.trim() === '"""') {
      if (!this.block) {
        this.block = true;
        return null;
      }
      this.block = false;
      return this.take();
    }
    if (this.block) {
      this.parts.push(line);
      return null;
    }
    if (line.endsWith("\\")) {
      this.parts.push(line.slice(0, -1));
      return null;
    }
    this.parts.push(line);
    return this.take();
  }

  get pending(): boolean {
    return this.block || this.parts.length > 0;
  }

  private take(): string {
    const m = this.parts.join("\n");
    this.parts = [];
    return m;
  }
}

async function run(o: ChatFlags): Promise<void> {
  const s = await openSession(o);
  const speculative = speculationFromFlags(o, s);
  const sampling = seeded(s);
  const out = new TerminalWriter(process.stdout);
  const info = new TerminalWriter(process.stderr);
  const interactive = process.stdin.isTTY === true;
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
  const sw = thinkingSwitch(s.template);
  let thinking = o.think;
  let toldNoSwitch = false;
  const tellNoSwitch = (asked: string) => {
    const line = noSwitchNotice(sw, asked);
    if (line !== null && !toldNoSwitch) out.write(`(${line})\n`, "dim");
    toldNoSwitch ||= line !== null;
  };
  const system = o.system === undefined ? [] : [{ role: "system" as const, content: o.system }];
  const chat = new ChatTranscript(s.template, s.tokenizer, system);
  const lines = new MessageAssembler();
  let current: AbortController | null = null;
  let turn = 0;

  const mode = () =>
    sw === "switchable" ? `thinking ${thinking === false ? "off" : "on"} (/think toggles)` : sw === "always" ? "thinking always on (no switch in this template)" : "no thinking (no switch in this template)";
  rl.on("SIGINT", () => {
    if (current) current.abort();
    else rl.close();
  });
  if (interactive) {
    out.write(`Chatting with ${s.dir} (loaded in ${s.loadSeconds.toFixed(1)}s); ${mode()}. /help lists the commands, Ctrl-D or /exit quits.\n`);
  }
  if (o.think !== undefined) tellNoSwitch(o.think ? "--think" : "--no-think");
  const ask = () => {
    if (!interactive) return;
    rl.setPrompt(lines.pending ? "... " : "> ");
    rl.prompt();
  };
  ask();
  for await (const line of rl) {
    const message = lines.push(line);
    if (message === null) {
      ask();
      continue;
    }
    const input = message.trim();
    if (input === "") {
      ask();
      continue;
    }
    if (input.startsWith("/") && !input.startsWith("//")) {
      const command = input.split(/\s+/)[0];
      if (command === "/exit" || command === "/quit") break;
      if (command === "/help") out.write(`${CHAT_HELP}\n`, "dim");
      else if (command === "/reset") {
        chat.reset();
        turn = 0;
        out.write("(history cleared)\n", "dim");
      } else if (command === "/think") {
        if (sw === "switchable") {
          thinking = thinking === false;
          out.write(`(thinking ${thinking ? "on" : "off"})\n`, "dim");
        } else {
          tellNoSwitch("/think");
        }
      } else out.write(`(unknown command ${command}; /help lists the commands, // sends a message starting with /)\n`, "dim");
      ask();
      continue;
    }
    const text = input.startsWith("//") ? input.slice(1) : message;
    const t = chat.prepare(text, thinking);
    if (t.restarted) chat.dropState();
    current = new AbortController();
    let g;
    try {
      g = generate(s.model, s.tokenizer, t.ids, {
        sampling,
        maxTokens: maxTokens(o, s),
        signal: current.signal,
        continuation: chat.continuation,
        contextSize: o.ctxSize,
        speculative,
      });
    } catch (e) {
      // The conversation outgrew the context: drop this turn and keep the session, rather than exit.
      current = null;
      out.write(`(${(e as Error).message}; /reset starts over)\n`, "dim");
      ask();
      continue;
    }
    const held = chat.continuation.tokens.length;
    const parser = new StreamingOutputParser({ thinkingOpened: t.thinkingOpened });
    for await (const e of g.events) out.writeDeltas(parser.push(e.text));
    out.writeDeltas(parser.flush());
    const r = await g.result;
    current = null;
    const parsed = parser.finish();
    out.endDeltas();
    for (const c of parsed.toolCalls) out.write(`[tool call] ${c.name}(${c.arguments})\n`, "dim");
    for (const err of parsed.errors) out.write(`(${err})\n`, "dim");
    turn++;
    info.write(`${turnSummary(turn, r, t.restarted, sampling.seed)}\n`, "dim");
    // An answer stopped during the prefill left the state without the whole message: start over next turn.
    if (chat.continuation.tokens.length < held + t.ids.length) chat.dropState();
    chat.commit(text, {
      role: "assistant",
      content: parsed.content,
      ...(parsed.reasoning !== null ? { reasoning_content: parsed.reasoning } : {}),
      ...(parsed.toolCalls.length > 0
        ? { tool_calls: parsed.toolCalls.map((c) => ({ type: "function" as const, function: { name: c.name, arguments: c.arguments } })) }
        : {}),
    });
    ask();
  }
  if (interactive) process.stdout.write("\n");
  rl.close();
  chat.reset();
}

/** The stats line after an answer: what was prefilled and reused, speeds, why it stopped. */
export function turnSummary(turn: number, r: GenerateResult, restarted: boolean, seed: number): string {
  return (
    `[turn ${turn}: ${r.prefilledTokens} new tokens prefilled, ${r.reusedTokens} reused${restarted ? " (template re-renders history: prefilled again)" : ""}` +
    ` in ${r.prefillSeconds.toFixed(2)}s (${r.prefillTokensPerSecond.toFixed(1)} tok/s); ` +
    `${r.completionTokens} generated in ${r.decodeSeconds.toFixed(2)}s (${r.tokensPerSecond.toFixed(1)} tok/s); ${draftStats(r)}` +
    `context ${r.promptTokens + r.tokens.length} tokens; seed ${seed}; finish: ${r.finishReason}${r.capped ? " (output capped: context full)" : ""}]`
  );
}
