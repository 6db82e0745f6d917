/**
 * Splits an assistant turn into reasoning, answer and tool calls, as vLLM's Qwen3 reasoning parser and Hermes
 * tool parser do.
 *
 *   text      = [ws] "<think>" reasoning "</think>" content        (or no <think> block at all)
 *   content   = text with <tool_call> {"name": N, "arguments": A} </tool_call> blocks taken out
 *
 * Rules (the one-shot parser and the streaming parser implement the same ones):
 *   - Reasoning is open when the prompt already opened `<think>` (`thinkingOpened`, thinking models) or the
 *     output starts, after whitespace, with `<think>`. It runs to the first `</think>`, or to the end when the
 *     output was cut off. No open reasoning: `reasoning` is null and everything is content.
 *   - Tool calls are recognised in the content only. An unterminated `<tool_call>` runs to the end.
 *   - Reasoning and content are trimmed of surrounding whitespace (the chat template adds newlines around them).
 *   - A tool call whose body is not `{"name": string, "arguments"?: object|string}` JSON is reported in
 *     `errors` (and left out of content and calls); parsing never throws.
 */
import { partialTagLength } from "./stop_strings.js";

export interface ToolCall {
  name: string;
  /** The arguments as JSON text (OpenAI's `function.arguments`). */
  arguments: string;
}

export interface ParsedOutput {
  reasoning: string | null;
  content: string;
  toolCalls: ToolCall[];
  errors: string[];
}

export interface OutputDelta {
  kind: "reasoning" | "content";
  text: string;
}

export const THINK_OPEN = "<think>";
export const THINK_CLOSE = "</think>";
export const TOOL_OPEN = "<tool_call>";
export const TOOL_CLOSE = "</tool_call>";

/** Parses a whole assistant output. */
export function parseAssistantOutput(text: string, opts: { thinkingOpened?: boolean } = {}): ParsedOutput {
  let reasoning: string | null = null;
  let rest = text;
  const lead = text.trimStart();
  if (opts.thinkingOpened || lead.startsWith(THINK_OPEN)) {
    const body = opts.thinkingOpened ? text : lead.slice(THINK_OPEN.length);
    const close = body.indexOf(THINK_CLOSE);
    reasoning = (close < 0 ? body : body.slice(0, close)).trim();
    rest = close < 0 ? "" : body.slice(close + THINK_CLOSE.length);
  }
  const toolCalls: ToolCall[] = [];
  const errors: string[] = [];
  let content = "";
  for (;;) {
    const open = rest.indexOf(TOOL_OPEN);
    if (open < 0) {
      content += rest;
      break;
    }
    content += rest.slice(0, open);
    const after = rest.slice(open + TOOL_OPEN.length);
    const close = after.indexOf(TOOL_CLOSE);
    readToolCall(close < 0 ? after : after.slice(0, close), toolCalls, errors);
    if (close < 0) break;
    rest = after.slice(close + TOOL_CLOSE.length);
  }
  return { reasoning, content: content.trim(), toolCalls, errors };
}

/** Parses one `<tool_call>` body into `calls`, or reports why it cannot be parsed. */
function readToolCall(body: string, calls: ToolCall[], errors: string[]): void {
  const n = calls.length + errors.length + 1;
  const shown = body.trim().length > 80 ? `${body.trim().slice(0, 77)}...` : body.trim();
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (err) {
    errors.push(`tool call ${n} is not valid JSON (${(err as Error).message}): ${shown}`);
    return;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    errors.push(`tool call ${n} is not a JSON object: ${shown}`);
    return;
  }
  const { name, arguments: args } = value as { name?: unknown; arguments?: unknown };
  if (typeof name !== "string" || name.length === 0) {
    errors.push(`tool call ${n} has no "name" string: ${shown}`);
    return;
  }
  if (args === undefined || args === null) {
    calls.push({ name, arguments: "{}" });
  } else if (typeof args === "string") {
    calls.push({ name, arguments: args });
  } else if (typeof args === "object" && !Array.isArray(args)) {
    calls.push({ name, arguments: JSON.stringify(args) });
  } else {
    errors.push(`tool call ${n} ("${name}") has arguments that are not an object: ${shown}`);
  }
}

/** Emits one trimmed section (reasoning or content) piece by piece: whitespace only once text follows it. */
class TrimmedSection {
  private started = false;
  private heldSpace = "";
  constructor(private readonly kind: OutputDelta["kind"]) {}

  write(text: string, out: OutputDelta[]): void {
    let emit = "";
    for (const run of text.match(/\s+|\S+/g) ?? []) {
      if (/^\s/.test(run)) {
        this.heldSpace += run;
      } else {
        emit += (this.started ? this.heldSpace : "") + run;
        this.heldSpace = "";
        this.started = true;
      }
    }
    if (emit.length > 0) push(out, this.kind, emit);
  }
}

function push(out: OutputDelta[], kind: OutputDelta["kind"], text: string): void {
  const last = out[out.length - 1];
  if (last !== undefined && last.kind === kind) last.text += text;
  else out.push({ kind, text });
}

type State = "start" | "reasoning" | "content" | "tool";

/**
 * The same parse, fed text as it is generated: `push` returns the reasoning/content text that is now certain
 * (a possible partial tag or trailing whitespace is held back); `flush` returns what was held at the end;
 * `finish` gives the full result, equal to `parseAssistantOutput` of all the text pushed.
 */
export class StreamingOutputParser {
  private state: State;
  private pending = "";
  private toolBody = "";
  private readonly reasoningOut = new TrimmedSection("reasoning");
  private readonly contentOut = new TrimmedSection("content");
  private reasoning: string[] | null = null;
  private content: string[] = [];
  private readonly toolCalls: ToolCall[] = [];
  private readonly errors: string[] = [];
  private ended = false;

  constructor(opts: { thinkingOpened?: boolean } = {}) {
    this.state = opts.thinkingOpened ? "reasoning" : "start";
    if (opts.thinkingOpened) this.reasoning = [];
  }

  push(textDelta: string): OutputDelta[] {
    if (this.ended) throw new Error("StreamingOutputParser: push after flush/finish");
    this.pending += textDelta;
    const out: OutputDelta[] = [];
    this.advance(out, false);
    return out;
  }

  /** Ends the stream; returns the last deltas (text that had been held back as a possible tag). */
  flush(): OutputDelta[] {
    const out: OutputDelta[] = [];
    if (!this.ended) {
      this.advance(out, true);
      this.ended = true;
    }
    return out;
  }

  finish(): ParsedOutput {
    this.flush();
    return {
      reasoning: this.reasoning === null ? null : this.reasoning.join(""),
      content: this.content.join(""),
      toolCalls: [...this.toolCalls],
      errors: [...this.errors],
    };
  }

  /** Consumes `pending` as far as it is unambiguous (all of it when `final`). */
  private advance(out: OutputDelta[], final: boolean): void {
    for (;;) {
      const p = this.pending;
      switch (this.state) {
        case "start": {
          const lead = p.trimStart();
          if (lead.startsWith(THINK_OPEN)) {
            this.pending = lead.slice(THINK_OPEN.length);
            this.state = "reasoning";
            this.reasoning = [];
            continue;
          }
          if (!final && THINK_OPEN.startsWith(lead)) return; // maybe "<thi" of "<think>"
          this.state = "content";
          continue;
        }
        case "reasoning":
        case "content": {
          const tag = this.state === "reasoning" ? THINK_CLOSE : TOOL_OPEN;
          const at = p.indexOf(tag);
          const keep = at >= 0 ? at : final ? p.length : p.length - partialTagLength(p, tag);
          this.emit(p.slice(0, keep), out);
          if (at < 0) {
            this.pending = p.slice(keep);
            return;
          }
          this.pending = p.slice(at + tag.length);
          this.state = this.state === "reasoning" ? "content" : "tool";
          continue;
        }
        case "tool": {
          const at = p.indexOf(TOOL_CLOSE);
          if (at < 0 && !final) {
            const keep = p.length - partialTagLength(p, TOOL_CLOSE);
            this.toolBody += p.slice(0, keep);
            this.pending = p.slice(keep);
            return;
          }
          readToolCall(this.toolBody + (at < 0 ? p : p.slice(0, at)), this.toolCalls, this.errors);
          this.toolBody = "";
          this.pending = at < 0 ? "" : p.slice(at + TOOL_CLOSE.length);
          this.state = "content";
          if (at < 0) return;
          continue;
        }
      }
    }
  }

  private emit(text: string, out: OutputDelta[]): void {
    const section = this.state === "reasoning" ? this.reasoningOut : this.contentOut;
    const written: OutputDelta[] = [];
    section.write(text, written);
    for (const d of written) {
      (d.kind === "reasoning" ? this.reasoning! : this.content).push(d.text);
      push(out, d.kind, d.text);
    }
  }
}
