/**
 * The WebGPU backend in the shape of the seam's asynchronous interface (src/kernels/webgpu/backend.ts): what it
 * adds to the kernels tested in kernels.test.ts. The residual stream (write, read, views, axpy, embedding, fill,
 * copy) keeps float64 values to about 48 bits; `moeExperts` with the router's choices left on the device equals
 * the experts computed one by one with the TypeScript kernels.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { f32ArrayToBf16 } from "../../src/io/dtype.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { Weight } from "../../src/kernels/types.js";
import { webGpuBackend } from "../../src/kernels/webgpu/backend.js";
import { maxScaledDiff, rng, uniform } from "../helpers/random.js";
import { testGpu } from "./gpu.js";

const { gpu, reason } = await testGpu();
afterAll(() => gpu?.close());
const ts = createTsKernels("f64");

describe.skipIf(!gpu)(`the WebGPU backend behind the async interface${reason ? ` (skipped: ${reason})` : ""}`, () => {
  const k = gpu ? webGpuBackend(gpu) : null!;

  it("a residual tensor holds float64 values to about 48 bits through write, axpy, views, copy and read", async () => {
    const rand = rng(5);
    const n = 50;
    const start = Float64Array.from(uniform(rand, n, -100, 100), (v) => v + 1e-9 * Math.sin(v));
    const r = k.residual(n);
    k.write(r, start);
    const exact = Float64Array.from(start);
    expect(maxScaledDiff(await k.read(r), exact)).toBeLessThan(1e-13);
    const x = k.vec(n);
    const xs = Float32Array.from(uniform(rand, n, -1e-4, 1e-4));
    k.write(x, xs);
    for (let i = 0; i < 10; i++) {
      k.axpy(0.5, x, r);
      for (let j = 0; j < n; j++) exact[j] += 0.5 * xs[j];
    }
    expect(maxScaledDiff(await k.read(r), exact)).toBeLessThan(1e-12);
    expect(maxScaledDiff(await k.read(k.view(r, 10, 20)), exact.subarray(10, 20))).toBeLessThan(1e-12);
    const c = k.residual(n);
    k.copy(r, c);
    expect(maxScaledDiff(await k.read(c), exact)).toBeLessThan(1e-12);
    // embedding starts a row of the stream: the low part of that row is cleared.
    const w = ts.allocWeight("emb", "F32", [3, 10]);
    (w.data as Float32Array).set(Float32Array.from(uniform(rand, 30)));
    k.embedding(w, 2, k.view(r, 0, 10));
    expect(Array.from(await k.read(k.view(r, 0, 10)))).toEqual(Array.from((w.data as Float32Array).subarray(20, 30)));
    k.fill(c, 3);
    expect(Array.from(await k.read(c))).toEqual(new Array(n).fill(3));
  });

  it("moeExperts with the choices on the device equals each expert run on its tokens", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer(), async (E, T, kk, seed) => {
        const rand = rng(seed);
        const topK = Math.min(kk, E);
        const [H, I] = [12, 7];
        const bf16 = (name: string, shape: number[]): Weight => {
          const w = ts.allocWeight(name, "BF16", shape);
          f32ArrayToBf16(uniform(rand, shape[0] * shape[1], -0.5, 0.5), w.data as Uint16Array);
          return w;
        };
        const mlps = Array.from({ length: E }, (_, e) => ({ gate_proj: bf16(`g${e}`, [I, H]), up_proj: bf16(`u${e}`, [I, H]), down_proj: bf16(`d${e}`, [H, I]) }));
        const x = Float64Array.from(Float32Array.from(uniform(rand, T * H)));
        const logits = uniform(rand, T * E, -3, 3);
        const experts = new Int32Array(T * topK);
        const weights = new Float64Array(T * topK);
        ts.router({ logits, T, numExperts: E, k: topK, normalize: true, experts, weights });
        const want = new Float64Array(T * H);
        for (let t = 0; t < T; t++) {
          for (let j = 0; j < topK; j++) {
            const m = mlps[experts[t * topK + j]];
            const [gate, up, y] = [new Float64Array(I), new Float64Array(I), new Float64Array(H)];
            ts.linear(m.gate_proj, x.subarray(t * H, (t + 1) * H), 1, gate);
            ts.linear(m.up_proj, x.subarray(t * H, (t + 1) * H), 1, up);
            ts.siluMul(gate, up, gate);
            ts.linear(m.down_proj, gate, 1, y);
            ts.axpy(weights[t * topK + j], y, want.subarray(t * H, (t + 1) * H));
          }
        }
        const [gx, ge, gw, out] = [k.vec(T * H), k.indices(T * topK), k.vec(T * topK), k.vec(T * H)];
        k.write(gx, x);
        gpu!.dev.writeInts(ge, experts);
        k.write(gw, weights);
        k.moeExperts({ x: gx, experts: ge, weights: gw, T, k: topK, mlps, out });
        expect(maxScaledDiff(await k.read(out), want)).toBeLessThan(1e-5);
      }),
      { numRuns: 8 },
    );
  });
});
