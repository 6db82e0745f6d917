/**
 * A forward call's rows: N token rows [N, hidden] made of segments, each a run of consecutive tokens of one
 * sequence. `forward` is one segment (a prompt or a token); `decodeBatch` is N segments of one token each.
 * Matrix products run over all N rows at once; the mixers (attention, DeltaNet) run per segment.
 */
import type { Tensor } from "../kernels/types.js";
import type { SequenceState } from "./state.js";
import type { Trace } from "./trace.js";
import type { Workspace } from "./weights.js";

export interface Segment {
  state: SequenceState;
  /** First row of this segment in the batch. */
  start: number;
  /** Number of rows (tokens). */
  T: number;
  /**
   * A speculative verify step: its rows are computed exactly as T single-token decode steps would compute them
   * (the recurrent delta rule), and what a rollback to a prefix needs is recorded (see `VerifyRecord`).
   */
  verify?: boolean;
}

export interface Batch {
  N: number;
  segments: Segment[];
  /** RoPE cos/sin for every row's position [N, rotary_dim / 2]. */
  cos: Tensor;
  sin: Tensor;
  ws: Workspace;
  trace?: Trace;
}
