/**
 * Response bodies in the OpenAI API's shapes (chat.completion, chat.completion.chunk, text_completion),
 * built from generation results. Pure functions: the route handlers own the I/O.
 *
 * A parsed assistant output maps to a message as vLLM maps it with its Qwen3 reasoning parser and
 * Hermes tool parser: `reasoning_content` holds the `<think>` part, `content` the answer (null when the
 * answer is only tool calls), `tool_calls` the parsed calls, and finish_reason becomes "tool_calls".
 */
import { randomBytes } from "node:crypto";
import type { ParsedOutput } from "../generate/output_parser.js";

export type FinishReason = "stop" | "length" | "tool_calls";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /**
   * Speculative decoding (requests that drafted): OpenAI's prediction counts, here the MTP head's drafts
   * that the model accepted and rejected (drafts proposed = accepted + rejected).
   */
  completion_tokens_details?: { accepted_prediction_tokens: number; rejected_prediction_tokens: number };
}

export interface ToolCallOut {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** Identity shared by every chunk of one response. */
export interface ResponseMeta {
  id: string;
  created: number;
  model: string;
}

export function responseMeta(prefix: "chatcmpl" | "cmpl", model: string): ResponseMeta {
  return { id: `${prefix}-${randomBytes(12).toString("hex")}`, created: Math.floor(Date.now() / 1000), model };
}

export function usage(promptTokens: number, completionTokens: number, speculation?: { draftTokens: number; acceptedTokens: number }): Usage {
  const u: Usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
  if (speculation) {
    u.completion_tokens_details = {
      accepted_prediction_tokens: speculation.acceptedTokens,
      rejected_prediction_tokens: speculation.draftTokens - speculation.acceptedTokens,
    };
  }
  return u;
}

/** OpenAI tool call objects, each with a fresh `call_...` id. */
export function toolCallsOut(parsed: ParsedOutput): ToolCallOut[] {
  return parsed.toolCalls.map((c) => ({
    id: `call_${randomBytes(12).toString("hex")}`,
    type: "function",
    function: { name: c.name, arguments: c.arguments },
  }));
}

/** "tool_calls" when the output called a tool, else the generation's own reason. */
export function chatFinishReason(parsed: ParsedOutput, ended: "stop" | "length"): FinishReason {
  return parsed.toolCalls.length > 0 ? "tool_calls" : ended;
}

/** The assistant message of a non-streamed chat completion. */
export function assistantMessage(parsed: ParsedOutput): Record<string, unknown> {
  const calls = toolCallsOut(parsed);
  const message: Record<string, unknown> = {
    role: "assistant",
    content: calls.length > 0 && parsed.content === "" ? null : parsed.content,
  };
  if (parsed.reasoning !== null) message.reasoning_content = parsed.reasoning;
  if (calls.length > 0) message.tool_calls = calls;
  return message;
}

export function chatCompletion(meta: ResponseMeta, parsed: ParsedOutput, ended: "stop" | "length", use: Usage) {
  return {
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, message: assistantMessage(parsed), logprobs: null, finish_reason: chatFinishReason(parsed, ended) }],
    usage: use,
  };
}

/** One streamed chat chunk; `delta` holds role / content / reasoning_content / tool_calls. */
export function chatChunk(meta: ResponseMeta, delta: Record<string, unknown>, finishReason: FinishReason | null = null) {
  return {
    id: meta.id,
    object: "chat.completion.chunk",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
}

/** The streamed tool calls, one indexed entry each (sent whole, once the call is complete). */
export function toolCallDeltas(parsed: ParsedOutput): Array<ToolCallOut & { index: number }> {
  return toolCallsOut(parsed).map((c, index) => ({ index, ...c }));
}

/** The final chunk of `stream_options.include_usage`: no choices, only usage. */
export function usageChunk(meta: ResponseMeta, object: "chat.completion.chunk" | "text_completion", use: Usage) {
  return { id: meta.id, object, created: meta.created, model: meta.model, choices: [], usage: use };
}

export function textCompletion(meta: ResponseMeta, text: string, finishReason: "stop" | "length" | null, use?: Usage) {
  const body: Record<string, unknown> = {
    id: meta.id,
    object: "text_completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }],
  };
  if (use) body.usage = use;
  return body;
}
