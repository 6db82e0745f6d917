/**
 * Chat-template rendering and tokenizing for the server, off the event loop and bounded, so that no prompt
 * stalls the other clients (a 4 MB one-word prompt takes tens of seconds to tokenize: BPE over one long word
 * grows faster than linearly).
 *
 *   request --(messages as template variables, or prompt text)--> worker process: render -> bound -> encode
 *           <--(prompt text, token ids) or PromptError--
 *
 * Each worker holds its own tokenizer and template, built from the same `tokenizer.json` and template source
 * as the main thread's. Every job is bounded three ways:
 *   - length: text of n UTF-8 bytes (after NFC, the tokenizer's normalizer) is at least n / L tokens, L the
 *     longest token's bytes, so text over contextLength x L bytes is refused before it is tokenized; the
 *     same bound caps what a template may render;
 *   - time: a job still running after `timeoutMs` is stopped (its worker is terminated and replaced);
 *   - memory: each worker's heap is capped, so a template that builds something huge (`range(1e8)`) fails.
 * Workers are child processes, not worker threads: V8 running out of a worker thread's capped heap can abort
 * the whole process (seen with `range(1e8)` on Node 20), while a child process that does so takes only itself.
 * A failure is a PromptError naming what was exceeded; it fails that request alone.
 */
import { createRequire } from "node:module";
import os from "node:os";
import { spawn, type ChildProcess } from "node:child_process";
import type { ChatTemplate } from "../tokenizer/chat_template.js";
import type { QwenTokenizer } from "../tokenizer/tokenizer.js";

export interface PromptWorkerOptions {
  /** The model's context in tokens (prompts that cannot fit it are refused before tokenizing). */
  contextLength: number;
  /** Worker processes at most (started as needed; default: 2, or 1 on a single core). */
  workers?: number;
  /** Longest a render + tokenize job may run, in milliseconds (0: no limit). */
  timeoutMs?: number;
  /** Heap limit of each worker, in MB (the Qwen tokenizer itself takes about 150 MB). */
  heapMb?: number;
}

export const PROMPT_DEFAULTS = { timeoutMs: 30_000, heapMb: 1024 } as const;

/** What went wrong: the prompt's fault (too_long, timeout, memory, template, tokenizer) or the server's (worker, closed). */
export type PromptFailure = "too_long" | "timeout" | "memory" | "template" | "tokenizer" | "worker" | "closed";

/** Why a prompt could not be rendered or tokenized; `message` is one line. */
export class PromptError extends Error {
  override name = "PromptError";
  constructor(
    readonly reason: PromptFailure,
    message: string,
    /** For "too_long": the prompt's UTF-8 bytes and the fewest tokens it can have. */
    readonly size?: { bytes: number; minTokens: number },
  ) {
    super(message);
  }
}

type Job =
  | { id: number; kind: "encode"; text: string }
  | { id: number; kind: "chat"; ctx: Record<string, unknown> };
type Reply =
  | { id: number; ids: number[]; prompt?: string }
  | { id: number; error: "too_long"; bytes: number }
  | { id: number; error: "template" | "tokenizer"; message: string };

interface Pending {
  job: Job;
  resolve: (r: { ids: number[]; prompt?: string }) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: ChildProcess;
  ready: boolean;
  /** Set when this side stopped the worker (its exit is then expected). */
  stopping?: boolean;
  current?: Pending;
  timer?: NodeJS.Timeout;
}

/**
 * The worker, as source (run with `node -e`, so that no TypeScript loader is needed in the worker).
 * Its only inputs are the first message (its data) and the jobs; the libraries are the CommonJS builds of the
 * main thread's.
 */
function promptWorkerMain(): void {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const post = (m: unknown): void => void process.send!(m);
  process.once("message", (data: Record<string, string | number | object>) => {
    const { tokenizersPath, jinjaPath, tokenizerJson, tokenizerConfig, templateSource, maxBytes } = data as {
      tokenizersPath: string; jinjaPath: string; tokenizerJson: string; tokenizerConfig: object; templateSource: string; maxBytes: number;
    };
    const { Tokenizer } = require(tokenizersPath);
    const { Template } = require(jinjaPath);
    const tok = new Tokenizer(JSON.parse(tokenizerJson), tokenizerConfig);
    const template = new Template(templateSource);
    process.on("message", (job: Job) => onJob(job, tok, template, maxBytes));
    post({ ready: true });
  });
  // The parent going away ends the worker too.
  process.on("disconnect", () => process.exit(0));
  function onJob(job: Job, tok: { encode(t: string, o: object): { ids: number[] } }, template: { render(c: object): string }, maxBytes: number): void {
    let text: string;
    if (job.kind === "chat") {
      try {
        text = template.render(job.ctx);
      } catch (err) {
        return post({ id: job.id, error: "template", message: String((err as Error)?.message ?? err).split("\n")[0] });
      }
    } else {
      text = job.text;
    }
    // Text longer than this cannot fit the context whatever its tokens: refuse it before tokenizing.
    const bytes = Buffer.byteLength(text.normalize("NFC"));
    if (bytes > maxBytes) return post({ id: job.id, error: "too_long", bytes });
    try {
      const ids = text.length === 0 ? [] : tok.encode(text, { add_special_tokens: false }).ids;
      post({ id: job.id, ids, prompt: job.kind === "chat" ? text : undefined });
    } catch (err) {
      post({ id: job.id, error: "tokenizer", message: String((err as Error)?.message ?? err).split("\n")[0] });
    }
  }
}

export class PromptWorkers {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;
  private readonly maxWorkers: number;
  private readonly timeoutMs: number;
  private readonly heapMb: number;
  private readonly workerData: Record<string, unknown>;
  /** Text over this many UTF-8 bytes has at least contextLength tokens. */
  readonly maxBytes: number;

  constructor(
    private readonly tokenizer: QwenTokenizer,
    template: ChatTemplate,
    private readonly opts: PromptWorkerOptions,
  ) {
    this.maxWorkers = opts.workers ?? Math.min(2, Math.max(1, os.availableParallelism()));
    this.timeoutMs = opts.timeoutMs ?? PROMPT_DEFAULTS.timeoutMs;
    this.heapMb = opts.heapMb ?? PROMPT_DEFAULTS.heapMb;
    if (!(this.maxWorkers >= 1)) throw new Error(`prompt workers is ${this.maxWorkers}, expected >= 1`);
    this.maxBytes = opts.contextLength * tokenizer.longestTokenBytes;
    const require = createRequire(import.meta.url);
    this.workerData = {
      tokenizersPath: require.resolve("@huggingface/tokenizers"),
      jinjaPath: require.resolve("@huggingface/jinja"),
      // As text: cloning a string to a new worker is one copy, cloning the object walks it on this thread.
      tokenizerJson: JSON.stringify(tokenizer.tokenizerJson),
      tokenizerConfig: tokenizer.tokenizerConfig,
      templateSource: template.source,
      maxBytes: this.maxBytes,
    };
    this.spawn(); // one ready before the first request
  }

  /** Token ids of `text` (as `QwenTokenizer.encode`). */
  async encode(text: string): Promise<number[]> {
    return (await this.run({ id: this.nextId++, kind: "encode", text })).ids;
  }

  /** The rendered prompt of template variables `ctx` (from `ChatTemplate.context`) and its token ids. */
  async chat(ctx: Record<string, unknown>): Promise<{ prompt: string; ids: number[] }> {
    const r = await this.run({ id: this.nextId++, kind: "chat", ctx });
    return { prompt: r.prompt ?? "", ids: r.ids };
  }

  /** Stops every worker; jobs not finished fail with reason "closed". */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new PromptError("closed", "the server is shutting down"));
    await Promise.all(this.slots.splice(0).map((s) => this.stop(s, new PromptError("closed", "the server is shutting down"))));
  }

  private run(job: Job): Promise<{ ids: number[]; prompt?: string }> {
    if (this.closed) return Promise.reject(new PromptError("closed", "the server is shutting down"));
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  /** Hands queued jobs to idle workers, starting workers up to the limit. */
  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      let slot = this.slots.find((s) => s.current === undefined);
      if (slot === undefined) {
        if (this.slots.length >= this.maxWorkers) return;
        slot = this.spawn();
      }
      slot.current = this.queue.shift()!;
      if (slot.ready) this.start(slot);
    }
  }

  private spawn(): Slot {
    // `__name` covers transpilers that keep function names (esbuild keepNames, as under tsx) inside the body.
    const source = `const __name = (f) => f;\n(${promptWorkerMain.toString()})()`;
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // the worker is plain JavaScript: no loader, no inherited heap flags
    const worker = spawn(process.execPath, [`--max-old-space-size=${this.heapMb}`, "-e", source], {
      stdio: ["ignore", "ignore", "ignore", "ipc"],
      serialization: "advanced",
      env,
    });
    worker.send(this.workerData);
    worker.unref(); // the HTTP server keeps the process alive, not these
    worker.channel?.unref();
    const slot: Slot = { worker, ready: false };
    this.slots.push(slot);
    worker.on("message", (m: Reply | { ready: true }) => {
      if ("ready" in m) {
        slot.ready = true;
        if (slot.current) this.start(slot);
        return;
      }
      const p = slot.current;
      if (p === undefined || m.id !== p.job.id) return;
      clearTimeout(slot.timer);
      slot.current = undefined;
      if ("ids" in m) p.resolve({ ids: m.ids, prompt: m.prompt });
      else if (m.error === "too_long") p.reject(this.tooLong(m.bytes));
      else if (m.error === "template") p.reject(new PromptError("template", m.message));
      else p.reject(new PromptError("tokenizer", `the prompt could not be tokenized: ${m.message}`));
      this.pump();
    });
    const lost = (why: PromptError) => {
      this.drop(slot, why);
    };
    worker.on("error", (err: Error) =>
      lost(
        slot.ready
          ? new PromptError("tokenizer", `the prompt worker failed: ${String(err.message).split("\n")[0]}`)
          : new PromptError("worker", `the prompt worker could not start: ${String(err.message).split("\n")[0]}`),
      ),
    );
    worker.on("exit", (code, signal) => {
      if (slot.stopping) return;
      // V8 aborts a process whose heap limit is reached (SIGABRT, or exit code 134 through a shell).
      if (signal === "SIGABRT" || code === 134) {
        lost(new PromptError("memory", `rendering and tokenizing the prompt needed more than ${this.heapMb} MB; it was stopped`));
      } else if (!slot.ready) {
        lost(new PromptError("worker", `the prompt worker could not start (it exited with ${signal ?? `code ${code}`})`));
      } else {
        lost(new PromptError("tokenizer", "the prompt worker stopped unexpectedly"));
      }
    });
    return slot;
  }

  private start(slot: Slot): void {
    const p = slot.current!;
    if (this.timeoutMs > 0) slot.timer = setTimeout(() => {
      const seconds = this.timeoutMs / 1000;
      slot.stopping = true;
      this.drop(slot, new PromptError("timeout", `rendering and tokenizing the prompt took longer than ${seconds} s; it was stopped`));
      slot.worker.kill("SIGKILL");
    }, this.timeoutMs);
    slot.worker.send(p.job);
  }

  /** Takes a worker out of service (its job, if any, fails with `why`) and keeps the queue moving. */
  private drop(slot: Slot, why: PromptError): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    clearTimeout(slot.timer);
    slot.current?.reject(why);
    slot.current = undefined;
    this.pump();
  }

  private async stop(slot: Slot, why: PromptError): Promise<void> {
    clearTimeout(slot.timer);
    slot.current?.reject(why);
    slot.current = undefined;
    slot.stopping = true;
    if (slot.worker.exitCode !== null || slot.worker.signalCode !== null) return;
    const exited = new Promise<void>((r) => slot.worker.once("exit", () => r()));
    slot.worker.kill("SIGKILL");
    await exited;
  }

  private tooLong(bytes: number): PromptError {
    const minTokens = Math.ceil(bytes / this.tokenizer.longestTokenBytes);
    return new PromptError(
      "too_long",
      `the prompt is ${bytes} bytes, so at least ${minTokens} tokens, and the context is ${this.opts.contextLength} tokens`,
      { bytes, minTokens },
    );
  }
}
