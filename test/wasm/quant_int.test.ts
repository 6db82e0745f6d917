/**
 * Quantized weights with `accumulate: "q8"`: the activation row quantized per block and integer dot products, as
 * llama.cpp's CPU backend (asm/quant_int.ts).
 *
 * (a) The activation quantizers bit for bit against this file's own reading of ggml's reference quantizers
 *     (quantize_row_q8_0_ref / q8_1_ref: d = amax / 127, q = roundf(x / d), d stored as f16, s = f16(d sum q);
 *     quantize_row_q8_K_ref: iscale = -127 / (the value of largest magnitude), q = min(127, nearest_int(iscale x)),
 *     d = 1 / iscale, bsums of 16), each value on its own in float64 with float32 roundings where C rounds.
 * (b) The products against a float64 sum over blocks of d_w d_a sum(q_w q_a) (minus the mins, plus Q8_1's s
 *     term), the weight blocks read value by value from the layout (test/helpers/ggml_layout.ts), to float32
 *     rounding, on 1 and 2 threads and 1 to 9 tokens.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { f16ToF32, f32ToF16 } from "../../src/io/dtype.js";
import { QUANT_DTYPES, quantBlock } from "../../src/io/ggml_quants.js";
import type { QuantDType, Weight } from "../../src/kernels/types.js";
import { createWasmKernels, type WasmKernels } from "../../src/kernels/wasm/kernels.js";
import { PAGE } from "../../src/kernels/wasm/module.js";
import { valueParts } from "../helpers/ggml_layout.js";
import { rng } from "../helpers/random.js";

// The build (plain or relaxed SIMD) is the test project's (QWEN3_NEXT_SIMD, vitest.config.ts).
let one: WasmKernels;
let two: WasmKernels; // two threads, every product split
beforeAll(async () => {
  one = await createWasmKernels({ threads: 1, accumulate: "q8" });
  two = await createWasmKernels({ threads: 2, accumulate: "q8", minParallelBytes: 0, maxInstanceBytes: 16 * PAGE });
  if (process.env.QWEN3_NEXT_SIMD) expect(one.simd).toBe(process.env.QWEN3_NEXT_SIMD);
});
afterAll(async () => {
  await one.close();
  await two.close();
});

const fr = Math.fround;
const f16 = (v: number): number => f16ToF32(f32ToF16(v));
/** C's roundf: to the nearest integer, halfway cases away from zero. */
const roundf = (v: number): number => {
  const a = Math.abs(v), f = Math.floor(a);
  return Math.sign(v) * (a - f >= 0.5 ? f + 1 : f) + 0;
};
/** ggml's nearest_int (the 1.5 * 2^23 trick): to the nearest integer, halfway cases to even. */
const nearestEven = (v: number): number => {
  const f = Math.floor(v), d = v - f;
  return (d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f) + 0;
};

interface Act {
  q: number[];
  /** Per block: d (as stored: the f16 value for Q8_0 / Q8_1), s (Q8_1), bsums (Q8_K, sums of 16 quants). */
  d: number[];
  s: number[];
  sum: number[];
  bsums: number[][];
}

/** quantize_row_q8_1_ref (q8_0_ref: the same without s) on a row of float32 values. */
function refQ8_1(x: Float32Array): Act {
  const out: Act = { q: [], d: [], s: [], sum: [], bsums: [] };
  for (let b = 0; b < x.length / 32; b++) {
    const v = Array.from(x.subarray(32 * b, 32 * b + 32));
    const amax = v.reduce((m, e) => Math.max(m, Math.abs(e)), 0);
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    const q = v.map((e) => roundf(fr(e * id)));
    const sum = q.reduce((a, e) => a + e, 0);
    out.q.push(...q);
    out.d.push(f16(d));
    out.s.push(f16(fr(sum * d)));
    out.sum.push(sum);
  }
  return out;
}

/** quantize_row_q8_K_ref. */
function refQ8K(x: Float32Array): Act {
  const out: Act = { q: [], d: [], s: [], sum: [], bsums: [] };
  for (let b = 0; b < x.length / 256; b++) {
    const v = Array.from(x.subarray(256 * b, 256 * b + 256));
    let amax = 0, max = 0;
    for (const e of v) {
      if (Math.abs(e) > amax) {
        amax = Math.abs(e);
        max = e;
      }
    }
    const iscale = amax === 0 ? 0 : fr(-127 / max);
    const q = v.map((e) => (amax === 0 ? 0 : Math.min(127, nearestEven(fr(iscale * e)))));
    out.q.push(...q);
    out.d.push(amax === 0 ? 0 : fr(1 / iscale));
    out.bsums.push(Array.from({ length: 16 }, (_, g) => q.slice(16 * g, 16 * g + 16).reduce((a, e) => a + e, 0)));
  }
  return out;
}

const isK = (dt: QuantDType): boolean => dt === "Q4_K" || dt === "Q5_K" || dt === "Q6_K";

/** Runs the WASM quantizer on T rows of n values; returns each row's quants (i16 and i8 copies) and metadata. */
function wasmActs(x: Float32Array, n: number, T: number, kind: 0 | 1): { q16: number[]; q8: number[]; d: number[]; s: number[]; sum: number[]; bsums: number[][]; pairs: number[][] }[] {
  const e = one.heap.arenas[0].exports;
  const stride = e.actBytes(n) as number;
  const xl = one.heap.alloc(x.byteLength, "x");
  const al = one.heap.alloc(T * stride, "acts");
  new Float32Array(xl.arena.buffer(), xl.ptr, x.length).set(x);
  e.quantizeActs(xl.ptr, al.ptr, n, T, kind);
  const buf = al.arena.buffer();
  const rows = Array.from({ length: T }, (_, t) => {
    const a = al.ptr + t * stride;
    // Q8_0 / Q8_1: d[nb], s[nb], sums[nb] after the quants; Q8_K: per block of 64 bytes d, 12 bytes, bsums i16[16],
    // pair sums i16[8].
    const meta = (o: number, f: boolean) => (f ? new Float32Array(buf, a + 3 * n + o, 1)[0] : new Int32Array(buf, a + 3 * n + o, 1)[0]);
    const nb = kind === 0 ? n / 32 : n / 256;
    return {
      q16: Array.from(new Int16Array(buf, a, n)),
      q8: Array.from(new Int8Array(buf, a + 2 * n, n)),
      d: Array.from({ length: nb }, (_, b) => meta(kind === 0 ? 4 * b : 64 * b, true)),
      s: kind === 0 ? Array.from({ length: nb }, (_, b) => meta(4 * nb + 4 * b, true)) : [],
      sum: kind === 0 ? Array.from({ length: nb }, (_, b) => meta(8 * nb + 4 * b, false)) : [],
      bsums: kind === 1 ? Array.from({ length: nb }, (_, b) => Array.from(new Int16Array(buf, a + 3 * n + 64 * b + 16, 16))) : [],
      pairs: kind === 1 ? Array.from({ length: nb }, (_, b) => Array.from(new Int16Array(buf, a + 3 * n + 64 * b + 48, 8))) : [],
    };
  });
  xl.arena.release(xl.ptr);
  al.arena.release(al.ptr);
  return rows;
}

/**
 * Activation values: random magnitudes over 1e-6..1e3, exact halves where the scale is 1 (ties: the block's
 * largest value is ±127), all-zero blocks, and single spikes.
 */
function activations(rand: () => number, n: number, bs: number): Float32Array {
  const x = new Float32Array(n);
  for (let b = 0; b < n / bs; b++) {
    const kind = Math.floor(rand() * 5);
    const scale = 10 ** (-6 + 9 * rand());
    for (let i = 0; i < bs; i++) {
      const j = b * bs + i;
      if (kind === 0) x[j] = (rand() - 0.5) * 2 * scale;
      else if (kind === 1) x[j] = Math.floor(rand() * 254 - 127) + (rand() < 0.7 ? 0.5 : 0);
      else if (kind === 2) x[j] = 0;
      else if (kind === 3) x[j] = i === Math.floor(bs / 3) ? scale : (rand() - 0.5) * scale * 1e-3;
      else x[j] = (rand() - 0.5) * 2;
    }
    if (kind === 1) x[b * bs + Math.floor(rand() * bs)] = rand() < 0.5 ? 127 : -127;
  }
  return x;
}

const bits = (v: number[]): number[] => Array.from(new Uint32Array(Float32Array.from(v).buffer));

describe("activation quantizers", () => {
  it("Q8_0 / Q8_1 blocks of 32 are ggml's reference quantization, bit for bit", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (nb, T, seed) => {
        const rand = rng(seed);
        const n = 32 * nb;
        const x = activations(rand, T * n, 32);
        const got = wasmActs(x, n, T, 0);
        for (let t = 0; t < T; t++) {
          const want = refQ8_1(x.subarray(t * n, (t + 1) * n));
          expect(got[t].q8).toEqual(want.q);
          expect(got[t].q16).toEqual(want.q);
          expect(bits(got[t].d)).toEqual(bits(want.d));
          expect(bits(got[t].s)).toEqual(bits(want.s));
          expect(got[t].sum).toEqual(want.sum);
        }
      }),
      { numRuns: 80 },
    );
  });

  it("Q8_K blocks of 256 are ggml's reference quantization, bit for bit", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (nb, T, seed) => {
        const rand = rng(seed);
        const n = 256 * nb;
        const x = activations(rand, T * n, 256);
        const got = wasmActs(x, n, T, 1);
        for (let t = 0; t < T; t++) {
          const want = refQ8K(x.subarray(t * n, (t + 1) * n));
          expect(got[t].q8).toEqual(want.q);
          expect(got[t].q16).toEqual(want.q);
          expect(bits(got[t].d)).toEqual(bits(want.d));
          expect(got[t].bsums).toEqual(want.bsums);
          expect(got[t].pairs).toEqual(want.bsums.map((g) => Array.from({ length: 8 }, (_, j) => g[2 * j] + g[2 * j + 1])));
        }
      }),
      { numRuns: 60 },
    );
  });

  it("rounds halfway cases as C does: roundf away from zero (Q8_0), nearest_int to even (Q8_K)", () => {
    const x = new Float32Array(256);
    x[0] = 127; // Q8_0: d = 1; Q8_K: iscale = -1
    x.set([2.5, -2.5, 3.5, -0.5, 0.5], 1);
    const q8_0 = wasmActs(x, 256, 1, 0)[0].q8.slice(0, 6);
    expect(q8_0).toEqual([127, 3, -3, 4, -1, 1]);
    const q8_k = wasmActs(x, 256, 1, 1)[0].q8.slice(0, 6);
    expect(q8_k).toEqual([-127, -2, 2, -4, 0, 0]);
  });
});

/** f16 fields (byte offsets) of each block: scales and mins. */
const SCALES: Record<QuantDType, number[]> = { Q8_0: [0], Q4_0: [0], Q5_0: [0], Q4_1: [0, 2], Q5_1: [0, 2], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208] };

/** A [rows, cols] weight of random blocks: random bytes, each f16 scale a random finite value of moderate size. */
function randomBlocks(k: WasmKernels, dt: QuantDType, rows: number, cols: number, rand: () => number, scale?: (i: number) => number): Weight {
  const w = k.allocWeight("w", dt, [rows, cols]);
  const b = w.data as Uint8Array;
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
  const { typeSize } = quantBlock(dt);
  for (let o = 0, i = 0; o < b.length; o += typeSize) {
    for (const at of SCALES[dt]) {
      const h = scale ? scale(i++) : (rand() < 0.5 ? 0x8000 : 0) | ((8 + Math.floor(rand() * 14)) << 10) | Math.floor(rand() * 1024);
      b[o + at] = h & 0xff;
      b[o + at + 1] = h >> 8;
    }
  }
  return w;
}

/**
 * y[t, r] in float64 from the layout and the reference activation quantization: per block, d_w d_a sum sc q_w q_a,
 * minus dmin_w d_a sum mn q_a (K-quants with mins), plus m_w s_a (Q4_1, Q5_1); and the sum of the terms' magnitudes.
 */
function expected(w: Weight, x: Float32Array, T: number): { y: Float64Array; mag: Float64Array } {
  const dt = w.dtype as QuantDType;
  const [rows, cols] = w.shape;
  const { blockSize, typeSize } = quantBlock(dt);
  const nb = cols / blockSize;
  const b = w.data as Uint8Array;
  const y = new Float64Array(T * rows);
  const mag = new Float64Array(T * rows);
  for (let t = 0; t < T; t++) {
    const xt = x.subarray(t * cols, (t + 1) * cols);
    const act = isK(dt) ? refQ8K(xt) : refQ8_1(xt);
    for (let r = 0; r < rows; r++) {
      let sum = 0, m = 0;
      for (let k = 0; k < nb; k++) {
        const o = (r * nb + k) * typeSize;
        let isum = 0, msum = 0, d = 0, dm = 0;
        for (let i = 0; i < blockSize; i++) {
          const p = valueParts(dt, b, o, i);
          const qa = act.q[k * blockSize + i];
          isum += p.sc * p.q * qa;
          msum += p.mn * qa;
          d = p.d;
          dm = p.dm;
        }
        const da = act.d[k];
        const terms = [d * da * isum, dt === "Q4_K" || dt === "Q5_K" ? -dm * da * msum : dt === "Q4_1" || dt === "Q5_1" ? dm * act.s[k] : 0];
        for (const v of terms) {
          sum += v;
          m += Math.abs(v);
        }
      }
      y[t * rows + r] = sum;
      mag[t * rows + r] = m;
    }
  }
  return { y, mag };
}

/**
 * y within the q8 products' bound of `expected`'s float64 block sums of W X: float64 sums of float64 terms (each
 * at most two roundings), then one rounding to float32.
 */
function expectNearBlockSums(w: Weight, x: Float32Array, T: number, y: ArrayLike<number>, label = ""): void {
  const { y: want, mag } = expected(w, x, T);
  for (let i = 0; i < y.length; i++) {
    const eps = 64 * 2 ** -53 * mag[i];
    expect(Math.abs(y[i] - want[i]), label).toBeLessThanOrEqual(2 ** -24 * (Math.abs(want[i]) + eps) + eps + 2 ** -149);
  }
}

/** kern.linear(w, X) over T tokens of x, checked with expectNearBlockSums. */
function expectProductNearBlockSums(kern: WasmKernels, w: Weight, x: Float32Array, T: number, label = ""): void {
  const xv = kern.vec(x.length);
  xv.set(x);
  const y = kern.vec(T * w.shape[0]);
  kern.linear(w, xv, T, y);
  expectNearBlockSums(w, x, T, y, label);
  kern.free(xv);
  kern.free(y);
}

describe("integer matrix products", () => {
  it("equal a float64 sum of the blocks' scaled integer dot products, to float32 rounding (every type, 1 and 2 threads, 1-9 tokens)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<QuantDType>(...QUANT_DTYPES),
        fc.integer({ min: 1, max: 11 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer(),
        (dt, rows, k, T, seed) => {
          const rand = rng(seed);
          const cols = quantBlock(dt).blockSize === 32 ? 32 * (1 + 3 * (k - 1)) : 256 * (1 + (k % 3));
          const x = activations(rand, T * cols, quantBlock(dt).blockSize);
          for (const kern of [one, two]) {
            const w = randomBlocks(kern, dt, rows, cols, rng(seed ^ 0x5bd1e995));
            expectProductNearBlockSums(kern, w, x, T);
            kern.freeWeight(w);
          }
        },
      ),
      { numRuns: 120 },
    );
  });

  it("read f16 scales of every finite kind: zero, -0, subnormal, normal, the largest (blocks of 32, 1 and 5 tokens)", () => {
    const rand = rng(7);
    const special = [0x0000, 0x8000, 0x0001, 0x83ff, 0x0200, 0x0400, 0x3c00, 0xbc01, 0x7bff, 0xfbff, 0x1234, 0x9abc];
    const cols = 32 * 13, rows = 3;
    for (const dt of QUANT_DTYPES.filter((d) => quantBlock(d).blockSize === 32)) {
      for (const T of [1, 5]) {
        const x = activations(rand, T * cols, 32);
        for (const kern of [one, two]) {
          const w = randomBlocks(kern, dt, rows, cols, rand, (i) => special[(i * 7) % special.length]);
          expectProductNearBlockSums(kern, w, x, T);
          kern.freeWeight(w);
        }
      }
    }
  });

  it("blocks of 32: each token's output has the same bits whether it is decoded alone or among 2-9 tokens (odd rows, 1 and 2 threads)", () => {
    const rand = rng(21);
    const cols = 32 * 11, rows = 7;
    for (const dt of QUANT_DTYPES.filter((d) => quantBlock(d).blockSize === 32)) {
      for (const kern of [one, two]) {
        const w = randomBlocks(kern, dt, rows, cols, rand);
        const T = 9;
        const xv = kern.vec(T * cols);
        xv.set(activations(rand, T * cols, 32));
        const alone = kern.vec(rows);
        const xt = kern.vec(cols);
        const want = new Float32Array(T * rows);
        for (let t = 0; t < T; t++) {
          xt.set(xv.subarray(t * cols, (t + 1) * cols));
          kern.linear(w, xt, 1, alone);
          want.set(alone, t * rows);
        }
        for (let n = 2; n <= T; n++) {
          const y = kern.vec(n * rows);
          kern.linear(w, xv.subarray(0, n * cols), n, y);
          expect(Array.from(y)).toEqual(Array.from(want.subarray(0, n * rows)));
          kern.free(y);
        }
        for (const v of [xv, alone, xt]) kern.free(v);
        kern.freeWeight(w);
      }
    }
  });

  it("one input serves several products (a remembered quantized row); an input changed in place or a new kind is quantized again", () => {
    const rand = rng(11);
    const cols = 512, rows = 5;
    for (const kern of [one, two]) {
      const xv = kern.vec(cols);
      xv.set(activations(rand, cols, 32));
      const weights = (["Q8_0", "Q4_0", "Q4_K", "Q8_0", "Q6_K"] as QuantDType[]).map((dt, i) => randomBlocks(kern, dt, rows, cols, rng(100 + i)));
      for (let step = 0; step < 12; step++) {
        const w = weights[step % weights.length];
        // Every third product the input changes in place (same address, same width), sometimes by one value only.
        if (step % 3 === 2) {
          if (step % 2) xv[(step * 37) % cols] += 3;
          else xv.set(activations(rand, cols, 32));
        }
        const y = kern.vec(rows);
        kern.linear(w, xv, 1, y);
        expectNearBlockSums(w, Float32Array.from(xv), 1, y);
        kern.free(y);
      }
      for (const w of weights) kern.freeWeight(w);
      kern.free(xv);
    }
  });

  it("hold the largest quants times activations of 127 (no 16-bit partial sum wraps), 1-6 tokens", () => {
    // Every quant byte 0xff (Q4_K 15, Q5_K 31, Q6_K 63 before its offset; the largest 6-bit scales and mins, Q6_K
    // scales -1), activations constant per token with alternating sign, so every q_a is +-127.
    for (const dt of QUANT_DTYPES) {
      for (const T of [1, 2, 3, 4, 5, 6]) {
        const [rows, cols] = [3, 512];
        const x = Float32Array.from({ length: T * cols }, (_, i) => (Math.floor(i / cols) % 2 ? -1.5 : 0.75));
        const w = randomBlocks(one, dt, rows, cols, rng(T));
        const b = w.data as Uint8Array;
        const { typeSize } = quantBlock(dt);
        for (let o = 0; o < b.length; o += typeSize) for (let i = 0; i < typeSize; i++) if (!SCALES[dt].some((at) => i === at || i === at + 1)) b[o + i] = 0xff;
        expectProductNearBlockSums(one, w, x, T, `${dt} T=${T}`);
        one.freeWeight(w);
      }
    }
  });

  it("read subnormal and zero F16 block scales (as small K-quant weights have them), 1-5 tokens", () => {
    for (const dt of QUANT_DTYPES) {
      for (const T of [1, 4, 5]) {
        const rand = rng(31 * T + QUANT_DTYPES.indexOf(dt));
        const [rows, cols] = [5, 512];
        const x = activations(rand, T * cols, quantBlock(dt).blockSize);
        const w = randomBlocks(one, dt, rows, cols, rng(T + 7));
        const b = w.data as Uint8Array;
        const { typeSize } = quantBlock(dt);
        // Exponent 0: a random mantissa (1 in 8 zero), random sign.
        for (let o = 0; o < b.length; o += typeSize) {
          for (const at of SCALES[dt]) {
            const h = (rand() < 0.5 ? 0x8000 : 0) | (rand() < 0.125 ? 0 : Math.floor(rand() * 1024));
            b[o + at] = h & 0xff;
            b[o + at + 1] = h >> 8;
          }
        }
        expectProductNearBlockSums(one, w, x, T, `${dt} T=${T}`);
        one.freeWeight(w);
      }
    }
  });

  it("the plain and relaxed-SIMD builds give the same bits (the integer sums are exact either way)", async () => {
    const builds = await Promise.all((["plain", "relaxed"] as const).map((simd) => createWasmKernels({ threads: 1, accumulate: "q8", simd })));
    expect(builds.map((k) => k.simd)).toEqual(["plain", "relaxed"]);
    for (const [dt, T] of QUANT_DTYPES.flatMap((d) => [[d, 1], [d, 5]] as const)) {
      const rand = rng(QUANT_DTYPES.indexOf(dt) + 11 + T);
      const [rows, cols] = [7, 512];
      const x = activations(rand, T * cols, 256);
      const seed = Math.floor(rand() * 2 ** 31);
      const outs = builds.map((k) => {
        const w = randomBlocks(k, dt, rows, cols, rng(seed));
        const y = new Float32Array(T * rows);
        k.linear(w, x, T, y);
        k.freeWeight(w);
        return Array.from(y);
      });
      expect(outs[1], `${dt}, T=${T}`).toEqual(outs[0]);
    }
    await Promise.all(builds.map((k) => k.close()));
  });

  it("float weights take the float32 sums", async () => {
    const f32 = await createWasmKernels({ threads: 1, accumulate: "f32" });
    const rand = rng(7);
    const [rows, cols, T] = [5, 96, 3];
    const bf16 = Uint16Array.from({ length: rows * cols }, (_, i) => 0x3c00 + Math.floor(rand() * 0x400) + (i % 2) * 0x8000);
    const outs = [one, f32].map((k) => {
      const w = k.allocWeight("w", "BF16", [rows, cols]);
      (w.data as Uint16Array).set(bf16);
      const x = k.vec(T * cols);
      for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
      const y = k.vec(T * rows);
      k.linear(w, x, T, y);
      return Array.from(y);
    });
    await f32.close();
    expect(outs[0]).toEqual(outs[1]);
  });
});
