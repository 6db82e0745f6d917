/** Messages between the page (main.ts) and the model worker (worker.ts). */

/** Where the checkpoint comes from: the server's `model/` folder (a manifest of files) or files picked from disk. */
export type ModelSource =
  | { kind: "url"; base: string }
  | { kind: "files"; files: Array<{ path: string; file: File }> };

export interface RunParams {
  prompt: string;
  /** Unset: the checkpoint's generation_config.json default. */
  temperature?: number;
  maxTokens: number;
  seed?: number;
  /** Trace every forward pass for the views (default); off, the model runs as the CLI runs it (for timing). */
  trace: boolean;
}

export type ToWorker = { type: "load"; source: ModelSource; threads: number } | { type: "run"; params: RunParams };

/** One traced tensor as sent to the page (float32 values, or ids for integer tensors). */
export interface WireTensor {
  shape: number[];
  data: Float32Array | Int32Array;
}

/** One forward pass: its input tokens, its time, and the trace it wrote (vocabulary-wide rows reduced to top-k). */
export interface TracedCall {
  tokens: number[];
  /** The forward pass (with the trace on). */
  ms: number;
  /** Reducing the trace for the page afterwards (top-k of vocabulary-wide rows, the logit lens). */
  reduceMs: number;
  tensors: Record<string, WireTensor>;
}

export interface ModelInfo {
  name: string;
  layerTypes: string[];
  numExperts: number;
  topK: number;
  hasMtp: boolean;
  threads: number;
  loadMs: number;
}

export interface RunResult {
  promptIds: number[];
  tokens: number[];
  text: string;
  finishReason: string;
  prefillSeconds: number;
  decodeSeconds: number;
  tokensPerSecond: number;
  /** Page-side time from the run request to the first generated token. */
  firstTokenMs: number;
  calls: TracedCall[];
  /** Text of every token id that appears (prompt, output, top-k lists). */
  vocab: Record<number, string>;
  /** The kernels ran on this many threads (worker threads over shared memory, plus the model worker). */
  threads: number;
}

export type FromWorker =
  | { type: "progress"; phase: string; done: number; total: number }
  | { type: "loaded"; info: ModelInfo }
  | { type: "token"; id: number; text: string }
  | { type: "done"; result: RunResult }
  | { type: "error"; message: string };

/** How many candidates the views show for vocabulary-wide rows (logit lens, logits, MTP drafts). */
export const TOP_K = 5;
