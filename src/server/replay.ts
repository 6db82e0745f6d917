/**
 * A complete response (from the response cache) sent as the SSE stream a streamed request expects:
 * per choice its role, reasoning, content and tool calls each in one delta, then its finish chunk (with
 * its logprobs); the usage chunk when asked; `[DONE]`.
 */
import type { FastifyReply } from "fastify";
import { SseStream } from "./sse.js";

interface CachedChoice {
  index: number;
  message?: { content?: string | null; reasoning?: string; reasoning_content?: string; tool_calls?: unknown[] };
  text?: string;
  logprobs: unknown;
  finish_reason: string;
}

export function replayAsStream(reply: FastifyReply, response: Record<string, unknown>, includeUsage: boolean): FastifyReply {
  const chat = response.object === "chat.completion";
  const object = chat ? "chat.completion.chunk" : "text_completion";
  const head = { id: response.id, object, created: response.created, model: response.model };
  reply.hijack();
  const sse = new SseStream(reply.raw);
  for (const c of response.choices as CachedChoice[]) {
    if (!chat) {
      sse.send({ ...head, choices: [{ index: c.index, text: c.text ?? "", logprobs: c.logprobs, finish_reason: c.finish_reason }] });
      continue;
    }
    const chunk = (delta: Record<string, unknown>, finish: string | null = null, logprobs: unknown = null) =>
      sse.send({ ...head, choices: [{ index: c.index, delta, logprobs, finish_reason: finish }] });
    const m = c.message ?? {};
    chunk({ role: "assistant", content: "" });
    if (m.reasoning !== undefined) chunk({ reasoning: m.reasoning, reasoning_content: m.reasoning });
    if (m.content) chunk({ content: m.content });
    if (m.tool_calls) chunk({ tool_calls: m.tool_calls.map((t, index) => ({ index, ...(t as object) })) });
    chunk({}, c.finish_reason, c.logprobs);
  }
  if (includeUsage) sse.send({ ...head, choices: [], usage: response.usage });
  sse.end();
  return reply;
}
