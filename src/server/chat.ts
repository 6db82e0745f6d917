/**
 * POST /v1/chat/completions
 *
 *   messages (+ tools, enable_thinking) --chat template--> prompt text --tokenizer--> prompt ids
 *   --scheduler--> text --output parser--> reasoning_content / content / tool_calls
 *
 * Streamed: the chunks of `ChatStream` (reasoning and content deltas as they are parsed, the tool calls
 * whole at the end, the finish chunk, usage), then `[DONE]`.
 */
import type { FastifyReply } from "fastify";
import { parseAssistantOutput } from "../generate/output_parser.js";
import { promptOpensThinking } from "../tokenizer/chat_template.js";
import type { ServerDeps } from "./app.js";
import { badRequest } from "./errors.js";
import { runRequest, runStreamed } from "./run_request.js";
import { ChatStream } from "./chat_stream.js";
import { chatMessages, checkModelName, promptApiError, textRequest, toolChoice, type ChatBody } from "./requests.js";
import { chatCompletion, responseMeta, usage } from "./responses.js";

export async function handleChat(deps: ServerDeps, body: ChatBody, reply: FastifyReply): Promise<unknown> {
  checkModelName(body, deps.served);
  const messages = chatMessages(body);
  // tool_choice "none": the model is not shown the tools, so it does not call them.
  const tools = toolChoice(body) === "auto" ? body.tools ?? undefined : undefined;
  let ctx: Record<string, unknown>;
  try {
    ctx = deps.template.context(messages, {
      tools,
      enableThinking: body.chat_template_kwargs?.enable_thinking ?? undefined,
      addGenerationPrompt: true,
    });
  } catch (err) {
    throw badRequest(`messages cannot be rendered by the chat template: ${(err as Error).message}`, "messages");
  }
  // Rendered and tokenized in a worker thread, bounded in length, time and memory.
  const { prompt, ids: promptTokens } = await deps.prompts.chat(ctx).catch((err: unknown) => {
    throw promptApiError(err, deps.served.contextLength, "messages");
  });
  const req = textRequest(body, promptTokens, deps.served);
  const thinkingOpened = promptOpensThinking(prompt);
  const meta = responseMeta("chatcmpl", deps.served.name);

  if (!body.stream) {
    const result = await runRequest(deps, req, reply);
    if (!result) return reply;
    const parsed = parseAssistantOutput(result.text, { thinkingOpened });
    return chatCompletion(meta, parsed, result.finishReason, usage(promptTokens.length, result.completionTokens));
  }

  const chunks = new ChatStream(meta, { thinkingOpened });
  const { sse, result } = await runStreamed(deps, req, reply, {
    start: (sse) => chunks.start().forEach((c) => sse.send(c)),
    text: (sse, delta) => chunks.push(delta).forEach((c) => sse.send(c)),
  });
  if (!result) return reply;
  const use = body.stream_options?.include_usage ? usage(promptTokens.length, result.completionTokens) : undefined;
  chunks.finish(result.finishReason, use).forEach((c) => sse.send(c));
  sse.end();
  return reply;
}
