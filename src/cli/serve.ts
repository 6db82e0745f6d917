/**
 * `qwen3-next serve`: the OpenAI-compatible HTTP server (src/server/). Prints the listening URL;
 * SIGTERM or Ctrl-C drains (stop accepting, let in-flight requests finish within --grace seconds,
 * cancel the rest) and exits 0. The sampling flags and --max-tokens set the defaults of requests that
 * leave them out.
 */
import { readFileSync } from "node:fs";
import net from "node:net";
import { Command, InvalidArgumentError } from "commander";
import { DEFAULT_TIMEOUTS } from "../server/app.js";
import { PROMPT_DEFAULTS } from "../server/prompt_workers.js";
import { DEFAULTS, exposureWarning, startServer } from "../server/start.js";
import { addSessionOptions, maxTokens, openSession, speculationFromFlags, type SessionFlags } from "./generation_session.js";
import { positiveInt, UsageError } from "./options.js";
import { thinkingSwitch } from "../tokenizer/thinking_mode.js";

interface ServeFlags extends SessionFlags {
  host: string;
  port: number;
  maxConcurrency: number;
  maxQueue: number;
  apiKey?: string;
  apiKeyFile?: string;
  servedModelName?: string[];
  prefixCache: number;
  responseCache: number;
  allowedOrigins?: string[];
  quiet?: boolean;
  drainDelay: number;
  prefillChunk: number;
  grace: number;
  requestTimeout: number;
  headersTimeout: number;
  keepAliveTimeout: number;
  idleTimeout: number;
  promptTimeout: number;
  promptWorkers?: number;
}

export function register(program: Command): void {
  const cmd = program
    .command("serve")
    .description("serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, /tokenize, /detokenize, /metrics, /health, /ready)")
    .option("--host <host>", "address to listen on", DEFAULTS.host)
    .option("--port <port>", "port to listen on (0: any free port)", positiveInt("--port", 0), DEFAULTS.port)
    .option("--max-concurrency <n>", "requests decoded together at most", positiveInt("--max-concurrency"), DEFAULTS.maxConcurrency)
    .option("--max-queue <n>", "requests waiting beyond those at most (more get 429)", positiveInt("--max-queue", 0), DEFAULTS.maxQueue)
    .option("--api-key <key>", "require 'Authorization: Bearer <key>' on every route but /health and /ready (visible in ps: prefer --api-key-file or $QWEN3_NEXT_API_KEY / $VLLM_API_KEY)")
    .option("--api-key-file <file>", "read the API key from the first line of this file")
    .option("--served-model-name <name...>", "the model name(s) clients send, the first one reported (default: the checkpoint folder's name; the --model path is accepted too)")
    .option("--response-cache <n>", "complete responses of deterministic requests (temperature 0 or a seed) kept (0: off)", positiveInt("--response-cache", 0), 0)
    .option("--allowed-origins <origin...>", "origins allowed by CORS ('*': any; default: no CORS headers)")
    .option("--quiet", "no request log (one JSON line per request on stdout)")
    .option("--drain-delay <seconds>", "on SIGTERM, how long /ready answers 503 before the listener closes", positiveInt("--drain-delay", 0), 0)
    .option("--prefix-cache <n>", "prompt state snapshots kept for prefix reuse (0: off)", positiveInt("--prefix-cache", 0), DEFAULTS.prefixCacheSize)
    .option("--prefill-chunk <n>", "prompt tokens prefilled between two decode steps of the other requests", positiveInt("--prefill-chunk"), DEFAULTS.prefillChunk)
    .option("--grace <seconds>", "on SIGTERM, how long in-flight requests may finish before they are cancelled", positiveInt("--grace", 0), 10)
    .option("--request-timeout <seconds>", "time a client has to send a whole request, body included (0: none)", seconds("--request-timeout"), DEFAULT_TIMEOUTS.request / 1000)
    .option("--headers-timeout <seconds>", "time a client has to send a request's headers (0: none)", seconds("--headers-timeout"), DEFAULT_TIMEOUTS.headers / 1000)
    .option("--keep-alive-timeout <seconds>", "how long an idle kept-alive connection stays open (0: no limit)", seconds("--keep-alive-timeout"), DEFAULT_TIMEOUTS.keepAlive / 1000)
    .option("--prompt-timeout <seconds>", "longest rendering + tokenizing one prompt may take (in a worker thread) before the request fails (0: none)", seconds("--prompt-timeout"), PROMPT_DEFAULTS.timeoutMs / 1000)
    .option("--prompt-workers <n>", "worker threads rendering and tokenizing prompts (default 2)", positiveInt("--prompt-workers"))
    .option("--idle-timeout <seconds>", "close a connection silent this long (0: never; a long prefill is silent)", seconds("--idle-timeout"), DEFAULT_TIMEOUTS.idle / 1000);
  addSessionOptions(cmd).action(run);
}

async function run(o: ServeFlags): Promise<void> {
  if (o.port > 65535) throw new UsageError(`--port ${o.port} is out of range; expected 0..65535`);
  const apiKey = resolveApiKey(o);
  const warning = exposureWarning(o.host, apiKey);
  if (warning) process.stderr.write(`qwen3-next: ${warning}\n`);
  await checkCanListen(o.host, o.port); // before minutes of loading, not after
  const session = await openSession(o);
  if (thinkingSwitch(session.template) !== "switchable") {
    process.stderr.write(`note: this chat template has no thinking switch: requests' enable_thinking changes nothing\n`);
  }
  const speculation = speculationFromFlags(o, session);
  const server = await startServer(session, {
    host: o.host,
    port: o.port,
    maxConcurrency: o.maxConcurrency,
    maxQueue: o.maxQueue,
    apiKey,
    servedModelName: o.servedModelName,
    modelPath: o.model,
    responseCacheSize: o.responseCache,
    allowedOrigins: o.allowedOrigins,
    requestLog: o.quiet ? undefined : (line) => process.stdout.write(`${line}\n`),
    drainDelayMs: o.drainDelay * 1000,
    prefixCacheSize: o.prefixCache,
    prefillChunk: o.prefillChunk,
    // For requests without max_tokens: --max-tokens, else the same default as `generate`.
    defaultMaxTokens: maxTokens(o, session),
    promptTimeoutMs: o.promptTimeout * 1000,
    promptWorkers: o.promptWorkers,
    timeouts: {
      request: o.requestTimeout * 1000,
      headers: o.headersTimeout * 1000,
      keepAlive: o.keepAliveTimeout * 1000,
      idle: o.idleTimeout * 1000,
    },
    draftTokens: speculation?.draftTokens ?? 0,
    draftVocabulary: speculation?.draftVocabulary,
  });
  process.stdout.write(`Serving ${server.modelName} at ${server.url}/v1 (OpenAI-compatible; Ctrl-C or SIGTERM to stop)\n`);
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  process.stderr.write(`qwen3-next: ${signal}: draining (up to ${o.grace}s for in-flight requests)\n`);
  await server.close(o.grace * 1000);
  // The WASM backend's worker threads must end too, or the process cannot exit.
  await (session.model.kernels as { close?: () => unknown }).close?.();
}

/** The API key: --api-key, else --api-key-file, else $QWEN3_NEXT_API_KEY, else $VLLM_API_KEY (vLLM's). */
export function resolveApiKey(o: { apiKey?: string; apiKeyFile?: string }, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (o.apiKey !== undefined && o.apiKeyFile !== undefined) throw new Error("give --api-key or --api-key-file, not both");
  if (o.apiKey !== undefined) {
    if (o.apiKey === "") throw new Error("--api-key is empty; expected a key");
    return o.apiKey;
  }
  if (o.apiKeyFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(o.apiKeyFile, "utf8");
    } catch (err) {
      throw new Error(`--api-key-file ${o.apiKeyFile}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const key = text.split(/\r?\n/)[0].trim();
    if (key === "") throw new Error(`--api-key-file ${o.apiKeyFile}: the first line is empty; expected the key`);
    return key;
  }
  return env.QWEN3_NEXT_API_KEY || env.VLLM_API_KEY || undefined;
}

/** A commander parser for a duration in seconds (>= 0, fractions allowed). */
function seconds(flag: string): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < 0 || n > 86_400) {
      throw new InvalidArgumentError(`${flag} expects seconds in [0, 86400], got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

/** Throws a one-line error when `host:port` cannot be listened on (in use, not allowed, not an address here). */
function checkCanListen(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", (e: NodeJS.ErrnoException) => {
      const why =
        e.code === "EADDRINUSE"
          ? "is in use by another process; pick another with --port"
          : e.code === "EACCES"
            ? "needs privileges (ports below 1024); pick another with --port"
            : e.code === "EADDRNOTAVAIL" || e.code === "ENOTFOUND"
              ? `cannot be listened on: --host ${host} is not an address of this machine`
              : `cannot be listened on (${e.code ?? e.message})`;
      reject(new Error(`port ${port} on ${host} ${why}`));
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
