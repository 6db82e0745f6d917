/**
 * The chunks of a streamed chat completion, from the generated text as it arrives:
 *   {role: "assistant", content: ""}, then reasoning_content / content deltas as the output parser
 *   releases them (tool-call markup is held back by the parser), then the tool calls, each whole,
 *   then an empty delta with finish_reason, then (stream_options.include_usage) a usage-only chunk.
 * Pure: the route handler writes the chunks; the same parser rules as the non-streamed answer.
 */
import { StreamingOutputParser, type OutputDelta } from "../generate/output_parser.js";
import type { ToolSpec } from "../tokenizer/chat_template.js";
import { chatChunk, chatFinishReason, toolCallDeltas, usageChunk, type ResponseMeta, type Usage } from "./responses.js";

export class ChatStream {
  private readonly parser: StreamingOutputParser;

  constructor(private readonly meta: ResponseMeta, opts: { thinkingOpened: boolean; tools?: readonly ToolSpec[] }) {
    this.parser = new StreamingOutputParser({ thinkingOpened: opts.thinkingOpened, tools: opts.tools });
  }

  /** The first chunk: the assistant's role. */
  start(): object[] {
    return [chatChunk(this.meta, { role: "assistant", content: "" })];
  }

  /** Chunks for a piece of generated text (possibly none while a tag may be forming). */
  push(text: string): object[] {
    return this.deltas(this.parser.push(text));
  }

  /** The last chunks, once generation has ended with `ended`; `use` adds the usage chunk. */
  finish(ended: "stop" | "length", use?: Usage): object[] {
    const out = this.deltas(this.parser.flush());
    const parsed = this.parser.finish();
    if (parsed.toolCalls.length > 0) out.push(chatChunk(this.meta, { tool_calls: toolCallDeltas(parsed) }));
    out.push(chatChunk(this.meta, {}, chatFinishReason(parsed, ended)));
    if (use) out.push(usageChunk(this.meta, "chat.completion.chunk", use));
    return out;
  }

  private deltas(ds: OutputDelta[]): object[] {
    return ds.map((d) => chatChunk(this.meta, d.kind === "reasoning" ? { reasoning_content: d.text } : { content: d.text }));
  }
}
