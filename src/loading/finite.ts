/**
 * Non-finite weights (NaN, +-Infinity) found at load, so that a damaged checkpoint is named by its tensor
 * instead of surfacing later as NaN logits or out-of-range expert ids.
 *
 *   BF16: exponent bits 0x7f80 all set;  F16: 0x7c00 all set;  F32 / F64: !Number.isFinite.
 * Block-quantized weights are not scanned here (their scales are checked by their own reader, if at all).
 */
import type { Weight } from "../kernels/types.js";

/** Index of the first NaN or infinite element of `w`, with its value, or undefined when all are finite. */
export function firstNonFiniteWeight(w: Weight): { index: number; value: number } | undefined {
  const d = w.data;
  if (w.dtype === "BF16" || w.dtype === "F16") {
    const words = d as Uint16Array;
    const exp = w.dtype === "BF16" ? 0x7f80 : 0x7c00;
    const mant = w.dtype === "BF16" ? 0x007f : 0x03ff;
    // Two words at a time where aligned (the common case: a whole tensor in its own buffer).
    const pairs = words.byteOffset % 4 === 0 ? new Uint32Array(words.buffer, words.byteOffset, words.length >> 1) : undefined;
    let start = 0;
    if (pairs) {
      let i = 0;
      for (; i < pairs.length; i++) {
        const x = pairs[i];
        if ((x & exp) === exp || ((x >>> 16) & exp) === exp) break;
      }
      start = 2 * i;
    }
    for (let i = start; i < words.length; i++) {
      if ((words[i] & exp) === exp) return { index: i, value: words[i] & mant ? NaN : words[i] & 0x8000 ? -Infinity : Infinity };
    }
    return undefined;
  }
  if (w.dtype === "F32" || w.dtype === "F64") {
    const v = d as Float32Array | Float64Array;
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return { index: i, value: v[i] };
  }
  return undefined;
}

/** Throws one line naming the tensor, the element and its value when `w` holds a non-finite value. */
export function checkFiniteWeight(w: Weight, where: string): void {
  const bad = firstNonFiniteWeight(w);
  if (bad === undefined) return;
  throw new Error(
    `${where}: tensor "${w.name}" holds ${bad.value} at element ${bad.index} (shape [${w.shape.join(", ")}]); the checkpoint is damaged (expected finite weights)`,
  );
}
