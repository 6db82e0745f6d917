/**
 * Intermediates collected during a forward pass, named `{module}.{layer}.{tensor}` (or a bare name outside the
 * layers). The model modules record with one line each, `batch.trace?.rows("attention.q", [heads, dim], q)`:
 * the model sets `layer` around each decoder layer and the trace inserts it (`attention.3.q`).
 * Row tensors ([tokens, ...]) grow across calls (prefill, then each decoded token); `whole`/`set` store a
 * tensor that each call replaces (states, caches). `only` / `layers` keep a dump small: what they exclude is
 * never copied. The names, with shapes, are listed in README.md ("Using it as an oracle").
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

export interface TraceFilter {
  /** Name patterns to keep, `*` matching any run of characters (e.g. `attention.*.q`, `hidden.*`). */
  only?: string[];
  /** Layers to keep; names outside the layers (embedding, logits, ...) are kept. */
  layers?: number[];
}

export class Trace {
  private readonly entries = new Map<string, Entry>();
  private readonly only: RegExp[] | null;
  private readonly layers: Set<number> | null;
  /** The decoder layer now running (set by the model), or null outside the layers. */
  layer: number | null = null;

  constructor(filter: TraceFilter = {}) {
    this.only = filter.only?.map((p) => new RegExp(`^${p.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`)) ?? null;
    this.layers = filter.layers ? new Set(filter.layers) : null;
  }

  /** Whether a tensor of this name is kept. */
  wants(name: string): boolean {
    const m = /^[A-Za-z_]+\.(\d+)(\.|$)/.exec(name);
    if (this.layers && m && !this.layers.has(Number(m[1]))) return false;
    return this.only === null || this.only.some((r) => r.test(name));
  }

  /** `module.tensor` -> `module.{layer}.tensor` (null inside no layer); a bare name stays. */
  private named(name: string): string | null {
    const dot = name.indexOf(".");
    if (dot < 0) return name;
    return this.layer === null ? null : `${name.slice(0, dot)}.${this.layer}${name.slice(dot)}`;
  }

  /** Appends token rows of shape `rowShape` to `module.{layer}.tensor` (see the class comment). */
  rows(name: string, rowShape: number[], data: ArrayLike<number>, kind: TraceKind = "float"): void {
    const full = this.named(name);
    if (full !== null) this.append(full, rowShape, data, kind);
  }

  /** Stores `module.{layer}.tensor` whole, replacing what an earlier call stored (a state, a cache). */
  whole(name: string, shape: number[], data: ArrayLike<number>): void {
    const full = this.named(name);
    if (full !== null) this.set(full, shape, data, "float");
  }

  /** Appends rows of shape `rowShape` (data.length / prod(rowShape) of them). */
  append(name: string, rowShape: number[], data: ArrayLike<number>, kind: TraceKind): void {
    if (!this.wants(name)) return;
    const width = rowShape.reduce((a, b) => a * b, 1);
    let e = this.entries.get(name);
    if (!e) this.entries.set(name, (e = { kind, rowShape, rows: 0, chunks: [] }));
    e.chunks.push(Float64Array.from(data));
    e.rows += data.length / width;
  }

  /** Stores a whole tensor, replacing any previous one of this name. */
  set(name: string, shape: number[], data: ArrayLike<number>, kind: TraceKind): void {
    if (!this.wants(name)) return;
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
