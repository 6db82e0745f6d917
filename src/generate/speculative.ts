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
 * Draft length (`AdaptiveDraftLength`): after a round in which no draft was accepted, the next rounds are
 * plain decode steps (1, 2, 4 ... up to 32 of them, doubling while drafts keep failing), then a probe with
 * one draft; any acceptance returns to K. A plain step still hands its hidden state to the MTP head, which
 * runs the waiting pairs in one batch at the next draft (the MTP cache stays exactly in step). So a sequence
 * whose drafts are never right pays one draft about every 33 steps, plus the MTP layer over its tokens.
 */
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
  draft(state: S, next: number, K: number, pick: (logits: Vec, j: number) => number): Promise<number[]>;
}

/** How a sequence turns a logits row into what it samples from (the tokenizer's ids, a logit bias...). */
export type LogitsView = (logits: Vec) => Vec;

/** Rounds of plain decoding after drafts fail, at most. */
export const MAX_BACKOFF = 32;

/**
 * A sequence's draft length per round: K; after a round with nothing accepted, plain steps (1, 2, 4 ... up to
 * MAX_BACKOFF, doubling while drafts keep failing) and then a probe with a single draft; any acceptance
 * returns to K.
 */
export class AdaptiveDraftLength {
  private skip = 0;
  private backoff = 0;
  constructor(readonly K: number) {}

  /** Draft tokens for the next round (0: a plain step). */
  next(): number {
    if (this.skip > 0) {
      this.skip--;
      return 0;
    }
    return this.backoff > 0 ? 1 : this.K;
  }

  /** After a round with `drafted` drafts of which `accepted` were accepted. */
  update(drafted: number, accepted: number): void {
    if (drafted === 0) return;
    if (accepted > 0) this.backoff = 0;
    else this.skip = this.backoff = Math.min(MAX_BACKOFF, Math.max(1, 2 * this.backoff));
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
}

/**
 * Drafts K tokens after `next` for one sequence. `history` is the generated tokens up to and including
 * `next` (for the penalties); `prompt` the prompt (repetition penalty).
 */
export async function draftTokens<S>(
  model: SpeculativeLM<S>,
  state: S,
  next: number,
  K: number,
  sampler: Sampler,
  view: LogitsView,
  history: readonly number[],
  prompt: readonly number[],
): Promise<Drafts> {
  const q: Float64Array[] = [];
  const draftsSoFar: number[] = [];
  const tokens = await model.draft(state, next, K, (logits, j) => {
    const z = view(logits);
    const seen = j === 0 ? history : [...history, ...draftsSoFar.slice(0, j)];
    if (sampler.greedy) return (draftsSoFar[j] = sampler.sample(z, seen, prompt));
    const dist = sampler.distribution(z, seen, prompt);
    q.push(dist);
    return (draftsSoFar[j] = sampler.drawFrom(dist));
  });
  return { tokens, q };
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
  const seen = [...history];
  for (let j = 0; j < d.length; j++) {
    const z = view(row(j));
    if (sampler.greedy) {
      const t = sampler.sample(z, seen, prompt);
      if (t !== d[j]) return { tokens: [...d.slice(0, j), t], accepted: j };
    } else {
      const p = sampler.distribution(z, seen, prompt);
      const q = drafts.q[j];
      const ratio = p[d[j]] / q[d[j]];
      if (!(ratio >= 1 || sampler.uniform() < ratio)) {
        const residual = p.map((pi, i) => Math.max(0, pi - q[i]));
        // p == q on every id makes the acceptance certain: the residual cannot be all zeros here.
        return { tokens: [...d.slice(0, j), sampler.drawFrom(residual)], accepted: j };
      }
    }
    seen.push(d[j]);
  }
  return { tokens: [...d, sampler.sample(view(row(d.length)), seen, prompt)], accepted: d.length };
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
  const keep = 1 + Math.min(accepted, handOut ? handOut(tokens) : accepted);
  model.rollback(state, K + 1, keep);
  model.observeMtp(hidden, [next, ...drafts.tokens.slice(0, keep - 1)], state, first);
  counts.draftTokens += K;
  counts.acceptedTokens += accepted;
  return tokens;
}

/**
 * One whole round for a single sequence (generate's loop): draft, verify in one step, accept, roll back;
 * with K = 0 a plain step whose hidden state goes to the MTP head.
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
): Promise<number[]> {
  if (K === 0) {
    const { logits, hidden } = await model.step([{ tokens: [next], state }]);
    model.observeMtp(hidden, [next], state);
    const tokens = [sampler.sample(view(logits), history, prompt)];
    handOut?.(tokens);
    return tokens;
  }
  const drafts = await draftTokens(model, state, next, K, sampler, view, history, prompt);
  const { logits, hidden } = await model.step([{ tokens: [next, ...drafts.tokens], state, verify: true }]);
  return finishRound(model, state, next, drafts, { logits, hidden, first: 0 }, sampler, view, history, prompt, counts, handOut);
}
