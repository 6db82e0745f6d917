/**
 * Intermediates collected during a forward pass, named `{module}.{layer}.{tensor}` (or a bare name outside the
 * layers). The model modules record with one line each, `batch.trace?.rows("attention.q", [heads, dim], q)`:
 * the model sets `layer` around each decoder layer and the trace inserts it (`attention.3.q`).
 * Row tensors ([tokens, ...]) grow across calls (prefill, then each decoded token); `whole`/`set` store a
 * tensor that each call replaces (states, caches). `only` / `layers` keep a dump small: what they exclude is
 * never copied. The names, with shapes, are listed in README.md ("Using it as an oracle").
 * Tensors are read through the kernels (`kernels`, set by the model for the call): each read captures the
 * values at the time it is recorded, and the model awaits `settle()` before its step returns.
 */
import type { IndexTensor, Kernels, Tensor } from "../kernels/types.js";

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
  chunks: (Float64Array | Promise<Float64Array>)[];
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
  /** The kernels whose tensors are recorded (set by the model). */
  kernels: Kernels | null = null;

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
  rows(name: string, rowShape: number[], data: Tensor): void {
    const full = this.named(name);
    if (full !== null) this.append(full, rowShape, data);
  }

  /** Appends expert ids [rows, ...rowShape] to `module.{layer}.tensor` (integers). */
  ids(name: string, rowShape: number[], data: IndexTensor): void {
    const full = this.named(name);
    if (full === null || !this.wants(full)) return;
    this.push(full, rowShape, data.length, this.reader().readIndices(data).then((v) => Float64Array.from(v)), "int");
  }

  /** Stores `module.{layer}.tensor` whole, replacing what an earlier call stored (a state, a cache). */
  whole(name: string, shape: number[], data: Tensor): void {
    const full = this.named(name);
    if (full !== null) this.set(full, shape, data);
  }

  /** Appends rows of shape `rowShape` (data.length / prod(rowShape) of them). */
  append(name: string, rowShape: number[], data: Tensor): void {
    if (this.wants(name)) this.push(name, rowShape, data.length, this.read(data), "float");
  }

  /** Appends rows given as host numbers (token ids). */
  appendHost(name: string, rowShape: number[], data: ArrayLike<number>, kind: TraceKind): void {
    if (this.wants(name)) this.push(name, rowShape, data.length, Float64Array.from(data), kind);
  }

  /** Stores a whole tensor, replacing any previous one of this name. */
  set(name: string, shape: number[], data: Tensor): void {
    if (!this.wants(name)) return;
    this.entries.set(name, { kind: "float", rowShape: [], rows: 0, chunks: [this.read(data)], shape });
  }

  /** Waits for every read recorded so far. */
  async settle(): Promise<void> {
    for (const e of this.entries.values()) e.chunks = await Promise.all(e.chunks);
  }

  private push(name: string, rowShape: number[], length: number, chunk: Float64Array | Promise<Float64Array>, kind: TraceKind): void {
    const width = rowShape.reduce((a, b) => a * b, 1);
    let e = this.entries.get(name);
    if (!e) this.entries.set(name, (e = { kind, rowShape, rows: 0, chunks: [] }));
    e.chunks.push(chunk);
    e.rows += length / width;
  }

  private read(t: Tensor): Promise<Float64Array> {
    return this.reader()
      .read(t)
      .then((v) => (v instanceof Float64Array ? v : Float64Array.from(v)));
  }

  private reader(): Kernels {
    if (!this.kernels) throw new Error("trace: no kernels to read tensors with (the model sets them for each call)");
    return this.kernels;
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
    const chunks = e.chunks.map((c) => {
      if (c instanceof Promise) throw new Error(`trace tensor ${name} is not read yet (await the step that recorded it)`);
      return c;
    });
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const data = new Float64Array(total);
    let at = 0;
    for (const c of chunks) {
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
