/**
 * MTP: the multi-token-prediction head's draft at each position (mtp_logits row t, from the hidden state at t
 * and token t+1, predicts token t+2) next to the token the model actually produced there.
 */
import type { RunData } from "../run_data.js";
import { sequential } from "./colour.js";
import { heatmap, note, section } from "./heatmap.js";

export function mtpView(d: RunData): HTMLElement[] {
  if (!d.info.hasMtp) return [note("This checkpoint has no MTP head.")];
  const ids = d.rows("mtp_logits.top_ids");
  const probs = d.rows("mtp_logits.top_probs");
  if (!ids || !probs) return [note("This trace has no mtp_logits.")];
  const K = ids.width;
  const N = ids.rows;
  const actual = (t: number) => d.sequence[t + 2];
  let judged = 0;
  let hits = 0;
  for (let t = 0; t < N; t++) {
    if (t + 2 < d.promptLength || actual(t) === undefined) continue;
    judged++;
    if (ids.data[t * K] === actual(t)) hits++;
  }
  const rows = ["model produced", "MTP draft"];
  const summary = document.createElement("p");
  summary.textContent = `Drafts for generated positions that match the model's token: ${hits} of ${judged}${judged ? ` (${((hits / judged) * 100).toFixed(0)}%)` : ""}.`;
  return [
    section(
      "Draft vs produced",
      summary,
      heatmap({
        title: "row 1: the token at position t+2 (lit when the draft matches it); row 2: the MTP head's top draft for it, coloured by its probability; 'p' marks a prompt position",
        rows: 2,
        cols: N,
        cellW: 56,
        cellH: 22,
        value: (r, t) => (r === 0 ? (ids.data[t * K] === actual(t) ? 1 : 0) : probs.data[t * K]),
        scale: sequential("draft probability (row 2); match = 1 (row 1)", 0, 1),
        rowLabel: (r) => rows[r],
        colLabel: (t) => `${t + 2}${t + 2 < d.promptLength ? "p" : ""}`,
        text: (r, t) => (r === 0 ? (actual(t) === undefined ? "" : d.token(actual(t))) : d.token(ids.data[t * K])),
        describe: (r, t) => {
          const top = Array.from({ length: K }, (_, j) => `${JSON.stringify(d.token(ids.data[t * K + j]))} ${(probs.data[t * K + j] * 100).toFixed(1)}%`);
          const a = actual(t);
          return `position ${t + 2}${t + 2 < d.promptLength ? " (prompt)" : ""}: produced ${a === undefined ? "nothing yet" : JSON.stringify(d.token(a))}; MTP drafts ${top.join(", ")}`;
        },
      }),
    ),
  ];
}
