/**
 * `qwen3-next serve`: the OpenAI-compatible HTTP server (src/server/). Prints the listening URL;
 * SIGTERM or Ctrl-C drains (stop accepting, let in-flight requests finish within --grace seconds,
 * cancel the rest) and exits 0. The sampling flags and --max-tokens set the defaults of requests that
 * leave them out.
 */
import net from "node:net";
import { Command } from "commander";
import { DEFAULTS, startServer } from "../server/start.js";
import { addSessionOptions, maxTokens, openSession, type SessionFlags } from "./generation_session.js";
import { positiveInt, UsageError } from "./options.js";
import { thinkingSwitch } from "../tokenizer/thinking_mode.js";

interface ServeFlags extends SessionFlags {
  host: string;
  port: number;
  maxConcurrency: number;
  maxQueue: number;
  apiKey?: string;
  servedModelName?: string;
  prefixCache: number;
  prefillChunk: number;
  grace: number;
}

export function register(program: Command): void {
  const cmd = program
    .command("serve")
    .description("serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, /health)")
    .option("--host <host>", "address to listen on", DEFAULTS.host)
    .option("--port <port>", "port to listen on (0: any free port)", positiveInt("--port", 0), DEFAULTS.port)
    .option("--max-concurrency <n>", "requests decoded together at most", positiveInt("--max-concurrency"), DEFAULTS.maxConcurrency)
    .option("--max-queue <n>", "requests waiting beyond those at most (more get 429)", positiveInt("--max-queue", 0), DEFAULTS.maxQueue)
    .option("--api-key <key>", "require 'Authorization: Bearer <key>' on /v1/* (default: $QWEN3_NEXT_API_KEY when set)")
    .option("--served-model-name <name>", "the model name clients send (default: the checkpoint folder's name)")
    .option("--prefix-cache <n>", "prompt state snapshots kept for prefix reuse (0: off)", positiveInt("--prefix-cache", 0), DEFAULTS.prefixCacheSize)
    .option("--prefill-chunk <n>", "prompt tokens prefilled between two decode steps of the other requests", positiveInt("--prefill-chunk"), DEFAULTS.prefillChunk)
    .option("--grace <seconds>", "on SIGTERM, how long in-flight requests may finish before they are cancelled", positiveInt("--grace", 0), 10);
  addSessionOptions(cmd).action(run);
}

async function run(o: ServeFlags): Promise<void> {
  if (o.port > 65535) throw new UsageError(`--port ${o.port} is out of range; expected 0..65535`);
  await checkCanListen(o.host, o.port); // before minutes of loading, not after
  const session = await openSession(o);
  if (thinkingSwitch(session.template) !== "switchable") {
    process.stderr.write(`note: this chat template has no thinking switch: requests' enable_thinking changes nothing\n`);
  }
  const server = await startServer(session, {
    host: o.host,
    port: o.port,
    maxConcurrency: o.maxConcurrency,
    maxQueue: o.maxQueue,
    apiKey: o.apiKey ?? (process.env.QWEN3_NEXT_API_KEY || undefined),
    servedModelName: o.servedModelName,
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
