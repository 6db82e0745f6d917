/**
 * Next-token sampling, in the order Hugging Face `generate` and vLLM apply it:
 *
 *   0. logits holding NaN or +Infinity are refused (NonFiniteLogitsError): no token is drawn from them;
 *   1. penalties on the raw logits z:
 *        repetition (over prompt + generated tokens):  z_i = z_i > 0 ? z_i / r : z_i * r
 *        presence / frequency (generated tokens only, OpenAI):  z_i -= frequency * count_i + presence * [count_i > 0]
 *   2. temperature 0 (or top_k 1): the argmax (lowest id among ties), no randomness;
 *   3. p = softmax(z / temperature);
 *   4. top-k: keep the k most probable (k <= 0: all), renormalised;
 *   5. top-p: keep the smallest most-probable set whose probability reaches top_p;
 *   6. min-p: keep tokens with p_i >= min_p * max_j p_j;
 *   7. draw from what is kept, renormalised, with a seeded PRNG (xoshiro128**, seeded through splitmix32).
 */

import { Xoshiro128 } from "../prng.js";

export interface SamplingParams {
  temperature: number;
  top_k: number;
  top_p: number;
  min_p: number;
  presence_penalty: number;
  frequency_penalty: number;
  repetition_penalty: number;
  /** Same seed, same logits -> same tokens. Absent: seeded from the OS's randomness. */
  seed?: number;
}

/** Qwen3-Next-80B-A3B-Instruct's recommended values (its `generation_config.json`, and min_p 0 per its card). */
export const QWEN3_NEXT_INSTRUCT_SAMPLING: SamplingParams = {
  temperature: 0.7,
  top_k: 20,
  top_p: 0.8,
  min_p: 0,
  presence_penalty: 0,
  frequency_penalty: 0,
  repetition_penalty: 1,
};

/**
 * Sampling defaults from a checkpoint's `generation_config.json` object. Fields it lacks take Hugging Face's
 * `GenerationConfig` defaults (temperature 1, top_k 50, top_p 1); `do_sample: false` means greedy.
 * Without any generation config, Qwen3-Next-Instruct's recommended values.
 */
export function defaultSamplingParams(generationConfig?: object | null): SamplingParams {
  if (generationConfig === undefined || generationConfig === null) return { ...QWEN3_NEXT_INSTRUCT_SAMPLING };
  const g = generationConfig as Record<string, unknown>;
  const num = (key: string, dflt: number) => (typeof g[key] === "number" && Number.isFinite(g[key]) ? (g[key] as number) : dflt);
  const params: SamplingParams = {
    temperature: g.do_sample === false ? 0 : num("temperature", 1),
    top_k: num("top_k", 50),
    top_p: num("top_p", 1),
    min_p: num("min_p", 0),
    presence_penalty: num("presence_penalty", 0),
    frequency_penalty: num("frequency_penalty", 0),
    repetition_penalty: num("repetition_penalty", 1),
  };
  const problem = samplingParamsError(params);
  if (problem !== null) throw new Error(`generation_config.json: ${problem}`);
  return params;
}

/** Why `p` is not a valid set of sampling parameters (one line naming the field), or null. */
export function samplingParamsError(p: SamplingParams): string | null {
  const bad = (field: string, v: unknown, expected: string) => `${field} is ${v}, expected ${expected}`;
  if (!(p.temperature >= 0 && Number.isFinite(p.temperature))) return bad("temperature", p.temperature, "a number >= 0");
  if (!Number.isInteger(p.top_k) || p.top_k < -1) return bad("top_k", p.top_k, "an integer >= 0 (0 or -1: no limit)");
  if (!(p.top_p > 0 && p.top_p <= 1)) return bad("top_p", p.top_p, "a number in (0, 1]");
  if (!(p.min_p >= 0 && p.min_p <= 1)) return bad("min_p", p.min_p, "a number in [0, 1]");
  if (!(p.presence_penalty >= -2 && p.presence_penalty <= 2)) return bad("presence_penalty", p.presence_penalty, "a number in [-2, 2]");
  if (!(p.frequency_penalty >= -2 && p.frequency_penalty <= 2)) return bad("frequency_penalty", p.frequency_penalty, "a number in [-2, 2]");
  if (!(p.repetition_penalty > 0 && Number.isFinite(p.repetition_penalty))) return bad("repetition_penalty", p.repetition_penalty, "a number > 0");
  if (p.seed !== undefined && !Number.isSafeInteger(p.seed)) return bad("seed", p.seed, "an integer");
  return null;
}

/** Thrown when the logits hold NaN or +Infinity (-Infinity is a masked token, and allowed). */
export class NonFiniteLogitsError extends Error {
  override name = "NonFiniteLogitsError";
}

/** Index of the first NaN or +Infinity in `z`, or -1. */
export function firstNonFinite(z: ArrayLike<number>): number {
  for (let i = 0; i < z.length; i++) {
    const x = z[i];
    if (x !== x || x === Infinity) return i;
  }
  return -1;
}

export class Sampler {
  private readonly rng: Xoshiro128;

  constructor(readonly params: SamplingParams) {
    const problem = samplingParamsError(params);
    if (problem !== null) throw new Error(problem);
    this.rng = new Xoshiro128(params.seed ?? Math.floor(Math.random() * 2 ** 52));
  }

  /**
   * The next token given the last position's logits, the tokens generated so far and (for the repetition
   * penalty) the prompt. `logits` is not modified.
   */
  sample(logits: Float32Array | Float64Array, generated: readonly number[], promptTokens: readonly number[] = []): number {
    if (logits.length === 0) throw new Error("no logits to sample from, expected at least one");
    const bad = firstNonFinite(logits);
    if (bad >= 0) {
      throw new NonFiniteLogitsError(`the model produced non-finite logits (${logits[bad]} at token ${bad} of ${logits.length}); refusing to sample from them`);
    }
    const z = this.penalized(logits, generated, promptTokens);
    const p = this.params;
    if (p.temperature === 0 || p.top_k === 1) return argmax(z);
    if (p.top_k <= 0 && p.top_p === 1 && p.min_p === 0) return this.drawFull(z);
    const candidates = this.candidates(z);
    const kept = truncate(candidates, p.top_p, p.min_p);
    return this.draw(kept);
  }

  /** Whether sampling is the argmax (temperature 0 or top-k 1): no randomness. */
  get greedy(): boolean {
    return this.params.temperature === 0 || this.params.top_k === 1;
  }

  /**
   * The distribution `sample` draws from, as probabilities over every id of `logits` (zero for ids cut by
   * top-k / top-p / min-p; one-hot on the argmax when greedy). Speculative sampling compares two of them.
   */
  distribution(logits: Float32Array | Float64Array, generated: readonly number[], promptTokens: readonly number[] = []): Float64Array {
    if (logits.length === 0) throw new Error("no logits to sample from, expected at least one");
    const z = this.penalized(logits, generated, promptTokens);
    const p = this.params;
    const out = new Float64Array(z.length);
    if (this.greedy) {
      out[argmax(z)] = 1;
      return out;
    }
    const kept = p.top_k <= 0 && p.top_p === 1 && p.min_p === 0 ? this.candidatesUnsorted(z) : truncate(this.candidates(z), p.top_p, p.min_p);
    let total = 0;
    for (const c of kept) total += c.p;
    for (const c of kept) out[c.id] = c.p / total;
    return out;
  }

  /** A draw from the weights `w` (non-negative, not necessarily normalised), with this sampler's random stream. */
  drawFrom(w: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < w.length; i++) total += w[i];
    if (!(total > 0)) throw new Error("cannot sample: every weight is zero");
    let u = this.rng.nextFloat() * total;
    let last = 0;
    for (let i = 0; i < w.length; i++) {
      if (w[i] === 0) continue;
      last = i;
      u -= w[i];
      if (u < 0) return i;
    }
    return last;
  }

  /** A uniform number in [0, 1) from this sampler's random stream. */
  uniform(): number {
    return this.rng.nextFloat();
  }

  /** Logits after the repetition / presence / frequency penalties (a copy when any applies). */
  private penalized(logits: Float32Array | Float64Array, generated: readonly number[], prompt: readonly number[]): Float32Array | Float64Array {
    const p = this.params;
    const rep = p.repetition_penalty !== 1;
    const additive = p.presence_penalty !== 0 || p.frequency_penalty !== 0;
    if ((!rep || generated.length + prompt.length === 0) && (!additive || generated.length === 0)) return logits;
    const z = Float64Array.from(logits);
    if (rep) {
      const seen = new Set<number>([...prompt, ...generated]);
      for (const id of seen) if (id < z.length) z[id] = z[id] > 0 ? z[id] / p.repetition_penalty : z[id] * p.repetition_penalty;
    }
    if (additive) {
      const counts = new Map<number, number>();
      for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1);
      for (const [id, n] of counts) if (id < z.length) z[id] -= p.frequency_penalty * n + p.presence_penalty;
    }
    return z;
  }

  /** The top-k (or all) token ids with their probabilities softmax(z / T), most probable first. */
  private candidates(z: Float32Array | Float64Array): Candidate[] {
    const p = this.params;
    const k = p.top_k > 0 ? Math.min(p.top_k, z.length) : z.length;
    const ids = k < z.length ? topKIds(z, k) : sortedIds(z);
    if (ids.length === 0) throw new Error("cannot sample: every logit is NaN");
    const invT = 1 / p.temperature;
    const max = z[argmax(z)];
    // Softmax over the candidates: as in Hugging Face, top-p and min-p act on the distribution left by top-k.
    const weights = ids.map((id) => Math.exp((z[id] - max) * invT));
    const total = weights.reduce((a, b) => a + b, 0);
    return ids.map((id, i) => ({ id, p: weights[i] / total }));
  }

  /** softmax(z / T) over every (non-NaN) id, in id order. */
  private candidatesUnsorted(z: Float32Array | Float64Array): Candidate[] {
    const ids = allIds(z);
    if (ids.length === 0) throw new Error("cannot sample: every logit is NaN");
    const max = z[argmax(z)];
    const invT = 1 / this.params.temperature;
    const w = ids.map((id) => Math.exp((z[id] - max) * invT));
    const total = w.reduce((a, b) => a + b, 0);
    return ids.map((id, i) => ({ id, p: w[i] / total }));
  }

  /** A draw from softmax(z / T) over the whole vocabulary (nothing cut: no sorting needed). */
  private drawFull(z: Float32Array | Float64Array): number {
    const max = z[argmax(z)];
    const invT = 1 / this.params.temperature;
    const w = new Float64Array(z.length);
    for (let i = 0; i < z.length; i++) w[i] = Number.isNaN(z[i]) ? 0 : Math.exp((z[i] - max) * invT);
    return this.drawFrom(w);
  }

  private draw(kept: Candidate[]): number {
    let total = 0;
    for (const c of kept) total += c.p;
    let u = this.rng.nextFloat() * total;
    for (const c of kept) {
      u -= c.p;
      if (u < 0) return c.id;
    }
    return kept[kept.length - 1].id;
  }
}

interface Candidate {
  id: number;
  p: number;
}

/** Applies top-p (on the probabilities renormalised over the candidates) and min-p; at least one token stays. */
function truncate(c: Candidate[], topP: number, minP: number): Candidate[] {
  let n = c.length;
  if (topP < 1) {
    let total = 0;
    for (const x of c) total += x.p;
    let cum = 0;
    for (let i = 0; i < c.length; i++) {
      cum += c[i].p / total;
      if (cum >= topP) {
        n = i + 1;
        break;
      }
    }
  }
  if (minP > 0) {
    const threshold = minP * c[0].p;
    let m = 1;
    while (m < n && c[m].p >= threshold) m++;
    n = m;
  }
  return c.slice(0, n);
}

/** Index of the largest value (the lowest index among equal maxima). NaN never wins. */
export function argmax(z: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < z.length; i++) if (z[i] > z[best] || Number.isNaN(z[best])) best = i;
  return best;
}

/** The k largest entries' indices, largest first (ties: lower index first), via a size-k min-heap: O(n log k). */
function topKIds(z: ArrayLike<number>, k: number): number[] {
  // The heap's root is the worst kept entry: smallest value, then highest index.
  const worse = (a: number, b: number) => z[a] < z[b] || (z[a] === z[b] && a > b);
  const heap: number[] = [];
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && worse(heap[l], heap[m])) m = l;
      if (r < heap.length && worse(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  let rootValue = -Infinity; // z[heap[0]] once the heap is full
  for (let i = 0; i < z.length; i++) {
    // Fast path: once full, a value not above the worst kept one cannot enter (a later index loses ties).
    if (!(z[i] > rootValue)) {
      if (heap.length === k || Number.isNaN(z[i])) continue;
    }
    if (heap.length < k) {
      heap.push(i);
      for (let j = heap.length - 1; j > 0; ) {
        const parent = (j - 1) >> 1;
        if (!worse(heap[j], heap[parent])) break;
        [heap[j], heap[parent]] = [heap[parent], heap[j]];
        j = parent;
      }
      if (heap.length === k) rootValue = z[heap[0]];
    } else if (worse(heap[0], i)) {
      heap[0] = i;
      siftDown(0);
      rootValue = z[heap[0]];
    }
  }
  return heap.sort((a, b) => z[b] - z[a] || a - b);
}

function allIds(z: ArrayLike<number>): number[] {
  const ids: number[] = [];
  for (let i = 0; i < z.length; i++) if (!Number.isNaN(z[i])) ids.push(i);
  return ids;
}

function sortedIds(z: ArrayLike<number>): number[] {
  return allIds(z).sort((a, b) => z[b] - z[a] || a - b);
}

/** Sets the logits of ids the mask does not allow to -inf (ids beyond the mask are not allowed). */
export function applyMask(logits: Float32Array | Float64Array, mask: Int32Array): void {
  const n = logits.length;
  // Word by word: a grammar usually allows all of a word's 32 ids or none of them.
  for (let base = 0; base < n; base += 32) {
    const bits = mask[base >> 5] ?? 0;
    if (bits === -1) continue;
    const end = Math.min(base + 32, n);
    if (bits === 0) {
      for (let id = base; id < end; id++) logits[id] = -Infinity;
      continue;
    }
    for (let id = base; id < end; id++) if (((bits >>> (id - base)) & 1) === 0) logits[id] = -Infinity;
  }
}

/** Whether the mask allows any id below n. */
export function maskAllowsAny(mask: Int32Array, n: number): boolean {
  for (let w = 0; w < mask.length && 32 * w < n; w++) {
    const bits = n - 32 * w >= 32 ? mask[w] : mask[w] & ((1 << (n - 32 * w)) - 1);
    if (bits !== 0) return true;
  }
  return false;
}
