import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bf16ArrayToF32,
  bf16ToF32,
  f16ArrayToF32,
  f16ToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToBf16,
  f32ToF16,
  toFloat64,
} from "../../src/io/dtype.js";

const isNaNBf16 = (b: number) => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;
const isNaNF16 = (b: number) => (b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0;

/** All finite non-negative float16 values in increasing order (bits 0x0000..0x7bff are monotonic). */
const F16_POSITIVE = Array.from({ length: 0x7c00 }, (_, b) => f16ToF32(b));

/** Second algorithm for float16 rounding: binary search for the nearest value, ties to the even bit pattern. */
function nearestF16(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  let lo = 0;
  let hi = F16_POSITIVE.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (F16_POSITIVE[mid] <= a) lo = mid;
    else hi = mid;
  }
  const dLo = a - F16_POSITIVE[lo];
  const dHi = F16_POSITIVE[hi] - a;
  const pick = dLo < dHi ? lo : dHi < dLo ? hi : lo % 2 === 0 ? lo : hi;
  return sign | pick;
}

describe("bfloat16", () => {
  it("decodes known bit patterns", () => {
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(bf16ToF32(0xc000)).toBe(-2);
    expect(bf16ToF32(0x3fc0)).toBe(1.5);
    expect(bf16ToF32(0x7f80)).toBe(Infinity);
    expect(bf16ToF32(0xff80)).toBe(-Infinity);
    expect(bf16ToF32(0x0001)).toBe(2 ** -133); // smallest subnormal: 2^-126 * 2^-7
    expect(Object.is(bf16ToF32(0x8000), -0)).toBe(true);
    expect(bf16ToF32(0x7fc0)).toBeNaN();
  });

  it("round-trips every one of the 65536 bit patterns (NaNs stay NaN)", () => {
    for (let b = 0; b < 0x10000; b++) {
      const back = f32ToBf16(bf16ToF32(b));
      if (isNaNBf16(b)) expect(isNaNBf16(back)).toBe(true);
      else if (back !== b) expect(back).toBe(b);
    }
  });

  it("rounds to the nearest bfloat16, ties to even", () => {
    // 1 + 2^-8 is halfway between 1 (0x3f80, even) and 1 + 2^-7 (0x3f81): goes to the even one.
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80);
    // 1 + 3*2^-8 is halfway between 0x3f81 (odd) and 0x3f82 (even).
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(f32ToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBf16(3.4e38)).toBe(0x7f80); // above the largest bfloat16 (3.39e38): rounds to infinity
    fc.assert(
      fc.property(fc.float({ min: Math.fround(-3.38e38), max: Math.fround(3.38e38), noNaN: true }), (x) => {
        const b = f32ToBf16(x);
        const v = bf16ToF32(b);
        if (!Number.isFinite(v)) return false; // |x| is below the overflow threshold here
        // Neighbours one ulp either side (same sign) are never strictly closer.
        for (const nb of [b - 1, b + 1]) {
          const w = bf16ToF32(nb & 0xffff);
          if (!Number.isFinite(w) || Math.sign(w) !== Math.sign(v)) continue;
          const dv = Math.abs(x - v);
          const dw = Math.abs(x - w);
          if (dw < dv) return false;
          if (dw === dv && (b & 1) === 1) return false; // a tie must pick the even pattern
        }
        return true;
      }),
      { numRuns: 2000 },
    );
  });

  it("bulk conversions equal the scalar ones", () => {
    fc.assert(
      fc.property(fc.array(fc.float({ noNaN: true }), { maxLength: 50 }), (xs) => {
        const words = f32ArrayToBf16(xs);
        const back = bf16ArrayToF32(words);
        return xs.every((x, i) => words[i] === f32ToBf16(x) && Object.is(back[i], bf16ToF32(words[i])));
      }),
      { numRuns: 200 },
    );
  });
});

describe("float16", () => {
  it("decodes known bit patterns", () => {
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0xc000)).toBe(-2);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x0400)).toBe(2 ** -14);
    expect(f16ToF32(0x0001)).toBe(2 ** -24);
    expect(f16ToF32(0x3555)).toBeCloseTo(0.333251953125, 15);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(f16ToF32(0xfc00)).toBe(-Infinity);
    expect(f16ToF32(0x7e00)).toBeNaN();
  });

  it("round-trips every one of the 65536 bit patterns (NaNs stay NaN)", () => {
    for (let b = 0; b < 0x10000; b++) {
      const back = f32ToF16(f16ToF32(b));
      if (isNaNF16(b)) expect(isNaNF16(back)).toBe(true);
      else if (back !== b) expect(back).toBe(b);
    }
  });

  it("rounds at the edges of the range", () => {
    expect(f32ToF16(65519.99)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(-1e9)).toBe(0xfc00);
    expect(f32ToF16(2 ** -25)).toBe(0); // halfway between 0 and the smallest subnormal: even is 0
    expect(f32ToF16(3 * 2 ** -25)).toBe(2); // halfway between 1 and 2 (subnormal steps): even is 2
    expect(f32ToF16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up from the subnormals into the normals
    expect(Object.is(f16ToF32(f32ToF16(-0)), -0)).toBe(true);
  });

  it("agrees with a nearest-value search, ties to even", () => {
    const anyNumber = fc.oneof(
      fc.double({ min: -70000, max: 70000, noNaN: true }),
      fc.double({ min: -1e-3, max: 1e-3, noNaN: true }),
      // exact halfway points between neighbouring float16 values
      fc.integer({ min: 0, max: 0x7bfe }).map((b) => (F16_POSITIVE[b] + F16_POSITIVE[b + 1]) / 2),
    );
    fc.assert(
      fc.property(anyNumber, (x) => f32ToF16(x) === nearestF16(x)),
      { numRuns: 3000 },
    );
  });

  it("bulk conversions equal the scalar ones", () => {
    const words = Uint16Array.from({ length: 0x10000 }, (_, i) => i);
    const wide = f16ArrayToF32(words);
    for (let b = 0; b < 0x10000; b += 7) expect(Object.is(wide[b], Math.fround(f16ToF32(b)))).toBe(true);
    const back = f32ArrayToF16([1, -2, 0.5, 65504]);
    expect([...back]).toEqual([0x3c00, 0xc000, 0x3800, 0x7bff]);
  });
});

describe("toFloat64", () => {
  it("converts every dtype to numbers", () => {
    expect([...toFloat64("BF16", new Uint16Array([0x3f80, 0xc000]))]).toEqual([1, -2]);
    expect([...toFloat64("F16", new Uint16Array([0x3c00, 0x3800]))]).toEqual([1, 0.5]);
    expect([...toFloat64("I64", new BigInt64Array([-3n, 151935n]))]).toEqual([-3, 151935]);
    expect([...toFloat64("U64", new BigUint64Array([7n]))]).toEqual([7]);
    expect([...toFloat64("I8", new Int8Array([-128, 127]))]).toEqual([-128, 127]);
    expect([...toFloat64("BOOL", new Uint8Array([0, 1]))]).toEqual([0, 1]);
    expect([...toFloat64("F32", new Float32Array([0.25]))]).toEqual([0.25]);
  });
});
