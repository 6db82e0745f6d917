/**
 * Non-finite weights (NaN, +-Infinity) found at load, so that a damaged checkpoint is named by its tensor
 * instead of surfacing later as NaN logits or out-of-range expert ids.
 *
 *   BF16: exponent bits 0x7f80 all set;  F16: 0x7c00 all set;  F32 / F64: !Number.isFinite.
 *   ggml blocks (GGUF): the F16 scale fields of each block (d, and m / dmin where the type has one), at the byte
 *   offsets of ggml's block structs; a non-finite scale makes the whole block's values non-finite. The packed
 *   integer quants themselves are always finite.
 */
import { GGML_TYPES_BY_NAME } from "../io/ggml_types.js";
import type { QuantDType, Weight } from "../kernels/types.js";

/** Byte offsets of the F16 scale fields inside one block (ggml-common.h's block_q* structs). */
const BLOCK_SCALES: Readonly<Record<QuantDType, readonly number[]>> = {
  Q4_0: [0], // d, qs[16]
  Q4_1: [0, 2], // d, m, qs[16]
  Q5_0: [0], // d, qh[4], qs[16]
  Q5_1: [0, 2], // d, m, qh[4], qs[16]
  Q8_0: [0], // d, qs[32]
  Q4_K: [0, 2], // d, dmin, scales[12], qs[128]
  Q5_K: [0, 2], // d, dmin, scales[12], qh[32], qs[128]
  Q6_K: [208], // ql[128], qh[64], scales[16], d
};

/**
 * Index of the first NaN or infinite element of `w`, with its value, or undefined when all are finite. For a
 * quantized weight: the first element of the first block whose scale is not finite (`scale` set).
 */
export function firstNonFiniteWeight(w: Weight): { index: number; value: number; scale?: true } | undefined {
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
    return undefined;
  }
  return firstNonFiniteScale(w);
}

/** The first block of a quantized weight whose F16 scale is not finite: its first element and the scale. */
function firstNonFiniteScale(w: Weight): { index: number; value: number; scale: true } | undefined {
  const offsets = BLOCK_SCALES[w.dtype as QuantDType];
  const info = GGML_TYPES_BY_NAME.get(w.dtype);
  if (!offsets || !info) return undefined;
  const bytes = w.data as Uint8Array;
  for (let b = 0, at = 0; at + info.typeSize <= bytes.length; b++, at += info.typeSize) {
    for (const o of offsets) {
      const word = bytes[at + o] | (bytes[at + o + 1] << 8);
      if ((word & 0x7c00) === 0x7c00) {
        return { index: b * info.blockSize, value: word & 0x03ff ? NaN : word & 0x8000 ? -Infinity : Infinity, scale: true };
      }
    }
  }
  return undefined;
}

/** Throws one line naming the tensor, the element and its value when `w` holds a non-finite value. */
export function checkFiniteWeight(w: Weight, where: string): void {
  const bad = firstNonFiniteWeight(w);
  if (bad === undefined) return;
  throw new Error(
    `${where}: tensor "${w.name}" holds ${bad.value} ${bad.scale ? `as the ${w.dtype} block scale of element` : "at element"} ${bad.index} (shape [${w.shape.join(", ")}]); the checkpoint is damaged (expected finite weights)`,
  );
}
