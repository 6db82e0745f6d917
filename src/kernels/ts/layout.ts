/** Moving activations between layouts: regrouping, splitting and joining columns, tiling heads, gather/scatter. */
import type { SplitBaArgs, SplitQkvzArgs, Vec } from "../types.js";

/** Per key head [q (dk) | k (dk) | v (r dv) | z (r dv)] -> mixed [all q | all k | all v], z. */
export function splitQkvz({ qkvz, T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv, mixed, z }: SplitQkvzArgs): void {
  const rdv = (Hv / Hk) * dv;
  const C = 2 * Hk * dk + Hk * rdv;
  const group = 2 * dk + 2 * rdv;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < Hk; h++) {
      const src = qkvz.subarray((t * Hk + h) * group, (t * Hk + h + 1) * group);
      mixed.set(src.subarray(0, dk), t * C + h * dk);
      mixed.set(src.subarray(dk, 2 * dk), t * C + Hk * dk + h * dk);
      mixed.set(src.subarray(2 * dk, 2 * dk + rdv), t * C + 2 * Hk * dk + h * rdv);
      z.set(src.subarray(2 * dk + rdv, group), (t * Hk + h) * rdv);
    }
  }
}

/** Per key head [b (r) | a (r)] -> b, a per value head. */
export function splitBa({ ba, T, numKeyHeads: Hk, numValueHeads: Hv, b, a }: SplitBaArgs): void {
  const r = Hv / Hk;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < Hk; h++) {
      const src = (t * Hk + h) * 2 * r;
      b.set(ba.subarray(src, src + r), t * Hv + h * r);
      a.set(ba.subarray(src + r, src + 2 * r), t * Hv + h * r);
    }
  }
}

export function splitColumns(x: Vec, widths: readonly number[], outs: readonly Vec[]): void {
  const W = widths.reduce((s, w) => s + w, 0);
  const R = x.length / W;
  for (let t = 0; t < R; t++) {
    let at = t * W;
    widths.forEach((w, i) => {
      outs[i].set(x.subarray(at, at + w), t * w);
      at += w;
    });
  }
}

export function concatColumns(xs: readonly Vec[], widths: readonly number[], out: Vec): void {
  const W = widths.reduce((s, w) => s + w, 0);
  const R = out.length / W;
  for (let t = 0; t < R; t++) {
    let at = t * W;
    widths.forEach((w, i) => {
      out.set(xs[i].subarray(t * w, (t + 1) * w), at);
      at += w;
    });
  }
}

export function tileHeads(x: Vec, T: number, Hk: number, Hv: number, d: number, out: Vec): void {
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < Hv; h++) out.set(x.subarray((t * Hk + (h % Hk)) * d, (t * Hk + (h % Hk) + 1) * d), (t * Hv + h) * d);
  }
}

export function gatherRows(x: Vec, width: number, rows: Int32Array, out: Vec): void {
  rows.forEach((r, j) => out.set(x.subarray(r * width, (r + 1) * width), j * width));
}

export function scatterAxpyRows(a: Vec, x: Vec, width: number, rows: Int32Array, y: Vec): void {
  rows.forEach((r, j) => {
    const s = a[j];
    const xo = j * width;
    const yo = r * width;
    for (let i = 0; i < width; i++) y[yo + i] += s * x[xo + i];
  });
}

export function fill(x: Vec, value: number): void {
  x.fill(value);
}

export function copy(src: Vec, dst: Vec): void {
  dst.set(src);
}
