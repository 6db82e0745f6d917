/**
 * A finished run as the views read it: the traced forward passes joined along the token axis. Row tensors
 * (`router.{i}.weights`, `hidden.{i}`, `logits.top_ids`, ...) are concatenated over the calls, one row per
 * position; state tensors (`deltanet.{i}.state`, written whole by each call) are kept per call as snapshots.
 */
import type { ModelInfo, RunResult, WireTensor } from "./protocol.js";

export interface Rows {
  /** Elements per row. */
  width: number;
  rowShape: number[];
  rows: number;
  data: Float32Array | Int32Array;
}

/** Tensors the model writes whole with `set` (the final value of a call), not row by row. */
const STATE = /^deltanet\.\d+\.state$/;

export class RunData {
  /** Every token the model read, in order: the prompt, then each generated token fed back. */
  readonly positions: number[];
  /** The prompt followed by everything generated (the last generated token is never fed back). */
  readonly sequence: number[];

  constructor(
    readonly run: RunResult,
    readonly info: ModelInfo,
  ) {
    this.positions = run.calls.flatMap((c) => c.tokens);
    this.sequence = [...run.promptIds, ...run.tokens];
  }

  get promptLength(): number {
    return this.run.promptIds.length;
  }

  has(name: string): boolean {
    return this.run.calls.some((c) => name in c.tensors);
  }

  /** A row tensor over all positions, or null when the trace has no tensor of this name. */
  rows(name: string): Rows | null {
    if (STATE.test(name)) throw new Error(`${name} is a state snapshot, not rows`);
    const parts: WireTensor[] = [];
    for (const c of this.run.calls) if (c.tensors[name]) parts.push(c.tensors[name]);
    if (parts.length === 0) return null;
    const rowShape = parts[0].shape.slice(1);
    const width = rowShape.reduce((a, b) => a * b, 1);
    const total = parts.reduce((n, p) => n + p.data.length, 0);
    const data = parts[0].data instanceof Int32Array ? new Int32Array(total) : new Float32Array(total);
    let at = 0;
    for (const p of parts) {
      data.set(p.data, at);
      at += p.data.length;
    }
    return { width, rowShape, rows: total / Math.max(1, width), data };
  }

  /** A state tensor after each call that wrote it: [call][...shape]. */
  snapshots(name: string): { shape: number[]; after: number[]; data: Array<Float32Array | Int32Array> } | null {
    const after: number[] = [];
    const data: Array<Float32Array | Int32Array> = [];
    let shape: number[] = [];
    let pos = 0;
    for (const c of this.run.calls) {
      pos += c.tokens.length;
      const t = c.tensors[name];
      if (!t) continue;
      shape = t.shape;
      after.push(pos);
      data.push(t.data);
    }
    return data.length ? { shape, after, data } : null;
  }

  /** A token's text, made visible (spaces and newlines shown). */
  token(id: number): string {
    const s = this.run.vocab[id];
    if (s === undefined) return `#${id}`;
    return s.replace(/\n/g, "⏎").replace(/\t/g, "⇥").replace(/ /g, "·") || "∅";
  }

  /** "pos 12 'the'" for the token read at a position. */
  at(pos: number): string {
    return `pos ${pos} ${JSON.stringify(this.token(this.positions[pos]))}${pos < this.promptLength ? " (prompt)" : ""}`;
  }

  layers(kind: "linear_attention" | "full_attention"): number[] {
    return this.info.layerTypes.flatMap((t, i) => (t === kind ? [i] : []));
  }
}
