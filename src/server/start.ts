/**
 * Server lifecycle: build the scheduler and the HTTP app over a loaded model, listen; and the drain on
 * shutdown: stop accepting, let in-flight requests finish within a grace period, cancel what is left,
 * close every connection. (Loading the checkpoint, tokenizer and template is `openSession`'s job.)
 */
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { contextLimit } from "../config.js";
import type { SamplingParams } from "../generate/sampler.js";
import type { Qwen3NextForCausalLM } from "../model/qwen3_next_for_causal_lm.js";
import type { ChatTemplate } from "../tokenizer/chat_template.js";
import type { QwenTokenizer } from "../tokenizer/tokenizer.js";
import { buildApp, DEFAULT_BODY_LIMIT, type ServerTimeouts } from "./app.js";
import { Grammars } from "./grammar/grammars.js";
import { ServerMetrics } from "./metrics.js";
import { PromptWorkers } from "./prompt_workers.js";
import { ResponseCache } from "./response_cache.js";
import { Scheduler, type SchedulableState } from "./scheduler.js";

export const DEMO_MODEL_NAME = "qwen3-next-demo";

/** What is served: a loaded model with its tokenizer, template and sampling defaults. */
export interface ServedSession {
  dir: string;
  isDemo: boolean;
  model: Qwen3NextForCausalLM;
  tokenizer: QwenTokenizer;
  template: ChatTemplate;
  /** Sampling for requests that leave a field out (checkpoint's generation_config.json, or flags). */
  sampling: SamplingParams;
}

export interface ServeOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  maxConcurrency?: number;
  maxQueue?: number;
  apiKey?: string;
  /**
   * The names clients may put in `model`, the first one reported (default: the folder's name, or
   * "qwen3-next-demo"). The checkpoint path as given on the command line is accepted too (`modelPath`).
   */
  servedModelName?: string | readonly string[];
  /** The checkpoint path as the user gave it (accepted as a model name, as vLLM accepts it). */
  modelPath?: string;
  /** Complete responses of deterministic requests kept (0: off). */
  responseCacheSize?: number;
  /** Origins allowed by CORS ("*": any). */
  allowedOrigins?: readonly string[];
  /** Receives one JSON line per request (absent: no request log). */
  requestLog?: (line: string) => void;
  /** On close, how long /ready answers 503 before the listener stops (load balancers take the hint). */
  drainDelayMs?: number;
  /** Prompt snapshots kept for prefix reuse (0: off). */
  prefixCacheSize?: number;
  /** Prompt tokens prefilled between two decode steps of the other requests. */
  prefillChunk?: number;
  /** max_tokens of requests that leave it out (default: the rest of the context). */
  defaultMaxTokens?: number;
  bodyLimit?: number;
  /** Connection limits in milliseconds (see DEFAULT_TIMEOUTS in app.ts). */
  timeouts?: Partial<ServerTimeouts>;
  /** Worker threads rendering and tokenizing prompts (default 2). */
  promptWorkers?: number;
  /** Longest a prompt's rendering + tokenizing may take, in milliseconds (default 30 s). */
  promptTimeoutMs?: number;
  /** Speculative decoding with the MTP head: draft tokens per step (requests may ask for fewer); 0: off. */
  draftTokens?: number;
  /** Drafts among the first n token ids only (default: all; see SpeculativeOptions.draftVocabulary). */
  draftVocabulary?: number;
}
export interface RunningServer {
  url: string;
  app: FastifyInstance;
  scheduler: Scheduler<SchedulableState>;
  metrics: ServerMetrics;
  modelName: string;
  /** Stops accepting; waits up to `graceMs` for in-flight requests, cancels the rest; closes. */
  close(graceMs?: number): Promise<void>;
}

export const DEFAULTS = { host: "127.0.0.1", port: 8000, maxConcurrency: 8, maxQueue: 64, prefixCacheSize: 4, prefillChunk: 512 } as const;

/** Whether `host` only accepts connections from this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === "::ffff:127.0.0.1";
}

/** The warning to print when the server would be reachable from other machines without an API key. */
export function exposureWarning(host: string, apiKey: string | undefined): string | undefined {
  if (apiKey !== undefined || isLoopbackHost(host)) return undefined;
  return `warning: listening on ${host} without an API key: anyone who can reach this address can use the model; set --api-key-file, $QWEN3_NEXT_API_KEY or $VLLM_API_KEY`;
}

export async function startServer(session: ServedSession, opts: ServeOptions = {}): Promise<RunningServer> {
  const { model, tokenizer, template } = session;
  let metrics: ServerMetrics | undefined;
  const scheduler = new Scheduler<SchedulableState>(model, {
    maxConcurrency: opts.maxConcurrency ?? DEFAULTS.maxConcurrency,
    maxQueue: opts.maxQueue ?? DEFAULTS.maxQueue,
    prefixCacheSize: opts.prefixCacheSize ?? DEFAULTS.prefixCacheSize,
    prefillChunk: opts.prefillChunk ?? DEFAULTS.prefillChunk,
    onSpecDecode: (draft, accepted) => metrics?.specDecode(draft, accepted),
    draftTokens: opts.draftTokens ?? 0,
    draftVocabulary: opts.draftVocabulary,
  });
  const names = typeof opts.servedModelName === "string" ? [opts.servedModelName] : [...(opts.servedModelName ?? [])];
  const modelName = names[0] ?? (session.isDemo ? DEMO_MODEL_NAME : path.basename(path.resolve(session.dir)).replace(/\.gguf$/i, ""));
  const served = {
    name: modelName,
    aliases: [...new Set(names.slice(1))].filter((n) => n !== modelName),
    modelPath: opts.modelPath,
    contextLength: contextLimit(model.config),
    vocabSize: model.config.vocab_size,
    defaults: session.sampling,
    defaultMaxTokens: opts.defaultMaxTokens,
    draftTokens: opts.draftTokens ?? 0,
  };
  metrics = new ServerMetrics(modelName, () => scheduler.stats);
  const grammars = new Grammars(tokenizer, model.config.vocab_size);
  const responseCache = opts.responseCacheSize ? new ResponseCache(opts.responseCacheSize) : undefined;
  let draining = false;
  const prompts = new PromptWorkers(tokenizer, template, {
    contextLength: served.contextLength,
    workers: opts.promptWorkers,
    timeoutMs: opts.promptTimeoutMs,
  });
  const app = buildApp(
    { scheduler, tokenizer, template, prompts, served, grammars, metrics, observer: metrics, responseCache },
    {
      apiKey: opts.apiKey,
      bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
      timeouts: opts.timeouts,
      allowedOrigins: opts.allowedOrigins,
      requestLog: opts.requestLog,
      isReady: () => !draining,
    },
  );
  app.addHook("onClose", () => prompts.close());
  const address = await app.listen({ host: opts.host ?? DEFAULTS.host, port: opts.port ?? DEFAULTS.port });

  let closed: Promise<void> | undefined;
  const close = (graceMs = 10_000) =>
    (closed ??= (async () => {
      draining = true; // /ready: 503
      if (opts.drainDelayMs) await new Promise((r) => setTimeout(r, opts.drainDelayMs));
      const httpClosed = app.close(); // stops listening; keep-alive requests now get 503
      await scheduler.drain(graceMs);
      // Every sequence has ended, so every response has been completed; drop lingering sockets.
      await Promise.race([httpClosed, new Promise((r) => setTimeout(r, 1000))]);
      app.server.closeAllConnections();
      await httpClosed;
    })());
  return { url: address, app, scheduler, metrics: metrics!, modelName, close };
}
