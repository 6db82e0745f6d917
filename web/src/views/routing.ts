/** Routing: which experts each token picks in each MoE layer (router.{i}.experts / .weights), the experts' load, the shared expert's gate. */
import type { RunData } from "../run_data.js";
import { extent, sequential } from "./colour.js";
import { heatmap, note, section } from "./heatmap.js";

export function routingView(d: RunData): HTMLElement[] {
  const out: HTMLElement[] = [];
  const E = d.info.numExperts;
  const T = d.positions.length;
  const loads: number[][] = [];
  const moeLayers: number[] = [];
  d.info.layerTypes.forEach((_, i) => {
    const experts = d.rows(`router.${i}.experts`);
    const weights = d.rows(`router.${i}.weights`);
    if (!experts || !weights) return;
    moeLayers.push(i);
    const k = experts.width;
    const w = new Float32Array(E * T).fill(NaN);
    const load = new Array<number>(E).fill(0);
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < k; j++) {
        const e = experts.data[t * k + j];
        w[e * T + t] = weights.data[t * k + j];
        load[e]++;
      }
    }
    loads.push(load.map((n) => n / T));
    out.push(
      section(
        `Layer ${i} (${d.info.layerTypes[i] === "full_attention" ? "gated attention" : "gated DeltaNet"} + MoE): tokens x experts`,
        heatmap({
          title: `router.${i}: routing weight of each chosen expert (top-${k}); empty = not chosen`,
          rows: E,
          cols: T,
          value: (e, t) => w[e * T + t],
          scale: sequential("routing weight", 0, 1),
          rowLabel: (e) => `expert ${e}`,
          colLabel: (t) => d.token(d.positions[t]),
          describe: (e, t) => {
            const v = w[e * T + t];
            return `layer ${i}, expert ${e}, ${d.at(t)}: ${Number.isNaN(v) ? "not chosen" : `weight ${v.toFixed(3)}`}`;
          },
        }),
      ),
    );
  });
  if (moeLayers.length === 0) return [note("This model has no MoE layers (no router.{i}.* in the trace).")];
  out.unshift(
    section(
      "Expert load over the text",
      heatmap({
        title: "share of tokens routed to each expert, per MoE layer",
        rows: moeLayers.length,
        cols: E,
        cellW: Math.max(12, Math.min(40, Math.floor(900 / E))),
        cellH: 18,
        value: (r, e) => loads[r][e],
        scale: sequential("share of tokens", 0, extent(loads.flat())[1]),
        rowLabel: (r) => `layer ${moeLayers[r]}`,
        colLabel: E <= 64 ? (e) => `${e}` : undefined,
        describe: (r, e) => `layer ${moeLayers[r]}, expert ${e}: ${(loads[r][e] * 100).toFixed(1)}% of ${T} tokens`,
      }),
    ),
  );
  const gates = moeLayers.map((i) => d.rows(`moe.${i}.shared_gate`));
  if (gates.every((g) => g !== null)) {
    out.splice(
      1,
      0,
      section(
        "Shared expert gate",
        heatmap({
          title: "sigmoid(shared_expert_gate(x)): how much of the shared expert each token takes",
          rows: moeLayers.length,
          cols: T,
          cellH: 16,
          value: (r, t) => gates[r]!.data[t],
          scale: sequential("gate", 0, 1),
          rowLabel: (r) => `layer ${moeLayers[r]}`,
          colLabel: (t) => d.token(d.positions[t]),
          describe: (r, t) => `layer ${moeLayers[r]}, ${d.at(t)}: shared expert gate ${gates[r]!.data[t].toFixed(3)}`,
        }),
      ),
    );
  } else {
    out.splice(1, 0, note("Shared expert gate: this trace has no moe.{i}.shared_gate."));
  }
  return out;
}
