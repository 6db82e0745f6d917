/**
 * POST /v1/chat/completions
 *
 *   messages (+ tools, enable_thinking) --chat template--> prompt text --tokenizer--> prompt ids
 *   --scheduler--> n texts --output parser--> reasoning / content / tool_calls per choice
 *
 * Streamed: the chunks of one `ChatStream` per choice (reasoning and content deltas as they are parsed,
 * tool calls as they are written, the finish chunk), usage, then `[DONE]`.
 */
import type { FastifyReply } from "fastify";
import { parseAssistantOutput } from "../generate/output_parser.js";
import { promptOpensThinking } from "../tokenizer/chat_template.js";
import { noteUsage, type ServerDeps } from "./app.js";
import { badRequest } from "./errors.js";
import { runRequest, runStreamed } from "./run_request.js";
import type { TextResult } from "./generation.js";
import { ChatStream } from "./chat_stream.js";
import { chatMessages, checkModelName, chatOutputOptions, promptApiError, textRequest, toolChoice, type ChatBody } from "./requests.js";
import { chatCompletion, chatLogprobs, responseMeta, usageOf } from "./responses.js";

/** `keep` receives the complete response once generation has finished (for the response cache). */
export async function handleChat(
  deps: ServerDeps,
  body: ChatBody,
  reply: FastifyReply,
  keep?: (response: Record<string, unknown>) => void,
): Promise<unknown> {
  checkModelName(body, deps.served);
  const messages = chatMessages(body);
  // tool_choice "none": the model is not shown the tools, so it does not call them.
  const tools = toolChoice(body) !== "none" ? body.tools ?? undefined : undefined;
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
  const thinkingOpened = promptOpensThinking(prompt);
  const req = { ...textRequest(body, promptTokens, deps.served), ...chatOutputOptions(body), constraint: await deps.grammars.forChat(body, thinkingOpened) };
  const meta = responseMeta("chatcmpl", deps.served.name);

  if (!body.stream) {
    const results = await runRequest(deps, req, reply);
    if (!results) return reply;
    noteUsage(reply, usageOf(promptTokens.length, results));
    const response = whole(results);
    keep?.(response);
    return response;
  }

  function whole(results: TextResult[]) {
    return chatCompletion(
      meta,
      results.map((r) => ({
        parsed: parseAssistantOutput(r.text, { thinkingOpened, tools }),
        ended: r.finishReason,
        logprobs: r.logprobs ? chatLogprobs(deps.tokenizer, r.logprobs) : null,
      })),
      usageOf(promptTokens.length, results),
    );
  }

  const streams = Array.from({ length: req.n ?? 1 }, (_, i) => new ChatStream(meta, { thinkingOpened, tools }, i, deps.tokenizer));
  const { sse, result } = await runStreamed(deps, req, reply, {
    start: (sse) => streams.forEach((s) => s.start().forEach((c) => sse.send(c))),
    text: (sse, i, delta, lps) => streams[i].push(delta, lps).forEach((c) => sse.send(c)),
  });
  if (!result) return reply;
  noteUsage(reply, usageOf(promptTokens.length, result));
  const use = body.stream_options?.include_usage ? usageOf(promptTokens.length, result) : undefined;
  result.forEach((r, i) => streams[i].finish(r.finishReason, i === result.length - 1 ? use : undefined, r.logprobs).forEach((c) => sse.send(c)));
  sse.end();
  keep?.(whole(result));
  return reply;
}
