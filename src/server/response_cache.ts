/**
 * --response-cache N: complete responses of deterministic requests, least recently used out first
 * (the deployment guides' "cache frequent queries"). A request is deterministic when its effective
 * temperature is 0 (greedy) or it names a seed: then the same request gives the same output, token for
 * token, so it can be answered from here. The key is everything that affects the output: the route, the
 * served model's defaults and the whole body except what only shapes the transport (stream,
 * stream_options, user): a streamed and a non-streamed request share an entry, and a streamed hit is
 * replayed as a stream (replay.ts). Each hit gets a fresh id and timestamp.
 */
import type { SamplingBody } from "./requests.js";
import type { SamplingParams } from "../generate/sampler.js";

export class ResponseCache {
  private readonly entries = new Map<string, Record<string, unknown>>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** The cache key of a request, or undefined when its output is not determined by it. */
  key(route: string, body: SamplingBody, defaults: SamplingParams): string | undefined {
    if (this.capacity <= 0) return undefined;
    const temperature = body.temperature ?? defaults.temperature;
    if (temperature !== 0 && body.seed == null && (body.top_k ?? defaults.top_k) !== 1) return undefined;
    const { stream: _s, stream_options: _o, user: _u, ...rest } = body as SamplingBody & { user?: unknown };
    return JSON.stringify([route, defaults, sortKeys(rest)]);
  }

  get(key: string): Record<string, unknown> | undefined {
    const hit = this.entries.get(key);
    if (!hit) return undefined;
    this.entries.delete(key);
    this.entries.set(key, hit);
    return structuredClone(hit);
  }

  set(key: string, response: Record<string, unknown>): void {
    this.entries.delete(key);
    this.entries.set(key, structuredClone(response));
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }
}

/** A copy of `v` with object keys sorted (so {a, b} and {b, a} give the same key). */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  }
  return v;
}
