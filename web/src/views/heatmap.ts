/**
 * A heatmap on a canvas: rows x cols cells coloured by a scale, with a legend, an optional text per cell, a
 * tooltip on hover and a keyboard cursor (arrow keys, Home/End) whose cell is named in a live readout line.
 */
import { css, legend, type Scale } from "./colour.js";

export interface HeatmapSpec {
  title: string;
  rows: number;
  cols: number;
  /** NaN: an empty cell. */
  value(r: number, c: number): number;
  scale: Scale;
  cellW?: number;
  cellH?: number;
  /** Labels left of the rows and under the columns. */
  rowLabel?(r: number): string;
  colLabel?(c: number): string;
  /** Text drawn inside a cell (when it fits). */
  text?(r: number, c: number): string;
  /** What hover and the keyboard cursor say about a cell. */
  describe(r: number, c: number): string;
  /** Extra gap (pixels) before these rows, to separate groups such as heads. */
  gapBefore?(r: number): number;
}

const EMPTY = "#1b1f27";

export function heatmap(spec: HeatmapSpec): HTMLElement {
  const cw = spec.cellW ?? 12;
  const ch = spec.cellH ?? 12;
  const rowLabelW = spec.rowLabel ? 90 : 0;
  const colLabelH = spec.colLabel ? 64 : 0;
  const ys: number[] = [];
  let y = 0;
  for (let r = 0; r < spec.rows; r++) {
    y += spec.gapBefore?.(r) ?? 0;
    ys.push(y);
    y += ch;
  }
  const width = rowLabelW + spec.cols * cw;
  const height = y + colLabelH;

  const figure = document.createElement("figure");
  figure.className = "heatmap";
  const caption = document.createElement("figcaption");
  caption.textContent = spec.title;
  const scroller = document.createElement("div");
  scroller.className = "scroller";
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, width);
  canvas.height = Math.max(1, height);
  canvas.tabIndex = 0;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `${spec.title}: ${spec.rows} rows by ${spec.cols} columns; arrow keys move a cursor`);
  const readout = document.createElement("div");
  readout.className = "readout";
  readout.setAttribute("aria-live", "polite");
  scroller.append(canvas);
  figure.append(caption, legend(spec.scale), scroller, readout);

  const g = canvas.getContext("2d")!;
  const draw = (cursor: [number, number] | null) => {
    g.fillStyle = "#0f1115";
    g.fillRect(0, 0, width, height);
    g.font = `${Math.min(11, ch - 2)}px ui-monospace, monospace`;
    g.textBaseline = "middle";
    for (let r = 0; r < spec.rows; r++) {
      if (spec.rowLabel) {
        g.fillStyle = "#aab";
        g.textAlign = "right";
        g.font = "10px ui-monospace, monospace";
        g.fillText(spec.rowLabel(r), rowLabelW - 4, ys[r] + Math.max(ch, 10) / 2, rowLabelW - 6);
        g.font = `${Math.min(11, ch - 2)}px ui-monospace, monospace`;
      }
      for (let c = 0; c < spec.cols; c++) {
        const v = spec.value(r, c);
        const x0 = rowLabelW + c * cw;
        if (Number.isNaN(v)) {
          g.fillStyle = EMPTY;
          g.fillRect(x0, ys[r], cw, ch);
          continue;
        }
        const rgb = spec.scale.colour(v);
        g.fillStyle = css(rgb);
        g.fillRect(x0, ys[r], cw, ch);
        const t = spec.text?.(r, c);
        if (t && cw >= 16) {
          g.fillStyle = rgb[0] * 0.3 + rgb[1] * 0.55 + rgb[2] * 0.15 > 140 ? "#000" : "#fff";
          g.textAlign = "center";
          g.fillText(t, x0 + cw / 2, ys[r] + ch / 2, cw - 2);
        }
      }
    }
    if (spec.colLabel) {
      g.fillStyle = "#aab";
      g.textAlign = "right";
      g.font = "10px ui-monospace, monospace";
      for (let c = 0; c < spec.cols; c++) {
        g.save();
        g.translate(rowLabelW + c * cw + cw / 2 + 3, y + 4);
        g.rotate(-Math.PI / 2.4);
        g.fillText(clip(spec.colLabel(c), 10), 0, 0);
        g.restore();
      }
    }
    if (cursor) {
      g.strokeStyle = "#fff";
      g.lineWidth = 2;
      g.strokeRect(rowLabelW + cursor[1] * cw + 1, ys[cursor[0]] + 1, cw - 2, ch - 2);
    }
  };
  draw(null);

  const cellAt = (ev: MouseEvent): [number, number] | null => {
    const rect = canvas.getBoundingClientRect();
    const px = ((ev.clientX - rect.left) * canvas.width) / rect.width - rowLabelW;
    const py = ((ev.clientY - rect.top) * canvas.height) / rect.height;
    const c = Math.floor(px / cw);
    if (c < 0 || c >= spec.cols) return null;
    for (let r = 0; r < spec.rows; r++) if (py >= ys[r] && py < ys[r] + ch) return [r, c];
    return null;
  };
  const tip = document.getElementById("tooltip");
  canvas.addEventListener("mousemove", (ev) => {
    const cell = cellAt(ev);
    if (!tip) return;
    if (!cell) {
      tip.hidden = true;
      return;
    }
    tip.textContent = spec.describe(cell[0], cell[1]);
    tip.hidden = false;
    tip.style.left = `${ev.pageX + 14}px`;
    tip.style.top = `${ev.pageY + 14}px`;
  });
  canvas.addEventListener("mouseleave", () => {
    if (tip) tip.hidden = true;
  });
  let cursor: [number, number] = [0, 0];
  const show = () => {
    draw(cursor);
    readout.textContent = spec.describe(cursor[0], cursor[1]);
  };
  canvas.addEventListener("focus", show);
  canvas.addEventListener("blur", () => draw(null));
  canvas.addEventListener("keydown", (ev) => {
    const [r, c] = cursor;
    const moves: Record<string, [number, number]> = {
      ArrowUp: [r - 1, c],
      ArrowDown: [r + 1, c],
      ArrowLeft: [r, c - 1],
      ArrowRight: [r, c + 1],
      Home: [r, 0],
      End: [r, spec.cols - 1],
    };
    const m = moves[ev.key];
    if (!m) return;
    ev.preventDefault();
    cursor = [Math.max(0, Math.min(spec.rows - 1, m[0])), Math.max(0, Math.min(spec.cols - 1, m[1]))];
    show();
  });
  return figure;
}

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** A paragraph saying why a part of a view is empty. */
export function note(text: string): HTMLElement {
  const p = document.createElement("p");
  p.className = "note";
  p.textContent = text;
  return p;
}

export function section(title: string, ...children: HTMLElement[]): HTMLElement {
  const s = document.createElement("section");
  const h = document.createElement("h3");
  h.textContent = title;
  s.append(h, ...children);
  return s;
}
