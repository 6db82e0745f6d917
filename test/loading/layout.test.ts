/**
 * A checkpoint layout spells each declared parameter: renamed, reshaped, a row range of a fused tensor, or
 * stored transformed (GGUF's `1 + w` norms, `-exp(A_log)`). Here over a store held in memory (the same
 * interface a safetensors folder or a GGUF file gives the planner), with expectations computed by hand.
 */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { typedArrayAllocator } from "../../src/loading/checkpoint.js";
import { expectedTensors } from "../../src/loading/expected.js";
import { STORED_NEG_EXP, STORED_ONE_PLUS_W, type CheckpointLayout, type Spelling } from "../../src/loading/layout.js";
import { planWeights, readWeights, type StoredTensor, type TensorStore } from "../../src/loading/plan.js";

/** Float32 tensors in memory, by name. */
function memoryStore(tensors: Record<string, { shape: number[]; values: number[] }>): TensorStore {
  const names = Object.keys(tensors);
  return {
    files: ["memory"],
    weightDTypes: ["F32"],
    names: () => names,
    close: async () => {},
    get(name): StoredTensor | undefined {
      const t = tensors[name];
      if (!t) return undefined;
      const bytes = new Uint8Array(Float32Array.from(t.values).buffer);
      return {
        file: "memory",
        dtype: "F32",
        shape: t.shape,
        byteLength: bytes.byteLength,
        fileIndex: 0,
        fileOffset: names.indexOf(name) * 1e6,
        readInto: async (dest, off, onBytes) => {
          new Uint8Array(dest.buffer, dest.byteOffset, dest.byteLength).set(bytes.subarray(off, off + dest.byteLength));
          onBytes?.(dest.byteLength);
        },
      };
    },
  };
}

const config = parseConfig({
  model_type: "qwen3_next", vocab_size: 3, hidden_size: 2, num_hidden_layers: 1, full_attention_interval: 2,
  linear_num_key_heads: 1, linear_num_value_heads: 1, linear_key_head_dim: 1, linear_value_head_dim: 1, linear_conv_kernel_dim: 2,
  num_experts: 2, num_experts_per_tok: 1, moe_intermediate_size: 1, shared_expert_intermediate_size: 0, head_dim: 8, num_attention_heads: 1, num_key_value_heads: 1,
});

describe("a layout", () => {
  it("renames, reshapes, slices fused rows and undoes stored transforms", async () => {
    // A toy format: every parameter under "x." except the ones spelled below.
    const layout: CheckpointLayout = {
      name: "toy",
      spell(d): Spelling[] {
        const e = /experts\.(\d)\.(gate|up|down)_proj/.exec(d.name);
        if (e) {
          const row = Number(e[1]) * 2 + (e[2] === "up" ? 1 : 0);
          return e[2] === "down" ? [{ stored: `x.${d.name}` }] : [{ stored: "gate_up", storedShape: [2, 2, 2], rowStart: row }];
        }
        if (d.name.endsWith("input_layernorm.weight")) return [{ stored: "norm_plus_one", transform: STORED_ONE_PLUS_W }];
        if (d.name.endsWith("A_log")) return [{ stored: "ssm_a", transform: STORED_NEG_EXP }];
        if (d.name.endsWith("conv1d.weight")) return [{ stored: "conv", storedShape: [3, 2] }];
        return [{ stored: `x.${d.name}` }];
      },
    };
    const tensors: Record<string, { shape: number[]; values: number[] }> = {};
    for (const d of expectedTensors(config)) {
      const n = d.shape.reduce((a, b) => a * b, 1);
      tensors[`x.${d.name}`] = { shape: [...d.shape], values: Array.from({ length: n }, (_, i) => i / 4) };
    }
    tensors.gate_up = { shape: [2, 2, 2], values: [1, 2, 3, 4, 5, 6, 7, 8] };
    tensors.norm_plus_one = { shape: [2], values: [1.5, 0.75] };
    tensors.ssm_a = { shape: [1], values: [-Math.fround(Math.exp(0.25))] };
    tensors.conv = { shape: [3, 2], values: [1, 2, 3, 4, 5, 6] };
    const plan = planWeights("toy", config, layout, memoryStore(tensors));
    const w = await readWeights(plan.weights, typedArrayAllocator);
    const values = (name: string) => Array.from(w.get(name)!.data);
    // Expert e's gate is row 2e of gate_up seen as [4, 2], its up row 2e + 1.
    expect(values("model.layers.0.mlp.experts.0.gate_proj.weight")).toEqual([1, 2]);
    expect(values("model.layers.0.mlp.experts.0.up_proj.weight")).toEqual([3, 4]);
    expect(values("model.layers.0.mlp.experts.1.gate_proj.weight")).toEqual([5, 6]);
    expect(values("model.layers.0.mlp.experts.1.up_proj.weight")).toEqual([7, 8]);
    expect(w.get("model.layers.0.linear_attn.conv1d.weight")!.shape).toEqual([3, 1, 2]);
    expect(values("model.layers.0.linear_attn.conv1d.weight")).toEqual([1, 2, 3, 4, 5, 6]);
    expect(w.get("model.layers.0.input_layernorm.weight")!.dtype).toBe("F64");
    expect(values("model.layers.0.input_layernorm.weight")).toEqual([0.5, -0.25]);
    expect(values("model.layers.0.linear_attn.A_log")[0]).toBeCloseTo(0.25, 7);
    expect(values("model.norm.weight")).toEqual([0, 0.25]);
  });

  it("names every spelling of a missing parameter, and a stored tensor of the wrong shape", () => {
    const layout: CheckpointLayout = {
      name: "toy",
      spell: (d) => [{ stored: `a.${d.name}`, what: "as a" }, { stored: `b.${d.name}`, storedShape: [7], rowStart: 0, what: "as b" }],
    };
    expect(() => planWeights("toy", config, layout, memoryStore({}))).toThrow(
      /^toy: checkpoint has no tensor "a\.model\.embed_tokens\.weight" \(expected \[3, 2\] as a, or as b "b\.model\.embed_tokens\.weight"\)$/,
    );
    const bad = memoryStore({ "a.model.embed_tokens.weight": { shape: [2, 3], values: [0, 0, 0, 0, 0, 0] } });
    expect(() => planWeights("toy", config, layout, bad)).toThrow(/^memory: tensor "a\.model\.embed_tokens\.weight" has shape \[2, 3\], expected \[3, 2\] from config\.json$/);
  });
});
