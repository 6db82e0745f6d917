/**
 * The HTTP layer (Fastify): routes, request validation, API keys, and OpenAI-style errors for
 * everything that goes wrong (bad JSON, schema violations, too large a body, unknown routes),
 * so that no input can stop the server.
 *
 *   GET  /health               liveness + scheduler counters (active, queued, ...)
 *   GET  /ready                200 while accepting requests, 503 once draining (readiness probe)
 *   GET  /metrics              Prometheus text, vLLM's metric names (metrics.ts)
 *   POST /tokenize, /detokenize  vLLM's shapes
 *   GET  /v1/models[/:id]      the one served model
 *   POST /v1/chat/completions  chat, streamed (SSE) or not
 *   POST /v1/completions       raw prompt, streamed (SSE) or not
 * Optional: CORS for `allowedOrigins`, one JSON log line per request (`requestLog`), the response cache.
 */
import { timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from "fastify";
import type { ChatTemplate } from "../tokenizer/chat_template.js";
import type { QwenTokenizer } from "../tokenizer/tokenizer.js";
import { ApiError } from "./errors.js";
import { handleChat } from "./chat.js";
import { handleCompletion } from "./completions.js";
import type { ChatBody, CompletionBody, ServedModel } from "./requests.js";
import type { PromptWorkers } from "./prompt_workers.js";
import { chatCompletionSchema, completionSchema } from "./schemas.js";
import { responseMeta, type Usage } from "./responses.js";
import { replayAsStream } from "./replay.js";
import type { Scheduler, SchedulableState } from "./scheduler.js";
import type { Grammars } from "./grammar/grammars.js";
import type { GenerationObserver } from "./generation.js";
import type { ServerMetrics } from "./metrics.js";
import type { ResponseCache } from "./response_cache.js";
import { detokenizeSchema, tokenizeSchema, handleDetokenize, handleTokenize, type DetokenizeBody, type TokenizeBody } from "./tokenize.js";

export interface ServerDeps {
  scheduler: Scheduler<SchedulableState>;
  tokenizer: QwenTokenizer;
  template: ChatTemplate;
  /** Renders and tokenizes prompts off the event loop (see prompt_workers.ts). */
  prompts: PromptWorkers;
  served: ServedModel;
  /** Constrained decoding (response_format, forced tool calls). */
  grammars: Grammars;
  observer?: GenerationObserver;
  metrics?: ServerMetrics;
  responseCache?: ResponseCache;
}

export interface AppOptions {
  /** When set, every route but `GET /health` and `GET /ready` requires `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Largest request body in bytes (413 beyond). */
  bodyLimit?: number;
  /** Origins allowed by CORS ("*" for any); none: no CORS headers. */
  allowedOrigins?: readonly string[];
  /** Receives one JSON line per finished request (off when absent, e.g. --quiet). */
  requestLog?: (line: string) => void;
  /** False while draining: /ready answers 503. */
  isReady?: () => boolean;
  /** Connection limits, in milliseconds (0: none); see DEFAULT_TIMEOUTS. */
  timeouts?: Partial<ServerTimeouts>;
}

export const DEFAULT_BODY_LIMIT = 4 * 1024 * 1024;

/**
 * How long a client may take, in milliseconds (0: no limit). `request` bounds receiving a whole request
 * (headers and body: a stalled or trickled body is cut off with 408), `headers` its headers alone,
 * `keepAlive` an idle kept-alive connection between requests, `idle` any silence on a connection. `idle`
 * is off by default: a long prefill writes nothing for as long as it takes, and must not be cut.
 */
export interface ServerTimeouts {
  request: number;
  headers: number;
  keepAlive: number;
  idle: number;
}
export const DEFAULT_TIMEOUTS: ServerTimeouts = { request: 30_000, headers: 10_000, keepAlive: 5_000, idle: 0 };

/** Seconds a refused client (429 busy, 503 shutting down) is asked to wait before retrying. */
const RETRY_AFTER_S = 1;

export function buildApp(deps: ServerDeps, opts: AppOptions = {}): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const t = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  // Node refuses a headers timeout above the request timeout; the request timeout covers the headers too.
  const headersTimeout = t.request > 0 ? Math.min(t.headers || t.request, t.request) : t.headers;
  const app = Fastify({
    bodyLimit,
    logger: false,
    requestTimeout: t.request,
    connectionTimeout: t.idle,
    keepAliveTimeout: t.keepAlive,
    // Node checks the request and headers timeouts every `connectionsCheckingInterval` (default 30 s).
    http: { headersTimeout, connectionsCheckingInterval: checkingInterval(t) },
    // A wrongly typed field is an error, not something to coerce ("0.5" is not a temperature).
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: true, allowUnionTypes: true } },
  });
  let closing = false;
  app.addHook("onClose", async () => {
    closing = true;
  });

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const e = toApiError(err, bodyLimit);
    if (e.status === 429 || e.status === 503) void reply.header("retry-after", String(RETRY_AFTER_S));
    void reply.code(e.status).send(e.toBody());
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new ApiError(404, `No route for ${req.method} ${req.url.split("?")[0]}`, "not_found_error", null, "not_found");
    void reply.code(404).send(e.toBody());
  });

  if (opts.allowedOrigins && opts.allowedOrigins.length > 0) addCors(app, opts.allowedOrigins);
  if (opts.requestLog) addRequestLog(app, opts.requestLog);

  if (opts.apiKey !== undefined) {
    const expected = Buffer.from(`Bearer ${opts.apiKey}`);
    // Deny by default, decided on the route the request was matched to (never on the URL's spelling:
    // percent-encoding, dot segments, double slashes and absolute-form targets all route somewhere, and
    // that route is what is checked). Only the liveness and readiness probes are open; unknown routes need
    // the key too.
    app.addHook("onRequest", async (req) => {
      const probe = req.routeOptions.url === "/health" || req.routeOptions.url === "/ready";
      if (probe && (req.method === "GET" || req.method === "HEAD")) return;
      const got = Buffer.from(req.headers.authorization ?? "");
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
        throw new ApiError(
          401,
          req.headers.authorization ? "Incorrect API key provided" : "Missing API key: send Authorization: Bearer <key>",
          "authentication_error",
          null,
          "invalid_api_key",
        );
      }
    });
  }

  app.get("/health", async () => ({ status: closing ? "draining" : "ok", ...deps.scheduler.stats }));
  app.get("/ready", async (_req, reply) => {
    const ready = !closing && (opts.isReady?.() ?? true);
    return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "draining" });
  });
  if (deps.metrics) {
    const metrics = deps.metrics;
    app.get("/metrics", async (_req, reply) => reply.type(metrics.contentType).send(await metrics.text()));
  }
  app.post<{ Body: TokenizeBody }>("/tokenize", { schema: { body: tokenizeSchema } }, (req) => handleTokenize(deps, req.body));
  app.post<{ Body: DetokenizeBody }>("/detokenize", { schema: { body: detokenizeSchema } }, async (req) => handleDetokenize(deps, req.body));

  const created = Math.floor(Date.now() / 1000);
  // Every served name is listed, as vLLM lists them; `root` is the checkpoint.
  const models = [deps.served.name, ...(deps.served.aliases ?? [])].map((id) => ({
    id,
    object: "model",
    created,
    owned_by: "qwen3-next-ts",
    root: deps.served.modelPath ?? deps.served.name,
    max_model_len: deps.served.contextLength,
  }));
  app.get("/v1/models", async () => ({ object: "list", data: models }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (req) => {
    const found = models.find((m) => m.id === req.params.id);
    if (found) return found;
    throw new ApiError(404, `The model \`${req.params.id}\` does not exist; this server serves \`${deps.served.name}\``, "not_found_error", "model", "model_not_found");
  });

  app.post<{ Body: ChatBody }>("/v1/chat/completions", { schema: { body: chatCompletionSchema } }, (req, reply) =>
    cached(deps, "chat", req.body, reply, (keep) => handleChat(deps, req.body, reply, keep)),
  );
  app.post<{ Body: CompletionBody }>("/v1/completions", { schema: { body: completionSchema } }, (req, reply) =>
    cached(deps, "completions", req.body, reply, (keep) => handleCompletion(deps, req.body, reply, keep)),
  );
  return app;
}

/** Answers a deterministic request from the response cache, or runs it and keeps its response. */
async function cached(
  deps: ServerDeps,
  route: string,
  body: ChatBody | CompletionBody,
  reply: FastifyReply,
  run: (keep?: (response: Record<string, unknown>) => void) => Promise<unknown>,
): Promise<unknown> {
  noteForLog(reply, { model: body.model, stream: body.stream ?? false, n: body.n ?? 1 });
  const cache = deps.responseCache;
  const key = cache?.key(route, body, deps.served.defaults);
  if (!cache || key === undefined) return run();
  const hit = cache.get(key);
  deps.metrics?.responseCache(hit !== undefined);
  noteForLog(reply, { response_cache: hit ? "hit" : "miss" });
  if (hit) {
    const fresh = responseMeta(route === "chat" ? "chatcmpl" : "cmpl", deps.served.name);
    const response = { ...hit, id: fresh.id, created: fresh.created };
    return body.stream ? replayAsStream(reply, response, body.stream_options?.include_usage ?? false) : response;
  }
  // Handlers hand over the complete response of a finished generation, streamed or not.
  return run((response) => cache.set(key, response));
}

/** CORS: the allowed origins get Access-Control-* headers; preflight OPTIONS requests get 204. */
function addCors(app: FastifyInstance, origins: readonly string[]): void {
  const any = origins.includes("*");
  app.addHook("onRequest", async (req, reply) => {
    const origin = req.headers.origin;
    if (!origin || !(any || origins.includes(origin))) return;
    // On the raw response, so that hijacked (SSE) replies carry them too.
    reply.raw.setHeader("access-control-allow-origin", any ? "*" : origin);
    if (!any) reply.raw.setHeader("vary", "Origin");
    if (req.method === "OPTIONS") {
      reply.raw.setHeader("access-control-allow-methods", "GET, POST, OPTIONS");
      reply.raw.setHeader("access-control-allow-headers", req.headers["access-control-request-headers"] ?? "authorization, content-type");
      reply.raw.setHeader("access-control-max-age", "600");
      return reply.code(204).send();
    }
  });
}

/** What a handler adds to its request's log line (model, token counts, cache hit). */
const logFields = new WeakMap<object, Record<string, unknown>>();

/** Adds `fields` to the log line of the request answered by `reply`. */
export function noteForLog(reply: FastifyReply, fields: Record<string, unknown>): void {
  logFields.set(reply.raw, { ...logFields.get(reply.raw), ...fields });
}

/** Adds a response's token counts to its request's log line. */
export function noteUsage(reply: FastifyReply, u: Usage): void {
  noteForLog(reply, { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, cached_tokens: u.prompt_tokens_details?.cached_tokens ?? 0 });
}

/** One JSON line per request once its response is done (or the client has gone). */
function addRequestLog(app: FastifyInstance, log: (line: string) => void): void {
  app.addHook("onRequest", async (req, reply) => {
    const start = performance.now();
    reply.raw.once("close", () => {
      log(
        JSON.stringify({
          time: new Date().toISOString(),
          method: req.method,
          path: req.url.split("?")[0],
          status: reply.raw.statusCode,
          ms: Math.round((performance.now() - start) * 10) / 10,
          completed: reply.raw.writableFinished,
          remote: req.ip,
          ...logFields.get(reply.raw),
        }),
      );
    });
  });
}

/** Any error thrown while handling a request, as the client should see it. */
function toApiError(err: FastifyError, bodyLimit: number): ApiError {
  if (err instanceof ApiError) return err;
  if (err.validation) {
    const first = err.validation[0];
    const missing = first.keyword === "required" ? String((first.params as { missingProperty?: string }).missingProperty) : "";
    const param = jsonPathToParam(first.instancePath, missing) || null;
    // anyOf/nullable branches each report; keep the distinct messages of the failing field.
    const messages = [
      ...new Set(
        err.validation.filter((v) => v.instancePath === first.instancePath && v.keyword !== "anyOf").map((v) => v.message),
      ),
    ];
    const msg =
      first.keyword === "required"
        ? `Missing required parameter: '${param}'`
        : param === null
          ? "The request body must be a JSON object (sent with content-type: application/json)"
          : `Invalid value for '${param}': ${messages.join("; ") || first.message}`;
    return new ApiError(400, msg, "invalid_request_error", param, first.keyword === "required" ? "missing_required_parameter" : "invalid_value");
  }
  const status = err.statusCode ?? 500;
  if (status === 413) {
    return new ApiError(413, `Request body is larger than the limit of ${bodyLimit} bytes`, "invalid_request_error", null, "request_too_large");
  }
  if (status >= 400 && status < 500) {
    // Malformed JSON, wrong content type, empty body: Fastify's message says which.
    return new ApiError(status, err.message, "invalid_request_error", null, err.code ?? null);
  }
  return new ApiError(500, `Internal server error: ${err.message}`, "server_error");
}

/** Often enough that a request or headers timeout is enforced within about a quarter of itself (at least 250 ms). */
function checkingInterval(t: ServerTimeouts): number {
  const shortest = Math.min(...[t.request, t.headers].filter((x) => x > 0));
  return Number.isFinite(shortest) ? Math.max(250, Math.min(30_000, Math.floor(shortest / 4))) : 30_000;
}

/** "/messages/0/content" + "role" -> "messages[0].content.role" (OpenAI's `param` spelling). */
function jsonPathToParam(instancePath: string, child: string): string {
  const parts = instancePath.split("/").filter(Boolean);
  if (child) parts.push(child);
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "");
}
