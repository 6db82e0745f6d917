/**
 * ggml's block-quantized formats: what the bytes of a block mean, and the two directions
 *   dequantizeRow: blocks -> float32 values, the same operations in the same order as ggml's C
 *                  `dequantize_row_*` (every float operation rounded to float32, as C does), so the
 *                  values are bit for bit ggml's;
 *   quantizeRow:   float32 values -> blocks, as ggml's reference quantizers `quantize_row_*_ref` (the path
 *                  `llama-quantize` takes without an importance matrix).
 *
 * Block layouts (little-endian; `f16` is an IEEE half; a row of n values is n / blockSize blocks):
 *   Q8_0  (32 values, 34 bytes)   d:f16, q:int8[32]                      x = q * d
 *   Q4_0  (32 values, 18 bytes)   d:f16, q:u8[16]                        x[j] = (lo(q[j]) - 8) d, x[j+16] = (hi(q[j]) - 8) d
 *   Q4_1  (32 values, 20 bytes)   d:f16, m:f16, q:u8[16]                 x[j] = lo(q[j]) d + m, x[j+16] = hi(q[j]) d + m
 *   Q5_0  (32 values, 22 bytes)   d:f16, qh:u32, q:u8[16]                as Q4_0 with bit j of qh as 5th bit of value j, minus 16
 *   Q5_1  (32 values, 24 bytes)   d:f16, m:f16, qh:u32, q:u8[16]         as Q4_1 with the 5th bit from qh
 *   Q4_K  (256 values, 144 bytes) d:f16, dmin:f16, sc:u8[12], q:u8[128]  8 sub-blocks of 32, each with a 6-bit
 *         scale s and min m (packed in sc, see scaleMinK4): x = (d s) q - (dmin m), q a nibble;
 *         the 64 values 64c.. take the low nibbles of q[32c..32c+31], then their high nibbles
 *   Q5_K  (256 values, 176 bytes) d, dmin, sc:u8[12], qh:u8[32], q:u8[128]  as Q4_K with a 5th bit:
 *         value i of the 64-chunk c (sub-block 2c + (i >= 32)) adds 16 when bit (2c + (i >= 32)) of qh[i % 32] is set
 *   Q6_K  (256 values, 210 bytes) ql:u8[128], qh:u8[64], sc:int8[16], d:f16  16 sub-blocks of 16 with 8-bit
 *         signed scales: x = (d sc) (q - 32), q = 4 low bits from ql, 2 high bits from qh (see dequantizeQ6K)
 */
import type { QuantDType } from "../kernels/types.js";
import { f16ToF32, f32ToF16 } from "./dtype.js";
import { GGML_TYPES_BY_NAME } from "./ggml_types.js";

const fr = Math.fround;

export const QUANT_DTYPES: readonly QuantDType[] = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"];

export function isQuantDType(d: string): d is QuantDType {
  return (QUANT_DTYPES as readonly string[]).includes(d);
}

/** Values per block and bytes per block of a quantized type. */
export function quantBlock(dtype: QuantDType): { blockSize: number; typeSize: number } {
  const t = GGML_TYPES_BY_NAME.get(dtype)!;
  return { blockSize: t.blockSize, typeSize: t.typeSize };
}

/** Bytes of one row of n values. */
export function quantRowBytes(dtype: QuantDType, n: number): number {
  const { blockSize, typeSize } = quantBlock(dtype);
  if (n % blockSize !== 0) throw new Error(`a ${dtype} row holds whole blocks of ${blockSize}, got ${n} values`);
  return (n / blockSize) * typeSize;
}

const half = (b: Uint8Array, o: number): number => f16ToF32(b[o] | (b[o + 1] << 8));
const putHalf = (b: Uint8Array, o: number, v: number): void => {
  const h = f32ToF16(v);
  b[o] = h & 0xff;
  b[o + 1] = h >> 8;
};
const int8 = (u: number): number => (u << 24) >> 24;
const u32le = (b: Uint8Array, o: number): number => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
const putU32 = (b: Uint8Array, o: number, v: number): void => {
  for (let i = 0; i < 4; i++) b[o + i] = (v >>> (8 * i)) & 0xff;
};

/**
 * The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block whose 12 scale bytes start at `o`:
 * sub-blocks 0-3 keep theirs in the low 6 bits of bytes j and j+4; sub-blocks 4-7 keep their low 4 bits in
 * the nibbles of byte j+4 and their top 2 bits in the top bits of bytes j-4 (scale) and j (min).
 */
export function scaleMinK4(b: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [b[o + j] & 63, b[o + j + 4] & 63];
  return [(b[o + j + 4] & 0xf) | ((b[o + j - 4] >> 6) << 4), (b[o + j + 4] >> 4) | ((b[o + j] >> 6) << 4)];
}

// ---------------------------------------------------------------------------------------------------------
// Dequantization (ggml's dequantize_row_*): n values from the blocks at src[o..] into dst[k..k+n).

export function dequantizeRow(dtype: QuantDType, src: Uint8Array, o: number, dst: Float32Array | Float64Array, n: number, k = 0): void {
  const { blockSize, typeSize } = quantBlock(dtype);
  if (n % blockSize !== 0) throw new Error(`a ${dtype} row holds whole blocks of ${blockSize}, got ${n} values`);
  const f = DEQUANT[dtype];
  for (let b = 0; b < n / blockSize; b++) f(src, o + b * typeSize, dst, k + b * blockSize);
}

type BlockDecoder = (b: Uint8Array, o: number, y: Float32Array | Float64Array, k: number) => void;

const DEQUANT: Record<QuantDType, BlockDecoder> = {
  Q8_0(b, o, y, k) {
    const d = half(b, o);
    for (let j = 0; j < 32; j++) y[k + j] = fr(int8(b[o + 2 + j]) * d);
  },
  Q4_0(b, o, y, k) {
    const d = half(b, o);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 2 + j];
      y[k + j] = fr(((q & 0xf) - 8) * d);
      y[k + j + 16] = fr(((q >> 4) - 8) * d);
    }
  },
  Q4_1(b, o, y, k) {
    const d = half(b, o), m = half(b, o + 2);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 4 + j];
      y[k + j] = fr(fr((q & 0xf) * d) + m);
      y[k + j + 16] = fr(fr((q >> 4) * d) + m);
    }
  },
  Q5_0(b, o, y, k) {
    const d = half(b, o), qh = u32le(b, o + 2);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 6 + j];
      y[k + j] = fr((((q & 0xf) | (((qh >>> j) << 4) & 0x10)) - 16) * d);
      y[k + j + 16] = fr((((q >> 4) | ((qh >>> (j + 12)) & 0x10)) - 16) * d);
    }
  },
  Q5_1(b, o, y, k) {
    const d = half(b, o), m = half(b, o + 2), qh = u32le(b, o + 4);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 8 + j];
      y[k + j] = fr(fr(((q & 0xf) | (((qh >>> j) << 4) & 0x10)) * d) + m);
      y[k + j + 16] = fr(fr(((q >> 4) | ((qh >>> (j + 12)) & 0x10)) * d) + m);
    }
  },
  Q4_K(b, o, y, k) {
    const d = half(b, o), dmin = half(b, o + 2);
    for (let c = 0; c < 4; c++) {
      const [s1, m1] = scaleMinK4(b, o + 4, 2 * c), [s2, m2] = scaleMinK4(b, o + 4, 2 * c + 1);
      const d1 = fr(d * s1), n1 = fr(dmin * m1), d2 = fr(d * s2), n2 = fr(dmin * m2);
      const q = o + 16 + 32 * c, yk = k + 64 * c;
      for (let l = 0; l < 32; l++) y[yk + l] = fr(fr(d1 * (b[q + l] & 0xf)) - n1);
      for (let l = 0; l < 32; l++) y[yk + 32 + l] = fr(fr(d2 * (b[q + l] >> 4)) - n2);
    }
  },
  Q5_K(b, o, y, k) {
    const d = half(b, o), dmin = half(b, o + 2);
    for (let c = 0; c < 4; c++) {
      const [s1, m1] = scaleMinK4(b, o + 4, 2 * c), [s2, m2] = scaleMinK4(b, o + 4, 2 * c + 1);
      const d1 = fr(d * s1), n1 = fr(dmin * m1), d2 = fr(d * s2), n2 = fr(dmin * m2);
      const u1 = 1 << (2 * c), u2 = 2 << (2 * c);
      const qh = o + 16, ql = o + 48 + 32 * c, yk = k + 64 * c;
      for (let l = 0; l < 32; l++) y[yk + l] = fr(fr(d1 * ((b[ql + l] & 0xf) + (b[qh + l] & u1 ? 16 : 0))) - n1);
      for (let l = 0; l < 32; l++) y[yk + 32 + l] = fr(fr(d2 * ((b[ql + l] >> 4) + (b[qh + l] & u2 ? 16 : 0))) - n2);
    }
  },
  Q6_K(b, o, y, k) {
    const d = half(b, o + 208);
    // Two halves of 128 values; in each, l = 0..31 gives four values l, l+32, l+64, l+96 from the low and
    // high nibbles of ql[l], ql[l+32] and the four 2-bit fields of qh[l]; scales sc[l/16 + 0, 2, 4, 6].
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h, qh = o + 128 + 32 * h, sc = o + 192 + 8 * h, yk = k + 128 * h;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4, a = b[ql + l], c = b[ql + l + 32], hb = b[qh + l];
        const q1 = ((a & 0xf) | (((hb >> 0) & 3) << 4)) - 32;
        const q2 = ((c & 0xf) | (((hb >> 2) & 3) << 4)) - 32;
        const q3 = ((a >> 4) | (((hb >> 4) & 3) << 4)) - 32;
        const q4 = ((c >> 4) | (((hb >> 6) & 3) << 4)) - 32;
        y[yk + l] = fr(fr(d * int8(b[sc + is])) * q1);
        y[yk + l + 32] = fr(fr(d * int8(b[sc + is + 2])) * q2);
        y[yk + l + 64] = fr(fr(d * int8(b[sc + is + 4])) * q3);
        y[yk + l + 96] = fr(fr(d * int8(b[sc + is + 6])) * q4);
      }
    }
  },
};

// ---------------------------------------------------------------------------------------------------------
// Reference quantization (ggml's quantize_row_*_ref), float32 arithmetic step by step. `x` holds float32
// values (a Float32Array, or numbers already rounded to float32).

/** quantizeRow: n values of x[k..] into blocks at dst[o..]. Values must be finite. */
export function quantizeRow(dtype: QuantDType, x: ArrayLike<number>, k: number, dst: Uint8Array, o: number, n: number): void {
  const { blockSize, typeSize } = quantBlock(dtype);
  if (n % blockSize !== 0) throw new Error(`a ${dtype} row holds whole blocks of ${blockSize}, got ${n} values`);
  const xs = new Float32Array(blockSize);
  const f = QUANT[dtype];
  for (let b = 0; b < n / blockSize; b++) {
    for (let i = 0; i < blockSize; i++) {
      const v = x[k + b * blockSize + i];
      if (!Number.isFinite(v)) throw new Error(`cannot quantize ${v} to ${dtype} (value ${b * blockSize + i} of the row)`);
      xs[i] = v;
    }
    dst.fill(0, o + b * typeSize, o + (b + 1) * typeSize);
    f(xs, dst, o + b * typeSize);
  }
}

/** ggml's nearest_int: round half to even through the float32 sum with 1.5 * 2^23 (|v| < 2^22). */
export function nearestInt(v: number): number {
  return fr(v + 12582912) - 12582912;
}

/** Smallest and largest of a 32-value block (ggml starts from FLT_MAX / -FLT_MAX). */
function minMax(x: Float32Array): [number, number] {
  let min = Infinity, max = -Infinity;
  for (let j = 0; j < 32; j++) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  return [min, max];
}

/** C's roundf: half away from zero. */
const roundf = (v: number): number => (v < 0 ? -Math.round(-v) : Math.round(v));
const GROUP_MAX_EPS = fr(1e-15);

type BlockEncoder = (x: Float32Array, y: Uint8Array, o: number) => void;

const QUANT: Record<QuantDType, BlockEncoder> = {
  Q8_0(x, y, o) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, o, d);
    for (let j = 0; j < 32; j++) y[o + 2 + j] = roundf(fr(x[j] * id)) & 0xff;
  },
  Q4_0(x, y, o) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      if (amax < Math.abs(x[j])) {
        amax = Math.abs(x[j]);
        max = x[j];
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, o, d);
    for (let j = 0; j < 16; j++) {
      // (int8_t)(v + 8.5f): truncation toward zero, then at most 15.
      const q0 = Math.min(15, Math.trunc(fr(fr(x[j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(x[j + 16] * id) + 8.5)));
      y[o + 2 + j] = q0 | (q1 << 4);
    }
  },
  Q4_1(x, y, o) {
    const [min, max] = minMax(x);
    const d = fr(fr(max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, o, d);
    putHalf(y, o + 2, min);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(fr(x[j] - min) * id) + 0.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(fr(x[j + 16] - min) * id) + 0.5)));
      y[o + 4 + j] = q0 | (q1 << 4);
    }
  },
  Q5_0(x, y, o) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      if (amax < Math.abs(x[j])) {
        amax = Math.abs(x[j]);
        max = x[j];
      }
    }
    const d = fr(max / -16);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, o, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, Math.trunc(fr(fr(x[j] * id) + 16.5)));
      const q1 = Math.min(31, Math.trunc(fr(fr(x[j + 16] * id) + 16.5)));
      y[o + 6 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 & 0x10) >> 4) << j;
      qh |= ((q1 & 0x10) >> 4) << (j + 16);
    }
    putU32(y, o + 2, qh >>> 0);
  },
  Q5_1(x, y, o) {
    const [min, max] = minMax(x);
    const d = fr(fr(max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    putHalf(y, o, d);
    putHalf(y, o + 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      // (uint8_t)(v + 0.5f): truncation, no clamp (v + 0.5 stays below 32 up to rounding)
      const q0 = Math.trunc(fr(fr(fr(x[j] - min) * id) + 0.5)) & 0xff;
      const q1 = Math.trunc(fr(fr(fr(x[j + 16] - min) * id) + 0.5)) & 0xff;
      y[o + 8 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 & 0x10) >> 4) << j;
      qh |= ((q1 & 0x10) >> 4) << (j + 16);
    }
    putU32(y, o + 4, qh >>> 0);
  },
  Q4_K: (x, y, o) => quantizeKQuant(x, y, o, 15),
  Q5_K: (x, y, o) => quantizeKQuant(x, y, o, 31),
  Q6_K: quantizeQ6K,
};

/**
 * ggml's make_qkx2_quants: an affine fit x ~ scale * L - min (L in 0..nmax, min >= 0) of n values with
 * weights, trying nstep + 1 scales around nmax / (max - min) and keeping the lowest weighted squared error.
 * Writes L[0..n) and returns [scale, min].
 */
function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, Lo: number, Laux: Uint8Array,
  rmin: number, rdelta: number, nstep: number,
): [number, number] {
  let min = x[xo], max = x[xo];
  let sumW = w[0];
  let sumX = fr(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i];
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fr(sumW + w[i]);
    sumX = fr(sumX + fr(w[i] * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, Lo, Lo + n);
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[xo + i] - min)))));
    L[Lo + i] = l;
    const diff = fr(fr(fr(scale * l) + min) - x[xo + i]);
    bestError = fr(bestError + fr(w[i] * fr(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[xo + i] - min)))));
      Laux[i] = l;
      const wl = fr(w[i] * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[xo + i]));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let cur = 0;
      for (let i = 0; i < n; i++) {
        const diff = fr(fr(fr(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        cur = fr(cur + fr(w[i] * fr(diff * diff)));
      }
      if (cur < bestError) {
        for (let i = 0; i < n; i++) L[Lo + i] = Laux[i];
        bestError = cur;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** quantize_row_q4_K_ref (nmax 15) and quantize_row_q5_K_ref (nmax 31) on one 256-value block. */
function quantizeKQuant(x: Float32Array, y: Uint8Array, o: number, nmax: 15 | 31): void {
  const L = new Uint8Array(256), Laux = new Uint8Array(32), w = new Float32Array(32);
  const scales = new Float32Array(8), mins = new Float32Array(8);
  const [rmin, rdelta, nstep] = nmax === 15 ? [-1, fr(0.1), 20] : [-0.5, fr(0.1), 15];
  let maxScale = 0, maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[32 * j + l] * x[32 * j + l]));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) w[l] = fr(avX + Math.abs(x[32 * j + l]));
    const [s, m] = makeQkx2Quants(32, nmax, x, 32 * j, w, L, 32 * j, Laux, rmin, rdelta, nstep);
    scales[j] = s;
    mins[j] = m;
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const sc = o + 4;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j])) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j])) & 0xff);
    if (j < 4) {
      y[sc + j] = ls;
      y[sc + j + 4] = lm;
    } else {
      y[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      y[sc + j - 4] |= (ls >> 4) << 6;
      y[sc + j] |= (lm >> 4) << 6;
    }
  }
  putHalf(y, o, fr(maxScale / 63));
  putHalf(y, o + 2, fr(maxMin / 63));
  const d0 = half(y, o), dmin0 = half(y, o + 2);
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(y, sc, j);
    const d = fr(d0 * s);
    if (!d) continue;
    const dm = fr(dmin0 * m);
    for (let i = 0; i < 32; i++) L[32 * j + i] = Math.max(0, Math.min(nmax, nearestInt(fr(fr(x[32 * j + i] + dm) / d))));
  }
  if (nmax === 15) {
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) y[o + 16 + 32 * c + l] = L[64 * c + l] | (L[64 * c + l + 32] << 4);
    }
    return;
  }
  const qh = o + 16, ql = o + 48;
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      let l1 = L[64 * c + l], l2 = L[64 * c + l + 32];
      if (l1 > 15) {
        l1 -= 16;
        y[qh + l] |= 1 << (2 * c);
      }
      if (l2 > 15) {
        l2 -= 16;
        y[qh + l] |= 2 << (2 * c);
      }
      y[ql + 32 * c + l] = l1 | (l2 << 4);
    }
  }
}

/**
 * ggml's make_qx_quants with rmse_type 1 and no importance weights: a symmetric fit x ~ scale * l,
 * l in -nmax..nmax-1 (stored as l + nmax), weights x^2, trying 18 scales around -nmax / max.
 */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, Lo: number): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    L.fill(0, Lo, Lo + n);
    return 0;
  }
  const fit = (iscale: number, store: boolean): [number, number] => {
    let sumlx = 0, suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * v))));
      if (store) L[Lo + i] = l + nmax;
      const w = fr(v * v);
      sumlx = fr(sumlx + fr(fr(w * v) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = fit(fr(-nmax / max), true);
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    [sumlx, suml2] = fit(iscale, false);
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      fit(iscale, true);
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** quantize_row_q6_K_ref on one 256-value block. */
function quantizeQ6K(x: Float32Array, y: Uint8Array, o: number): void {
  const L = new Int8Array(256), scales = new Float32Array(16);
  let maxScale = 0, maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    scales[ib] = makeQxQuants(16, 32, x, 16 * ib, L, 16 * ib);
    const a = Math.abs(scales[ib]);
    if (a > maxAbsScale) {
      maxAbsScale = a;
      maxScale = scales[ib];
    }
  }
  if (maxAbsScale < GROUP_MAX_EPS) return; // the block stays all zero (d = 0)
  const iscale = fr(-128 / maxScale);
  putHalf(y, o + 208, fr(1 / iscale));
  for (let ib = 0; ib < 16; ib++) y[o + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]))) & 0xff;
  const d0 = half(y, o + 208);
  for (let j = 0; j < 16; j++) {
    const d = fr(d0 * int8(y[o + 192 + j]));
    if (!d) continue;
    for (let i = 0; i < 16; i++) L[16 * j + i] = Math.max(-32, Math.min(31, nearestInt(fr(x[16 * j + i] / d)))) + 32;
  }
  for (let h = 0; h < 2; h++) {
    const ql = o + 64 * h, qh = o + 128 + 32 * h, Lh = 128 * h;
    for (let l = 0; l < 32; l++) {
      const a = L[Lh + l], b = L[Lh + l + 32], c = L[Lh + l + 64], e = L[Lh + l + 96];
      y[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
      y[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
      y[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
  }
}
