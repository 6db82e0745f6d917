/**
 * `moeExperts` for the host backends (TypeScript, WASM): the expert ids are host numbers, so each expert runs
 * once on exactly the rows routed to it: gather those rows, SwiGLU, scatter back weighted
 * (out[t] += p_{t,j} down_proj(silu(gate_proj(x_t)) * up_proj(x_t))), in expert order.
 */
import type { HostKernels, MoeExpertsArgs, Vec } from "./types.js";

/** The kernel for `k`, with its own grow-only work buffers (allocated once, reused every call). */
export function hostMoeExperts(k: HostKernels): (a: MoeExpertsArgs<Vec, Int32Array>) => void {
  const bufs = new Map<string, Vec>();
  const work = (name: string, n: number): Vec => {
    let b = bufs.get(name);
    if (!b || b.length < n) {
      if (b) k.free(b);
      bufs.set(name, (b = k.vec(Math.max(n, 2 * (b?.length ?? 0)))));
    }
    return b.subarray(0, n);
  };
  return ({ x, experts, weights, T, k: topK, mlps, out }) => {
    const H = x.length / T;
    const slotsOf: number[][] = Array.from({ length: mlps.length }, () => []);
    for (let slot = 0; slot < T * topK; slot++) slotsOf[experts[slot]].push(slot);
    slotsOf.forEach((slots, e) => {
      const n = slots.length;
      if (n === 0) return;
      const { gate_proj, up_proj, down_proj } = mlps[e];
      const I = gate_proj.shape[0];
      const tokens = Int32Array.from(slots, (slot) => Math.floor(slot / topK));
      const xe = work("x", n * H);
      const gate = work("gate", n * I);
      const up = work("up", n * I);
      const ye = work("y", n * H);
      const pe = work("p", n);
      k.gatherRows(x, H, tokens, xe);
      k.gatherRows(weights, 1, Int32Array.from(slots), pe);
      k.linear(gate_proj, xe, n, gate);
      k.linear(up_proj, xe, n, up);
      k.siluMul(gate, up, gate);
      k.linear(down_proj, gate, n, ye);
      k.scatterAxpyRows(pe, ye, H, tokens, out);
    });
  };
}
