/**
 * POST /tokenize and POST /detokenize, in vLLM's shapes:
 *   /tokenize   {prompt} or {messages, add_generation_prompt?, tools?, chat_template_kwargs?}
 *               -> {count, max_model_len, tokens, token_strs}
 *   /detokenize {tokens} -> {prompt}
 * `model`, when given, must name the served model. Rendering and tokenizing run in the prompt worker
 * threads, bounded like a completion's prompt (prompt_workers.ts).
 */
import type { ServerDeps } from "./app.js";
import { badRequest } from "./errors.js";
import { chatMessages, checkModelName, promptApiError, type ChatBody } from "./requests.js";

export interface TokenizeBody {
  model?: string;
  prompt?: string;
  messages?: ChatBody["messages"];
  tools?: ChatBody["tools"];
  add_generation_prompt?: boolean;
  add_special_tokens?: boolean;
  return_token_strs?: boolean;
  chat_template_kwargs?: ChatBody["chat_template_kwargs"];
}

export interface DetokenizeBody {
  model?: string;
  tokens: number[];
}

export const tokenizeSchema = {
  type: "object",
  properties: {
    model: { type: "string" },
    prompt: { type: "string" },
    messages: { type: "array", minItems: 1, items: { type: "object", required: ["role"] } },
    tools: { type: ["array", "null"] },
    add_generation_prompt: { type: "boolean" },
    add_special_tokens: { type: "boolean" },
    return_token_strs: { type: "boolean" },
    chat_template_kwargs: { type: ["object", "null"] },
  },
} as const;

export const detokenizeSchema = {
  type: "object",
  required: ["tokens"],
  properties: { model: { type: "string" }, tokens: { type: "array", items: { type: "integer", minimum: 0 } } },
} as const;

export async function handleTokenize(deps: ServerDeps, body: TokenizeBody) {
  if (body.model !== undefined) checkModelName({ model: body.model }, deps.served);
  let tokens: number[];
  if (body.messages !== undefined) {
    if (body.prompt !== undefined) throw badRequest("send either prompt or messages, not both", "prompt");
    let ctx: Record<string, unknown>;
    try {
      ctx = deps.template.context(chatMessages({ model: "", messages: body.messages }), {
        tools: body.tools ?? undefined,
        enableThinking: body.chat_template_kwargs?.enable_thinking ?? undefined,
        addGenerationPrompt: body.add_generation_prompt ?? true,
      });
    } catch (err) {
      throw badRequest(`messages cannot be rendered by the chat template: ${(err as Error).message}`, "messages");
    }
    tokens = (
      await deps.prompts.chat(ctx).catch((err: unknown) => {
        throw promptApiError(err, deps.served.contextLength, "messages");
      })
    ).ids;
  } else if (body.prompt !== undefined) {
    tokens = await deps.prompts.encode(body.prompt).catch((err: unknown) => {
      throw promptApiError(err, deps.served.contextLength, "prompt");
    });
  } else {
    throw badRequest("Missing required parameter: 'prompt' (or 'messages')", "prompt", "missing_required_parameter");
  }
  return {
    count: tokens.length,
    max_model_len: deps.served.contextLength,
    tokens,
    token_strs: body.return_token_strs ? tokens.map((id) => deps.tokenizer.tokenString(id) ?? "") : null,
  };
}

export function handleDetokenize(deps: ServerDeps, body: DetokenizeBody) {
  if (body.model !== undefined) checkModelName({ model: body.model }, deps.served);
  const bad = body.tokens.findIndex((id) => id >= deps.tokenizer.vocabSize);
  if (bad >= 0) {
    throw badRequest(`tokens[${bad}] is ${body.tokens[bad]}, expected ids below ${deps.tokenizer.vocabSize}`, "tokens");
  }
  return { prompt: deps.tokenizer.decode(body.tokens) };
}
