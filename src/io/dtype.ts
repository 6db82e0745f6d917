/**
 * Element types of safetensors files and conversions between the 16-bit floats and float32/float64.
 *
 * bfloat16 is the top half of a float32: bits = f32bits >> 16 (rounded to nearest, ties to even).
 * float16 (IEEE binary16): 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits;
 * value = (-1)^s * 2^(e-15) * (1 + m/1024) for 0 < e < 31, (-1)^s * 2^-14 * (m/1024) for e = 0.
 * Every conversion here is exact or rounds to nearest, ties to even, as PyTorch does.
 */

/** The dtype strings of the safetensors format (the ones this project reads and writes). */
export type SafetensorsDType =
  | "BOOL"
  | "U8"
  | "I8"
  | "I16"
  | "U16"
  | "F16"
  | "BF16"
  | "I32"
  | "U32"
  | "F32"
  | "F64"
  | "I64"
  | "U64";

/** Bytes per element of each safetensors dtype. */
export const DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

export function isSafetensorsDType(s: unknown): s is SafetensorsDType {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

/** Floating-point dtypes (compared with tolerances); the others are integers (compared exactly). */
export function isFloatDType(d: SafetensorsDType): d is "F16" | "BF16" | "F32" | "F64" {
  return d === "F16" || d === "BF16" || d === "F32" || d === "F64";
}

/**
 * The typed array each dtype is read into. BF16 and F16 stay raw 16-bit words (Uint16Array);
 * I64/U64 are BigInt64Array/BigUint64Array (exact; see `toFloat64` for numbers); BOOL is Uint8Array (0 or 1).
 */
export type TypedArrayOf<D extends SafetensorsDType> = D extends "BOOL" | "U8"
  ? Uint8Array
  : D extends "I8"
    ? Int8Array
    : D extends "I16"
      ? Int16Array
      : D extends "U16" | "F16" | "BF16"
        ? Uint16Array
        : D extends "I32"
          ? Int32Array
          : D extends "U32"
            ? Uint32Array
            : D extends "F32"
              ? Float32Array
              : D extends "F64"
                ? Float64Array
                : D extends "I64"
                  ? BigInt64Array
                  : BigUint64Array;

export type AnyTypedArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** A typed array of `length` elements of dtype `d` over `buffer` at `byteOffset` (a view, no copy). */
export function typedArrayFor(d: SafetensorsDType, buffer: ArrayBufferLike, byteOffset: number, length: number): AnyTypedArray {
  switch (d) {
    case "BOOL":
    case "U8":
      return new Uint8Array(buffer, byteOffset, length);
    case "I8":
      return new Int8Array(buffer, byteOffset, length);
    case "I16":
      return new Int16Array(buffer, byteOffset, length);
    case "U16":
    case "F16":
    case "BF16":
      return new Uint16Array(buffer, byteOffset, length);
    case "I32":
      return new Int32Array(buffer, byteOffset, length);
    case "U32":
      return new Uint32Array(buffer, byteOffset, length);
    case "F32":
      return new Float32Array(buffer, byteOffset, length);
    case "F64":
      return new Float64Array(buffer, byteOffset, length);
    case "I64":
      return new BigInt64Array(buffer, byteOffset, length);
    case "U64":
      return new BigUint64Array(buffer, byteOffset, length);
  }
}

// Scratch space shared by the scalar converters: one float32 seen as its bits.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bfloat16 bits -> value (exact). */
export function bf16ToF32(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0];
}

/** float32 value (a JS number is first rounded to float32) -> bfloat16 bits, round to nearest, ties to even. */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) {
    return ((b >>> 16) & 0x8000) | 0x7fc0; // NaN stays a (quiet) NaN
  }
  // Adding 0x7fff plus the lowest kept bit rounds to nearest with ties to even; overflow carries into
  // the exponent, which is the correct rounding up to the next binade or to infinity.
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float16 bits -> value (exact). */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >>> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24; // zero or subnormal: 2^-14 * m/1024
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Value -> float16 bits, rounding the number exactly as given (no intermediate float32) to nearest,
 * ties to even; magnitudes from 65520 up become infinity.
 */
export function f32ToF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // 65504 is the largest finite; 65520 is the halfway point
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal (may round up to the smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1; // log2 can be off by one ulp near powers of two
  else if (2 ** (e + 1) <= a) e += 1;
  let m = roundHalfEven((a / 2 ** e - 1) * 1024); // exact: scaling by powers of two
  if (m === 1024) {
    m = 0;
    e += 1;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Widens bfloat16 words into float32 (exact): each value's bits are the word shifted up 16. */
export function bf16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return dst;
}

/** Widens float16 words into float32 (exact). */
export function f16ArrayToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) dst[i] = f16ToF32(src[i]);
  return dst;
}

/** Rounds each value to bfloat16 (nearest, ties to even). */
export function f32ArrayToBf16(src: ArrayLike<number>, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) dst[i] = f32ToBf16(src[i]);
  return dst;
}

/** Rounds each value to float16 (nearest, ties to even). */
export function f32ArrayToF16(src: ArrayLike<number>, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) dst[i] = f32ToF16(src[i]);
  return dst;
}

/**
 * Any tensor's elements as float64 numbers: BF16/F16 decoded, integers converted (I64/U64 exactly up to 2^53,
 * which covers token and expert ids), BOOL as 0/1.
 */
export function toFloat64(dtype: SafetensorsDType, data: AnyTypedArray): Float64Array {
  const out = new Float64Array(data.length);
  if (dtype === "BF16") {
    const words = data as Uint16Array;
    for (let i = 0; i < out.length; i++) out[i] = bf16ToF32(words[i]);
  } else if (dtype === "F16") {
    const words = data as Uint16Array;
    for (let i = 0; i < out.length; i++) out[i] = f16ToF32(words[i]);
  } else if (dtype === "I64" || dtype === "U64") {
    const big = data as BigInt64Array | BigUint64Array;
    for (let i = 0; i < out.length; i++) out[i] = Number(big[i]);
  } else {
    const nums = data as Exclude<AnyTypedArray, BigInt64Array | BigUint64Array>;
    for (let i = 0; i < out.length; i++) out[i] = nums[i];
  }
  return out;
}
