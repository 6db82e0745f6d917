/**
 * Gated DeltaNet: the recurrent state S [value heads, dk, dv] of each linear-attention layer after the prompt and
 * after each generated token (deltanet.{i}.state), and the per-token decay exp(g) and write strength beta
 * (deltanet.{i}.g / .beta) of each head.
 */
import type { RunData } from "../run_data.js";
import { diverging, extent, sequential } from "./colour.js";
import { heatmap, note, section } from "./heatmap.js";

/** State rows shown per head at most: the dk*dv entries are averaged in bins beyond this. */
const MAX_ROWS_PER_HEAD = 32;

export function deltanetView(d: RunData): HTMLElement[] {
  const layers = d.layers("linear_attention");
  if (layers.length === 0) return [note("This model has no gated DeltaNet layers.")];
  const out: HTMLElement[] = [];
  for (const i of layers) {
    const parts: HTMLElement[] = [];
    const snaps = d.snapshots(`deltanet.${i}.state`);
    if (snaps) {
      const [Hv, dk, dv] = snaps.shape;
      const n = dk * dv;
      const per = Math.min(n, MAX_ROWS_PER_HEAD);
      const bin = n / per;
      const S = snaps.data.length;
      // value[h][row][step]: the mean of a bin of state entries (row-major dk x dv).
      const v = new Float32Array(Hv * per * S);
      for (let s = 0; s < S; s++) {
        const st = snaps.data[s];
        for (let h = 0; h < Hv; h++) {
          for (let r = 0; r < per; r++) {
            let sum = 0;
            const lo = Math.floor(r * bin);
            const hi = Math.floor((r + 1) * bin);
            for (let x = lo; x < hi; x++) sum += st[h * n + x];
            v[(h * per + r) * S + s] = sum / (hi - lo);
          }
        }
      }
      const [lo, hi] = extent(v);
      const cols = (s: number) => (s === 0 ? "prompt" : d.token(d.positions[snaps.after[s] - 1]));
      parts.push(
        heatmap({
          title: `deltanet.${i}.state over time: each head's ${dk}x${dv} state ${bin > 1 ? `(averaged in bins of ${bin})` : ""} after the prompt and after each token`,
          rows: Hv * per,
          cols: S,
          cellW: 10,
          cellH: Math.max(2, Math.min(4, Math.floor(128 / per))),
          gapBefore: (r) => (r > 0 && r % per === 0 ? 6 : 0),
          value: (r, s) => v[r * S + s],
          scale: diverging("state value", Math.max(Math.abs(lo), Math.abs(hi))),
          rowLabel: (r) => (r % per === 0 ? `head ${r / per}` : ""),
          colLabel: cols,
          describe: (r, s) => {
            const h = Math.floor(r / per);
            const e0 = Math.floor((r % per) * bin);
            const where = bin > 1 ? `entries ${e0}..${Math.floor(((r % per) + 1) * bin) - 1}` : `S[${Math.floor(e0 / dv)}, ${e0 % dv}]`;
            return `layer ${i}, head ${h}, ${where}, after ${s === 0 ? "the prompt" : `${d.at(snaps.after[s] - 1)}`}: ${v[r * S + s].toFixed(4)}`;
          },
        }),
      );
    } else parts.push(note(`This trace has no deltanet.${i}.state.`));
    for (const [name, label, transform, scaleName] of [
      ["g", "decay exp(g) per token and head (1 = keep the state, 0 = forget it)", Math.exp, "exp(g)"],
      ["beta", "write strength beta per token and head", (x: number) => x, "beta"],
    ] as const) {
      const t = d.rows(`deltanet.${i}.${name}`);
      if (!t) {
        parts.push(note(`${scaleName}: this trace has no deltanet.${i}.${name}.`));
        continue;
      }
      const H = t.width;
      parts.push(
        heatmap({
          title: `deltanet.${i}.${name}: ${label}`,
          rows: H,
          cols: t.rows,
          cellH: 14,
          value: (h, p) => transform(t.data[p * H + h]),
          scale: sequential(scaleName, 0, 1),
          rowLabel: (h) => `head ${h}`,
          colLabel: (p) => d.token(d.positions[p]),
          describe: (h, p) => `layer ${i}, head ${h}, ${d.at(p)}: ${scaleName} = ${transform(t.data[p * H + h]).toFixed(4)}`,
        }),
      );
    }
    out.push(section(`Layer ${i} (gated DeltaNet)`, ...parts));
  }
  return out;
}
