/**
 * From a schema-valid request body to what generation needs: the prompt's tokens, the sampling
 * parameters (the request's, else the checkpoint's `generation_config.json` defaults), the token
 * budget and the stop strings. Checks that need the model (name, context length, vocabulary) live here.
 */
import type { ChatMessage, ToolSpec } from "../tokenizer/chat_template.js";
import { samplingParamsError, type SamplingParams } from "../generate/sampler.js";
import { ApiError, badRequest } from "./errors.js";
import type { TextRequest } from "./generation.js";
import { PromptError } from "./prompt_workers.js";

/** Fields common to /v1/chat/completions and /v1/completions (after schema validation). */
export interface SamplingBody {
  model: string;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repetition_penalty?: number | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  logit_bias?: Record<string, number> | null;
  n?: number | null;
  response_format?: ResponseFormat | null;
  num_speculative_tokens?: number | null;
}

/** OpenAI `response_format`. */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; json_schema: { name: string; schema?: Record<string, unknown>; strict?: boolean | null; description?: string } };

type ContentPart = { type: "text"; text: string };
export interface ChatBody extends SamplingBody {
  messages: Array<
    Omit<ChatMessage, "role" | "content"> & { role: ChatMessage["role"] | "developer"; content?: string | null | ContentPart[]; reasoning?: string | null }
  >;
  tools?: ToolSpec[] | null;
  tool_choice?: "none" | "auto" | "required" | { type: "function"; function: { name: string } } | null;
  chat_template_kwargs?: { enable_thinking?: boolean | null } | null;
  parallel_tool_calls?: boolean | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
}

export interface CompletionBody extends SamplingBody {
  /** Text, or token ids (one prompt). */
  prompt: string | [string] | number[] | [number[]];
  echo?: boolean | null;
  /** Number of alternatives per token (OpenAI's completions logprobs). */
  logprobs?: number | null;
}

/** What the server knows about the model it serves. */
export interface ServedModel {
  /** The name clients put in `model` (the first of `--served-model-name`). */
  name: string;
  /** Further served names: accepted in `model` and listed by /v1/models, as vLLM lists them. */
  aliases?: readonly string[];
  /** The checkpoint path as given on the command line: accepted in `model`, not listed. */
  modelPath?: string;
  /** Longest sequence (prompt + completion) in tokens. */
  contextLength: number;
  /** Rows of the logits (token ids a logit_bias may name). */
  vocabSize: number;
  /** Sampling defaults of the checkpoint (`generation_config.json`). */
  defaults: SamplingParams;
  /** max_tokens when a request leaves it out (undefined: the rest of the context). */
  defaultMaxTokens?: number;
  /** Speculative decoding: draft tokens per step for requests that leave num_speculative_tokens out (0: off). */
  draftTokens?: number;
}

export function checkModelName(body: SamplingBody, served: ServedModel): void {
  if (body.model !== served.name && !served.aliases?.includes(body.model) && body.model !== served.modelPath) {
    throw new ApiError(
      400,
      `The model \`${body.model}\` does not exist; this server serves \`${served.name}\``,
      "invalid_request_error",
      "model",
      "model_not_found",
    );
  }
}

/** A prompt that could not be rendered or tokenized, as the client sees it (400; 500 / 503 for the server's own failures). */
export function promptApiError(err: unknown, contextLength: number, param: "messages" | "prompt"): Error {
  if (!(err instanceof PromptError)) return err instanceof Error ? err : new Error(String(err));
  if (err.reason === "closed") return new ApiError(503, "The server is shutting down", "server_error", null, "shutting_down");
  if (err.reason === "worker") return new ApiError(500, `Internal server error: ${err.message}`, "server_error");
  if (err.reason === "too_long") {
    return badRequest(
      `This model's maximum context length is ${contextLength} tokens, but the prompt is ${err.size!.bytes} bytes long, so at least ${err.size!.minTokens} tokens; shorten it`,
      param,
      "context_length_exceeded",
    );
  }
  if (err.reason === "template") return badRequest(`messages cannot be rendered by the chat template: ${err.message}`, "messages");
  return badRequest(`The prompt cannot be processed: ${err.message}`, param, err.reason === "timeout" ? "prompt_timeout" : "prompt_too_costly");
}

/** The sampling, budget and stop settings of a request whose prompt is `promptTokens`. */
export function textRequest(body: SamplingBody, promptTokens: number[], served: ServedModel): TextRequest {
  const ctx = served.contextLength;
  if (promptTokens.length === 0) throw badRequest("The prompt is empty; expected at least one token", "prompt");
  if (promptTokens.length >= ctx) {
    throw badRequest(
      `This model's maximum context length is ${ctx} tokens, but the prompt has ${promptTokens.length} tokens; shorten it`,
      "messages",
      "context_length_exceeded",
    );
  }
  const room = ctx - promptTokens.length;
  const asked = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  const param = body.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens";
  if (asked !== undefined && asked > room) {
    throw badRequest(
      `${param} is ${asked}, but the prompt has ${promptTokens.length} tokens and the context is ${ctx}: expected at most ${room}`,
      param,
      "context_length_exceeded",
    );
  }
  const sampling = samplingParams(body, served.defaults);
  const problem = samplingParamsError(sampling);
  if (problem !== null) throw badRequest(problem, problem.split(" ")[0]);
  return {
    promptTokens,
    sampling,
    maxTokens: asked ?? Math.min(room, served.defaultMaxTokens ?? room),
    stop: body.stop == null ? [] : typeof body.stop === "string" ? [body.stop] : body.stop,
    logitBias: logitBias(body.logit_bias, served.vocabSize),
    draftTokens: draftTokens(body.num_speculative_tokens, served.draftTokens ?? 0),
  };
}

/** A request may lower the server's draft length (or turn speculation off with 0), never raise it. */
function draftTokens(asked: number | null | undefined, server: number): number {
  if (asked == null) return server;
  if (asked > server) {
    const why = server === 0 ? "this server runs without speculative decoding (start it with --speculative mtp)" : `the server's --draft-tokens is ${server}`;
    throw badRequest(`num_speculative_tokens is ${asked}, expected at most ${server}: ${why}`, "num_speculative_tokens");
  }
  return asked;
}

function samplingParams(body: SamplingBody, d: SamplingParams): SamplingParams {
  const p: SamplingParams = {
    temperature: body.temperature ?? d.temperature,
    top_p: body.top_p ?? d.top_p,
    // vLLM's convention: top_k -1 (or 0) turns it off.
    top_k: body.top_k == null ? d.top_k : Math.max(0, body.top_k),
    min_p: body.min_p ?? d.min_p,
    presence_penalty: body.presence_penalty ?? d.presence_penalty,
    frequency_penalty: body.frequency_penalty ?? d.frequency_penalty,
    repetition_penalty: body.repetition_penalty ?? d.repetition_penalty,
  };
  if (body.seed != null) p.seed = body.seed;
  return p;
}

function logitBias(raw: Record<string, number> | null | undefined, vocab: number): Map<number, number> | undefined {
  if (raw == null) return undefined;
  const out = new Map<number, number>();
  for (const [key, bias] of Object.entries(raw)) {
    const id = Number(key);
    if (!(id < vocab)) throw badRequest(`logit_bias names token ${key}, expected ids below ${vocab}`, "logit_bias");
    out.set(id, bias);
  }
  return out;
}

/** OpenAI messages -> the template's messages (text parts joined, "developer" read as "system"). */
export function chatMessages(body: ChatBody): ChatMessage[] {
  return body.messages.map((m, i) => {
    const content = Array.isArray(m.content) ? m.content.map((p) => p.text).join("") : (m.content ?? null);
    if (content === null && !(m.role === "assistant" && m.tool_calls && m.tool_calls.length > 0)) {
      throw badRequest(`messages[${i}].content is missing, expected a string`, `messages[${i}].content`);
    }
    if (m.role === "tool" && typeof m.tool_call_id !== "string") {
      throw badRequest(`messages[${i}] has role "tool" but no tool_call_id`, `messages[${i}].tool_call_id`);
    }
    const out: ChatMessage = { ...m, role: m.role === "developer" ? "system" : m.role, content };
    // vLLM's current name for the reasoning is `reasoning`; the template reads `reasoning_content`.
    const { reasoning, ...rest } = out as ChatMessage & { reasoning?: string | null };
    if (rest.reasoning_content == null && typeof reasoning === "string") rest.reasoning_content = reasoning;
    if (rest.tool_calls === null) delete rest.tool_calls;
    if (rest.reasoning_content === null) delete rest.reasoning_content;
    return rest;
  });
}

/**
 * How tools are used: "none" (not shown to the model), "auto" (the model decides), "required" (a call is
 * forced by a grammar), or the one named function (forced too).
 */
export function toolChoice(body: ChatBody): "auto" | "none" | "required" | { name: string } {
  const choice = body.tool_choice ?? "auto";
  if (choice === "none") return "none";
  if (!body.tools || body.tools.length === 0) {
    if (choice === "auto") return "none";
    throw badRequest(`tool_choice ${JSON.stringify(choice)} needs tools, but the request has none`, "tool_choice");
  }
  if (choice === "auto" || choice === "required") return choice;
  const name = choice.function.name;
  if (!body.tools.some((t) => t.function.name === name)) {
    throw badRequest(
      `tool_choice names the function "${name}", expected one of the tools: ${body.tools.map((t) => t.function.name).join(", ")}`,
      "tool_choice",
    );
  }
  return { name };
}

/** The chat request's n and logprobs settings. */
export function chatOutputOptions(body: ChatBody): { n: number; topLogprobs?: number } {
  if (body.top_logprobs != null && !body.logprobs) {
    throw badRequest("top_logprobs needs logprobs: true", "top_logprobs");
  }
  return { n: body.n ?? 1, topLogprobs: body.logprobs ? (body.top_logprobs ?? 0) : undefined };
}
