import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, isMoeLayer, parseConfig, rotaryDim } from "../src/config.js";
import { ROOT } from "./helpers/cli.js";

const publishedJson = (): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(ROOT, "test/fixtures/published/Qwen3-Next-80B-A3B-Instruct.config.json"), "utf8"));
const fixtureJson = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path.join(ROOT, "reference", name, "config.json"), "utf8"));

/** The error a config gives: must be a ConfigError with a one-line message. */
function errorOf(json: unknown): string {
  try {
    parseConfig(json, "cfg.json");
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const msg = (e as Error).message;
    expect(msg).not.toContain("\n");
    expect(msg.startsWith("cfg.json: ")).toBe(true);
    return msg;
  }
  throw new Error("expected the config to be rejected");
}

describe("the published Qwen3-Next-80B-A3B config", () => {
  const c = parseConfig(publishedJson());

  it("has the published architecture", () => {
    expect(c.num_hidden_layers).toBe(48);
    expect(c.hidden_size).toBe(2048);
    expect(c.vocab_size).toBe(151936);
    const full = c.layer_types.flatMap((t, i) => (t === "full_attention" ? [i] : []));
    expect(full).toEqual([3, 7, 11, 15, 19, 23, 27, 31, 35, 39, 43, 47]);
    expect(c.layer_types.filter((t) => t === "linear_attention")).toHaveLength(36);
    expect(c.layer_types.every((_, i) => isMoeLayer(c, i))).toBe(true);
    expect(c.num_experts).toBe(512);
    expect(c.num_experts_per_tok).toBe(10);
    expect(c.mtp_num_hidden_layers).toBe(1);
    expect(rotaryDim(c)).toBe(64);
    expect(c.rope).toEqual({
      rope_type: "default",
      rope_theta: 1e7,
      partial_rotary_factor: 0.25,
      factor: 1,
      original_max_position_embeddings: 262144,
      beta_fast: 32,
      beta_slow: 1,
      attention_factor: 1,
    });
    expect(c.eos_token_id).toEqual([151645]);
    expect(c.bos_token_id).toBe(151643);
    expect(c.tie_word_embeddings).toBe(false);
  });

  it("with the long-context YaRN recipe", () => {
    const y = parseConfig({
      ...publishedJson(),
      rope_scaling: { rope_type: "yarn", factor: 4.0, original_max_position_embeddings: 262144 },
    });
    expect(y.rope.rope_type).toBe("yarn");
    expect(y.rope.factor).toBe(4);
    expect(y.rope.original_max_position_embeddings).toBe(262144);
    expect(y.rope.attention_factor).toBeCloseTo(0.1 * Math.log(4) + 1, 15);
    // Older spelling of the same thing: "type" instead of "rope_type".
    const old = parseConfig({ ...publishedJson(), rope_scaling: { type: "yarn", factor: 4.0, original_max_position_embeddings: 262144 } });
    expect(old.rope).toEqual(y.rope);
  });
});

describe("the newer transformers form (nested rope_parameters)", () => {
  /** Moves the flat RoPE keys into rope_parameters, as transformers >= 5 writes config.json. */
  function nest(j: Record<string, unknown>): Record<string, unknown> {
    const { rope_theta, partial_rotary_factor, rope_scaling, ...rest } = j;
    const scaling = (rope_scaling ?? {}) as Record<string, unknown>;
    return { ...rest, rope_parameters: { rope_type: "default", ...scaling, rope_theta, partial_rotary_factor } };
  }

  for (const [what, json] of [
    ["published", publishedJson()],
    ["tiny-moe-mtp", fixtureJson("tiny-moe-mtp")],
    ["tiny-dense-yarn-long (YaRN)", fixtureJson("tiny-dense-yarn-long")],
  ] as const) {
    it(`${what}: parses to the same config`, () => {
      const nested = nest(json);
      expect(nested).not.toHaveProperty("rope_theta");
      expect(parseConfig(nested)).toEqual(parseConfig(json));
    });
  }

  it("nested YaRN parameters are read", () => {
    const c = parseConfig({
      model_type: "qwen3_next",
      rope_parameters: { rope_type: "yarn", rope_theta: 1e6, partial_rotary_factor: 0.5, factor: 2, original_max_position_embeddings: 4096, beta_fast: 16 },
    });
    expect(c.rope).toMatchObject({ rope_type: "yarn", rope_theta: 1e6, partial_rotary_factor: 0.5, factor: 2, beta_fast: 16, beta_slow: 1 });
    expect(rotaryDim(c)).toBe(128);
  });
});

describe("defaults", () => {
  it("a bare config takes transformers' Qwen3NextConfig defaults", () => {
    // Values from the transformers docstring of Qwen3NextConfig (defaults to ...).
    const c = parseConfig({ model_type: "qwen3_next" });
    expect(c).toMatchObject({
      vocab_size: 151936,
      hidden_size: 2048,
      intermediate_size: 5632,
      num_hidden_layers: 48,
      num_attention_heads: 16,
      num_key_value_heads: 2,
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: false,
      attention_bias: false,
      head_dim: 256,
      linear_conv_kernel_dim: 4,
      linear_key_head_dim: 128,
      linear_value_head_dim: 128,
      linear_num_key_heads: 16,
      linear_num_value_heads: 32,
      decoder_sparse_step: 1,
      moe_intermediate_size: 512,
      shared_expert_intermediate_size: 512,
      num_experts_per_tok: 10,
      num_experts: 512,
      norm_topk_prob: true,
      mlp_only_layers: [],
      mtp_num_hidden_layers: 0,
      bos_token_id: null,
      eos_token_id: [],
    });
    expect(c.rope.rope_theta).toBe(10000);
    expect(c.rope.partial_rotary_factor).toBe(0.25);
    expect(c.layer_types).toHaveLength(48);
  });

  it("null means the default, as in transformers", () => {
    expect(parseConfig({ model_type: "qwen3_next", head_dim: null }).head_dim).toBe(256);
  });
});

describe("layer schedule", () => {
  it("full_attention_interval places attention every n-th layer", () => {
    const c = parseConfig({ model_type: "qwen3_next", num_hidden_layers: 6, full_attention_interval: 3 });
    expect(c.layer_types).toEqual([
      "linear_attention",
      "linear_attention",
      "full_attention",
      "linear_attention",
      "linear_attention",
      "full_attention",
    ]);
  });

  it("explicit layer_types win over the interval", () => {
    const types = ["full_attention", "linear_attention", "full_attention"];
    const c = parseConfig({ model_type: "qwen3_next", num_hidden_layers: 3, full_attention_interval: 4, layer_types: types });
    expect(c.layer_types).toEqual(types);
  });

  it("decoder_sparse_step and mlp_only_layers choose MoE layers", () => {
    const c = parseConfig(fixtureJson("tiny-dense-yarn-long"));
    expect(c.layer_types.map((_, i) => isMoeLayer(c, i))).toEqual([false, true, false, true, false, false, false, true]);
    const noExperts = parseConfig({ ...fixtureJson("tiny-dense-yarn-long"), num_experts: 0 });
    expect(noExperts.layer_types.some((_, i) => isMoeLayer(noExperts, i))).toBe(false);
  });

  it("rotary dims are truncated as transformers does: int(head_dim * partial_rotary_factor)", () => {
    expect(rotaryDim(parseConfig({ model_type: "qwen3_next", head_dim: 128, partial_rotary_factor: 0.3 }))).toBe(38);
  });
});

describe("invalid configs give a one-line error naming the field", () => {
  const base = () => fixtureJson("tiny-moe-mtp");
  const cases: Array<[string, unknown, RegExp]> = [
    ["not an object", [1, 2], /expected a JSON object, got an array/],
    ["wrong model_type", { ...base(), model_type: "qwen3_moe" }, /model_type is "qwen3_moe", expected "qwen3_next"/],
    ["missing model_type", { hidden_size: 64 }, /model_type is undefined, expected "qwen3_next"/],
    ["value heads not a multiple of key heads", { ...base(), linear_num_key_heads: 3 }, /linear_num_value_heads \(4\) must be a multiple of linear_num_key_heads \(3\)/],
    ["kv heads not dividing heads", { ...base(), num_key_value_heads: 3 }, /num_attention_heads \(4\) must be a multiple of num_key_value_heads \(3\)/],
    ["top-k above the expert count", { ...base(), num_experts_per_tok: 9 }, /num_experts_per_tok \(9\) must be between 1 and num_experts \(8\)/],
    ["top-k of zero with experts", { ...base(), num_experts_per_tok: 0 }, /num_experts_per_tok \(0\) must be between 1 and num_experts/],
    ["odd rotary dim", { ...base(), head_dim: 10, partial_rotary_factor: 0.5 }, /head_dim \* partial_rotary_factor = 5, expected an even integer/],
    ["partial_rotary_factor out of range", { ...base(), partial_rotary_factor: 1.5 }, /partial_rotary_factor is 1.5, expected a number in \(0, 1\]/],
    ["bad rope type", { ...base(), rope_scaling: { rope_type: "dynamic", factor: 2 } }, /rope type "dynamic" is not supported/],
    ["YaRN without its original length", { ...base(), rope_scaling: { rope_type: "yarn", factor: 4 } }, /original_max_position_embeddings is required for YaRN/],
    ["YaRN without a factor", { ...base(), rope_scaling: { rope_type: "yarn", original_max_position_embeddings: 64 } }, /rope_scaling\.factor is required for rope type "yarn"/],
    ["YaRN with a non-positive original length", { ...base(), rope_scaling: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 0 } }, /original_max_position_embeddings is 0, expected a number > 0/],
    ["rope scaling factor below 1", { ...base(), rope_scaling: { rope_type: "linear", factor: 0.5 } }, /rope scaling factor is 0.5, expected a number >= 1/],
    ["rope_scaling not an object", { ...base(), rope_scaling: "yarn" }, /rope_scaling must be an object or null, got string/],
    ["mlp_only_layers out of range", { ...base(), mlp_only_layers: [4] }, /mlp_only_layers is \[4\], expected a list of layer indices in \[0, 4\)/],
    ["mlp_only_layers not a list", { ...base(), mlp_only_layers: "0" }, /mlp_only_layers is "0"/],
    ["layer_types of the wrong length", { ...base(), layer_types: ["full_attention"] }, /layer_types must list .* for each of the 4 layers/],
    ["layer_types with an unknown kind", { ...base(), layer_types: ["full_attention", "sliding", "full_attention", "full_attention"] }, /layer_types must list/],
    ["a size that is not a positive integer", { ...base(), hidden_size: 64.5 }, /hidden_size is 64.5, expected an integer >= 1/],
    ["a size given as a string", { ...base(), num_hidden_layers: "4" }, /num_hidden_layers is "4", expected an integer >= 1/],
    ["an unsupported activation", { ...base(), hidden_act: "gelu" }, /hidden_act is "gelu", expected "silu"/],
    ["a boolean that is not one", { ...base(), tie_word_embeddings: "yes" }, /tie_word_embeddings is "yes", expected true or false/],
    ["bad eos ids", { ...base(), eos_token_id: [-1] }, /eos_token_id is \[-1\]/],
  ];
  for (const [what, json, message] of cases) {
    it(what, () => {
      expect(errorOf(json)).toMatch(message);
    });
  }
});
