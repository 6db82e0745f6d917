/**
 * Logit lens: what the model would predict at each position if the residual stream stopped after layer i
 * (final norm + lm_head on hidden.{i}; the worker reduces each row to its top-k as lens.{i}.top_ids/top_probs),
 * the last of which is the model's output (final_hidden = norm(hidden.{L-1}), its logits). Each cell shows the
 * top token; colour is its probability.
 */
import type { RunData } from "../run_data.js";
import { sequential } from "./colour.js";
import { heatmap, note, section } from "./heatmap.js";

export function lensView(d: RunData): HTMLElement[] {
  const L = d.info.layerTypes.length;
  const names = Array.from({ length: L }, (_, i) => `lens.${i}`);
  const ids = names.map((n) => d.rows(`${n}.top_ids`));
  const probs = names.map((n) => d.rows(`${n}.top_probs`));
  if (ids.some((x) => !x) || probs.some((x) => !x)) return [note("This trace has no hidden.{i} / logits to read the lens from.")];
  const K = ids[0]!.width;
  const T = d.positions.length;
  const label = (r: number) => (r === L - 1 ? `layer ${r} = output` : `after layer ${r}`);
  return [
    section(
      "Top prediction after each layer",
      heatmap({
        title: "top-1 next token after each layer (final norm + lm_head on the residual stream); colour: its probability",
        rows: L,
        cols: T,
        cellW: 56,
        cellH: 22,
        value: (r, t) => probs[r]!.data[t * K],
        scale: sequential("top-1 probability", 0, Math.max(...probs.map((p) => Math.max(...Array.from({ length: T }, (_, t) => p!.data[t * K]))))),
        rowLabel: label,
        colLabel: (t) => d.token(d.positions[t]),
        text: (r, t) => d.token(ids[r]!.data[t * K]),
        describe: (r, t) => {
          const top = Array.from({ length: K }, (_, j) => `${JSON.stringify(d.token(ids[r]!.data[t * K + j]))} ${(probs[r]!.data[t * K + j] * 100).toFixed(1)}%`);
          return `${label(r)}, ${d.at(t)}, next token: ${top.join(", ")}`;
        },
      }),
    ),
  ];
}
