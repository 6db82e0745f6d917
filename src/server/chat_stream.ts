/**
 * The chunks of one streamed chat completion choice, from the generated text as it arrives:
 *   {role: "assistant", content: ""}, then reasoning / content deltas as the output parser
 *   releases them (tool-call markup is held back by the parser), tool calls as they are written (as
 *   vLLM's Hermes parser streams them: {index, id, type, function: {name, arguments: ""}} once the name
 *   is known, then pieces of `arguments`), then an empty delta with finish_reason, then
 *   (stream_options.include_usage) a usage-only chunk.
 * With logprobs asked, each chunk carries the logprobs of the tokens generated since the previous one.
 * Pure: the route handler writes the chunks; the same parser rules as the non-streamed answer.
 */
import { StreamingOutputParser, type OutputDelta } from "../generate/output_parser.js";
import type { ToolSpec } from "../tokenizer/chat_template.js";
import type { QwenTokenizer } from "../tokenizer/tokenizer.js";
import { randomBytes } from "node:crypto";
import { THINK_CLOSE, THINK_OPEN, TOOL_CLOSE, TOOL_OPEN } from "../generate/output_parser.js";
import { chatChunk, chatFinishReason, chatLogprobs, toolCallsOut, usageChunk, type ResponseMeta, type Usage } from "./responses.js";
import type { TokenLogprob } from "./scheduler.js";

export class ChatStream {
  private readonly parser: StreamingOutputParser;
  /** Logprobs not yet sent: the parser may hold text back. */
  private pending: TokenLogprob[] = [];
  /** How many logprobs have come in through `push`. */
  private seen = 0;
  private readonly calls: ToolCallStreamer;

  constructor(
    private readonly meta: ResponseMeta,
    opts: { thinkingOpened: boolean; tools?: readonly ToolSpec[] },
    private readonly index = 0,
    private readonly tokenizer?: QwenTokenizer,
  ) {
    this.parser = new StreamingOutputParser({ thinkingOpened: opts.thinkingOpened, tools: opts.tools });
    this.calls = new ToolCallStreamer(opts.thinkingOpened);
  }

  /** The first chunk: the assistant's role. */
  start(): object[] {
    return [chatChunk(this.meta, { role: "assistant", content: "" }, null, this.index)];
  }

  /** Chunks for a piece of generated text (possibly none while a tag may be forming). */
  push(text: string, lps: readonly TokenLogprob[] = []): object[] {
    this.pending.push(...lps);
    this.seen += lps.length;
    const out = this.deltas(this.parser.push(text));
    const calls = this.calls.push(text);
    if (calls.length > 0) out.push(chatChunk(this.meta, { tool_calls: calls }, null, this.index, this.takeLogprobs()));
    return out;
  }

  /**
   * The last chunks, once generation has ended with `ended`; `use` adds the usage chunk; `all` is every
   * token's logprob (those not sent yet, e.g. the end token's, go with the last chunks).
   */
  finish(ended: "stop" | "length", use?: Usage, all: readonly TokenLogprob[] = []): object[] {
    this.pending.push(...all.slice(this.seen));
    const out = this.deltas(this.parser.flush());
    const parsed = this.parser.finish();
    const calls = this.calls.finish();
    // Calls the streamer could not follow (not the usual {"name": ..., "arguments": ...} order) go whole.
    toolCallsOut(parsed).forEach((c, i) => {
      if (i >= this.calls.announced) calls.push({ index: i, ...c });
    });
    if (calls.length > 0) out.push(chatChunk(this.meta, { tool_calls: calls }, null, this.index));
    out.push(chatChunk(this.meta, {}, chatFinishReason(parsed, ended), this.index, this.takeLogprobs()));
    if (use) out.push(usageChunk(this.meta, "chat.completion.chunk", use));
    return out;
  }

  private deltas(ds: OutputDelta[]): object[] {
    return ds.map((d) =>
      chatChunk(
        this.meta,
        d.kind === "reasoning" ? { reasoning: d.text, reasoning_content: d.text } : { content: d.text },
        null,
        this.index,
        this.takeLogprobs(),
      ),
    );
  }

  private takeLogprobs(): object | null {
    if (!this.tokenizer || this.pending.length === 0) return null;
    const lps = this.pending;
    this.pending = [];
    return chatLogprobs(this.tokenizer, lps);
  }
}

interface ToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments: string };
}

/** `{"name": "<name>", "arguments": ` at the start of a tool call's body (any spacing). */
const CALL_HEAD = /^\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*/;

/**
 * Follows the raw output for `<tool_call>` blocks in the answer (after any reasoning) and releases each
 * call's name once written and its arguments' JSON text as it grows. Held back: trailing whitespace and
 * closing braces (one of them closes the call object, not the arguments) and a partial `</tool_call>`.
 * The streamed pieces of a call concatenate to the raw text of its arguments.
 */
class ToolCallStreamer {
  private raw = "";
  /** Calls whose header has been sent (block i is call i). */
  announced = 0;
  /** Argument characters sent, per announced call. */
  private sent: number[] = [];

  constructor(private readonly thinkingOpened: boolean) {}

  push(text: string): ToolCallDelta[] {
    this.raw += text;
    return this.scan(false);
  }

  /** The rest of every call, once the output is complete. */
  finish(): ToolCallDelta[] {
    return this.scan(true);
  }

  private contentStart(): number | undefined {
    const lead = this.raw.length - this.raw.trimStart().length;
    const rest = this.raw.slice(lead);
    if (!this.thinkingOpened && !rest.startsWith(THINK_OPEN)) {
      return THINK_OPEN.startsWith(rest) && rest.length > 0 ? undefined : 0; // "<thi" may still become "<think>"
    }
    const close = this.raw.indexOf(THINK_CLOSE);
    return close < 0 ? undefined : close + THINK_CLOSE.length;
  }

  private scan(final: boolean): ToolCallDelta[] {
    const start = this.contentStart();
    if (start === undefined) return [];
    const out: ToolCallDelta[] = [];
    const blocks = this.raw.slice(start).split(TOOL_OPEN).slice(1);
    for (let i = 0; i < blocks.length; i++) {
      if (i > this.announced) break; // calls are announced in order
      const close = blocks[i].indexOf(TOOL_CLOSE);
      const body = close < 0 ? blocks[i] : blocks[i].slice(0, close);
      const head = CALL_HEAD.exec(body);
      if (!head) break; // not (yet) in the usual layout: left to finish() whole
      if (i === this.announced) {
        let name: string;
        try {
          name = JSON.parse(head[1]) as string;
        } catch {
          break;
        }
        out.push({ index: i, id: `call_${randomBytes(12).toString("hex")}`, type: "function", function: { name, arguments: "" } });
        this.announced++;
        this.sent.push(0);
      }
      const args = body.slice(head[0].length);
      const done = close >= 0 || final;
      // Complete: drop the one brace that closes the call object. Growing: hold back what may be it.
      const upTo = done ? args.replace(/\s*\}\s*$/, "").length : safeLength(args);
      if (upTo > this.sent[i]) {
        out.push({ index: i, function: { arguments: args.slice(this.sent[i], upTo) } });
        this.sent[i] = upTo;
      }
    }
    return out;
  }
}

/** Length of `args` that is surely part of the arguments: no trailing braces/whitespace, no partial close tag. */
function safeLength(args: string): number {
  let end = args.length;
  const lt = args.lastIndexOf("<");
  if (lt >= 0 && TOOL_CLOSE.startsWith(args.slice(lt))) end = lt;
  while (end > 0 && /[\s}]/.test(args[end - 1])) end--;
  return end;
}
