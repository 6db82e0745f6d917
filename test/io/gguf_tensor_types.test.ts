/**
 * The per-tensor type choice against files llama.cpp's own `llama-quantize` made: the shipped fixtures
 * (reference/gguf, 4 blocks, 8 experts) list the type llama.cpp gave every tensor; the rules for shapes the
 * fixtures do not have (512 experts, 48 blocks, tied embeddings, odd rows) are checked against llama.cpp's
 * rules as documented in src/io/gguf_tensor_types.ts, case by case.
 */
import { describe, expect, it } from "vitest";
import { readGgufHeader } from "../../src/io/gguf.js";
import { chooseTensorTypes, ggufTensorOrder, type TensorSpec } from "../../src/io/gguf_tensor_types.js";

function fixture(dir: string): { specs: TensorSpec[]; types: string[] } {
  const h = readGgufHeader(`reference/gguf/${dir}/model.gguf`);
  const specs: TensorSpec[] = [];
  const types: string[] = [];
  for (const [name, t] of h.tensors) {
    specs.push({ name, shape: [...t.shape] });
    types.push(t.type.name);
  }
  return { specs, types };
}

describe("tensor types as llama-quantize picks them", () => {
  it("the file order is llama.cpp's (the fixtures are written in it)", () => {
    for (const dir of ["gguf-q8_0", "gguf-q4_k_m"]) {
      const { specs } = fixture(dir);
      expect(ggufTensorOrder(specs).map((t) => t.name)).toEqual(specs.map((t) => t.name));
    }
  });

  it("reproduces every tensor type of the Q8_0 and Q4_K_M fixtures", () => {
    for (const [dir, ft] of [["gguf-q8_0", "q8_0"], ["gguf-q4_k_m", "q4_k_m"]] as const) {
      const { specs, types } = fixture(dir);
      const got = chooseTensorTypes(specs, ft, 8, 4);
      expect(Object.fromEntries(specs.map((t, i) => [t.name, got[i]]))).toEqual(Object.fromEntries(specs.map((t, i) => [t.name, types[i]])));
    }
  });

  it("Q4_K_M on the 80B shape (48 blocks, 512 experts, attention every 4th): Q6_K for attention-v-like tensors and ffn_down where more(i, n)", () => {
    const specs: TensorSpec[] = [{ name: "output.weight", shape: [151936, 2048] }, { name: "token_embd.weight", shape: [151936, 2048] }];
    for (let b = 0; b < 48; b++) {
      const attn = b % 4 === 3;
      if (attn) specs.push({ name: `blk.${b}.attn_v.weight`, shape: [512, 2048] }, { name: `blk.${b}.attn_k.weight`, shape: [512, 2048] }, { name: `blk.${b}.attn_output.weight`, shape: [2048, 4096] });
      else specs.push({ name: `blk.${b}.attn_qkv.weight`, shape: [8192, 2048] }, { name: `blk.${b}.attn_gate.weight`, shape: [4096, 2048] });
      specs.push({ name: `blk.${b}.ffn_down_exps.weight`, shape: [512, 2048, 512] }, { name: `blk.${b}.ffn_gate_inp.weight`, shape: [512, 2048] });
    }
    const ordered = ggufTensorOrder(specs);
    const types = Object.fromEntries(ordered.map((t, i) => [t.name, chooseTensorTypes(ordered, "q4_k_m", 512, 48)[i]]));
    expect(types["output.weight"]).toBe("Q6_K");
    expect(types["token_embd.weight"]).toBe("Q4_K");
    // one attention-v-like tensor per block, so i = block: more(i, 48) = i < 6 || i >= 42 || (i - 6) % 3 == 2
    const more = (i: number) => i < 6 || i >= 42 || (i - 6) % 3 === 2;
    for (let b = 0; b < 48; b++) {
      const v = b % 4 === 3 ? `blk.${b}.attn_v.weight` : `blk.${b}.attn_qkv.weight`;
      expect([b, types[v]]).toEqual([b, more(b) ? "Q6_K" : "Q4_K"]);
      expect([b, types[`blk.${b}.ffn_down_exps.weight`]]).toEqual([b, more(b) ? "Q6_K" : "Q4_K"]);
      expect(types[`blk.${b}.ffn_gate_inp.weight`]).toBe("F32");
      if (b % 4 === 3) expect([types[`blk.${b}.attn_k.weight`], types[`blk.${b}.attn_output.weight`]]).toEqual(["Q4_K", "Q4_K"]);
    }
  });

  it("tied embeddings take the output's type; rows that are not whole blocks fall back; bf16 and f32 keep F32 where the converter does", () => {
    const tied: TensorSpec[] = [{ name: "token_embd.weight", shape: [1000, 512] }, { name: "blk.0.ffn_up_exps.weight", shape: [4, 100, 320] }, { name: "blk.0.ssm_conv1d.weight", shape: [512, 4] }, { name: "blk.0.attn_norm.weight", shape: [512] }];
    expect(chooseTensorTypes(tied, "q4_k_m", 4, 1)).toEqual(["Q6_K", "Q5_0", "F32", "F32"]);
    expect(chooseTensorTypes(tied, "q6_k", 4, 1)).toEqual(["Q6_K", "Q8_0", "F32", "F32"]);
    expect(chooseTensorTypes(tied, "bf16", 4, 1)).toEqual(["BF16", "BF16", "F32", "F32"]);
    expect(chooseTensorTypes(tied, "f32", 4, 1)).toEqual(["F32", "F32", "F32", "F32"]);
    expect(() => chooseTensorTypes([{ name: "blk.0.ssm_out.weight", shape: [8, 40] }], "q8_0", 4, 1)).toThrow(/blk.0.ssm_out.weight: rows of 40 are not whole Q8_0 blocks/);
  });
});
