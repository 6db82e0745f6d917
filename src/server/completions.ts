/**
 * POST /v1/completions: a raw prompt string continued by the model (no chat template, no parsing).
 * `echo: true` puts the prompt in front of the completion, as the OpenAI API does.
 */
import type { FastifyReply } from "fastify";
import type { ServerDeps } from "./app.js";
import { runRequest, runStreamed } from "./run_request.js";
import { checkModelName, promptApiError, textRequest, type CompletionBody } from "./requests.js";
import { responseMeta, textCompletion, usage, usageChunk } from "./responses.js";

export async function handleCompletion(deps: ServerDeps, body: CompletionBody, reply: FastifyReply): Promise<unknown> {
  checkModelName(body, deps.served);
  const prompt = typeof body.prompt === "string" ? body.prompt : body.prompt[0];
  // Tokenized in a worker thread, bounded in length and time.
  const promptTokens = await deps.prompts.encode(prompt).catch((err: unknown) => {
    throw promptApiError(err, deps.served.contextLength, "prompt");
  });
  const req = textRequest(body, promptTokens, deps.served);
  const meta = responseMeta("cmpl", deps.served.name);
  const echo = body.echo ? prompt : "";

  if (!body.stream) {
    const result = await runRequest(deps, req, reply);
    if (!result) return reply;
    return textCompletion(meta, echo + result.text, result.finishReason, usage(promptTokens.length, result.completionTokens));
  }
  const { sse, result } = await runStreamed(deps, req, reply, {
    start: (sse) => {
      if (echo) sse.send(textCompletion(meta, echo, null));
    },
    text: (sse, delta) => sse.send(textCompletion(meta, delta, null)),
  });
  if (!result) return reply;
  sse.send(textCompletion(meta, "", result.finishReason));
  if (body.stream_options?.include_usage) {
    sse.send(usageChunk(meta, "text_completion", usage(promptTokens.length, result.completionTokens)));
  }
  sse.end();
  return reply;
}
