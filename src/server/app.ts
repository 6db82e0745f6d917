/**
 * The HTTP layer (Fastify): routes, request validation, API keys, and OpenAI-style errors for
 * everything that goes wrong (bad JSON, schema violations, too large a body, unknown routes),
 * so that no input can stop the server.
 *
 *   GET  /health               liveness + scheduler counters (active, queued, ...)
 *   GET  /v1/models[/:id]      the one served model
 *   POST /v1/chat/completions  chat, streamed (SSE) or not
 *   POST /v1/completions       raw prompt, streamed (SSE) or not
 */
import { timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import type { ChatTemplate } from "../tokenizer/chat_template.js";
import type { QwenTokenizer } from "../tokenizer/tokenizer.js";
import { ApiError } from "./errors.js";
import { handleChat } from "./chat.js";
import { handleCompletion } from "./completions.js";
import type { ChatBody, CompletionBody, ServedModel } from "./requests.js";
import type { PromptWorkers } from "./prompt_workers.js";
import { chatCompletionSchema, completionSchema } from "./schemas.js";
import type { Scheduler, SchedulableState } from "./scheduler.js";

export interface ServerDeps {
  scheduler: Scheduler<SchedulableState>;
  tokenizer: QwenTokenizer;
  template: ChatTemplate;
  /** Renders and tokenizes prompts off the event loop (see prompt_workers.ts). */
  prompts: PromptWorkers;
  served: ServedModel;
}

export interface AppOptions {
  /** When set, every route but `GET /health` requires `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Largest request body in bytes (413 beyond). */
  bodyLimit?: number;
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

  if (opts.apiKey !== undefined) {
    const expected = Buffer.from(`Bearer ${opts.apiKey}`);
    // Deny by default, decided on the route the request was matched to (never on the URL's spelling:
    // percent-encoding, dot segments, double slashes and absolute-form targets all route somewhere, and
    // that route is what is checked). Only the liveness probe is open; unknown routes need the key too.
    app.addHook("onRequest", async (req) => {
      if (req.routeOptions.url === "/health" && (req.method === "GET" || req.method === "HEAD")) return;
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

  const model = {
    id: deps.served.name,
    object: "model",
    created: Math.floor(Date.now() / 1000),
    owned_by: "qwen3-next-ts",
    max_model_len: deps.served.contextLength,
  };
  app.get("/v1/models", async () => ({ object: "list", data: [model] }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (req) => {
    if (req.params.id === model.id) return model;
    throw new ApiError(404, `The model \`${req.params.id}\` does not exist; this server serves \`${model.id}\``, "not_found_error", "model", "model_not_found");
  });

  app.post<{ Body: ChatBody }>("/v1/chat/completions", { schema: { body: chatCompletionSchema } }, (req, reply) =>
    handleChat(deps, req.body, reply),
  );
  app.post<{ Body: CompletionBody }>("/v1/completions", { schema: { body: completionSchema } }, (req, reply) =>
    handleCompletion(deps, req.body, reply),
  );
  return app;
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
