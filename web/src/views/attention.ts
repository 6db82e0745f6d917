/**
 * Gated attention: for each full-attention layer, each head's attention map softmax(q k^T / sqrt(d)) over the
 * positions it may see, from the traced queries and keys (attention.{i}.q [T, heads, d] and .k [T, kv heads, d],
 * after q_norm/k_norm and RoPE), and the output gate sigmoid(gate) (attention.{i}.gate [T, heads, d], its logits).
 */
import type { RunData } from "../run_data.js";
import { sequential } from "./colour.js";
import { heatmap, note, section } from "./heatmap.js";

export function attentionView(d: RunData): HTMLElement[] {
  const layers = d.layers("full_attention");
  if (layers.length === 0) return [note("This model has no full-attention layers.")];
  const out: HTMLElement[] = [];
  for (const i of layers) {
    const parts: HTMLElement[] = [];
    const q = d.rows(`attention.${i}.q`);
    const k = d.rows(`attention.${i}.k`);
    if (q && k) {
      const [H, dh] = q.rowShape;
      const Hkv = k.rowShape[0];
      const T = q.rows;
      for (let h = 0; h < H; h++) {
        const kvh = Math.floor(h / (H / Hkv));
        const p = new Float32Array(T * T).fill(NaN);
        for (let t = 0; t < T; t++) {
          let max = -Infinity;
          const s = new Float64Array(t + 1);
          for (let u = 0; u <= t; u++) {
            let dot = 0;
            for (let x = 0; x < dh; x++) dot += q.data[(t * H + h) * dh + x] * k.data[(u * Hkv + kvh) * dh + x];
            s[u] = dot / Math.sqrt(dh);
            if (s[u] > max) max = s[u];
          }
          let sum = 0;
          for (let u = 0; u <= t; u++) sum += s[u] = Math.exp(s[u] - max);
          for (let u = 0; u <= t; u++) p[t * T + u] = s[u] / sum;
        }
        parts.push(
          heatmap({
            title: `layer ${i}, head ${h} (kv head ${kvh}): attention of each query (row) to each earlier key (column)`,
            rows: T,
            cols: T,
            cellW: Math.max(4, Math.min(12, Math.floor(600 / T))),
            cellH: Math.max(4, Math.min(12, Math.floor(600 / T))),
            value: (t, u) => p[t * T + u],
            scale: sequential("attention probability", 0, 1),
            rowLabel: (t) => d.token(d.positions[t]),
            colLabel: (u) => d.token(d.positions[u]),
            describe: (t, u) =>
              u > t ? `query ${d.at(t)} cannot see key ${d.at(u)} (causal)` : `layer ${i}, head ${h}: query ${d.at(t)} -> key ${d.at(u)}: ${p[t * T + u].toFixed(3)}`,
          }),
        );
      }
    } else parts.push(note(`Attention maps: this trace has no attention.${i}.q / attention.${i}.k.`));
    const gate = d.rows(`attention.${i}.gate`);
    if (gate) {
      const [H, dh] = gate.rowShape;
      const mean = new Float32Array(H * gate.rows);
      for (let t = 0; t < gate.rows; t++) {
        for (let h = 0; h < H; h++) {
          let s = 0;
          for (let x = 0; x < dh; x++) s += 1 / (1 + Math.exp(-gate.data[t * gate.width + h * dh + x]));
          mean[h * gate.rows + t] = s / dh;
        }
      }
      parts.push(
        heatmap({
          title: `attention.${i}.gate: the output gate sigmoid(gate), mean over each head's ${dh} channels`,
          rows: H,
          cols: gate.rows,
          cellH: 16,
          value: (h, t) => mean[h * gate.rows + t],
          scale: sequential("mean sigmoid(gate)", 0, 1),
          rowLabel: (h) => `head ${h}`,
          colLabel: (t) => d.token(d.positions[t]),
          describe: (h, t) => `layer ${i}, head ${h}, ${d.at(t)}: output gate ${mean[h * gate.rows + t].toFixed(3)}`,
        }),
      );
    } else parts.push(note(`Output gate: this trace has no attention.${i}.gate.`));
    out.push(section(`Layer ${i} (gated attention)`, ...parts));
  }
  return out;
}
