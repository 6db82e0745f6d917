/**
 * `qwen3-next serve`: the OpenAI-compatible HTTP server (src/server/). Prints the listening URL;
 * SIGTERM or Ctrl-C drains (stop accepting, let in-flight requests finish within --grace seconds,
 * cancel the rest) and exits 0. The sampling flags and --max-tokens set the defaults of requests that
 * leave them out.
 */
import { Command } from "commander";
import { DEFAULTS, startServer } from "../server/start.js";
import { addSessionOptions, maxTokens, openSession, type SessionFlags } from "./generation_session.js";
import { positiveInt } from "./options.js";

interface ServeFlags extends SessionFlags {
  host: string;
  port: number;
  maxConcurrency: number;
  maxQueue: number;
  apiKey?: string;
  servedModelName?: string[];
  prefixCache: number;
  responseCache: number;
  allowedOrigins?: string[];
  quiet?: boolean;
  drainDelay: number;
  prefillChunk: number;
  grace: number;
}

export function register(program: Command): void {
  const cmd = program
    .command("serve")
    .description("serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, /tokenize, /detokenize, /metrics, /health, /ready)")
    .option("--host <host>", "address to listen on", DEFAULTS.host)
    .option("--port <port>", "port to listen on (0: any free port)", positiveInt("--port", 0), DEFAULTS.port)
    .option("--max-concurrency <n>", "requests decoded together at most", positiveInt("--max-concurrency"), DEFAULTS.maxConcurrency)
    .option("--max-queue <n>", "requests waiting beyond those at most (more get 429)", positiveInt("--max-queue", 0), DEFAULTS.maxQueue)
    .option("--api-key <key>", "require 'Authorization: Bearer <key>' on /v1/* (default: $QWEN3_NEXT_API_KEY when set)")
    .option("--served-model-name <name...>", "the model name(s) clients send, the first one reported (default: the checkpoint folder's name; the --model path is accepted too)")
    .option("--response-cache <n>", "complete responses of deterministic requests (temperature 0 or a seed) kept (0: off)", positiveInt("--response-cache", 0), 0)
    .option("--allowed-origins <origin...>", "origins allowed by CORS ('*': any; default: no CORS headers)")
    .option("--quiet", "no request log (one JSON line per request on stdout)")
    .option("--drain-delay <seconds>", "on SIGTERM, how long /ready answers 503 before the listener closes", positiveInt("--drain-delay", 0), 0)
    .option("--prefix-cache <n>", "prompt state snapshots kept for prefix reuse (0: off)", positiveInt("--prefix-cache", 0), DEFAULTS.prefixCacheSize)
    .option("--prefill-chunk <n>", "prompt tokens prefilled between two decode steps of the other requests", positiveInt("--prefill-chunk"), DEFAULTS.prefillChunk)
    .option("--grace <seconds>", "on SIGTERM, how long in-flight requests may finish before they are cancelled", positiveInt("--grace", 0), 10);
  addSessionOptions(cmd).action(run);
}

async function run(o: ServeFlags): Promise<void> {
  if (o.port > 65535) throw new Error(`--port ${o.port} is out of range; expected 0..65535`);
  const session = await openSession(o);
  const server = await startServer(session, {
    host: o.host,
    port: o.port,
    maxConcurrency: o.maxConcurrency,
    maxQueue: o.maxQueue,
    apiKey: o.apiKey ?? (process.env.QWEN3_NEXT_API_KEY || undefined),
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
