/**
 * The chunks of one streamed chat completion choice, from the generated text as it arrives:
 *   {role: "assistant", content: ""}, then reasoning / content deltas as the output parser
 *   releases them (tool-call markup is held back by the parser), then the tool calls, each whole,
 *   then an empty delta with finish_reason, then (stream_options.include_usage) a usage-only chunk.
 * With logprobs asked, each chunk carries the logprobs of the tokens generated since the previous one.
 * Pure: the route handler writes the chunks; the same parser rules as the non-streamed answer.
 */
import { StreamingOutputParser, type OutputDelta } from "../generate/output_parser.js";
import type { QwenTokenizer } from "../tokenizer/tokenizer.js";
import { chatChunk, chatFinishReason, chatLogprobs, toolCallDeltas, usageChunk, type ResponseMeta, type Usage } from "./responses.js";
import type { TokenLogprob } from "./scheduler.js";

export class ChatStream {
  private readonly parser: StreamingOutputParser;
  /** Logprobs not yet sent: the parser may hold text back. */
  private pending: TokenLogprob[] = [];
  /** How many logprobs have come in through `push`. */
  private seen = 0;

  constructor(
    private readonly meta: ResponseMeta,
    opts: { thinkingOpened: boolean },
    private readonly index = 0,
    private readonly tokenizer?: QwenTokenizer,
  ) {
    this.parser = new StreamingOutputParser({ thinkingOpened: opts.thinkingOpened });
  }

  /** The first chunk: the assistant's role. */
  start(): object[] {
    return [chatChunk(this.meta, { role: "assistant", content: "" }, null, this.index)];
  }

  /** Chunks for a piece of generated text (possibly none while a tag may be forming). */
  push(text: string, lps: readonly TokenLogprob[] = []): object[] {
    this.pending.push(...lps);
    this.seen += lps.length;
    return this.deltas(this.parser.push(text));
  }

  /**
   * The last chunks, once generation has ended with `ended`; `use` adds the usage chunk; `all` is every
   * token's logprob (those not sent yet, e.g. the end token's, go with the last chunks).
   */
  finish(ended: "stop" | "length", use?: Usage, all: readonly TokenLogprob[] = []): object[] {
    this.pending.push(...all.slice(this.seen));
    const out = this.deltas(this.parser.flush());
    const parsed = this.parser.finish();
    if (parsed.toolCalls.length > 0) out.push(chatChunk(this.meta, { tool_calls: toolCallDeltas(parsed) }, null, this.index));
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
