/**
 * POST /v1/completions: a raw prompt (text, or token ids as vLLM accepts) continued by the model (no chat
 * template, no parsing). `echo: true` puts the prompt in front of the completion, as the OpenAI API does.
 */
import type { FastifyReply } from "fastify";
import { noteUsage, type ServerDeps } from "./app.js";
import { badRequest } from "./errors.js";
import { runRequest, runStreamed } from "./run_request.js";
import type { TextResult } from "./generation.js";
import { checkModelName, promptApiError, textRequest, type CompletionBody } from "./requests.js";
import { completionLogprobs, responseMeta, textCompletion, usageChunk, usageOf } from "./responses.js";

/** `keep` receives the complete response once generation has finished (for the response cache). */
export async function handleCompletion(
  deps: ServerDeps,
  body: CompletionBody,
  reply: FastifyReply,
  keep?: (response: Record<string, unknown>) => void,
): Promise<unknown> {
  checkModelName(body, deps.served);
  const { promptTokens, promptText } = await completionPrompt(deps, body.prompt);
  const req = {
    ...textRequest(body, promptTokens, deps.served),
    n: body.n ?? 1,
    topLogprobs: body.logprobs ?? undefined,
    constraint: await deps.grammars.forFormat(body.response_format),
  };
  const meta = responseMeta("cmpl", deps.served.name);
  const echo = body.echo ? promptText : "";
  const logprobs = (lps: Parameters<typeof completionLogprobs>[1] | undefined, offset: number) =>
    lps ? completionLogprobs(deps.tokenizer, lps, offset) : null;

  if (!body.stream) {
    const results = await runRequest(deps, req, reply);
    if (!results) return reply;
    noteUsage(reply, usageOf(promptTokens.length, results));
    const response = whole(results);
    keep?.(response);
    return response;
  }
  function whole(results: TextResult[]) {
    return textCompletion(
      meta,
      results.map((r) => ({ text: echo + r.text, finishReason: r.finishReason, logprobs: logprobs(r.logprobs, echo.length) })),
      usageOf(promptTokens.length, results),
    );
  }

  const sent = new Array<number>(req.n).fill(0); // text length sent per choice, for text_offset
  const lpSent = new Array<number>(req.n).fill(0);
  const { sse, result } = await runStreamed(deps, req, reply, {
    start: (sse) => {
      if (echo) for (let i = 0; i < req.n; i++) sse.send(textCompletion(meta, [{ text: echo, finishReason: null }], undefined, i));
    },
    text: (sse, i, delta, lps) => {
      sse.send(textCompletion(meta, [{ text: delta, finishReason: null, logprobs: logprobs(req.topLogprobs === undefined ? undefined : lps, echo.length + sent[i]) }], undefined, i));
      sent[i] += delta.length;
      lpSent[i] += lps.length;
    },
  });
  if (!result) return reply;
  noteUsage(reply, usageOf(promptTokens.length, result));
  result.forEach((r, i) => {
    const rest = r.logprobs?.slice(lpSent[i]);
    sse.send(textCompletion(meta, [{ text: "", finishReason: r.finishReason, logprobs: logprobs(rest, echo.length + sent[i]) }], undefined, i));
  });
  if (body.stream_options?.include_usage) {
    sse.send(usageChunk(meta, "text_completion", usageOf(promptTokens.length, result)));
  }
  sse.end();
  keep?.(whole(result));
  return reply;
}

/**
 * The prompt's ids and text: text is tokenized in a worker thread (bounded in length and time), ids are
 * checked against the vocabulary.
 */
async function completionPrompt(deps: ServerDeps, prompt: CompletionBody["prompt"]): Promise<{ promptTokens: number[]; promptText: string }> {
  const one = Array.isArray(prompt) && (typeof prompt[0] === "string" || Array.isArray(prompt[0])) ? prompt[0] : prompt;
  if (typeof one === "string") {
    const promptTokens = await deps.prompts.encode(one).catch((err: unknown) => {
      throw promptApiError(err, deps.served.contextLength, "prompt");
    });
    return { promptTokens, promptText: one };
  }
  const ids = one as number[];
  const bad = ids.findIndex((id) => id >= deps.tokenizer.vocabSize);
  if (bad >= 0) throw badRequest(`prompt token ${ids[bad]} at position ${bad} is not in the vocabulary, expected ids below ${deps.tokenizer.vocabSize}`, "prompt");
  return { promptTokens: ids.slice(), promptText: deps.tokenizer.decode(ids) };
}
