/** Qwen3NextMLP, the SwiGLU feed-forward (dense layers, each expert, the shared expert):
 *   y = down_proj(silu(gate_proj(x)) * up_proj(x))
 *   gate_proj.weight, up_proj.weight [I, H];  down_proj.weight [H, I]
 */
import type { Kernels, Tensor, Weight } from "../kernels/types.js";
import type { Params } from "./params.js";
import type { Trace } from "./trace.js";
import type { Workspace } from "./weights.js";

/** The parameters of one SwiGLU MLP of width `intermediate` under `p`. */
export function mlpParams<W>(p: Params<W>, hidden: number, intermediate: number) {
  return {
    gate_proj: p.param("gate_proj.weight", intermediate, hidden),
    up_proj: p.param("up_proj.weight", intermediate, hidden),
    down_proj: p.param("down_proj.weight", hidden, intermediate),
  };
}
export type MlpParams<W> = ReturnType<typeof mlpParams<W>>;

export class Qwen3NextMLP {
  readonly gate_proj: Weight;
  readonly up_proj: Weight;
  readonly down_proj: Weight;
  readonly intermediate: number;

  constructor(private readonly k: Kernels, w: MlpParams<Weight>) {
    ({ gate_proj: this.gate_proj, up_proj: this.up_proj, down_proj: this.down_proj } = w);
    this.intermediate = w.gate_proj.shape[0];
  }

  /** x [T, hidden] -> out [T, hidden]; traced (a decoder layer's mlp) as mlp.{layer}.out. */
  forward(x: Tensor, T: number, ws: Workspace, out: Tensor, trace?: Trace): void {
    const gate = ws.get("mlp.gate", T * this.intermediate);
    const up = ws.get("mlp.up", T * this.intermediate);
    this.k.linear(this.gate_proj, x, T, gate);
    this.k.linear(this.up_proj, x, T, up);
    this.k.siluMul(gate, up, gate);
    this.k.linear(this.down_proj, gate, T, out);
    trace?.rows("mlp.out", [out.length / T], out);
  }
}
