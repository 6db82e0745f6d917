/** Qwen3NextMLP, the SwiGLU feed-forward (dense layers, each expert, the shared expert):
 *   y = down_proj(silu(gate_proj(x)) * up_proj(x))
 */
import type { Kernels, Vec, Weight } from "../kernels/types.js";
import { param, type WeightSource, type Workspace } from "./weights.js";

export class Qwen3NextMLP {
  readonly gate_proj: Weight;
  readonly up_proj: Weight;
  readonly down_proj: Weight;

  constructor(private readonly k: Kernels, src: WeightSource, prefix: string, hidden: number, readonly intermediate: number) {
    this.gate_proj = param(src, `${prefix}.gate_proj.weight`, [intermediate, hidden]);
    this.up_proj = param(src, `${prefix}.up_proj.weight`, [intermediate, hidden]);
    this.down_proj = param(src, `${prefix}.down_proj.weight`, [hidden, intermediate]);
  }

  /** x [T, hidden] -> out [T, hidden]. */
  forward(x: Vec, T: number, ws: Workspace, out: Vec): void {
    const gate = ws.get("mlp.gate", T * this.intermediate);
    const up = ws.get("mlp.up", T * this.intermediate);
    this.k.linear(this.gate_proj, x, T, gate);
    this.k.linear(this.up_proj, x, T, up);
    this.k.siluMul(gate, up, gate);
    this.k.linear(this.down_proj, gate, T, out);
  }
}
