/**
 * Every WGSL kernel against its TypeScript twin (computed in float64 from the same float32 inputs), on random
 * shapes not multiples of the workgroup or token tile; the layout kernels against direct loops. Run on the
 * software adapter where there is no GPU, so the cases are small.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { f32ArrayToBf16, f32ArrayToF16 } from "../../src/io/dtype.js";
import { QUANT_DTYPES, quantBlock, quantizeRow } from "../../src/io/ggml_quants.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import * as elementwise from "../../src/kernels/ts/elementwise.js";
import * as layout from "../../src/kernels/ts/layout.js";
import { ropeTables } from "../../src/kernels/ts/rope.js";
import type { QuantDType, Weight, WeightDType } from "../../src/kernels/types.js";
import type { Tensor } from "../../src/kernels/webgpu/device.js";
import { maxScaledDiff, rng, uniform } from "../helpers/random.js";
import { maxAbsDiff, readDeltaRuleFixture, TOL } from "../helpers/reference.js";
import { WebGpuKernels } from "../../src/kernels/webgpu/kernels.js";
import { testGpu } from "./gpu.js";

// Weights split into row chunks of at most 1 KiB: every weight of more than a few rows exercises the split.
const { gpu, reason } = await testGpu({ maxBinding: 1024 });
afterAll(() => gpu?.close());

const ts = createTsKernels("f64");
const RUNS = { numRuns: 8 };
const dim = (max: number) => fc.integer({ min: 1, max });
const f32 = (x: ArrayLike<number>) => Float64Array.from(Float32Array.from(x as ArrayLike<number>));
const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) => expect(maxScaledDiff(got, want)).toBeLessThanOrEqual(tol);

function weightOf(dtype: WeightDType, shape: number[], values: Float64Array): Weight {
  const w = ts.allocWeight("w", dtype, shape);
  if (dtype === "BF16") f32ArrayToBf16(values, w.data as Uint16Array);
  else if (dtype === "F16") f32ArrayToF16(values, w.data as Uint16Array);
  else if (dtype === "F32" || dtype === "F64") (w.data as Float32Array | Float64Array).set(values);
  else {
    const [rows, cols] = shape;
    const rowBytes = (w.data as Uint8Array).length / rows;
    for (let r = 0; r < rows; r++) quantizeRow(dtype as QuantDType, values, r * cols, w.data as Uint8Array, r * rowBytes, cols);
  }
  return w;
}

describe("getting a device", () => {
  it("an adapter that cannot be had is one line naming why, not a hang", async () => {
    const saved = process.env.QWEN3_WEBGPU_BACKEND;
    process.env.QWEN3_WEBGPU_BACKEND = "no-such-backend";
    try {
      const err = await WebGpuKernels.create().then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(/^WebGPU backend unavailable: .*no-such-backend[^\n]*$/);
    } finally {
      if (saved === undefined) delete process.env.QWEN3_WEBGPU_BACKEND;
      else process.env.QWEN3_WEBGPU_BACKEND = saved;
    }
  });
});

describe.skipIf(!gpu)(`WebGPU kernels${reason ? ` (skipped: ${reason})` : ""}`, () => {
  const g = gpu!;
  const dev = g?.dev;
  const up = (x: ArrayLike<number>): Tensor => dev.upload(x);
  const read = (t: Tensor) => dev.read(t);
  afterAll(() => expect(dev.capacity).toBeGreaterThan(0));

  it("linear is the float64 product rounded once, for float dtypes, any shape, one or many tokens, weights split in chunks (both kernel forms)", async () => {
    await fc.assert(
      fc.asyncProperty(dim(40), dim(90), dim(11), fc.constantFrom<WeightDType>("BF16", "F16", "F32", "F64"), fc.integer(), async (rows, cols, T, dtype, seed) => {
        const rand = rng(seed);
        // Float32 values (the device keeps an F64 weight as float32).
        const w = weightOf(dtype, [rows, cols], f32(uniform(rand, rows * cols)));
        const x = f32(uniform(rand, T * cols));
        const want = new Float64Array(T * rows);
        ts.linear(w, x, T, want);
        for (const rowPerThread of [true, false]) {
          g.rowPerThread = rowPerThread;
          const y = dev.alloc(T * rows);
          g.linear(w, up(x), T, y);
          // Exact products summed in two floats: the float64 result rounded once (within half an ulp).
          close(await read(y), want, 2 ** -24);
        }
      }),
      RUNS,
    );
  });

  it("linear matches for every quantized dtype (ggml's dequantized values, both kernel forms)", async () => {
    for (const dtype of QUANT_DTYPES) {
      const { blockSize } = quantBlock(dtype);
      await fc.assert(
        fc.asyncProperty(dim(6), fc.integer({ min: 1, max: blockSize === 256 ? 2 : 3 }), dim(9), fc.integer(), async (rows, blocks, T, seed) => {
          const rand = rng(seed);
          const cols = blocks * blockSize;
          const w = weightOf(dtype, [rows, cols], uniform(rand, rows * cols));
          const x = f32(uniform(rand, T * cols));
          const want = new Float64Array(T * rows);
          ts.linear(w, x, T, want);
          for (const rowPerThread of [true, false]) {
            g.rowPerThread = rowPerThread;
            const y = dev.alloc(T * rows);
            g.linear(w, up(x), T, y);
            close(await read(y), want, 2 ** -24);
          }
        }),
        { numRuns: 3 },
      );
    }
  });

  it("embedding rows match for every dtype", async () => {
    for (const dtype of ["BF16", "F16", "F32", ...QUANT_DTYPES] as WeightDType[]) {
      const cols = dtype.startsWith("Q") ? quantBlock(dtype as QuantDType).blockSize : 37;
      const V = 9;
      const w = weightOf(dtype, [V, cols], uniform(rng(V), V * cols));
      for (const id of [0, 4, V - 1]) {
        const want = new Float64Array(cols);
        ts.embedding(w, id, want);
        const out = dev.alloc(cols);
        g.embedding(w, id, out);
        close(await read(out), want, 0);
      }
      expect(() => g.embedding(w, V, dev.alloc(cols))).toThrow(/token id 9 is out of range/);
    }
  });

  it("rmsNorm, gatedRmsNorm and l2Normalize match, in place and not", async () => {
    await fc.assert(
      fc.asyncProperty(dim(150), dim(5), fc.boolean(), fc.integer(), async (n, rows, inPlace, seed) => {
        const rand = rng(seed);
        const x = f32(uniform(rand, rows * n, -3, 3));
        const z = f32(uniform(rand, rows * n, -3, 3));
        const w = f32(uniform(rand, n));
        const xt = up(x);
        const out = inPlace ? xt : dev.alloc(rows * n);
        const want = new Float64Array(rows * n);
        ts.rmsNorm(x, w, 1e-6, n, want);
        g.rmsNorm(xt, up(w), 1e-6, n, out);
        close(await read(out), want);

        const xg = up(x);
        const outG = inPlace ? xg : dev.alloc(rows * n);
        ts.gatedRmsNorm(x, z, w, 1e-6, n, want);
        g.gatedRmsNorm(xg, up(z), up(w), 1e-6, n, outG);
        close(await read(outG), want);

        const xl = up(x);
        const wantL = Float64Array.from(x);
        ts.l2Normalize(wantL, n, 1e-6, 0.25);
        g.l2Normalize(xl, n, 1e-6, 0.25);
        close(await read(xl), wantL);
      }),
      RUNS,
    );
  });

  it("siluMul, sigmoidMul, axpy (a number, a device scalar, a bias row) match", async () => {
    await fc.assert(
      fc.asyncProperty(dim(300), dim(3), fc.integer(), async (n, rows, seed) => {
        const rand = rng(seed);
        const a = f32(uniform(rand, rows * n, -6, 6));
        const b = f32(uniform(rand, rows * n, -6, 6));
        const bias = f32(uniform(rand, n));
        const want = new Float64Array(rows * n);
        ts.siluMul(a, b, want);
        const out = dev.alloc(rows * n);
        g.siluMul(up(a), up(b), out);
        close(await read(out), want);

        const x = up(a);
        const wantS = Float64Array.from(a);
        ts.sigmoidMul(wantS, b);
        g.sigmoidMul(x, up(b));
        close(await read(x), wantS);

        const y = up(a);
        const wantY = Float64Array.from(a);
        ts.axpy(0.375, b, wantY);
        g.axpy(0.375, up(b), y);
        close(await read(y), wantY);
        ts.axpy(-1.5, b, wantY);
        g.axpy(up([-1.5]), up(b), y);
        close(await read(y), wantY);
        for (let r = 0; r < rows; r++) ts.axpy(1, bias, wantY.subarray(r * n, (r + 1) * n));
        g.axpy(1, up(bias), y);
        close(await read(y), wantY);
      }),
      RUNS,
    );
  });

  it("silu's exponential is accurate to a few float32 ulps over [-80, 80] (the driver's exp may not be)", async () => {
    const n = 4000;
    const x = Float32Array.from({ length: n }, (_, i) => -80 + (160 * i) / n);
    const out = dev.alloc(n);
    g.siluMul(up(x), up(new Float32Array(n).fill(1)), out);
    const got = await read(out);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const want = x[i] / (1 + Math.exp(-x[i]));
      if (want !== 0) worst = Math.max(worst, Math.abs(got[i] - want) / Math.abs(want));
    }
    expect(worst).toBeLessThan(8 * 2 ** -24);
  });

  it("the two-float residual keeps sums that float32 loses (float64 to about 1e-14)", async () => {
    const rand = rng(7);
    const n = 100;
    const start = f32(uniform(rand, n, -1e4, 1e4));
    const hi = up(start);
    const lo = dev.alloc(n);
    const exact = Float64Array.from(start);
    for (let step = 0; step < 20; step++) {
      const x = f32(uniform(rand, n, -1e-3, 1e-3));
      const a = Math.fround(rand() * 2);
      for (let i = 0; i < n; i++) exact[i] += Math.fround(a * x[i]);
      g.axpyResidual(a, up(x), { hi, lo });
    }
    const [h, l] = [await read(hi), await read(lo)];
    const float32Error = maxScaledDiff(Float32Array.from(exact), exact); // what a float32 stream could at best keep
    const err = maxScaledDiff(Float64Array.from(h, (v, i) => v + l[i]), exact);
    expect(err).toBeLessThan(1e-11);
    expect(err).toBeLessThan(float32Error / 1000);
  });

  it("rope matches (partial rotary)", async () => {
    await fc.assert(
      fc.asyncProperty(dim(5), dim(4), fc.integer({ min: 1, max: 12 }), fc.integer(), async (T, H, halfHd, seed) => {
        const rand = rng(seed);
        const d = 4 * halfHd;
        const rd = 2 * Math.max(1, Math.floor(halfHd * (rand() < 0.5 ? 1 : 0.5)));
        const x = f32(uniform(rand, T * H * d));
        const cos = f32(uniform(rand, T * (rd / 2)));
        const sin = f32(uniform(rand, T * (rd / 2)));
        const want = Float64Array.from(x);
        ts.rope(want, T, H, d, rd, cos, sin);
        const xt = up(x);
        g.rope(xt, T, H, d, rd, up(cos), up(sin));
        close(await read(xt), want);
      }),
      RUNS,
    );
  });

  it("attention matches (GQA, new queries over a longer cache)", async () => {
    await fc.assert(
      fc.asyncProperty(dim(4), dim(3), dim(70), dim(6), dim(40), fc.integer(), async (Hkv, group, extra, T, d, seed) => {
        const rand = rng(seed);
        const H = Hkv * group;
        const L = T + (extra % 70);
        const q = f32(uniform(rand, T * H * d));
        const k = f32(uniform(rand, L * Hkv * d));
        const v = f32(uniform(rand, L * Hkv * d));
        const want = new Float64Array(T * H * d);
        const scale = 1 / Math.sqrt(d);
        ts.attention({ q, k, v, T, L, numHeads: H, numKvHeads: Hkv, headDim: d, scale, out: want });
        const out = dev.alloc(T * H * d);
        g.attention({ q: up(q), k: up(k), v: up(v), T, L, numHeads: H, numKvHeads: Hkv, headDim: d, scale, out });
        close(await read(out), want);
      }),
      RUNS,
    );
  });

  it("causalConv1d matches and carries its state across a split sequence", async () => {
    await fc.assert(
      fc.asyncProperty(dim(70), fc.integer({ min: 2, max: 5 }), dim(7), dim(7), fc.integer(), async (C, K, T1, T2, seed) => {
        const rand = rng(seed);
        const x = f32(uniform(rand, (T1 + T2) * C, -2, 2));
        const weight = f32(uniform(rand, C * K));
        const state = new Float64Array(C * (K - 1));
        const want = new Float64Array((T1 + T2) * C);
        const st = dev.alloc(C * (K - 1));
        const wt = up(weight);
        const out = dev.alloc((T1 + T2) * C);
        let t0 = 0;
        for (const T of [T1, T2]) {
          ts.causalConv1d({ x: x.subarray(t0 * C, (t0 + T) * C), weight, state, T, C, K, out: want.subarray(t0 * C, (t0 + T) * C) });
          g.causalConv1d({ x: up(x.subarray(t0 * C, (t0 + T) * C)), weight: wt, state: st, T, C, K, out: { offset: out.offset + t0 * C, n: T * C } });
          t0 += T;
        }
        close(await read(out), want);
        close(await read(st), state);
      }),
      RUNS,
    );
  });

  it("both delta rule kernels (recurrent, chunked) match both TypeScript forms, with a carried state", async () => {
    await fc.assert(
      fc.asyncProperty(dim(2), dim(3), dim(40), dim(24), dim(24), dim(64), fc.integer(), async (Hk, r, T, dk, dv, chunk, seed) => {
        const rand = rng(seed);
        const Hv = Hk * r;
        const unit = (n: number, s: number) => {
          const x = uniform(rand, T * Hk * n);
          for (let i = 0; i < x.length; i += n) {
            let ss = 0;
            for (let j = 0; j < n; j++) ss += x[i + j] ** 2;
            for (let j = 0; j < n; j++) x[i + j] *= s / Math.sqrt(ss);
          }
          return f32(x);
        };
        const q = unit(dk, 1 / Math.sqrt(dk));
        const k = unit(dk, 1);
        const v = f32(uniform(rand, T * Hv * dv));
        const gg = f32(uniform(rand, T * Hv, -2, 0));
        const beta = f32(uniform(rand, T * Hv, 0, 1));
        const s0 = f32(uniform(rand, Hv * dk * dv, -0.5, 0.5));
        const args = (state: Float64Array, out: Float64Array) => ({ q, k, v, g: gg, beta, state, T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv, out });
        const [sR, oR, sC, oC] = [Float64Array.from(s0), new Float64Array(T * Hv * dv), Float64Array.from(s0), new Float64Array(T * Hv * dv)];
        ts.deltaRuleRecurrent(args(sR, oR));
        ts.deltaRuleChunked(args(sC, oC), chunk);
        const dargs = (state: Tensor, out: Tensor) => ({ q: up(q), k: up(k), v: up(v), g: up(gg), beta: up(beta), state, T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv, out });
        const [st, out] = [up(s0), dev.alloc(T * Hv * dv)];
        g.deltaRule(dargs(st, out));
        const [stC, outC] = [up(s0), dev.alloc(T * Hv * dv)];
        g.deltaRuleChunked(dargs(stC, outC), chunk);
        for (const [o, s] of [[await read(out), await read(st)], [await read(outC), await read(stC)]]) {
          close(o, oR, 1e-5);
          close(s, sR, 1e-5);
          close(o, oC, 1e-5);
          close(s, sC, 1e-5);
        }
      }),
      RUNS,
    );
  });

  it("a closed device says so on every later call", async () => {
    const other = await WebGpuKernels.create({ arenaBytes: 1 << 20 });
    other.close();
    await other.dev.device.lost;
    expect(() => other.dev.alloc(4)).toThrow(/^WebGPU device lost/);
  });

  it.each(["delta-rule-small", "delta-rule-real-heads"])("both delta rule kernels match the golden fixture %s (float64 oracle)", async (file) => {
    const fixture = await readDeltaRuleFixture(`${file}.safetensors`, createTsKernels("f32"));
    for (const chunk of [0, 64, 5]) {
      const a = fixture.args();
      const t = { q: up(a.q), k: up(a.k), v: up(a.v), g: up(a.g), beta: up(a.beta), state: up(a.state), out: dev.alloc(a.out.length) };
      const args = { ...a, ...t };
      if (chunk === 0) g.deltaRule(args);
      else g.deltaRuleChunked(args, chunk);
      expect(maxAbsDiff(await read(t.out), fixture.output), `chunk ${chunk} output`).toBeLessThanOrEqual(TOL.f32);
      expect(maxAbsDiff(await read(t.state), fixture.finalState), `chunk ${chunk} state`).toBeLessThanOrEqual(TOL.f32);
    }
  });

  it("the router picks the same experts in the same order with the same weights (ties: lower id)", async () => {
    await fc.assert(
      fc.asyncProperty(dim(6), fc.integer({ min: 1, max: 40 }), dim(8), fc.boolean(), fc.integer(), async (T, E, kk, normalize, seed) => {
        const rand = rng(seed);
        const k = Math.min(kk, E);
        // Coarse logits: ties are common.
        const logits = Float64Array.from({ length: T * E }, () => Math.round(rand() * 8) / 4);
        const experts = new Int32Array(T * k);
        const weights = new Float64Array(T * k);
        ts.router({ logits, T, numExperts: E, k, normalize, experts, weights });
        const [ex, wt] = [dev.alloc(T * k), dev.alloc(T * k)];
        g.router({ logits: up(logits), T, numExperts: E, k, normalize, experts: ex, weights: wt });
        expect(Array.from(await dev.readInts(ex))).toEqual(Array.from(experts));
        close(await read(wt), weights);
      }),
      RUNS,
    );
  });

  it("the layout steps (splitQkvz, splitBa, split/concatColumns, tileHeads, gather/scatter rows, copy) equal the TypeScript ones", async () => {
    await fc.assert(
      fc.asyncProperty(dim(5), dim(3), dim(3), dim(6), dim(6), fc.integer(), async (T, Hk, r, dk, dv, seed) => {
        const rand = rng(seed);
        const Hv = Hk * r;
        const C = 2 * Hk * dk + Hv * dv;
        const qkvz = f32(uniform(rand, T * (C + Hv * dv)));
        const [mixed, z] = [new Float64Array(T * C), new Float64Array(T * Hv * dv)];
        layout.splitQkvz({ qkvz, T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv, mixed, z });
        const [gm, gz] = [dev.alloc(T * C), dev.alloc(T * Hv * dv)];
        g.splitQkvz({ qkvz: up(qkvz), T, numKeyHeads: Hk, numValueHeads: Hv, dk, dv, mixed: gm, z: gz });
        close(await read(gm), mixed, 0);
        close(await read(gz), z, 0);

        const ba = f32(uniform(rand, T * 2 * Hv));
        const [b, a] = [new Float64Array(T * Hv), new Float64Array(T * Hv)];
        layout.splitBa({ ba, T, numKeyHeads: Hk, numValueHeads: Hv, b, a });
        const [gb, ga] = [dev.alloc(T * Hv), dev.alloc(T * Hv)];
        g.splitBa({ ba: up(ba), T, numKeyHeads: Hk, numValueHeads: Hv, b: gb, a: ga });
        close(await read(gb), b, 0);
        close(await read(ga), a, 0);

        const widths = [dk, dv, r];
        const W = dk + dv + r;
        const x = f32(uniform(rand, T * W));
        const outs = widths.map((w) => new Float64Array(T * w));
        layout.splitColumns(x, widths, outs);
        const gouts = widths.map((w) => dev.alloc(T * w));
        g.splitColumns(up(x), widths, gouts);
        for (let i = 0; i < 3; i++) close(await read(gouts[i]), outs[i], 0);
        const joined = dev.alloc(T * W);
        g.concatColumns(gouts, widths, joined);
        close(await read(joined), x, 0);

        const heads = f32(uniform(rand, T * Hk * dk));
        const tiled = new Float64Array(T * Hv * dk);
        layout.tileHeads(heads, T, Hk, Hv, dk, tiled);
        const gt = dev.alloc(T * Hv * dk);
        g.tileHeads(up(heads), T, Hk, Hv, dk, gt);
        close(await read(gt), tiled, 0);

        const rows = Int32Array.from({ length: 2 * T }, () => Math.floor(rand() * T));
        const src = f32(uniform(rand, T * dv));
        const gathered = new Float64Array(rows.length * dv);
        layout.gatherRows(src, dv, rows, gathered);
        const gg = dev.alloc(rows.length * dv);
        g.gatherRows(up(src), dv, rows, gg);
        close(await read(gg), gathered, 0);
        const w = f32(uniform(rand, rows.length));
        const y = f32(uniform(rand, T * dv));
        const want = Float64Array.from(y);
        layout.scatterAxpyRows(w, gathered, dv, rows, want);
        const gy = up(y);
        g.scatterAxpyRows(up(w), gg, dv, rows, gy);
        close(await read(gy), want, 1e-6);

        // Overlapping copy, forwards and backwards.
        const buf = up(x);
        const shift = Math.min(r, x.length - 1);
        g.copyTensor({ offset: buf.offset, n: x.length - shift }, { offset: buf.offset + shift, n: x.length - shift });
        const wantShift = Float64Array.from(x);
        wantShift.set(x.subarray(0, x.length - shift), shift);
        close(await read(buf), wantShift, 0);
      }),
      RUNS,
    );
  });

  it("gates, sigmoid, addScalar, addBias, axpyRows, softmax and ropeTables equal the TypeScript ones", async () => {
    await fc.assert(
      fc.asyncProperty(dim(5), dim(40), fc.integer(), async (T, n, seed) => {
        const rand = rng(seed);
        const a = f32(uniform(rand, T * n, -4, 30)), b = f32(uniform(rand, T * n, -6, 6));
        const A_log = f32(uniform(rand, n, -2, 1)), dt = f32(uniform(rand, n));
        const [g0, beta0] = [new Float64Array(T * n), new Float64Array(T * n)];
        elementwise.gates(a, b, A_log, dt, g0, beta0);
        const [gg, gbeta] = [dev.alloc(T * n), dev.alloc(T * n)];
        g.gates(up(a), up(b), up(A_log), up(dt), gg, gbeta);
        close(await read(gg), g0);
        close(await read(gbeta), beta0);

        const s = new Float64Array(T * n);
        elementwise.sigmoidOf(b, s);
        const gs = up(b);
        g.sigmoid(gs, gs);
        close(await read(gs), s);

        const y = Float64Array.from(b);
        elementwise.addScalar(y, 0.75);
        elementwise.addBias(y, dt);
        const rowA = f32(uniform(rand, T));
        elementwise.axpyRows(rowA, a, y);
        const gy = up(b);
        g.addScalar(gy, 0.75);
        g.addBias(gy, up(dt));
        g.axpyRows(up(rowA), up(a), gy);
        close(await read(gy), y, 1e-6);

        const sm = Float64Array.from(b);
        elementwise.softmax(sm, n);
        const gsm = up(b);
        g.softmax(gsm, n);
        close(await read(gsm), sm);

        const invFreq = Float64Array.from({ length: n }, (_, j) => 10000 ** (-j / n));
        const positions = Array.from({ length: T }, (_, t) => 1000 * t + 7);
        const [c, si] = [new Float64Array(T * n), new Float64Array(T * n)];
        ropeTables(invFreq, 1.25, positions, c, si);
        const [gc, gsi] = [dev.alloc(T * n), dev.alloc(T * n)];
        g.ropeTables(invFreq, 1.25, positions, gc, gsi);
        close(await read(gc), c, 2 ** -24);
        close(await read(gsi), si, 2 ** -24);
      }),
      RUNS,
    );
  });
});
