/**
 * The token mixer of a decoder layer, gated attention (`self_attn`) or gated DeltaNet (`linear_attn`): the one
 * interface the decoder layer and the causal LM call, each mixer with the per-sequence state it carries
 * (`MixerState`: a KV cache, or DeltaNet's conv and recurrent states).
 */
import type { Tensor } from "../kernels/types.js";
import type { Batch } from "./batch.js";
import type { MixerState } from "./state.js";
import type { Workspace } from "./weights.js";

export interface Mixer<S extends MixerState> {
  /** The state of a new sequence. */
  newState(): S;
  /** x [N, hidden] -> out [N, hidden]; `states[s]` is segment s's state, advanced in place. */
  forward(x: Tensor, batch: Batch, states: S[], out: Tensor): void;
  /** Cuts the last verify step (a segment with `verify`) back to its first `keep` tokens. */
  rollback(state: S, keep: number, ws: Workspace): void;
}
