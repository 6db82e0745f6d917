/**
 * Qwen3NextSparseMoeBlock (`mlp` of MoE layers):
 *   p = softmax(gate(x)) over all experts;  top-k experts E_t with weights p_e (divided by their sum when
 *   norm_topk_prob);  y = sum_{e in E_t} p_e expert_e(x) + sigmoid(shared_expert_gate(x)) shared_expert(x)
 * Every expert runs once per call on the rows routed to it.
 * Parameters: gate.weight [E, H] (the router); experts.{e}.* (SwiGLU of width moe_intermediate_size);
 *   shared_expert.* (width shared_expert_intermediate_size) and shared_expert_gate.weight [1, H] unless that width is 0.
 */
import type { Qwen3NextConfig } from "../config.js";
import type { IndexTensor, Kernels, Tensor, Weight } from "../kernels/types.js";
import { mlpParams, Qwen3NextMLP } from "./mlp.js";
import type { Params } from "./params.js";
import type { Trace } from "./trace.js";
import type { Workspace } from "./weights.js";

/** The parameters of a sparse MoE block under `p`. */
export function sparseMoeParams<W>(p: Params<W>, c: Qwen3NextConfig) {
  const H = c.hidden_size;
  const S = c.shared_expert_intermediate_size;
  return {
    gate: p.param("gate.weight", c.num_experts, H),
    experts: Array.from({ length: c.num_experts }, (_, e) => mlpParams(p.at(`experts.${e}`), H, c.moe_intermediate_size)),
    shared_expert: S > 0 ? mlpParams(p.at("shared_expert"), H, S) : null,
    shared_expert_gate: S > 0 ? p.param("shared_expert_gate.weight", 1, H) : null,
  };
}
export type SparseMoeParams<W> = ReturnType<typeof sparseMoeParams<W>>;

export class Qwen3NextSparseMoeBlock {
  /** The router [num_experts, hidden]. */
  readonly gate: Weight;
  readonly experts: Qwen3NextMLP[];
  readonly shared_expert: Qwen3NextMLP | null;
  readonly shared_expert_gate: Weight | null;
  private readonly hidden: number;
  private readonly E: number;
  private readonly topK: number;
  private readonly normTopK: boolean;
  private readonly idBufs = new Map<number, IndexTensor>();

  constructor(private readonly k: Kernels, w: SparseMoeParams<Weight>, cfg: Qwen3NextConfig) {
    this.hidden = cfg.hidden_size;
    this.E = cfg.num_experts;
    this.topK = cfg.num_experts_per_tok;
    this.normTopK = cfg.norm_topk_prob;
    this.gate = w.gate;
    this.experts = w.experts.map((e) => new Qwen3NextMLP(k, e));
    this.shared_expert = w.shared_expert ? new Qwen3NextMLP(k, w.shared_expert) : null;
    this.shared_expert_gate = w.shared_expert_gate;
  }

  /** x [N, hidden] -> out [N, hidden]; traced: router.{layer}.experts / .weights, moe.{layer}.shared / .shared_gate / .out. */
  forward(x: Tensor, N: number, ws: Workspace, out: Tensor, trace?: Trace): void {
    const { k, E, topK } = this;
    const logits = ws.get("moe.logits", N * E);
    const weights = ws.get("moe.weights", N * topK);
    const experts = this.ids(N * topK);
    k.linear(this.gate, x, N, logits);
    k.router({ logits, T: N, numExperts: E, k: topK, normalize: this.normTopK, experts, weights });
    trace?.ids("router.experts", [topK], experts);
    trace?.rows("router.weights", [topK], weights);
    k.fill(out, 0);
    k.moeExperts({ x, experts, weights, T: N, k: topK, mlps: this.experts, out });
    if (this.shared_expert && this.shared_expert_gate) this.shared(x, N, ws, out, trace);
    trace?.rows("moe.out", [this.hidden], out);
  }

  /** out += sigmoid(shared_expert_gate(x)) shared_expert(x). */
  private shared(x: Tensor, N: number, ws: Workspace, out: Tensor, trace?: Trace): void {
    const { k, hidden: H } = this;
    const gate = ws.get("moe.shared_gate", N);
    const ye = ws.get("moe.y", N * H);
    k.linear(this.shared_expert_gate!, x, N, gate);
    k.sigmoid(gate, gate);
    this.shared_expert!.forward(x, N, ws, ye);
    trace?.rows("moe.shared", [H], ye);
    trace?.rows("moe.shared_gate", [], gate);
    k.axpyRows(gate, ye, out);
  }

  /** The router's expert ids for n slots (one buffer per size, reused). */
  private ids(n: number): IndexTensor {
    let t = this.idBufs.get(n);
    if (!t) this.idBufs.set(n, (t = this.k.indices(n)));
    return t;
  }
}
