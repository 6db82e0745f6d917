/**
 * Multi-token prediction head (`mtp.*`, as vLLM's Qwen3NextMTP). For position t, from the main model's final
 * normed hidden state h_t and the next token x_{t+1}:
 *   u = fc([pre_fc_norm_embedding(embed(x_{t+1})) | pre_fc_norm_hidden(h_t)])
 *   u = mtp.layers.0(u)      (a full-attention decoder layer over the MTP sequence, own KV cache, position t)
 *   out = norm(u)            (then the shared lm_head gives logits for token t+2)
 * Parameters: fc.weight [H, 2H], pre_fc_norm_embedding.weight, pre_fc_norm_hidden.weight, norm.weight [H], layers.{j}.*.
 *
 * Pairing: the main model hands every final hidden state it computes to `observe`; a pair runs once its next
 * token is known (`run`, or `draft` with the token just chosen). So the MTP cache holds one row per pair
 * (h_t, x_{t+1}) of the sequence's real tokens, position t at row t. Only the pairs whose outputs are read (each
 * drafting sequence's last pair; all of them when traced) run the whole layer: the others only leave their keys
 * and values in the layer's cache for later rows to attend to (fc, input_layernorm, k_proj, v_proj), as the
 * whole layer would leave them.
 *
 * Drafting K tokens after x_{t+1} (speculative decoding): step 1 is the pair (h_t, x_{t+1}) and proposes d_1;
 * step j > 1 takes the head's own output of step j-1 in place of h and d_{j-1} as the token, at position
 * t + j - 1, with MTP layer (j-1) mod mtp_num_hidden_layers (one layer is reused, as in vLLM). The rows of
 * steps 2..K are speculative and are removed from the caches before `draft` returns. Several sequences draft
 * together: each chain step is one batch over every sequence still drafting (one read of the weights).
 */
import type { Qwen3NextConfig } from "../config.js";
import type { Accumulate, HostKernels, Kernels, Tensor, Vec, Weight } from "../kernels/types.js";
import { ggmlByteLength } from "../io/ggml_types.js";
import { isQuantDType } from "../io/ggml_quants.js";
import { decoderLayerParams, Qwen3NextDecoderLayer } from "./decoder_layer.js";
import type { Params } from "./params.js";
import type { Qwen3NextModel } from "./qwen3_next_model.js";
import { Qwen3NextRMSNorm } from "./rms_norm.js";
import type { KVCache, SequenceState } from "./state.js";
import type { Workspace } from "./weights.js";

/** The parameters of the MTP head under `p` (`mtp`). */
export function mtpParams<W>(p: Params<W>, c: Qwen3NextConfig) {
  const H = c.hidden_size;
  return {
    fc: p.param("fc.weight", H, 2 * H),
    pre_fc_norm_embedding: p.param("pre_fc_norm_embedding.weight", H),
    pre_fc_norm_hidden: p.param("pre_fc_norm_hidden.weight", H),
    // MTP layer j is a full-attention layer whose MLP kind follows the main-model rule for index j (as vLLM).
    layers: Array.from({ length: c.mtp_num_hidden_layers }, (_, j) => decoderLayerParams(p.at(`layers.${j}`), c, "full_attention", j)),
    norm: p.param("norm.weight", H),
  };
}
export type MtpParams<W> = ReturnType<typeof mtpParams<W>>;

/** What the head shares with the main model: the embedding and the lm_head. */
export interface MtpHost {
  readonly model: Qwen3NextModel;
  readonly lm_head: Weight;
}

export class Qwen3NextMTP {
  readonly pre_fc_norm_embedding: Qwen3NextRMSNorm;
  readonly pre_fc_norm_hidden: Qwen3NextRMSNorm;
  readonly fc: Weight;
  readonly layers: Qwen3NextDecoderLayer[];
  readonly norm: Qwen3NextRMSNorm;
  /**
   * Runs every pair through the whole layer, whatever outputs are asked for (the outputs of all rows): the path
   * that the cache-only rows are compared with.
   */
  allRows = false;
  /** lm_head views for draft vocabularies (see headRows). */
  private readonly heads = new Map<number, Weight>();

  constructor(private readonly k: Kernels, w: MtpParams<Weight>, private readonly cfg: Qwen3NextConfig) {
    const eps = cfg.rms_norm_eps;
    this.pre_fc_norm_embedding = new Qwen3NextRMSNorm(k, w.pre_fc_norm_embedding, eps);
    this.pre_fc_norm_hidden = new Qwen3NextRMSNorm(k, w.pre_fc_norm_hidden, eps);
    this.fc = w.fc;
    this.layers = w.layers.map((layer) => new Qwen3NextDecoderLayer(k, layer, cfg, null));
    this.norm = new Qwen3NextRMSNorm(k, w.norm, eps);
  }

  newCaches(): KVCache[] {
    return this.layers.map((l) => l.newState() as KVCache);
  }

  /**
   * Rows of one or more sequences through MTP layer `layer`: `parts` says whose rows come in order (n rows of
   * `state` at consecutive positions from `position`), hidden [N, H] their h_t, nextIds [N] the tokens
   * x_{t+1}. Writes the normed outputs [N, H] into `out` (only those of each part's last `outputs` rows when
   * given: the other rows of `out` are left as they were); appends each part's rows to its cache of that layer.
   */
  forward(model: Qwen3NextModel, parts: readonly MtpRows[], hidden: Tensor, nextIds: readonly number[], ws: Workspace, out: Tensor, layer = 0): void {
    const H = this.cfg.hidden_size;
    const n = nextIds.length;
    const emb = ws.get("mtp.emb", n * H);
    const hid = ws.get("mtp.hid", n * H);
    const cat = ws.get("mtp.cat", n * 2 * H);
    model.embed(nextIds, emb);
    this.pre_fc_norm_embedding.forward(emb, emb);
    this.pre_fc_norm_hidden.forward(this.k.view(hidden, 0, n * H), hid);
    this.k.concatColumns([emb, hid], [H, H], cat);
    const u = ws.get("mtp.u", n * H);
    this.k.linear(this.fc, cat, n, u);
    const decoder = this.layers[layer];
    const caches = (ps: readonly MtpRows[]) => ps.map((p) => p.state.mtp[layer]);
    if (this.allRows || parts.every((p) => (p.outputs ?? p.n) === p.n)) {
      decoder.forward(u, this.batch(model, parts, ws), caches(parts));
      this.norm.forward(u, this.k.view(out, 0, n * H));
      return;
    }
    // Each part's first rows only leave keys and values in the cache; then its last `outputs` rows attend to them.
    const cacheOnly: MtpRows[] = [];
    const whole: MtpRows[] = [];
    const cacheRows: number[] = [];
    const wholeRows: number[] = [];
    let row = 0;
    for (const p of parts) {
      const m = p.outputs ?? p.n;
      if (!(Number.isInteger(m) && m >= 0 && m <= p.n)) throw new Error(`MTP rows: ${m} outputs of ${p.n} rows`);
      const c = p.n - m;
      if (c > 0) cacheOnly.push({ state: p.state, n: c, position: p.position });
      if (m > 0) whole.push({ state: p.state, n: m, position: p.position + c });
      for (let t = 0; t < p.n; t++) (t < c ? cacheRows : wholeRows).push(row + t);
      row += p.n;
    }
    if (cacheOnly.length > 0) decoder.forwardCacheOnly(this.rows(u, cacheRows, ws, "mtp.u_cache"), this.batch(model, cacheOnly, ws), caches(cacheOnly));
    if (whole.length === 0) return;
    const x = this.rows(u, wholeRows, ws, "mtp.u_whole");
    decoder.forward(x, this.batch(model, whole, ws), caches(whole));
    const y = ws.get("mtp.y", wholeRows.length * H);
    this.norm.forward(x, y);
    wholeRows.forEach((r, i) => this.k.copy(this.k.view(y, i * H, (i + 1) * H), this.k.view(out, r * H, (r + 1) * H)));
  }

  /** The batch of `parts`' rows (each part's positions in order). */
  private batch(model: Qwen3NextModel, parts: readonly MtpRows[], ws: Workspace) {
    const positions: number[] = [];
    const segments = parts.map((p) => {
      const seg = { state: p.state, start: positions.length, T: p.n };
      for (let t = 0; t < p.n; t++) positions.push(p.position + t);
      return seg;
    });
    return model.batch(segments, positions, ws);
  }

  /** Rows `rows` (ascending) of x [*, H]: a view when they are consecutive, else gathered into workspace `name`. */
  private rows(x: Tensor, rows: readonly number[], ws: Workspace, name: string): Tensor {
    const H = this.cfg.hidden_size;
    const m = rows.length;
    if (rows[m - 1] - rows[0] === m - 1) return this.k.view(x, rows[0] * H, (rows[0] + m) * H);
    const g = ws.get(name, m * H);
    rows.forEach((r, i) => this.k.copy(this.k.view(x, r * H, (r + 1) * H), this.k.view(g, i * H, (i + 1) * H)));
    return g;
  }

  /**
   * Takes the main model's final hidden states of `tokens` (rows first .. first + T - 1 of `hidden`), which it
   * has just run (the last T positions of `state`): each waits for its next token. Throws when the head has missed some of the
   * sequence's positions (a step that did not pass its hidden states here).
   */
  observe(hidden: Tensor, tokens: readonly number[], state: SequenceState, first = 0): void {
    const H = this.cfg.hidden_size;
    const T = tokens.length;
    this.checkInStep(state, state.position - T);
    const p = state.mtpPending;
    const rows = p?.rows ?? 0;
    const need = (rows + T) * H;
    let buf = p?.hidden;
    if (!buf || buf.length < need) {
      const grown = this.k.vec(Math.max(need, 2 * (buf?.length ?? 0)));
      if (buf) {
        this.k.copy(this.k.view(buf, 0, rows * H), grown);
        this.k.free(buf);
      }
      buf = grown;
    }
    this.k.copy(this.k.view(hidden, first * H, (first + T) * H), this.k.view(buf, rows * H, need));
    const next = p?.next ?? [];
    // The first token pairs with the previous call's last hidden state (none before position 0, and none
    // when a draft has already run that pair).
    if (p && rows > 0) next.push(tokens[0]);
    next.push(...tokens.slice(1));
    state.mtpPending = { hidden: buf, rows: rows + T, next };
  }

  /**
   * Throws unless the head has seen every position of the sequence before `position` (its cache rows plus its
   * waiting hidden states): a step that did not pass its hidden states to `observe` leaves it behind.
   */
  checkInStep(state: SequenceState, position = state.position): void {
    const seen = state.mtp[0].length + (state.mtpPending?.rows ?? 0);
    if (seen !== position) {
      throw new Error(
        `the MTP head is out of step with this sequence (it has seen ${seen} positions, expected ${position}): ` +
          "pass every step's hidden states to it (forward with { mtp: true }; decodeBatch does not)",
      );
    }
  }

  /**
   * Runs every waiting pair whose next token is known, with `next` as the token after the last hidden state
   * when given. Returns the normed outputs [pairs, H] (a workspace view; only the last `outputs` rows when
   * given, the others only fill the cache) and how many pairs ran.
   */
  run(host: MtpHost, state: SequenceState, ws: Workspace, next?: number, outputs?: number): { out: Tensor; n: number } {
    const { out, ends } = this.runMany(host, [{ state, next, outputs }], ws);
    return { out, n: ends[0] };
  }

  /**
   * `run` for several sequences in one batch: item i's pairs are rows ends[i-1] .. ends[i] of `out`, of which
   * the last `outputs` (all when not given) are computed. Checks every item before running any.
   */
  runMany(host: MtpHost, items: readonly { state: SequenceState; next?: number; outputs?: number }[], ws: Workspace): { out: Tensor; ends: number[] } {
    const H = this.cfg.hidden_size;
    const ids: number[] = [];
    const parts: MtpRows[] = [];
    const ends: number[] = [];
    for (const { state, next, outputs } of items) {
      const p = state.mtpPending;
      if ((!p || p.rows === 0) && next !== undefined) throw new Error("the MTP head has no hidden state to pair with the next token: run the main model first");
      const pairs = !p || p.rows === 0 ? [] : next === undefined ? p.next : [...p.next, next];
      const n = pairs.length;
      if (n > 0) parts.push({ state, n, position: state.mtp[0].length, outputs: outputs === undefined ? n : Math.min(outputs, n) });
      ids.push(...pairs);
      ends.push(ids.length);
    }
    const N = ids.length;
    const out = ws.get("mtp.out", N * H);
    if (N === 0) return { out, ends };
    // One sequence's waiting rows are contiguous already; several are gathered.
    let hidden = parts[0].state.mtpPending!.hidden;
    if (parts.length > 1) {
      hidden = ws.get("mtp.gather", N * H);
      let row = 0;
      for (const { state, n } of parts) {
        this.k.copy(this.k.view(state.mtpPending!.hidden, 0, n * H), this.k.view(hidden, row * H, (row + n) * H));
        row += n;
      }
    }
    this.forward(host.model, parts, hidden, ids, ws, out);
    for (const { state, n } of parts) {
      // What is left waiting: the last hidden state when its token is not known yet.
      const p = state.mtpPending!;
      this.k.copy(this.k.view(p.hidden, n * H, p.rows * H), this.k.view(p.hidden, 0, (p.rows - n) * H));
      p.rows -= n;
      p.next = [];
    }
    return { out, ends };
  }

  /**
   * Proposes drafts for several sequences at once (one batch per chain step): request i gets K_i >= 0 tokens to
   * follow its `next` (the token chosen after its last observed hidden state); `pick` turns step j's logits
   * [V] (read back: one step boundary per chain step) into d_{j+1}. Runs the waiting pairs as step 1. Leaves the caches
   * holding only real pairs. Returns each request's drafts.
   */
  async draft(host: MtpHost, ws: Workspace, requests: readonly DraftRequest[]): Promise<number[][]> {
    const H = this.cfg.hidden_size;
    const V = this.cfg.vocab_size;
    // Only each drafting sequence's last pair's output is read (step 1 of its chain).
    const { out, ends } = this.runMany(host, requests.map((r) => ({ state: r.state, next: r.next, outputs: r.K > 0 ? 1 : 0 })), ws);
    const lens = requests.map((r) => r.state.mtp.map((c) => c.length));
    // Row r of u is the chain's hidden state of live[r], the requests still drafting.
    let live = requests.flatMap((r, i) => (r.K > 0 ? [i] : []));
    const u = ws.get("mtp.chain_h", live.length * H);
    live.forEach((i, r) => this.k.copy(this.k.view(out, (ends[i] - 1) * H, ends[i] * H), this.k.view(u, r * H, (r + 1) * H)));
    const drafts: number[][] = requests.map(() => []);
    for (let j = 0; live.length > 0; j++) {
      const m = live.length;
      // Logits for the ids below the largest draft vocabulary asked for (each pick sees its own).
      const n = Math.max(...live.map((i) => requests[i].vocab ?? V));
      const logits = ws.get("mtp.logits", m * n);
      this.k.linear(this.headRows(host.lm_head, n), u, m, logits);
      const read = await this.k.read(logits);
      const picked = live.map((i, r) => requests[i].pick(read.subarray(r * n, r * n + (requests[i].vocab ?? V)), j));
      // A pick may wait (a grammar's next mask): each has read its logits before its first await.
      const tokens = picked.every((t) => typeof t === "number") ? (picked as number[]) : await Promise.all(picked);
      live.forEach((i, r) => drafts[i].push(tokens[r]));
      const next = live.filter((i) => requests[i].K > j + 1);
      if (next.length === 0) break;
      // Keep the rows of those that go on (in order, so each moves to an earlier or the same row).
      next.forEach((i, r) => this.k.copy(this.k.view(u, live.indexOf(i) * H, (live.indexOf(i) + 1) * H), this.k.view(u, r * H, (r + 1) * H)));
      live = next;
      const o = ws.get("mtp.chain_out", live.length * H);
      const parts = live.map((i) => ({ state: requests[i].state, n: 1, position: lens[i][0] + j }));
      this.forward(host.model, parts, u, live.map((i) => drafts[i][j]), ws, o, (j + 1) % this.layers.length);
      this.k.copy(o, this.k.view(u, 0, live.length * H));
    }
    requests.forEach((r, i) => r.state.mtp.forEach((c, l) => c.truncate(lens[i][l])));
    return drafts;
  }

  /** The first n rows of lm_head (the ids below n), a view of its data; itself when n is all of them. */
  private headRows(lmHead: Weight, n: number): Weight {
    if (n === lmHead.shape[0]) return lmHead;
    let w = this.heads.get(n);
    if (w?.data.buffer !== lmHead.data.buffer) {
      const [V, H] = lmHead.shape;
      const perRow = isQuantDType(lmHead.dtype) ? ggmlByteLength(lmHead.dtype, [1, H]) : H;
      if (perRow * V !== lmHead.data.length) throw new Error(`${lmHead.name}: [${lmHead.shape}] has ${lmHead.data.length} elements, expected ${perRow * V}`);
      w = { name: `${lmHead.name}[:${n}]`, dtype: lmHead.dtype, shape: [n, H], data: lmHead.data.subarray(0, n * perRow) };
      this.heads.set(n, w);
    }
    return w;
  }
}

/** Rows of one sequence in an MTP batch: n pairs at consecutive positions from `position`. */
export interface MtpRows {
  state: SequenceState;
  n: number;
  position: number;
  /** The last `outputs` rows' outputs are read (default all n); the others only leave keys and values in the cache. */
  outputs?: number;
}

/** One sequence's drafts (see Qwen3NextMTP.draft). */
export interface DraftRequest {
  state: SequenceState;
  /** The token chosen after the sequence's last observed hidden state. */
  next: number;
  /** Drafts wanted (0: only run the waiting pairs). */
  K: number;
  /**
   * Turns chain step j's logits [vocab] (a view, valid until the call returns or first awaits) into the
   * draft d_{j+1}; a promise makes the chain wait for it.
   */
  pick: (logits: Vec, j: number) => number | Promise<number>;
  /**
   * Draft among the ids below `vocab` only (default: all): a smaller lm_head product per draft. Qwen's token
   * ids follow the tokenizer's merge order, most frequent first, so the first ids hold most of what text uses
   * (FR-Spec, Zhao et al. 2025). Drafts never reach the output, so the output is unchanged.
   */
  vocab?: number;
}

/**
 * Runs `f` with the kernels' fastest matrix products, "q8" (integer dot products over 8-bit activations for
 * quantized weights, float32 sums for float ones): drafts never reach the output (verification decides), so the
 * head takes the fastest arithmetic whatever the model runs with. Kernels without the switch run as they are.
 * When `f` returns a promise, the switch lasts until it settles (the awaits of a draft chain included), and is
 * restored after a throw or a rejection. The switch is the kernels' mode, so nothing else may issue kernel
 * calls on `k` meanwhile: the same rule as the model's shared workspace (one call at a time per model).
 */
export function withDraftSums<T>(k: Kernels | HostKernels, f: () => T): T {
  const sums = k as { accumulate?: Accumulate };
  const was = sums.accumulate;
  if (was === undefined || was === "q8") return f();
  sums.accumulate = "q8";
  let result: T;
  try {
    result = f();
  } catch (e) {
    sums.accumulate = was;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      sums.accumulate = was;
    }) as T;
  }
  sums.accumulate = was;
  return result;
}
