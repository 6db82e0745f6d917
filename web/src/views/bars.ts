/** A bar chart on a canvas, with a labelled value axis, a tooltip on hover and a keyboard cursor (arrow keys). */
export interface BarsSpec {
  title: string;
  values: number[];
  /** The value axis' name (with its unit). */
  unit: string;
  colour(i: number): string;
  describe(i: number): string;
  /** Groups named under the bars: [first bar, name]. */
  groups?: Array<[number, string]>;
}

export function bars(spec: BarsSpec): HTMLElement {
  const n = spec.values.length;
  const bw = Math.max(3, Math.min(24, Math.floor(1100 / Math.max(1, n))));
  const left = 56;
  const plotH = 180;
  const width = left + n * bw + 8;
  const height = plotH + 34;
  const max = Math.max(1e-9, ...spec.values);
  const figure = document.createElement("figure");
  figure.className = "heatmap";
  const caption = document.createElement("figcaption");
  caption.textContent = spec.title;
  const scroller = document.createElement("div");
  scroller.className = "scroller";
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.tabIndex = 0;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `${spec.title}: ${n} bars; arrow keys move a cursor`);
  const readout = document.createElement("div");
  readout.className = "readout";
  readout.setAttribute("aria-live", "polite");
  scroller.append(canvas);
  figure.append(caption, scroller, readout);
  const g = canvas.getContext("2d")!;
  const draw = (cursor: number | null) => {
    g.fillStyle = "#0f1115";
    g.fillRect(0, 0, width, height);
    g.strokeStyle = "#445";
    g.fillStyle = "#aab";
    g.font = "10px ui-monospace, monospace";
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (const f of [0, 0.5, 1]) {
      const y = 8 + plotH * (1 - f);
      g.beginPath();
      g.moveTo(left - 4, y);
      g.lineTo(width, y);
      g.stroke();
      g.fillText((max * f).toFixed(max * f >= 10 ? 0 : 1), left - 6, y);
    }
    g.save();
    g.translate(10, 8 + plotH / 2);
    g.rotate(-Math.PI / 2);
    g.textAlign = "center";
    g.fillText(spec.unit, 0, 0);
    g.restore();
    spec.values.forEach((v, i) => {
      const h = (v / max) * plotH;
      g.fillStyle = i === cursor ? "#fff" : spec.colour(i);
      g.fillRect(left + i * bw + 1, 8 + plotH - h, bw - 2, h);
    });
    g.fillStyle = "#aab";
    g.textAlign = "left";
    let free = 0; // where the previous group's name ended
    for (const [i, name] of spec.groups ?? []) {
      const x = Math.max(left + i * bw, free);
      g.fillText(name, x, plotH + 22);
      free = x + g.measureText(name).width + 10;
    }
  };
  draw(null);
  const tip = document.getElementById("tooltip");
  canvas.addEventListener("mousemove", (ev) => {
    const rect = canvas.getBoundingClientRect();
    const i = Math.floor((((ev.clientX - rect.left) * canvas.width) / rect.width - left) / bw);
    if (!tip) return;
    if (i < 0 || i >= n) {
      tip.hidden = true;
      return;
    }
    tip.textContent = spec.describe(i);
    tip.hidden = false;
    tip.style.left = `${ev.pageX + 14}px`;
    tip.style.top = `${ev.pageY + 14}px`;
  });
  canvas.addEventListener("mouseleave", () => {
    if (tip) tip.hidden = true;
  });
  let cursor = 0;
  const show = () => {
    draw(cursor);
    readout.textContent = spec.describe(cursor);
  };
  canvas.addEventListener("focus", show);
  canvas.addEventListener("blur", () => draw(null));
  canvas.addEventListener("keydown", (ev) => {
    const to = ev.key === "ArrowLeft" ? cursor - 1 : ev.key === "ArrowRight" ? cursor + 1 : ev.key === "Home" ? 0 : ev.key === "End" ? n - 1 : null;
    if (to === null) return;
    ev.preventDefault();
    cursor = Math.max(0, Math.min(n - 1, to));
    show();
  });
  return figure;
}
