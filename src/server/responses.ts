/**
 * Response bodies in the OpenAI API's shapes (chat.completion, chat.completion.chunk, text_completion),
 * built from generation results. Pure functions: the route handlers own the I/O.
 *
 * A parsed assistant output maps to a message as vLLM maps it with its Qwen3 reasoning parser and
 * Hermes tool parser: `reasoning_content` holds the `<think>` part, `content` the answer (null when the
 * answer is only tool calls), `tool_calls` the parsed calls, and finish_reason becomes "tool_calls".
 * The reasoning is sent under both of vLLM's names: `reasoning` (current) and `reasoning_content` (older).
 */
import { randomBytes } from "node:crypto";
import type { ParsedOutput } from "../generate/output_parser.js";
import type { QwenTokenizer } from "../tokenizer/tokenizer.js";
import type { TokenLogprob } from "./scheduler.js";

export type FinishReason = "stop" | "length" | "tool_calls";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Prompt tokens whose state came from the prefix cache. */
  prompt_tokens_details?: { cached_tokens: number };
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

export function usage(
  promptTokens: number,
  completionTokens: number,
  cachedTokens?: number,
  speculation?: { draftTokens: number; acceptedTokens: number },
): Usage {
  const u: Usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
  if (cachedTokens !== undefined) u.prompt_tokens_details = { cached_tokens: cachedTokens };
  if (speculation) {
    u.completion_tokens_details = {
      accepted_prediction_tokens: speculation.acceptedTokens,
      rejected_prediction_tokens: speculation.draftTokens - speculation.acceptedTokens,
    };
  }
  return u;
}

/** Usage of n completions of one prompt: the prompt counted once, the completions (and their drafts) summed. */
export function usageOf(
  promptTokens: number,
  results: ReadonlyArray<{ completionTokens: number; cachedTokens: number; speculation?: { draftTokens: number; acceptedTokens: number } }>,
): Usage {
  const drafted = results.filter((r) => r.speculation);
  return usage(
    promptTokens,
    results.reduce((n, r) => n + r.completionTokens, 0),
    results.length > 0 ? results[0].cachedTokens : 0,
    drafted.length === 0
      ? undefined
      : {
          draftTokens: drafted.reduce((n, r) => n + r.speculation!.draftTokens, 0),
          acceptedTokens: drafted.reduce((n, r) => n + r.speculation!.acceptedTokens, 0),
        },
  );
}

/** A token as logprobs show it: its text (special tokens written out) and its UTF-8 bytes. */
function tokenText(tokenizer: QwenTokenizer, id: number): { token: string; bytes: number[] } {
  const piece = id < tokenizer.vocabSize ? tokenizer.piece(id) : null;
  const bytes = piece === null ? [] : "added" in piece ? [...Buffer.from(piece.added, "utf8")] : [...piece.bytes];
  return { token: piece === null ? "" : "added" in piece ? piece.added : Buffer.from(bytes).toString("utf8"), bytes };
}

/** Chat `choices[i].logprobs`: {content: [{token, logprob, bytes, top_logprobs: [...]}]} per token. */
export function chatLogprobs(tokenizer: QwenTokenizer, lps: readonly TokenLogprob[]) {
  return {
    content: lps.map((lp) => ({
      ...tokenText(tokenizer, lp.id),
      logprob: lp.logprob,
      top_logprobs: lp.top.map((t) => ({ ...tokenText(tokenizer, t.id), logprob: t.logprob })),
    })),
  };
}

/** Completions `choices[i].logprobs`: parallel arrays, and a {token: logprob} map per position. */
export function completionLogprobs(tokenizer: QwenTokenizer, lps: readonly TokenLogprob[], textOffset: number) {
  const out = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Array<Record<string, number>>, text_offset: [] as number[] };
  let offset = textOffset;
  lps.forEach((lp) => {
    const { token } = tokenText(tokenizer, lp.id);
    out.tokens.push(token);
    out.token_logprobs.push(lp.logprob);
    out.top_logprobs.push(Object.fromEntries(lp.top.map((t) => [tokenText(tokenizer, t.id).token, t.logprob])));
    out.text_offset.push(offset);
    offset += token.length;
  });
  return out;
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
  if (parsed.reasoning !== null) {
    message.reasoning = parsed.reasoning;
    message.reasoning_content = parsed.reasoning;
  }
  if (calls.length > 0) message.tool_calls = calls;
  return message;
}

/** One choice of a chat completion. */
export interface ChatChoice {
  parsed: ParsedOutput;
  ended: "stop" | "length";
  logprobs?: object | null;
}

export function chatCompletion(meta: ResponseMeta, choices: ChatChoice[], use: Usage) {
  return {
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: meta.model,
    choices: choices.map((c, index) => ({
      index,
      message: assistantMessage(c.parsed),
      logprobs: c.logprobs ?? null,
      finish_reason: chatFinishReason(c.parsed, c.ended),
    })),
    usage: use,
  };
}

/** One streamed chat chunk of choice `index`; `delta` holds role / content / reasoning / tool_calls. */
export function chatChunk(
  meta: ResponseMeta,
  delta: Record<string, unknown>,
  finishReason: FinishReason | null = null,
  index = 0,
  logprobs: object | null = null,
) {
  return {
    id: meta.id,
    object: "chat.completion.chunk",
    created: meta.created,
    model: meta.model,
    choices: [{ index, delta, logprobs, finish_reason: finishReason }],
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

export interface TextChoice {
  text: string;
  finishReason: "stop" | "length" | null;
  logprobs?: object | null;
}

export function textCompletion(meta: ResponseMeta, choices: TextChoice[], use?: Usage, firstIndex = 0) {
  const body: Record<string, unknown> = {
    id: meta.id,
    object: "text_completion",
    created: meta.created,
    model: meta.model,
    choices: choices.map((c, i) => ({ index: firstIndex + i, text: c.text, logprobs: c.logprobs ?? null, finish_reason: c.finishReason })),
  };
  if (use) body.usage = use;
  return body;
}
