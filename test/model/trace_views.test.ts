/**
 * The trace tensors the browser explorer draws besides the fixtures' (router.{i}.shared_gate, deltanet.{i}.g /
 * .beta, attention.{i}.q / .k / .gate), on the shipped tiny MoE + MTP checkpoint in float64:
 *   - each is written by the layers of its kind only, one row per token, with the shapes the config implies;
 *   - their ranges follow from their definitions (g = -exp(A_log) softplus(.) <= 0, beta and the gates are sigmoids);
 *   - prefill then token-by-token decode writes the same rows as one pass (to 1e-9), as for the fixtures' tensors.
 */
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/model/load.js";
import type { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { traceTokens } from "../../src/model/trace_run.js";
import { REFERENCE_DIR, maxAbsDiff } from "../helpers/reference.js";

const TOKENS = [5, 17, 300, 2, 99, 41, 7, 250, 3, 11];

describe("trace tensors for the explorer's views", () => {
  let model: Qwen3NextForCausalLM;
  beforeAll(async () => {
    model = await loadModel(path.join(REFERENCE_DIR, "tiny-moe-mtp"), { backend: "ts", precision: "f64" });
  });

  it("are written per layer kind with the config's shapes and the ranges of their definitions", () => {
    const c = model.config;
    const { trace } = traceTokens(model, TOKENS);
    const T = TOKENS.length;
    c.layer_types.forEach((type, i) => {
      const gate = trace.get(`router.${i}.shared_gate`);
      expect(gate.shape).toEqual([T]);
      expect(gate.data.every((x) => x > 0 && x < 1)).toBe(true);
      if (type === "linear_attention") {
        expect(trace.has(`attention.${i}.q`)).toBe(false);
        const g = trace.get(`deltanet.${i}.g`);
        const beta = trace.get(`deltanet.${i}.beta`);
        expect(g.shape).toEqual([T, c.linear_num_value_heads]);
        expect(beta.shape).toEqual([T, c.linear_num_value_heads]);
        expect(g.data.every((x) => x <= 0)).toBe(true);
        expect(beta.data.every((x) => x > 0 && x < 1)).toBe(true);
      } else {
        expect(trace.has(`deltanet.${i}.g`)).toBe(false);
        expect(trace.get(`attention.${i}.q`).shape).toEqual([T, c.num_attention_heads, c.head_dim]);
        expect(trace.get(`attention.${i}.k`).shape).toEqual([T, c.num_key_value_heads, c.head_dim]);
        expect(trace.get(`attention.${i}.gate`).shape).toEqual([T, c.num_attention_heads * c.head_dim]);
      }
    });
  });

  it("prefill then decode writes the rows of one pass", () => {
    const one = traceTokens(model, TOKENS).trace;
    const split = traceTokens(model, TOKENS, 4).trace;
    const names = one.names().filter((n) => /shared_gate|\.g$|\.beta$|attention\./.test(n));
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) {
      expect(split.get(n).shape, n).toEqual(one.get(n).shape);
      expect(maxAbsDiff(split.get(n).data, one.get(n).data), n).toBeLessThan(1e-9);
    }
  });
});
