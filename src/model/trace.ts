/**
 * Intermediates collected during a forward pass, by the tensor names of the reference fixtures:
 * `hidden.{i}`, `router.{i}.experts` / `.weights`, `deltanet.{i}.state`, `final_hidden`, `logits`, `mtp_logits`;
 * and, for the browser explorer's views (no fixture holds them): `router.{i}.shared_gate` [T] (sigmoid of the
 * shared expert's gate), `deltanet.{i}.g` / `.beta` [T, value heads] (log decay and write strength),
 * `attention.{i}.q` [T, heads, head_dim] / `.k` [T, kv heads, head_dim] (after q_norm/k_norm and RoPE) and
 * `attention.{i}.gate` [T, heads * head_dim] (the output gate's logits, before the sigmoid).
 * Row tensors grow by `append` across calls (prefill, then each decoded token); `set` replaces a tensor.
 */
export type TraceKind = "float" | "int";

export interface TracedTensor {
  name: string;
  kind: TraceKind;
  shape: number[];
  /** Values as float64 (exact for float32 and for integer ids). */
  data: Float64Array;
}

interface Entry {
  kind: TraceKind;
  rowShape: number[];
  rows: number;
  chunks: Float64Array[];
  /** Set for tensors stored whole with `set`. */
  shape?: number[];
}

/** A trace and the `{i}` of the layer writing to it (its tensors are named `router.{i}.*`, `deltanet.{i}.*`, ...). */
export interface LayerTrace {
  trace: Trace;
  layer: string;
}

export class Trace {
  private readonly entries = new Map<string, Entry>();

  /** Appends rows of shape `rowShape` (data.length / prod(rowShape) of them). */
  append(name: string, rowShape: number[], data: ArrayLike<number>, kind: TraceKind): void {
    const width = rowShape.reduce((a, b) => a * b, 1);
    let e = this.entries.get(name);
    if (!e) this.entries.set(name, (e = { kind, rowShape, rows: 0, chunks: [] }));
    e.chunks.push(Float64Array.from(data));
    e.rows += data.length / width;
  }

  /** Stores a whole tensor, replacing any previous one of this name. */
  set(name: string, shape: number[], data: ArrayLike<number>, kind: TraceKind): void {
    this.entries.set(name, { kind, rowShape: [], rows: 0, chunks: [Float64Array.from(data)], shape });
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  get(name: string): TracedTensor {
    const e = this.entries.get(name);
    if (!e) throw new Error(`trace has no tensor ${name}`);
    const total = e.chunks.reduce((n, c) => n + c.length, 0);
    const data = new Float64Array(total);
    let at = 0;
    for (const c of e.chunks) {
      data.set(c, at);
      at += c.length;
    }
    return { name, kind: e.kind, shape: e.shape ?? [e.rows, ...e.rowShape], data };
  }

  /** Every tensor, in the order first recorded. */
  tensors(): TracedTensor[] {
    return this.names().map((n) => this.get(n));
  }
}
