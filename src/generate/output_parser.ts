/**
 * Splits an assistant turn into reasoning, answer and tool calls, as vLLM's Qwen3 reasoning parser and its tool
 * parsers (Hermes JSON, Qwen3-Coder XML: see tool_call_parsers.ts) do.
 *
 *   text = [ws] ["<think>"] reasoning "</think>" answer            (or no reasoning at all)
 *
 * Reasoning (vLLM's Qwen3ReasoningParser):
 *   - A leading `<think>` is stripped. Reasoning is open when the prompt opened `<think>` (`thinkingOpened`:
 *     the Thinking template does this, so the output has only `</think>`) or the output starts with `<think>`.
 *   - The first `</think>` ends the reasoning. When the prompt is unknown (`thinkingOpened` not given) a
 *     `</think>` splits the output even with no `<think>` seen, as vLLM does; when the prompt is known not to
 *     have opened reasoning (false) and the output does not open it, there is no reasoning.
 *   - A `<tool_call>` followed by `<function` (Qwen3.5 / Coder style; only the first `<tool_call>` counts) ends
 *     open reasoning implicitly when it comes before any `</think>`. Open reasoning with neither: the output
 *     was cut off inside the reasoning; everything is reasoning and the content is null.
 * The answer's tool calls then come out as vLLM's tool parsers take them; an invalid call gives the raw answer
 * as content and the error in `errors`. Parsing never throws.
 *
 * Deliberate differences from vLLM: reasoning and content are trimmed of surrounding whitespace (the chat
 * template puts newlines around them) and an answer that is only whitespace is null; a `<think>` that is not
 * at the start stays text (vLLM drops everything before it); a tool call before a later `</think>` ends the
 * reasoning in the one-shot parse as in the streamed one (vLLM's one-shot parse prefers the `</think>`).
 */
import type { ToolSpec } from "../tokenizer/chat_template.js";
import { partialTagLength } from "./stop_strings.js";
import { FUNCTION_OPEN, parseToolCalls, TOOL_OPEN, type ToolCall } from "./tool_call_parsers.js";

export type { ToolCall } from "./tool_call_parsers.js";
export { TOOL_OPEN, TOOL_CLOSE } from "./tool_call_parsers.js";

export interface ParsedOutput {
  /** null: the output had no reasoning section. */
  reasoning: string | null;
  /** null: nothing but reasoning and tool calls (or the output was cut off inside the reasoning). */
  content: string | null;
  toolCalls: ToolCall[];
  errors: string[];
}

export interface OutputDelta {
  kind: "reasoning" | "content";
  text: string;
}

export interface ParseOptions {
  /** The prompt ends inside an open `<think>` (see `promptOpensThinking`); undefined: unknown. */
  thinkingOpened?: boolean;
  /** The request's tools, for typing Qwen3-Coder XML parameters. */
  tools?: readonly ToolSpec[];
}

export const THINK_OPEN = "<think>";
export const THINK_CLOSE = "</think>";

/** Where open reasoning implicitly ends: a `<tool_call>` (only the first one counts) followed by `<function`. */
function implicitEnd(body: string): number {
  const at = body.indexOf(TOOL_OPEN);
  return at >= 0 && /^<function[\s=]/.test(body.slice(at + TOOL_OPEN.length).trimStart()) ? at : -1;
}

/** Parses a whole assistant output. */
export function parseAssistantOutput(text: string, opts: ParseOptions = {}): ParsedOutput {
  const lead = text.trimStart();
  const ledByThink = lead.startsWith(THINK_OPEN);
  const body = ledByThink ? lead.slice(THINK_OPEN.length) : text;
  const open = ledByThink || opts.thinkingOpened === true;
  let reasoning: string | null = null;
  let answer: string | null = body;
  const close = body.indexOf(THINK_CLOSE);
  const end = open ? implicitEnd(body) : -1;
  if (end >= 0 && (close < 0 || end < close)) {
    reasoning = end > 0 ? body.slice(0, end) : null;
    answer = body.slice(end);
  } else if (close >= 0 && (open || opts.thinkingOpened === undefined)) {
    reasoning = body.slice(0, close);
    answer = body.slice(close + THINK_CLOSE.length);
  } else if (open) {
    reasoning = body;
    answer = null;
  }
  const tools = answer === null ? { content: null, toolCalls: [], errors: [] } : parseToolCalls(answer, opts.tools);
  const content = tools.content?.trim() ?? null;
  return {
    reasoning: reasoning?.trim() ?? null,
    content: content === "" && (reasoning !== null || tools.toolCalls.length > 0) ? null : content,
    toolCalls: tools.toolCalls,
    errors: tools.errors,
  };
}

/** Emits one trimmed section (reasoning or content) piece by piece: whitespace only once text follows it. */
class TrimmedSection {
  private started = false;
  private heldSpace = "";
  /** Everything emitted so far. */
  written = "";
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
    if (emit.length > 0) {
      this.written += emit;
      push(out, this.kind, emit);
    }
  }
}

function push(out: OutputDelta[], kind: OutputDelta["kind"], text: string): void {
  const last = out[out.length - 1];
  if (last !== undefined && last.kind === kind) last.text += text;
  else out.push({ kind, text });
}

/** Longest suffix of `s` that may still grow into one of `tags`. */
function partialOf(s: string, tags: string[]): number {
  return Math.max(...tags.map((t) => partialTagLength(s, t)));
}

type State = "start" | "reasoning" | "content" | "tail";

/**
 * The same parse, fed text as it is generated: `push` returns the reasoning/content text that is now certain
 * (a possible partial tag or trailing whitespace is held back; from the first tool-call tag on, the answer is
 * held to the end, where it is either tool calls or, when they do not parse, raw content); `flush` returns
 * what was held at the end; `finish` gives the full result, equal to `parseAssistantOutput` of all the text
 * pushed with the same `thinkingOpened` (undefined counts as false here: a stream must know its prompt).
 */
export class StreamingOutputParser {
  private state: State = "start";
  private pending = "";
  private all = "";
  private readonly opened: boolean;
  private readonly tools?: readonly ToolSpec[];
  private readonly reasoningOut = new TrimmedSection("reasoning");
  private readonly contentOut = new TrimmedSection("content");
  /** The first <tool_call> inside the reasoning was not a tool call: no implicit end any more. */
  private toolTagSeen = false;
  private result: ParsedOutput | null = null;

  constructor(opts: ParseOptions = {}) {
    this.opened = opts.thinkingOpened === true;
    this.tools = opts.tools;
  }

  push(textDelta: string): OutputDelta[] {
    if (this.result !== null) throw new Error("StreamingOutputParser: push after flush/finish");
    this.all += textDelta;
    this.pending += textDelta;
    const out: OutputDelta[] = [];
    this.advance(out, false);
    return out;
  }

  /** Ends the stream; returns the last deltas (text that had been held back). */
  flush(): OutputDelta[] {
    const out: OutputDelta[] = [];
    if (this.result === null) {
      this.advance(out, true);
      this.result = parseAssistantOutput(this.all, { thinkingOpened: this.opened, tools: this.tools });
      // The held answer: tool calls (nothing more to show) or, when they did not parse, raw content.
      const rest = (this.result.content ?? "").slice(this.contentOut.written.length);
      if (rest.length > 0) push(out, "content", rest);
    }
    return out;
  }

  finish(): ParsedOutput {
    this.flush();
    const r = this.result!;
    return { ...r, toolCalls: [...r.toolCalls], errors: [...r.errors] };
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
            continue;
          }
          if (!final && THINK_OPEN.startsWith(lead)) return; // maybe "<thi" of "<think>"
          this.state = this.opened ? "reasoning" : "content";
          continue;
        }
        case "reasoning": {
          const close = p.indexOf(THINK_CLOSE);
          const tool = this.toolTagSeen ? -1 : p.indexOf(TOOL_OPEN);
          if (tool >= 0 && (close < 0 || tool < close)) {
            const after = p.slice(tool + TOOL_OPEN.length).trimStart();
            if (!final && "<function".startsWith(after)) {
              this.emit(p.slice(0, tool), out); // wait for what follows the <tool_call>
              this.pending = p.slice(tool);
              return;
            }
            this.toolTagSeen = true;
            if (/^<function[\s=]/.test(after)) {
              this.emit(p.slice(0, tool), out);
              this.pending = p.slice(tool);
              this.state = "content";
            }
            continue;
          }
          if (close >= 0) {
            this.emit(p.slice(0, close), out);
            this.pending = p.slice(close + THINK_CLOSE.length);
            this.state = "content";
            continue;
          }
          const keep = final ? p.length : p.length - partialOf(p, this.toolTagSeen ? [THINK_CLOSE] : [THINK_CLOSE, TOOL_OPEN]);
          this.emit(p.slice(0, keep), out);
          this.pending = p.slice(keep);
          return;
        }
        case "content": {
          const marks = [TOOL_OPEN, FUNCTION_OPEN].map((t) => p.indexOf(t)).filter((i) => i >= 0);
          if (marks.length > 0) {
            const at = Math.min(...marks);
            this.emit(p.slice(0, at), out);
            this.pending = p.slice(at);
            this.state = "tail";
            continue;
          }
          const keep = final ? p.length : p.length - partialOf(p, [TOOL_OPEN, FUNCTION_OPEN]);
          this.emit(p.slice(0, keep), out);
          this.pending = p.slice(keep);
          return;
        }
        case "tail":
          return; // held whole: the answer from here on is decided at the end
      }
    }
  }

  private emit(text: string, out: OutputDelta[]): void {
    (this.state === "reasoning" ? this.reasoningOut : this.contentOut).write(text, out);
  }
}
