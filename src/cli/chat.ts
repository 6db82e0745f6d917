/**
 * `qwen3-next chat`: an interactive conversation. Each line you type is a user turn; the answer streams back
 * (reasoning dimmed on a terminal) and both go into the history that the next turn's prompt is built from.
 *   /think   toggle thinking (enable_thinking) for the next turns
 *   /reset   forget the history (the --system message stays)
 *   /exit    quit (also Ctrl-D)
 * Ctrl-C during an answer stops that answer; at the prompt it quits. Lines piped on stdin work the same way.
 */
import readline from "node:readline";
import { Command } from "commander";
import { checkPromptLength, generate } from "../generate/generate.js";
import { StreamingOutputParser } from "../generate/output_parser.js";
import { promptOpensThinking, type ChatMessage } from "../tokenizer/chat_template.js";
import { addSessionOptions, maxTokens, openSession, speculationFromFlags, type SessionFlags } from "./generation_session.js";
import { summary } from "./generate.js";
import { TerminalWriter } from "./terminal.js";

interface ChatFlags extends SessionFlags {
  system?: string;
  think?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command("chat")
    .description("chat interactively (/think toggles thinking, /reset, /exit); without --model, a demo checkpoint with random weights")
    .option("--system <text>", "a system message for the whole conversation")
    .option("--think", "start with thinking on (enable_thinking true)")
    .option("--no-think", "start with thinking off (enable_thinking false)");
  addSessionOptions(cmd).action(run);
}

async function run(o: ChatFlags): Promise<void> {
  const s = await openSession(o);
  const speculative = speculationFromFlags(o, s);
  const out = new TerminalWriter(process.stdout);
  const interactive = process.stdin.isTTY === true;
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
  let thinking = o.think;
  let history: ChatMessage[] = [];
  const system: ChatMessage[] = o.system === undefined ? [] : [{ role: "system", content: o.system }];
  let current: AbortController | null = null;

  rl.on("SIGINT", () => {
    if (current) current.abort();
    else rl.close();
  });
  if (interactive) {
    process.stdout.write(`Chatting with ${s.dir}. /think toggles thinking, /reset clears the history, /exit quits.\n`);
  }
  const ask = () => {
    if (interactive) rl.prompt();
  };
  rl.setPrompt("> ");
  ask();
  for await (const line of rl) {
    const input = line.trim();
    if (input === "") {
      ask();
      continue;
    }
    if (input === "/exit" || input === "/quit") break;
    if (input === "/reset") {
      history = [];
      out.write("(history cleared)\n", "dim");
      ask();
      continue;
    }
    if (input === "/think") {
      thinking = !(thinking ?? true);
      out.write(`(thinking ${thinking ? "on" : "off"})\n`, "dim");
      ask();
      continue;
    }
    history.push({ role: "user", content: input });
    const prompt = s.template.render([...system, ...history], { enableThinking: thinking });
    const thinkingOpened = promptOpensThinking(prompt);
    const ids = s.tokenizer.encode(prompt);
    try {
      checkPromptLength(s.model.config, ids.length);
    } catch (e) {
      // The conversation outgrew the context: drop this turn and keep the session, rather than exit.
      history.pop();
      out.write(`(${(e as Error).message}; /reset starts over)\n`, "dim");
      ask();
      continue;
    }
    current = new AbortController();
    const g = generate(s.model, s.tokenizer, ids, {
      sampling: s.sampling,
      maxTokens: maxTokens(o, s),
      signal: current.signal,
      speculative,
    });
    const parser = new StreamingOutputParser({ thinkingOpened });
    for await (const e of g.events) out.writeDeltas(parser.push(e.text));
    out.writeDeltas(parser.flush());
    const r = await g.result;
    current = null;
    const parsed = parser.finish();
    for (const c of parsed.toolCalls) out.write(`\n[tool call] ${c.name}(${c.arguments})`, "dim");
    out.write("\n");
    new TerminalWriter(process.stderr).write(`${summary(r)}\n`, "dim");
    history.push({
      role: "assistant",
      content: parsed.content,
      ...(parsed.reasoning !== null ? { reasoning_content: parsed.reasoning } : {}),
      ...(parsed.toolCalls.length > 0
        ? { tool_calls: parsed.toolCalls.map((c) => ({ type: "function" as const, function: { name: c.name, arguments: c.arguments } })) }
        : {}),
    });
    ask();
  }
  rl.close();
}
