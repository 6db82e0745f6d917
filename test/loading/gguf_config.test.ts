/**
 * The config of a GGUF file from its `qwen3next.*` metadata alone: the shipped files give the config.json they
 * were made from (read here only to compare), and each metadata key moves the field it should.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config.js";
import { parseConfig, rotaryDim } from "../../src/config.js";
import { GgufType, readGgufHeader, type GgufHeader } from "../../src/io/gguf.js";
import { configFromGguf, shortestFloat32 } from "../../src/loading/gguf_config.js";
import { bool, f32, GGUF_FIXTURES, ggufFixture, str, u32, withMetadata } from "../helpers/gguf.js";
import { REFERENCE_DIR } from "../helpers/reference.js";

const header = (name = "gguf-q8_0"): GgufHeader => readGgufHeader(ggufFixture(name));

describe("config from metadata", () => {
  it.each(GGUF_FIXTURES)("%s: the same config as the config.json it was made from", async (name) => {
    const fromJson = parseConfig(JSON.parse(await fsp.readFile(path.join(REFERENCE_DIR, "gguf", name, "config.json"), "utf8")));
    const fromGguf = configFromGguf(header(name));
    // Token ids and the dtype label are not in that config.json, and the DeltaNet input projection is stored split
    // (attn_qkv + attn_gate) where the checkpoint groups it; everything else must agree exactly.
    const strip = ({ bos_token_id, eos_token_id, torch_dtype, deltanet_projections, ...rest }: typeof fromJson) => (
      void bos_token_id, void eos_token_id, void torch_dtype, void deltanet_projections, rest
    );
    expect(strip(fromGguf)).toEqual(strip(fromJson));
    expect(fromGguf.eos_token_id).toEqual([511]);
    expect(fromGguf.deltanet_projections).toEqual({ qkvz: "split", ba: "grouped" });
  });

  it("expert_weights_norm false turns norm_topk_prob off; absent means true", () => {
    expect(configFromGguf(withMetadata(header(), { "qwen3next.expert_weights_norm": bool(false) })).norm_topk_prob).toBe(false);
    expect(configFromGguf(withMetadata(header(), { "qwen3next.expert_weights_norm": undefined })).norm_topk_prob).toBe(true);
  });

  it("rope.dimension_count sets the rotary dims (absent: all of head_dim, as llama.cpp)", () => {
    const c = configFromGguf(withMetadata(header(), { "qwen3next.rope.dimension_count": u32(32) }));
    expect(rotaryDim(c)).toBe(32);
    expect(rotaryDim(configFromGguf(withMetadata(header(), { "qwen3next.rope.dimension_count": undefined })))).toBe(64);
    // Every even rotary width survives the division into partial_rotary_factor.
    for (const hd of [64, 80, 96, 128, 192, 256, 512]) {
      for (let r = 2; r <= hd; r += 2) {
        const h = withMetadata(header(), { "qwen3next.attention.key_length": u32(hd), "qwen3next.attention.value_length": u32(hd), "qwen3next.rope.dimension_count": u32(r) });
        expect(rotaryDim(configFromGguf(h))).toBe(r);
      }
    }
  });

  it("rope.scaling.* gives YaRN with its factor, original context and betas", () => {
    const c = configFromGguf(
      withMetadata(header(), {
        "qwen3next.rope.scaling.type": str("yarn"),
        "qwen3next.rope.scaling.factor": f32(4),
        "qwen3next.rope.scaling.original_context_length": u32(262144),
        "qwen3next.rope.scaling.yarn_beta_fast": f32(16),
      }),
    );
    expect(c.rope).toMatchObject({ rope_type: "yarn", factor: 4, original_max_position_embeddings: 262144, beta_fast: 16, beta_slow: 1 });
    expect(c.rope.attention_factor).toBeCloseTo(0.1 * Math.log(4) + 1, 15);
    const withAttn = configFromGguf(
      withMetadata(header(), {
        "qwen3next.rope.scaling.type": str("yarn"),
        "qwen3next.rope.scaling.factor": f32(4),
        "qwen3next.rope.scaling.original_context_length": u32(1024),
        "qwen3next.rope.scaling.yarn_attn_factor": f32(1.25),
      }),
    );
    expect(withAttn.rope.attention_factor).toBe(1.25);
    expect(() => configFromGguf(withMetadata(header(), { "qwen3next.rope.scaling.type": str("yarn"), "qwen3next.rope.scaling.factor": f32(4) }))).toThrow(
      /original_max_position_embeddings is required for YaRN/,
    );
    const lin = configFromGguf(withMetadata(header(), { "qwen3next.rope.scaling.type": str("linear"), "qwen3next.rope.scaling.factor": f32(2) }));
    expect(lin.rope).toMatchObject({ rope_type: "linear", factor: 2 });
    expect(configFromGguf(withMetadata(header(), { "qwen3next.rope.scaling.type": str("none") })).rope.rope_type).toBe("default");
  });

  it("ssm.* gives the DeltaNet heads and dims, nextn_predict_layers the MTP head", () => {
    const c = configFromGguf(
      withMetadata(header(), {
        "qwen3next.ssm.group_count": u32(4),
        "qwen3next.ssm.time_step_rank": u32(8),
        "qwen3next.ssm.inner_size": u32(8 * 32),
        "qwen3next.ssm.state_size": u32(48),
        "qwen3next.ssm.conv_kernel": u32(3),
      }),
    );
    expect(c).toMatchObject({ linear_num_key_heads: 4, linear_num_value_heads: 8, linear_value_head_dim: 32, linear_key_head_dim: 48, linear_conv_kernel_dim: 3 });
    const mtp = configFromGguf(withMetadata(header(), { "qwen3next.block_count": u32(5), "qwen3next.nextn_predict_layers": u32(1) }));
    expect(mtp.num_hidden_layers).toBe(4);
    expect(mtp.mtp_num_hidden_layers).toBe(1);
  });

  it("per-layer head counts (0 for recurrent layers) give the attention layers' value", () => {
    const perLayer = (xs: number[]) => ({ type: GgufType.ARRAY, arrayType: GgufType.UINT32, value: xs });
    const c = configFromGguf(withMetadata(header(), { "qwen3next.attention.head_count_kv": perLayer([0, 0, 0, 2]) }));
    expect(c.num_key_value_heads).toBe(2);
    expect(() => configFromGguf(withMetadata(header(), { "qwen3next.attention.head_count_kv": perLayer([0, 1, 0, 2]) }))).toThrow(
      /attention\.head_count_kv is \[0,1,0,2\], expected one non-zero value for every attention layer/,
    );
  });

  it("the float32 epsilon reads back as the decimal it was written from", () => {
    expect(configFromGguf(header()).rms_norm_eps).toBe(1e-6);
    expect(shortestFloat32(Math.fround(1e-5))).toBe(1e-5);
    expect(shortestFloat32(Math.fround(0.1))).toBe(0.1);
    expect(shortestFloat32(0.1)).toBe(0.1);
  });

  it("bad metadata: one line naming the file and the key", () => {
    const file = ggufFixture("gguf-q8_0");
    expect(() => configFromGguf(withMetadata(header(), { "general.architecture": str("llama") }))).toThrow(
      `${file}: general.architecture is "llama", expected "qwen3next" (a Qwen3-Next GGUF)`,
    );
    expect(() => configFromGguf(withMetadata(header(), { "qwen3next.block_count": undefined }))).toThrow(`${file}: metadata qwen3next.block_count is missing`);
    expect(() => configFromGguf(withMetadata(header(), { "qwen3next.embedding_length": str("256") }))).toThrow(
      `${file}: metadata qwen3next.embedding_length is "256", expected a non-negative integer`,
    );
    expect(() => configFromGguf(withMetadata(header(), { "qwen3next.ssm.inner_size": u32(250) }))).toThrow(/ssm\.inner_size \(250\) must be a multiple of ssm\.time_step_rank \(4\)/);
    expect(() => configFromGguf(withMetadata(header(), { "qwen3next.rope.scaling.type": str("ntk") }))).toThrow(/rope\.scaling\.type is "ntk"/);
    expect(() => configFromGguf(withMetadata(header(), { "qwen3next.expert_used_count": u32(9) }))).toThrow(/num_experts_per_tok \(9\) must be between 1 and num_experts \(8\)/);
  });

  it("absurd counts are refused before anything is enumerated", () => {
    expect(() => configFromGguf(withMetadata(header(), { "qwen3next.block_count": u32(4_000_000_000) }))).toThrow(/block_count is 4000000000, which a file of 73 tensors cannot hold/);
    expect(() => configFromGguf(withMetadata(header(), { "qwen3next.expert_count": u32(1 << 30) }))).toThrow(/expert_count is 1073741824, but tensor "blk\.0\.ffn_gate_inp\.weight" routes to 8 experts/);
  });

  it("fuzz: any integer in any qwen3next key gives a config or one ConfigError line, quickly", () => {
    const h = header();
    const keys = [...h.metadata.keys()].filter((k) => k.startsWith("qwen3next.") && typeof h.metadata.get(k)!.value === "number");
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...keys), fc.oneof(fc.constantFrom(0, 1, 2, 3, 7, 64, 4096, 2 ** 31, 2 ** 32 - 1), fc.nat())), { minLength: 1, maxLength: 4 }),
        (edits) => {
          const edited = withMetadata(h, Object.fromEntries(edits.map(([k, v]) => [k, { ...h.metadata.get(k)!, value: v }])));
          try {
            configFromGguf(edited);
          } catch (e) {
            expect(e).toBeInstanceOf(ConfigError);
            expect((e as Error).message).not.toContain("\n");
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
