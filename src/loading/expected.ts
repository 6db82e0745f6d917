/**
 * The parameter tensors a config implies: canonical names and shapes, in declaration order. There is no list
 * here: each module declares its own parameters next to its class (`src/model/params.ts` explains how), and this
 * is that declaration run with a recorder. A checkpoint layout (`layout.ts`) says how a format spells each one.
 */
import type { ParamDecl } from "../model/params.js";

export { listParams as expectedTensors } from "../model/qwen3_next_for_causal_lm.js";
export type ExpectedTensor = ParamDecl;
