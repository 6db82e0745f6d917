/**
 * Runs one request's generation for a route handler and ties it to its HTTP connection:
 * a client that disconnects cancels its sequence (its slot and state are freed at the next step),
 * and a sequence cancelled by shutdown tells a still-connected client so (503, or an SSE error event).
 */
import type { FastifyReply } from "fastify";
import { ApiError } from "./errors.js";
import { CancelledError, startGenerations, type GenerationDeps, type TextRequest, type TextResult } from "./generation.js";
import type { TokenLogprob } from "./scheduler.js";
import { SseStream } from "./sse.js";

const SHUTTING_DOWN = () =>
  new ApiError(503, "The server is shutting down; the request was cancelled", "server_error", null, "shutting_down");

/** Aborts when the client closes the connection before the response is complete. */
function disconnectSignal(reply: FastifyReply): { signal: AbortSignal; release: () => void } {
  const ac = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) ac.abort();
  };
  reply.raw.on("close", onClose);
  return { signal: ac.signal, release: () => reply.raw.off("close", onClose) };
}

/** Non-streamed: the `req.n` results, or undefined when the client has gone (the reply is then abandoned). */
export async function runRequest(deps: GenerationDeps, req: TextRequest, reply: FastifyReply): Promise<TextResult[] | undefined> {
  const { signal, release } = disconnectSignal(reply);
  try {
    return await startGenerations(deps, req, () => {}, signal);
  } catch (err) {
    if (!(err instanceof CancelledError)) throw err;
    if (!signal.aborted) throw SHUTTING_DOWN();
    reply.hijack(); // nobody to answer
    return undefined;
  } finally {
    release();
  }
}

export interface StreamHandlers {
  /** Sends what goes before the first token (e.g. the chat role chunk). */
  start(sse: SseStream): void;
  /** Receives each text delta of completion `index`, with the logprobs of the tokens behind it. */
  text(sse: SseStream, index: number, delta: string, logprobs: TokenLogprob[]): void;
}

/**
 * Streamed: refusals (429, 503) are thrown before anything is sent, so they reach the client as
 * ordinary HTTP errors; after that the reply is an SSE stream. Returns the result, or undefined when
 * the stream has already been closed (client gone, shutdown or a model error, sent as an error event).
 */
export async function runStreamed(
  deps: GenerationDeps,
  req: TextRequest,
  reply: FastifyReply,
  on: StreamHandlers,
): Promise<{ sse: SseStream; result: TextResult[] | undefined }> {
  const { signal, release } = disconnectSignal(reply);
  let sse: SseStream | undefined;
  let done: Promise<TextResult[]>;
  try {
    // Callbacks never run inside startGenerations, so `sse` exists before the first delta.
    done = startGenerations(deps, req, (i, delta, lps) => on.text(sse!, i, delta, lps), signal);
  } catch (err) {
    release();
    throw err;
  }
  reply.hijack();
  sse = new SseStream(reply.raw);
  on.start(sse);
  try {
    return { sse, result: await done };
  } catch (err) {
    if (!(err instanceof CancelledError) || !signal.aborted) {
      const e = err instanceof ApiError ? err : err instanceof CancelledError ? SHUTTING_DOWN() : new ApiError(500, String(err), "server_error");
      sse.send(e.toBody());
      sse.end();
    }
    return { sse, result: undefined };
  } finally {
    release();
  }
}
