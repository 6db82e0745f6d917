/**
 * Absurd sizes fail in parseConfig, at once, with one line naming the key, the value and the limit, before
 * anything is built from them (num_experts 1e12 used to hang building the expected-tensor list, then run out
 * of memory). Wrongly typed fields are one-line errors too.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CONFIG_LIMITS, ConfigError, MAX_TOTAL_EXPERTS, parseConfig } from "../src/config.js";
import { ROOT, runCli } from "./helpers/cli.js";

const fixture = (): Record<string, unknown> => JSON.parse(readFileSync(path.join(ROOT, "reference/tiny-moe-mtp/config.json"), "utf8"));

describe("config size limits", () => {
  const absurd: Array<[string, number]> = [
    ["num_experts", 1e12],
    ["num_hidden_layers", 1e9],
    ["vocab_size", 2 ** 40],
    ["hidden_size", 1e8],
    ["intermediate_size", 1e10],
    ["max_position_embeddings", 1e15],
    ["num_attention_heads", 1e6],
    ["num_key_value_heads", 1e6],
    ["head_dim", 1e6],
    ["linear_conv_kernel_dim", 1e6],
    ["linear_key_head_dim", 1e6],
    ["linear_value_head_dim", 1e6],
    ["linear_num_key_heads", 1e6],
    ["linear_num_value_heads", 1e6],
    ["decoder_sparse_step", 1e9],
    ["num_experts_per_tok", 1e9],
    ["moe_intermediate_size", 1e9],
    ["shared_expert_intermediate_size", 1e9],
    ["full_attention_interval", 1e9],
    ["mtp_num_hidden_layers", 1e6],
  ];
  for (const [key, value] of absurd) {
    it(`${key} ${value} fails naming the key, the value and the limit`, () => {
      const limit = CONFIG_LIMITS[key];
      expect(limit).toBeGreaterThan(0);
      expect(() => parseConfig({ ...fixture(), [key]: value })).toThrow(new ConfigError(`config.json: ${key} is ${value}, over the limit of ${limit}`));
    });
  }

  it("Qwen3.5 configs are bounded the same way, the sizes read from text_config", () => {
    const qwen35 = (): Record<string, unknown> =>
      JSON.parse(readFileSync(path.join(ROOT, "reference/qwen35-dense-mtp-tied/config.json"), "utf8"));
    for (const [key, value] of [["num_hidden_layers", 1e9], ["vocab_size", 2 ** 40], ["linear_num_value_heads", 1e6]] as const) {
      const c = qwen35();
      c.text_config = { ...(c.text_config as object), [key]: value };
      expect(() => parseConfig(c)).toThrow(new ConfigError(`config.json: ${key} is ${value}, over the limit of ${CONFIG_LIMITS[key]}`));
    }
    // Qwen3.5 MoE: the wrapper's defaults plus an absurd expert count, nested or as a bare text config.
    const moe = { model_type: "qwen3_5_moe", text_config: { model_type: "qwen3_5_moe_text", num_experts: 1e12 } };
    expect(() => parseConfig(moe)).toThrow(new ConfigError(`config.json: num_experts is 1000000000000, over the limit of ${CONFIG_LIMITS.num_experts}`));
    expect(() => parseConfig({ model_type: "qwen3_5_moe_text", num_experts: 1e12 })).toThrow(/num_experts is 1000000000000, over the limit/);
    const many = { model_type: "qwen3_5_moe", text_config: { num_hidden_layers: 1000, num_experts: 2048, num_experts_per_tok: 8 } };
    expect(() => parseConfig(many)).toThrow(new ConfigError(`config.json: 1000 MoE layers x num_experts 2048 = 2048000 experts, over the limit of ${MAX_TOTAL_EXPERTS}`));
    // A long model_type is cut in the message, for every family's check.
    expect(() => parseConfig({ model_type: "x".repeat(500) })).toThrow(/^config\.json: model_type is "x{56}\.\.\., expected "qwen3_next", "qwen3_5" or "qwen3_5_moe"$/);
  });

  it("every limit is far above Qwen3-Next-80B-A3B's sizes, which parse", () => {
    const published = {
      model_type: "qwen3_next", vocab_size: 151936, hidden_size: 2048, intermediate_size: 5120, num_hidden_layers: 48,
      num_attention_heads: 16, num_key_value_heads: 2, head_dim: 256, max_position_embeddings: 262144, num_experts: 512,
      num_experts_per_tok: 10, moe_intermediate_size: 512, shared_expert_intermediate_size: 512, linear_num_value_heads: 32,
      linear_num_key_heads: 16, linear_key_head_dim: 128, linear_value_head_dim: 128, linear_conv_kernel_dim: 4, mtp_num_hidden_layers: 1,
    };
    const c = parseConfig(published);
    for (const [key, limit] of Object.entries(CONFIG_LIMITS)) {
      expect((c as unknown as Record<string, number>)[key] * 8).toBeLessThanOrEqual(limit);
    }
  });

  it("bounds the experts over all layers, and list lengths", () => {
    const many = { ...fixture(), num_hidden_layers: 1024, num_experts: 2048 };
    expect(() => parseConfig(many)).toThrow(`1024 MoE layers x num_experts 2048 = 2097152 experts, over the limit of ${MAX_TOTAL_EXPERTS}`);
    const long = { ...fixture(), mlp_only_layers: new Array(1_000_000).fill(0) };
    expect(() => parseConfig(long)).toThrow(/^config\.json: mlp_only_layers is \[0,0,0,.{0,60}, expected a list of layer indices in \[0, 4\)$/);
  });

  it("bounds RoPE scaling", () => {
    expect(() => parseConfig({ ...fixture(), rope_scaling: { rope_type: "yarn", factor: 1e9, original_max_position_embeddings: 4096 } })).toThrow(
      "rope scaling factor is 1000000000, over the limit of 1024",
    );
    expect(() => parseConfig({ ...fixture(), rope_scaling: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 1e12 } })).toThrow(
      "original_max_position_embeddings is 1000000000000, over the limit of 16777216",
    );
  });

  it("`info --config` refuses an absurd config at once (exit 1, one line)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-next-absurd-"));
    const file = path.join(dir, "config.json");
    await writeFile(file, JSON.stringify({ ...fixture(), num_experts: 1e12, num_hidden_layers: 1e9 }));
    const r = await runCli(["info", "--config", file], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/num_hidden_layers is 1000000000, over the limit of 1024/);
  });
});

describe("config fields of the wrong type", () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ["bos_token_id", "<s>", /^config\.json: bos_token_id is "<s>", expected a token id or null$/],
    ["bos_token_id", -3, /bos_token_id is -3/],
    ["torch_dtype", 16, /^config\.json: torch_dtype is 16, expected a dtype name such as "bfloat16"$/],
    ["hidden_act", "x".repeat(10_000), /^config\.json: hidden_act is "x{56}\.\.\., expected "silu"$/],
    ["rope_theta", "1e6", /rope_theta is "1e6", expected a number/],
    ["rms_norm_eps", [1e-6], /rms_norm_eps is \[0\.000001\], expected a number/],
    ["norm_topk_prob", null, /^$/], // null: the default (as for every field with a default)
  ];
  for (const [key, value, message] of cases) {
    it(`${key}: ${JSON.stringify(value).slice(0, 20)}`, () => {
      if (message.source === "^$") return void expect(parseConfig({ ...fixture(), [key]: value }).norm_topk_prob).toBe(true);
      expect(() => parseConfig({ ...fixture(), [key]: value })).toThrow(message);
    });
  }

  it("fuzzed configs parse or fail with one ConfigError line, never another error (a hang fails the test's timeout)", () => {
    const keys = Object.keys(fixture()).concat(["rope_parameters", "layer_types", "dtype", "bos_token_id"]);
    const value = fc.oneof(
      fc.constantFrom(null, true, false, 0, -1, 1, 2, 1.5, 1e12, 1e308, -1e308, Infinity, "", "qwen3_next", "yarn", [], {}, [0], [null]),
      fc.integer(),
      fc.double(),
      fc.string(),
      fc.array(fc.oneof(fc.integer({ min: -2, max: 70 }), fc.constantFrom("full_attention", "linear_attention"))),
      fc.dictionary(fc.constantFrom("rope_type", "type", "factor", "original_max_position_embeddings", "rope_theta", "partial_rotary_factor", "attention_factor", "beta_fast"), fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null), fc.constantFrom("yarn", "linear", "default"))),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...keys), value), { maxLength: 6 }), (edits) => {
        const raw = fixture();
        for (const [k, v] of edits) raw[k] = v;
        try {
          parseConfig(raw);
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError);
          const msg = (err as Error).message;
          expect(msg.split("\n")).toHaveLength(1);
          expect(msg.length).toBeLessThan(400);
          expect(msg).not.toMatch(/undefined is not|Cannot read|is not a function|Maximum call stack/);
        }
      }),
      { numRuns: 500, seed: 13 },
    );
  });
});
