/**
 * Test helpers for the Qwen3.5 family: a tiny Qwen3.5 config.json of any shape, and an independent converter from
 * a Qwen3.5 checkpoint folder to the same weights in the Qwen3-Next layout, written from the layout table of
 * reference/qwen35-dense-mtp-tied's README (shared/qwen35-fixtures), not from the loader's code:
 *   - config: `text_config` flattened, model_type "qwen3_next", multimodal RoPE keys dropped; dense -> no experts;
 *   - names: `model.language_model.X` -> `model.X` (`lm_head`, `mtp.*` unchanged); `model.visual.*` dropped;
 *   - DeltaNet: in_proj_qkv + in_proj_z -> in_proj_qkvz and in_proj_b + in_proj_a -> in_proj_ba, row by row
 *     (`groupedRowOf`);
 *   - fused experts gate_up_proj [E, 2I, H] / down_proj [E, H, I] -> experts.{e}.{gate,up,down}_proj.weight.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { parseConfig } from "../../src/config.js";
import { readSafetensors, writeSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";
import { bytesOf } from "../loading/rewrite.js";
import { groupedRowOf } from "./random_model.js";

export interface TinyQwen35 {
  moe: boolean;
  layers: number;
  interval: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  keyHeads: number;
  ratio: number;
  dk: number;
  dv: number;
  kernel: number;
  tied: boolean;
  mtp: number;
  experts?: number;
  topK?: number;
  shared?: number;
  vocab?: number;
}

/** A Qwen3.5 (or Qwen3.5-MoE) config.json as transformers writes it, nested, with a multimodal RoPE section. */
export function qwen35Config(t: TinyQwen35): Record<string, unknown> {
  const rotaryHalf = (t.headDim * 0.25) / 2;
  const a = Math.floor(rotaryHalf / 3);
  const text: Record<string, unknown> = {
    model_type: t.moe ? "qwen3_5_moe_text" : "qwen3_5_text",
    vocab_size: t.vocab ?? 48,
    hidden_size: t.hidden,
    num_hidden_layers: t.layers,
    num_attention_heads: t.heads,
    num_key_value_heads: t.kvHeads,
    head_dim: t.headDim,
    linear_conv_kernel_dim: t.kernel,
    linear_key_head_dim: t.dk,
    linear_value_head_dim: t.dv,
    linear_num_key_heads: t.keyHeads,
    linear_num_value_heads: t.keyHeads * t.ratio,
    full_attention_interval: t.interval,
    tie_word_embeddings: t.tied,
    mtp_num_hidden_layers: t.mtp,
    max_position_embeddings: 512,
    rope_parameters: { rope_type: "default", rope_theta: 1e7, partial_rotary_factor: 0.25, mrope_section: [rotaryHalf - 2 * a, a, a], mrope_interleaved: true },
  };
  if (t.moe) Object.assign(text, { num_experts: t.experts ?? 4, num_experts_per_tok: t.topK ?? 2, moe_intermediate_size: 6, shared_expert_intermediate_size: t.shared ?? 8 });
  else text.intermediate_size = 20;
  return {
    architectures: [t.moe ? "Qwen3_5MoeForConditionalGeneration" : "Qwen3_5ForConditionalGeneration"],
    model_type: t.moe ? "qwen3_5_moe" : "qwen3_5",
    text_config: text,
    vision_config: { depth: 1, hidden_size: 16 },
    tie_word_embeddings: t.tied,
  };
}

/** The Qwen3-Next config.json of the same text model. */
export function asQwen3NextConfig(raw: Record<string, unknown>): Record<string, unknown> {
  const text = { ...(raw.text_config as Record<string, unknown>) };
  const rope = { ...(text.rope_parameters as Record<string, unknown>) };
  delete rope.mrope_section;
  delete rope.mrope_interleaved;
  const moe = raw.model_type === "qwen3_5_moe";
  return {
    ...text,
    model_type: "qwen3_next",
    architectures: ["Qwen3NextForCausalLM"],
    rope_parameters: rope,
    ...(moe ? { decoder_sparse_step: 1, norm_topk_prob: true, mlp_only_layers: [] } : { num_experts: 0 }),
  };
}

/** Writes `dst` with the Qwen3-Next layout of the Qwen3.5 checkpoint folder `src` (single model.safetensors). */
export async function convertToQwen3Next(src: string, dst: string): Promise<void> {
  const raw = JSON.parse(await fsp.readFile(path.join(src, "config.json"), "utf8"));
  const nextRaw = asQwen3NextConfig(raw);
  const c = parseConfig(nextRaw);
  const { tensors } = await readSafetensors(path.join(src, "model.safetensors"));
  const rows = (name: string) => {
    const t = tensors.get(name)!;
    const cols = t.shape[t.shape.length - 1];
    const bytes = bytesOf(t.data);
    const rowBytes = (bytes.length / t.data.length) * cols;
    return { t, cols, row: (i: number) => bytes.subarray(i * rowBytes, (i + 1) * rowBytes) };
  };
  const out: TensorToWrite[] = [];
  const done = new Set<string>();
  for (const [name, t] of tensors) {
    if (name.startsWith("model.visual.") || done.has(name)) continue;
    const plain = name.replace(/^model\.language_model\./, "model.");
    const dn = /^(.*\.linear_attn)\.in_proj_(qkv|z|b|a)\.weight$/.exec(plain);
    const fused = /^(.*\.mlp\.experts)\.(gate_up_proj|down_proj)$/.exec(plain);
    if (dn) {
      const wrapped = name.slice(0, name.length - plain.length) + dn[1];
      for (const grouped of ["qkvz", "ba"] as const) {
        const parts = grouped === "qkvz" ? (["qkv", "z"] as const) : (["b", "a"] as const);
        const srcs = parts.map((p) => rows(`${wrapped}.in_proj_${p}.weight`));
        const total = srcs.reduce((s, x) => s + x.t.shape[0], 0);
        const H = srcs[0].cols;
        const rowBytes = srcs[0].row(0).length;
        const buf = Buffer.alloc(total * rowBytes);
        parts.forEach((p, k) => {
          for (let i = 0; i < srcs[k].t.shape[0]; i++) {
            const g = groupedRowOf(p, i, c);
            srcs[k].row(i).copy(buf, g.row * rowBytes);
          }
          done.add(`${wrapped}.in_proj_${p}.weight`);
        });
        out.push({ name: `${dn[1]}.in_proj_${grouped}.weight`, dtype: t.dtype, shape: [total, H], data: buf });
      }
    } else if (fused) {
      const r = rows(name);
      const [E, R] = t.shape;
      for (let e = 0; e < E; e++) {
        const slice = (from: number, n: number) => Buffer.concat(Array.from({ length: n }, (_, i) => r.row(e * R + from + i)));
        if (fused[2] === "down_proj") out.push({ name: `${fused[1]}.${e}.down_proj.weight`, dtype: t.dtype, shape: [R, r.cols], data: slice(0, R) });
        else {
          out.push({ name: `${fused[1]}.${e}.gate_proj.weight`, dtype: t.dtype, shape: [R / 2, r.cols], data: slice(0, R / 2) });
          out.push({ name: `${fused[1]}.${e}.up_proj.weight`, dtype: t.dtype, shape: [R / 2, r.cols], data: slice(R / 2, R / 2) });
        }
      }
    } else {
      out.push({ name: plain, dtype: t.dtype, shape: [...t.shape], data: t.data });
    }
  }
  await fsp.mkdir(dst, { recursive: true });
  await writeSafetensors(path.join(dst, "model.safetensors"), out, { format: "pt" });
  await fsp.writeFile(path.join(dst, "config.json"), JSON.stringify(nextRaw, null, 2));
}
