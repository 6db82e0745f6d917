/** Colour scales for the views: sequential (viridis) for magnitudes and probabilities, diverging for signed values. */
export type Rgb = [number, number, number];

const VIRIDIS: Rgb[] = [
  [68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37],
];
const DIVERGING: Rgb[] = [
  [5, 48, 97], [33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247],
  [253, 219, 199], [239, 138, 98], [178, 24, 43], [103, 0, 31],
];

function ramp(stops: Rgb[], t: number): Rgb {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i];
  const b = stops[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** A value -> colour map over [min, max], with what it measures (shown in the legend). */
export interface Scale {
  label: string;
  min: number;
  max: number;
  colour(v: number): Rgb;
}

export function sequential(label: string, min: number, max: number): Scale {
  const span = max > min ? max - min : 1;
  return { label, min, max, colour: (v) => ramp(VIRIDIS, (v - min) / span) };
}

/** Symmetric around 0: [-m, m] with m the largest magnitude. */
export function diverging(label: string, maxAbs: number): Scale {
  const m = maxAbs > 0 ? maxAbs : 1;
  return { label, min: -m, max: m, colour: (v) => ramp(DIVERGING, (v + m) / (2 * m)) };
}

export const css = ([r, g, b]: Rgb): string => `rgb(${r | 0},${g | 0},${b | 0})`;

/** The finite range of some values. */
export function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

/** A legend: the gradient with its two ends and what it measures. */
export function legend(scale: Scale): HTMLElement {
  const box = document.createElement("div");
  box.className = "legend";
  const c = document.createElement("canvas");
  c.width = 160;
  c.height = 10;
  c.setAttribute("aria-hidden", "true");
  const g = c.getContext("2d")!;
  for (let x = 0; x < c.width; x++) {
    g.fillStyle = css(scale.colour(scale.min + ((scale.max - scale.min) * x) / (c.width - 1)));
    g.fillRect(x, 0, 1, c.height);
  }
  const fmt = (v: number) => (Math.abs(v) >= 100 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : v.toFixed(2));
  const lo = document.createElement("span");
  lo.textContent = fmt(scale.min);
  const hi = document.createElement("span");
  hi.textContent = fmt(scale.max);
  const what = document.createElement("span");
  what.className = "legend-label";
  what.textContent = scale.label;
  box.append(lo, c, hi, what);
  box.setAttribute("aria-label", `colour scale: ${scale.label}, from ${fmt(scale.min)} to ${fmt(scale.max)}`);
  return box;
}
