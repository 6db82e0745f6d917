/**
 * POST /v1/chat/completions
 *
 *   messages (+ tools, enable_thinking) --chat template--> prompt text --tokenizer--> prompt ids
 *   --scheduler--> text --output parser--> reasoning_content / content / tool_calls
 *
 * Streamed: the reasoning and content deltas are sent as they are parsed (tool-call markup is held
 * back by the parser); the tool calls are sent whole at the end, then the finish chunk, usage, `[DONE]`.
 */
import type { FastifyReply } from "fastify";
import { parseAssistantOutput, StreamingOutputParser, type OutputDelta } from "../generate/output_parser.js";
import { promptOpensThinking } from "../tokenizer/chat_template.js";
import type { ServerDeps } from "./app.js";
import { badRequest } from "./errors.js";
import { runRequest, runStreamed } from "./run_request.js";
import type { SseStream } from "./sse.js";
import { chatMessages, checkModelName, textRequest, toolChoice, type ChatBody } from "./requests.js";
import {
  chatChunk,
  chatCompletion,
  chatFinishReason,
  responseMeta,
  toolCallDeltas,
  usage,
  usageChunk,
} from "./responses.js";

export async function handleChat(deps: ServerDeps, body: ChatBody, reply: FastifyReply): Promise<unknown> {
  checkModelName(body, deps.served);
  const messages = chatMessages(body);
  // tool_choice "none": the model is not shown the tools, so it does not call them.
  const tools = toolChoice(body) === "auto" ? body.tools ?? undefined : undefined;
  let prompt: string;
  try {
    prompt = deps.template.render(messages, {
      tools,
      enableThinking: body.chat_template_kwargs?.enable_thinking ?? undefined,
      addGenerationPrompt: true,
    });
  } catch (err) {
    throw badRequest(`messages cannot be rendered by the chat template: ${(err as Error).message}`, "messages");
  }
  const promptTokens = deps.tokenizer.encode(prompt);
  const req = textRequest(body, promptTokens, deps.served);
  const thinkingOpened = promptOpensThinking(prompt);
  const meta = responseMeta("chatcmpl", deps.served.name);

  if (!body.stream) {
    const result = await runRequest(deps, req, reply);
    if (!result) return reply;
    const parsed = parseAssistantOutput(result.text, { thinkingOpened });
    return chatCompletion(meta, parsed, result.finishReason, usage(promptTokens.length, result.completionTokens));
  }

  const parser = new StreamingOutputParser({ thinkingOpened });
  const sendDeltas = (sse: SseStream, deltas: OutputDelta[]) => {
    for (const d of deltas) {
      sse.send(chatChunk(meta, d.kind === "reasoning" ? { reasoning_content: d.text } : { content: d.text }));
    }
  };
  const { sse, result } = await runStreamed(deps, req, reply, {
    start: (sse) => sse.send(chatChunk(meta, { role: "assistant", content: "" })),
    text: (sse, delta) => sendDeltas(sse, parser.push(delta)),
  });
  if (!result) return reply;
  sendDeltas(sse, parser.flush());
  const parsed = parser.finish();
  if (parsed.toolCalls.length > 0) sse.send(chatChunk(meta, { tool_calls: toolCallDeltas(parsed) }));
  sse.send(chatChunk(meta, {}, chatFinishReason(parsed, result.finishReason)));
  if (body.stream_options?.include_usage) {
    sse.send(usageChunk(meta, "chat.completion.chunk", usage(promptTokens.length, result.completionTokens)));
  }
  sse.end();
  return reply;
}
