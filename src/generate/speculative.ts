/**
 * Speculative decoding with the model's own MTP head, exact: the output is the one plain decoding gives.
 *
 * One round, after token y has been chosen (and not yet fed):
 *   1. draft:  d_1 .. d_K from the MTP head (step 1 pairs the last final hidden state with y, steps 2..K
 *              chain the head's own output; see Qwen3NextMTP.draft);
 *   2. verify: one batched step of the main model over [y, d_1 .. d_K] gives the logits rows r_0 .. r_K;
 *   3. accept: the longest prefix of drafts the model agrees with, plus one token of the model's own:
 *        greedy    accept d_j while d_j == argmax(r_{j-1});  the model's token is argmax(r_a);
 *        sampling  with p_j and q_j the distributions plain sampling would draw from (same temperature,
 *                  top-k, top-p, min-p, penalties over the tokens before, logit bias) for r_{j-1} and the
 *                  head's logits: accept d_j with probability min(1, p_j(d_j) / q_j(d_j)); at the first
 *                  rejection draw from max(0, p_j - q_j) normalised and stop; after K acceptances draw
 *                  from p_{K+1}. Each token then has exactly plain sampling's distribution (Leviathan et
 *                  al. 2023, Chen et al. 2023);
 *   4. rollback: the verify step is cut back to the a + 1 tokens kept (y, d_1 .. d_a), and their final
 *              hidden states go to the MTP head, so every cache holds exactly the accepted tokens.
 *
 * Draft length (`AdaptiveDraftLength`): one draft at first, one more after each round whose drafts were all
 * accepted (up to K), one fewer after a round with some rejected; after a round in which none was accepted,
 * the next rounds are plain decode steps (2, then 4 ... up to 64 of them, doubling while probes keep
 * failing; 2, 8, 32, 64 while no draft of the sequence has ever been accepted), then a probe. A probe is a
 * plain step that also drafts one token and checks it against the step's own logits row (`probeMany`,
 * `probeAccepts`): whether a verify step would have accepted it, without the verify step. A verify step of
 * 2 rows costs about 2 plain steps on one CPU thread, a probe's draft a quarter of one on the 4-layer bench
 * slice (a tenth on the 80B model), so a sequence whose drafts are never right pays its first round, a
 * draft about every 65 steps and the MTP layer over its tokens. A plain step still hands its hidden state to
 * the MTP head, which runs the waiting pairs in one batch at the next draft (the MTP cache stays exactly in
 * step). A successful probe resumes drafting at one draft. The length depends only on what the drafts
 * achieved, never on timings: the same tokens, the same rounds; a probe draws no random number, so it
 * changes no sampled token.
 *
 * Under a grammar (constrained decoding, `DraftGrammar`) each position has its own mask M_j (the ids the
 * grammar allows after y, d_1 .. d_j): d_{j+1} is drawn from the head's logits under M_j, the matcher
 * advances over it to give M_{j+1}, and verify row r_j goes under M_j too, so p_j and q_j are both the
 * masked distributions and each token has exactly plain constrained sampling's distribution. After the
 * verify step the matcher is taken back over the rejected drafts. A draft the grammar forbids (none of a
 * draft vocabulary's ids allowed) has p = 0 under its row's mask, so it is rejected there; rows past it, or
 * past a draft that ends the grammar (a stop token, which ends the sequence), decide no delivered token.
 */
import { applyMask, maskAllowsAny } from "./sampler.js";
import type { Tensor, Vec } from "../kernels/types.js";
import type { Sampler } from "./sampler.js";

/** What speculative decoding needs of a model (Qwen3NextForCausalLM provides it). */
export interface SpeculativeLM<S> {
  readonly config: { hidden_size: number; vocab_size: number; mtp_num_hidden_layers: number };
  /** Batched step; `verify` rows can be cut back with `rollback`. Logits [N, V] and hidden [N, H] (valid until the next call). */
  step(rows: readonly { tokens: readonly number[]; state: S; verify?: boolean }[]): Promise<{ logits: Vec; hidden: Tensor }>;
  rollback(state: S, stepTokens: number, keep: number): void;
  /** Rows first .. first + tokens.length - 1 of a step's hidden states, to the MTP head. */
  observeMtp(hidden: Tensor, tokens: readonly number[], state: S, first?: number): void;
  /** Drafts for several sequences in one batch per chain step; `pick` turns logits into each draft. */
  draftBatch(requests: readonly { state: S; next: number; K: number; pick: (logits: Vec, j: number) => number | Promise<number>; vocab?: number }[]): Promise<number[][]>;
}

/** One sequence's request to `draftBatch`. */
type DraftRequest<S> = Parameters<SpeculativeLM<S>["draftBatch"]>[0][number];

/**
 * A grammar over the output (constrained decoding; the server's XGrammar matcher, see
 * src/server/grammar/grammars.ts), as drafting and verifying under it need it.
 */
export interface DraftGrammar {
  /** The ids allowed after the tokens accepted so far: bit (id & 31) of word (id >> 5). */
  nextMask(): Promise<Int32Array>;
  /** Advances past `id`; false (and no advance) when the grammar forbids it. */
  accept(id: number): boolean;
  /** Takes back the last n accepted tokens. */
  rollback(n: number): void;
  /** Whether the grammar has accepted its end (a stop token): it has no next mask then. */
  terminated(): boolean;
}

/** How a sequence turns a logits row into what it samples from (the tokenizer's ids, a logit bias...). */
export type LogitsView = (logits: Vec) => Vec;

/**
 * Plain steps before a probe: MIN_BACKOFF, doubling while probes keep failing (quadrupling while the
 * sequence has never had a draft accepted), up to MAX_BACKOFF.
 */
export const MIN_BACKOFF = 2;
export const MAX_BACKOFF = 64;

/**
 * A sequence's draft length per round, from what its drafts achieved (only those, so runs with the same
 * tokens draft the same): it starts at one draft and grows by one after a round whose drafts were all
 * accepted, up to K; it shrinks by one after a round with some rejected. After a round with none accepted it
 * backs off to plain steps (MIN_BACKOFF, doubling while probes keep failing, up to MAX_BACKOFF of them), then
 * probes: a plain step that drafts one token unverified (`probing`, reported with `probed`); a probe whose
 * draft would have been accepted resumes drafting at one draft. While none of the sequence's drafts has ever
 * been accepted (a head that does not fit the model, a draft vocabulary that misses the text's ids), the
 * back-off quadruples instead: probes after 2, 8, 32, 64 ... plain steps, so 2 probe drafts in the first 32
 * tokens instead of 3, 3 in 64 instead of 4 (each about 0.3 of a plain step on the bench slice).
 *
 * Why probes and not verify rounds: on the random bench model (drafts never right; f64 sums, one thread) the
 * first 64 tokens held 5 one-draft verify rounds, each a 2-row verify step of 1.75-2.3 plain steps, about
 * 10% of the run's time; with probes they hold one verify step (the first round) and 4 probes' drafts (a
 * quarter of a step each on the bench's 4-layer slice). The drafts still feed the MTP head every pair.
 */
export class AdaptiveDraftLength {
  private k = 1;
  /** Plain steps left before the next probe. */
  private skip = 0;
  /** 0 while drafting; else the plain steps before the last probe. */
  private backoff = 0;
  private probe = false;
  /** Whether a draft of this sequence has ever been accepted (a probe's included). */
  private accepted = false;
  constructor(readonly K: number) {}

  /** Draft tokens for the next round (0: a plain step, a probe when `probing` then says so). */
  next(): number {
    this.probe = false;
    if (this.backoff === 0) return this.k;
    if (this.skip > 0) this.skip--;
    else this.probe = true;
    return 0;
  }

  /** Whether the plain step `next` gave last is a probe: it drafts one token, and `probed` says how it did. */
  get probing(): boolean {
    return this.probe;
  }

  /** After a round with `drafted` drafts of which `accepted` were accepted (a plain step: 0, 0). */
  update(drafted: number, accepted: number): void {
    if (drafted === 0) return;
    if (accepted === 0) {
      this.skip = this.backoff = MIN_BACKOFF;
      this.k = 1;
      return;
    }
    this.accepted = true;
    this.k = accepted === drafted ? Math.min(this.K, this.k + 1) : Math.max(1, this.k - 1);
  }

  /** After a probe: whether a verify step would have accepted its draft. */
  probed(accepted: boolean): void {
    this.probe = false;
    if (accepted) {
      this.accepted = true;
      this.backoff = 0;
      this.k = 1;
    } else this.skip = this.backoff = Math.min(MAX_BACKOFF, (this.accepted ? 2 : 4) * this.backoff);
  }
}

/** The longest draft a round may use: K, less when fewer tokens are wanted or fit in the context. */
export function roundDraftLength(K: number, tokensLeft: number, contextLeft: number): number {
  return Math.max(0, Math.min(K, tokensLeft - 1, contextLeft - 2));
}

/** A sequence's drafts of one round, with the distributions they were drawn from (sampling only). */
export interface Drafts {
  tokens: number[];
  q: Float64Array[];
  /**
   * Under a grammar: masks[j] is verify row r_j's mask M_j (undefined past a forbidden or a terminating
   * draft), `advanced` the drafts the matcher has taken (after finishRound: the accepted ones it holds).
   */
  grammar?: { matcher: DraftGrammar; masks: (Int32Array | undefined)[]; advanced: number };
}

/** One sequence's part in a round of drafting (see draftMany). */
export interface DraftJob<S> {
  state: S;
  /** The token chosen last (not yet fed). */
  next: number;
  /** Drafts wanted (>= 1). */
  K: number;
  sampler: Sampler;
  view: LogitsView;
  /** The generated tokens up to and including `next` (for the penalties). */
  history: readonly number[];
  /** The prompt (repetition penalty). */
  prompt: readonly number[];
  /** Draft among the ids below this only (default: all; see DraftRequest.vocab in src/model/mtp.ts). */
  vocab?: number;
  /** Constrained decoding: the grammar, having accepted `next`, and its mask for the token after `next`. */
  grammar?: { matcher: DraftGrammar; mask: Int32Array };
}

/**
 * Drafts for several sequences in one batch per chain step (the MTP head and lm_head read once for all).
 * A sequence whose sampler fails gets its Error in place of drafts; the others are unaffected.
 */
export async function draftMany<S>(model: SpeculativeLM<S>, jobs: readonly DraftJob<S>[]): Promise<(Drafts | Error)[]> {
  return (await draftAndProbe(model, jobs, [])).drafts;
}

/** draftMany for `jobs` and probeMany for `probes`, in one batch (the server's step). */
export async function draftAndProbe<S>(model: SpeculativeLM<S>, jobs: readonly DraftJob<S>[], probes: readonly ProbeJob<S>[]): Promise<{ drafts: (Drafts | Error)[]; probes: (Float64Array | Error)[] }> {
  const out: (Drafts | Error)[] = jobs.map((job) => ({ tokens: [], q: [], ...(job.grammar ? { grammar: { matcher: job.grammar.matcher, masks: [job.grammar.mask], advanced: 0 } } : {}) }));
  const fail = (i: number, err: unknown) => {
    out[i] = err instanceof Error ? err : new Error(String(err));
    return jobs[i].next; // any token: this sequence's drafts are not used
  };
  const seen: number[][] = [];
  const probed: (Float64Array | Error)[] = probes.map(() => new Error("the probe's draft did not run"));
  await model.draftBatch([
    ...jobs.map((job, i): DraftRequest<S> => ({
      state: job.state,
      next: job.next,
      K: job.K,
      vocab: job.vocab,
      pick: (logits, j) => {
        const d = out[i];
        if (d instanceof Error) return job.next; // any token: this sequence's drafts are not used
        try {
          const g = d.grammar;
          const mask = g?.masks[j];
          // No allowed id among a draft vocabulary's: an unmasked (forbidden) draft, rejected at verify.
          const z = masked(job.view(logits), mask);
          // The penalties see the drafts before this one.
          if (j === 1) seen[i] = [...job.history];
          if (j > 0) seen[i].push(d.tokens[j - 1]);
          const before = j === 0 ? job.history : seen[i];
          let t: number;
          if (job.sampler.greedy) t = job.sampler.sample(z, before, job.prompt);
          else {
            const dist = job.sampler.distribution(z, before, job.prompt);
            d.q.push(dist);
            t = job.sampler.drawFrom(dist);
          }
          d.tokens.push(t);
          if (!g || !mask || !g.matcher.accept(t)) return t;
          g.advanced++;
          if (g.matcher.terminated()) return t;
          // The mask of the next position: the next draft's and verify row r_{j+1}'s.
          return g.matcher.nextMask().then(
            (m) => ((g.masks[j + 1] = m), t),
            (err) => fail(i, err),
          );
        } catch (err) {
          return fail(i, err);
        }
      },
    })),
    ...probes.map((job, i) => probeRequest(job, (q) => (probed[i] = q))),
  ]);
  return { drafts: out, probes: probed };
}

/** One sequence's probe (see probeMany): the fields of a DraftJob, one draft. */
export interface ProbeJob<S> {
  state: S;
  next: number;
  sampler: Sampler;
  view: LogitsView;
  history: readonly number[];
  prompt: readonly number[];
  vocab?: number;
  /** Constrained decoding: the grammar's mask for the token after `next`. */
  mask?: Int32Array;
}

/**
 * A probe's draft for several sequences in one batch: the distribution q_1 each would draw its first draft
 * from (under its mask), drawing nothing (a probe takes no random number). Also runs each sequence's waiting
 * MTP pairs, as any draft does. A sequence whose sampler fails gets its Error.
 */
export async function probeMany<S>(model: SpeculativeLM<S>, jobs: readonly ProbeJob<S>[]): Promise<(Float64Array | Error)[]> {
  return (await draftAndProbe(model, [], jobs)).probes;
}

/** A probe's draft request: `done` gets q_1 (or the sampler's Error). */
function probeRequest<S>(job: ProbeJob<S>, done: (q: Float64Array | Error) => void): DraftRequest<S> {
  return {
    state: job.state,
    next: job.next,
    K: 1,
    vocab: job.vocab,
    pick: (logits: Vec) => {
      try {
        done(job.sampler.distribution(masked(job.view(logits), job.mask), job.history, job.prompt));
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err)));
      }
      return job.next; // any token: one draft, nothing chains from it
    },
  };
}

/**
 * Whether a verify step would accept a probe's draft (drawn from `q`), given the plain step's logits row
 * `row` for the same position (under the same mask): with probability sum_i min(p_i, q_i), p the row's
 * distribution; a probe counts as accepted when that is at least 1/2. Greedy: p and q are one-hot, so it is
 * exactly whether the draft is the step's token.
 */
export function probeAccepts(q: Float64Array, row: Vec, sampler: Sampler, view: LogitsView, history: readonly number[], prompt: readonly number[], mask?: Int32Array): boolean {
  const p = sampler.distribution(masked(view(row), mask), history, prompt);
  let overlap = 0;
  for (let i = 0; i < q.length && i < p.length; i++) overlap += Math.min(p[i], q[i]);
  return overlap >= 0.5;
}

/** `z` under `mask` (a copy); `z` itself without one, or when it allows none of z's ids (see draftMany). */
function masked(z: Vec, mask: Int32Array | undefined): Vec {
  if (!mask || !maskAllowsAny(mask, z.length)) return z;
  const m = z.slice();
  applyMask(m, mask);
  return m;
}

/** Drafts K tokens after `next` for one sequence (see draftMany). */
export async function draftTokens<S>(
  model: SpeculativeLM<S>,
  state: S,
  next: number,
  K: number,
  sampler: Sampler,
  view: LogitsView,
  history: readonly number[],
  prompt: readonly number[],
  vocab?: number,
): Promise<Drafts> {
  const [d] = await draftMany(model, [{ state, next, K, sampler, view, history, prompt, vocab }]);
  if (d instanceof Error) throw d;
  return d;
}

/**
 * Step 3 for one sequence: `row(j)` is the verify step's logits row r_j. Returns the tokens that follow
 * (the accepted drafts, then the model's own token) and how many drafts were accepted.
 */
export function acceptDrafts(
  drafts: Drafts,
  row: (j: number) => Vec,
  sampler: Sampler,
  view: LogitsView,
  history: readonly number[],
  prompt: readonly number[],
): { tokens: number[]; accepted: number } {
  const d = drafts.tokens;
  const masks = drafts.grammar?.masks;
  // Row r_j under its position's mask, as the draft from it was drawn.
  const at = (j: number) => {
    const z = view(row(j));
    const mask = masks?.[j];
    if (!mask) return z;
    const masked = z.slice();
    applyMask(masked, mask);
    return masked;
  };
  const seen = [...history];
  for (let j = 0; j < d.length; j++) {
    const z = at(j);
    if (sampler.greedy) {
      const t = sampler.sample(z, seen, prompt);
      if (t !== d[j]) return { tokens: [...d.slice(0, j), t], accepted: j };
    } else {
      const p = sampler.distribution(z, seen, prompt);
      const q = drafts.q[j];
      const ratio = p[d[j]] / q[d[j]];
      if (!(ratio >= 1 || sampler.uniform() < ratio)) {
        // q is 0 past a draft vocabulary's ids.
        const residual = p.map((pi, i) => Math.max(0, pi - (q[i] ?? 0)));
        // p == q on every id makes the acceptance certain: the residual cannot be all zeros here.
        return { tokens: [...d.slice(0, j), sampler.drawFrom(residual)], accepted: j };
      }
    }
    seen.push(d[j]);
  }
  return { tokens: [...d, sampler.sample(at(d.length), seen, prompt)], accepted: d.length };
}

/** Running totals of a sequence's speculation. */
export interface SpeculationCounts {
  /** Draft tokens proposed (and verified). */
  draftTokens: number;
  /** Of which accepted. */
  acceptedTokens: number;
}

/**
 * Takes a round's new tokens in order and says how many of them the sequence's state should keep: all the
 * accepted drafts when it goes on, fewer when one of them ended it (those before that one, as plain decoding
 * would have fed).
 */
export type HandOut = (tokens: number[]) => number;

/**
 * Steps 3 and 4 for one sequence, already verified in `logits`/`hidden` from row `first` on: accepts, hands
 * the new tokens out (`handOut`, optional), rolls back, feeds the MTP head. Returns the new tokens (accepted
 * drafts, then the model's token).
 */
export function finishRound<S>(
  model: SpeculativeLM<S>,
  state: S,
  next: number,
  drafts: Drafts,
  verified: { logits: Vec; hidden: Tensor; first: number },
  sampler: Sampler,
  view: LogitsView,
  history: readonly number[],
  prompt: readonly number[],
  counts: SpeculationCounts,
  handOut?: HandOut,
): number[] {
  const V = model.config.vocab_size;
  const K = drafts.tokens.length;
  const { logits, hidden, first } = verified;
  const { tokens, accepted } = acceptDrafts(drafts, (j) => logits.subarray((first + j) * V, (first + j + 1) * V), sampler, view, history, prompt);
  const g = drafts.grammar;
  if (g) {
    // The matcher keeps the accepted drafts it took (a draft past a terminating one it never took).
    const taken = Math.min(accepted, g.advanced);
    g.matcher.rollback(g.advanced - taken);
    g.advanced = taken;
  }
  const keep = 1 + Math.min(accepted, handOut ? handOut(tokens) : accepted);
  model.rollback(state, K + 1, keep);
  model.observeMtp(hidden, [next, ...drafts.tokens.slice(0, keep - 1)], state, first);
  counts.draftTokens += K;
  counts.acceptedTokens += accepted;
  return tokens;
}

/**
 * One whole round for a single sequence (generate's loop): draft, verify in one step, accept, roll back;
 * with K = 0 a plain step whose hidden state goes to the MTP head, and with `probe` also a probe (one draft
 * before the step, told to `probe` after it).
 */
export async function speculativeRound<S>(
  model: SpeculativeLM<S>,
  state: S,
  next: number,
  K: number,
  sampler: Sampler,
  view: LogitsView,
  history: readonly number[],
  prompt: readonly number[],
  counts: SpeculationCounts,
  handOut?: HandOut,
  draftVocab?: number,
  probe?: (accepted: boolean) => void,
): Promise<number[]> {
  if (K === 0) {
    const [q] = probe ? await probeMany(model, [{ state, next, sampler, view, history, prompt, vocab: draftVocab }]) : [];
    if (q instanceof Error) throw q;
    const { logits, hidden } = await model.step([{ tokens: [next], state }]);
    model.observeMtp(hidden, [next], state);
    if (q) probe!(probeAccepts(q, logits, sampler, view, history, prompt));
    const tokens = [sampler.sample(view(logits), history, prompt)];
    handOut?.(tokens);
    return tokens;
  }
  const drafts = await draftTokens(model, state, next, K, sampler, view, history, prompt, draftVocab);
  const { logits, hidden } = await model.step([{ tokens: [next, ...drafts.tokens], state, verify: true }]);
  return finishRound(model, state, next, drafts, { logits, hidden, first: 0 }, sampler, view, history, prompt, counts, handOut);
}
