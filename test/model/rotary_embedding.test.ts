/** RoPE inverse frequencies and YaRN: properties from the YaRN equations (reference/README.md). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseConfig, type RopeConfig } from "../../src/config.js";
import { ropeAttentionScaling, ropeInvFreq } from "../../src/model/rotary_embedding.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";

const ropeOf = (extra: Record<string, unknown>): RopeConfig =>
  parseConfig({ model_type: "qwen3_next", head_dim: 64, partial_rotary_factor: 1, ...extra }).rope;

const setup = fc.record({
  rd: fc.integer({ min: 1, max: 64 }).map((x) => 2 * x),
  theta: fc.double({ min: 100, max: 1e8, noNaN: true }),
  factor: fc.double({ min: 1.01, max: 64, noNaN: true }),
  original: fc.integer({ min: 16, max: 300_000 }),
});

describe("RoPE", () => {
  it("default inverse frequencies are theta^(-2j / rotary_dim)", () => {
    const rope = ropeOf({ rope_theta: 10000 });
    const f = ropeInvFreq(rope, 8);
    expect(Array.from(f)).toEqual([1, 10000 ** -0.25, 10000 ** -0.5, 10000 ** -0.75]);
    expect(ropeAttentionScaling(rope)).toBe(1);
  });

  it("YaRN with factor 1 equals plain RoPE", () => {
    fc.assert(
      fc.property(setup, ({ rd, theta, original }) => {
        const plain = ropeInvFreq(ropeOf({ rope_theta: theta }), rd);
        const yarn = ropeOf({ rope_theta: theta, rope_scaling: { rope_type: "yarn", factor: 1, original_max_position_embeddings: original } });
        ropeInvFreq(yarn, rd).forEach((f, j) => expect(f / plain[j]).toBeCloseTo(1, 15));
        expect(ropeAttentionScaling(yarn)).toBe(1);
      }),
      { numRuns: 100 },
    );
  });

  it("YaRN keeps dims below low, divides dims above high by the factor, and interpolates between", () => {
    fc.assert(
      fc.property(setup, ({ rd, theta, factor, original }) => {
        const yarn = ropeOf({ rope_theta: theta, rope_scaling: { rope_type: "yarn", factor, original_max_position_embeddings: original } });
        const plain = ropeInvFreq(ropeOf({ rope_theta: theta }), rd);
        const f = ropeInvFreq(yarn, rd);
        // d(r) = rd ln(L / (2 pi r)) / (2 ln theta), beta_fast 32, beta_slow 1
        const d = (r: number) => (rd * Math.log(original / (2 * Math.PI * r))) / (2 * Math.log(theta));
        const low = Math.max(Math.floor(d(32)), 0);
        const high = Math.min(Math.ceil(d(1)), rd - 1);
        for (let j = 0; j < rd / 2; j++) {
          if (j <= low) expect(f[j]).toBeCloseTo(plain[j], 15);
          else if (j >= high) expect(f[j] / (plain[j] / factor)).toBeCloseTo(1, 12);
          else {
            expect(f[j]).toBeLessThanOrEqual(plain[j] * (1 + 1e-12));
            expect(f[j]).toBeGreaterThanOrEqual((plain[j] / factor) * (1 - 1e-12));
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it("YaRN scales cos and sin by 0.1 ln(factor) + 1", () => {
    fc.assert(
      fc.property(setup, fc.array(fc.integer({ min: 0, max: 2_000_000 }), { minLength: 1, maxLength: 5 }), ({ rd, theta, factor, original }, positions) => {
        const yarn = ropeOf({ rope_theta: theta, rope_scaling: { rope_type: "yarn", factor, original_max_position_embeddings: original } });
        const s = ropeAttentionScaling(yarn);
        expect(s).toBeCloseTo(0.1 * Math.log(factor) + 1, 14);
        const f = ropeInvFreq(yarn, rd);
        const cos = new Float64Array(positions.length * (rd / 2));
        const sin = new Float64Array(positions.length * (rd / 2));
        createTsKernels("f64").ropeTables(f, s, positions, cos, sin);
        cos.forEach((c, i) => expect(Math.hypot(c, sin[i])).toBeCloseTo(s, 12));
      }),
      { numRuns: 50 },
    );
  });

  it("linear scaling divides every frequency by the factor", () => {
    const plain = ropeInvFreq(ropeOf({}), 16);
    const lin = ropeInvFreq(ropeOf({ rope_scaling: { rope_type: "linear", factor: 4 } }), 16);
    lin.forEach((x, j) => expect(x).toBeCloseTo(plain[j] / 4, 15));
  });

  it("the rope kernel rotates pairs (i, i + rd/2) and leaves dims past rotary_dim alone", () => {
    const k = createTsKernels("f64");
    const x = Float64Array.from({ length: 6 }, (_, i) => i + 1); // one head, head_dim 6, rotary 4
    const [c0, c1, s0, s1] = [Math.cos(0.3), Math.cos(0.7), Math.sin(0.3), Math.sin(0.7)];
    k.rope(x, 1, 1, 6, 4, Float64Array.of(c0, c1), Float64Array.of(s0, s1));
    const want = [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1, 5, 6];
    want.forEach((w, i) => expect(x[i]).toBeCloseTo(w, 15));
  });
});
