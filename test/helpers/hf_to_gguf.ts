/**
 * Test helper: a Hugging Face Qwen3-Next checkpoint folder written as a `qwen3next` GGUF in llama.cpp's layout,
 * written here independently of the loader (from llama.cpp's converter, `Qwen3NextModel.modify_tensors`), so
 * that loading it and comparing against the folder's own expected outputs checks the loader's layout.
 *
 * Matrices keep their BF16 bits; the transformed 1-D tensors (norms as 1 + w, A_log as -exp(A_log)) are written
 * as F64 so that the round trip is exact to the last bit of float64 (llama.cpp writes F32; the shipped
 * reference/gguf files cover that).
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { bf16ToF32 } from "../../src/io/dtype.js";
import { GgufType } from "../../src/io/gguf.js";
import { meta, writeGguf, type GgufMetaToWrite, type GgufTensorToWrite } from "../../src/io/gguf_write.js";
import { readSafetensors } from "../../src/io/safetensors.js";

export interface HfToGgufOptions {
  /** DeltaNet input projection: llama.cpp's current split (attn_qkv + attn_gate) or the older grouped ssm_in. */
  qkvz: "split" | "ssm_in";
  /** Routed experts as ffn_{gate,up}_exps or one fused ffn_gate_up_exps. */
  experts: "stacked" | "fused";
}

const bytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export async function hfToGguf(dir: string, out: string, opts: HfToGgufOptions): Promise<void> {
  const c = JSON.parse(await fsp.readFile(path.join(dir, "config.json"), "utf8"));
  const { tensors } = await readSafetensors(path.join(dir, "model.safetensors"));
  const H = c.hidden_size;
  const L = c.num_hidden_layers;
  const nk = c.linear_num_key_heads;
  const nv = c.linear_num_value_heads;
  const dk = c.linear_key_head_dim;
  const dv = c.linear_value_head_dim;
  const r = nv / nk;
  const get = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`${dir}: no ${name}`);
    if (t.dtype !== "BF16") throw new Error(`${name}: expected BF16`);
    return t;
  };
  const out64 = (name: string, values: Float64Array): GgufTensorToWrite => ({ name, type: "F64", shape: [values.length], data: bytes(values) });
  const widen = (name: string): Float64Array => Float64Array.from(get(name).data as Uint16Array, bf16ToF32);
  const plain = (gguf: string, hf: string, shape?: number[]): GgufTensorToWrite => {
    const t = get(hf);
    return { name: gguf, type: "BF16", shape: shape ?? [...t.shape], data: bytes(t.data) };
  };
  const norm = (gguf: string, hf: string) => out64(gguf, widen(hf).map((w) => 1 + w));
  /** Rows of a BF16 matrix [rows, cols] (row ranges concatenated). */
  const rows = (hf: string, ranges: Array<[number, number]>): Uint16Array => {
    const t = get(hf);
    const cols = t.shape[t.shape.length - 1];
    const src = t.data as Uint16Array;
    const n = ranges.reduce((s, [a, b]) => s + b - a, 0);
    const dst = new Uint16Array(n * cols);
    let o = 0;
    for (const [a, b] of ranges) {
      dst.set(src.subarray(a * cols, b * cols), o);
      o += (b - a) * cols;
    }
    return dst;
  };

  const out_: GgufTensorToWrite[] = [plain("token_embd.weight", "model.embed_tokens.weight")];
  if (!c.tie_word_embeddings) out_.push(plain("output.weight", "lm_head.weight"));
  out_.push(norm("output_norm.weight", "model.norm.weight"));

  const layerTypes: string[] = c.layer_types ?? Array.from({ length: L }, (_, i) => ((i + 1) % c.full_attention_interval === 0 ? "full_attention" : "linear_attention"));
  const block = (blk: string, p: string, linear: boolean) => {
    out_.push(norm(`${blk}.attn_norm.weight`, `${p}.input_layernorm.weight`));
    out_.push(norm(`${blk}.post_attention_norm.weight`, `${p}.post_attention_layernorm.weight`));
    if (linear) {
      const a = `${p}.linear_attn`;
      if (opts.qkvz === "ssm_in") out_.push(plain(`${blk}.ssm_in.weight`, `${a}.in_proj_qkvz.weight`));
      else {
        // in_proj_qkvz rows per key head h: [q_h (dk) | k_h (dk) | v_h (r dv) | z_h (r dv)].
        const g = 2 * dk + 2 * r * dv;
        const q: Array<[number, number]> = [];
        const k: Array<[number, number]> = [];
        const v: Array<[number, number]> = [];
        const z: Array<[number, number]> = [];
        for (let h = 0; h < nk; h++) {
          q.push([h * g, h * g + dk]);
          k.push([h * g + dk, h * g + 2 * dk]);
          v.push([h * g + 2 * dk, h * g + 2 * dk + r * dv]);
          z.push([h * g + 2 * dk + r * dv, (h + 1) * g]);
        }
        const C = 2 * nk * dk + nv * dv;
        out_.push({ name: `${blk}.attn_qkv.weight`, type: "BF16", shape: [C, H], data: bytes(rows(`${a}.in_proj_qkvz.weight`, [...q, ...k, ...v])) });
        out_.push({ name: `${blk}.attn_gate.weight`, type: "BF16", shape: [nv * dv, H], data: bytes(rows(`${a}.in_proj_qkvz.weight`, z)) });
      }
      out_.push(plain(`${blk}.ssm_ba.weight`, `${a}.in_proj_ba.weight`));
      const conv = get(`${a}.conv1d.weight`);
      out_.push(plain(`${blk}.ssm_conv1d.weight`, `${a}.conv1d.weight`, [conv.shape[0], conv.shape[2]]));
      out_.push(out64(`${blk}.ssm_a`, widen(`${a}.A_log`).map((x) => -Math.exp(x))));
      out_.push(plain(`${blk}.ssm_dt.bias`, `${a}.dt_bias`));
      out_.push(plain(`${blk}.ssm_norm.weight`, `${a}.norm.weight`));
      out_.push(plain(`${blk}.ssm_out.weight`, `${a}.out_proj.weight`));
    } else {
      const a = `${p}.self_attn`;
      out_.push(plain(`${blk}.attn_q.weight`, `${a}.q_proj.weight`));
      out_.push(plain(`${blk}.attn_k.weight`, `${a}.k_proj.weight`));
      out_.push(plain(`${blk}.attn_v.weight`, `${a}.v_proj.weight`));
      out_.push(plain(`${blk}.attn_output.weight`, `${a}.o_proj.weight`));
      out_.push(norm(`${blk}.attn_q_norm.weight`, `${a}.q_norm.weight`));
      out_.push(norm(`${blk}.attn_k_norm.weight`, `${a}.k_norm.weight`));
    }
    const m = `${p}.mlp`;
    if (!tensors.has(`${m}.gate.weight`)) {
      out_.push(plain(`${blk}.ffn_gate.weight`, `${m}.gate_proj.weight`));
      out_.push(plain(`${blk}.ffn_up.weight`, `${m}.up_proj.weight`));
      out_.push(plain(`${blk}.ffn_down.weight`, `${m}.down_proj.weight`));
      return;
    }
    out_.push(plain(`${blk}.ffn_gate_inp.weight`, `${m}.gate.weight`));
    const E = c.num_experts;
    const I = c.moe_intermediate_size;
    const stack = (proj: string) => {
      const parts = Array.from({ length: E }, (_, e) => get(`${m}.experts.${e}.${proj}_proj.weight`).data as Uint16Array);
      const all = new Uint16Array(parts.reduce((s, x) => s + x.length, 0));
      parts.forEach((x, e) => all.set(x, e * x.length));
      return all;
    };
    if (opts.experts === "fused") {
      const gate = stack("gate");
      const up = stack("up");
      const fused = new Uint16Array(gate.length * 2);
      for (let e = 0; e < E; e++) {
        fused.set(gate.subarray(e * I * H, (e + 1) * I * H), e * 2 * I * H);
        fused.set(up.subarray(e * I * H, (e + 1) * I * H), e * 2 * I * H + I * H);
      }
      out_.push({ name: `${blk}.ffn_gate_up_exps.weight`, type: "BF16", shape: [E, 2 * I, H], data: bytes(fused) });
    } else {
      out_.push({ name: `${blk}.ffn_gate_exps.weight`, type: "BF16", shape: [E, I, H], data: bytes(stack("gate")) });
      out_.push({ name: `${blk}.ffn_up_exps.weight`, type: "BF16", shape: [E, I, H], data: bytes(stack("up")) });
    }
    out_.push({ name: `${blk}.ffn_down_exps.weight`, type: "BF16", shape: [E, H, I], data: bytes(stack("down")) });
    if (c.shared_expert_intermediate_size > 0) {
      out_.push(plain(`${blk}.ffn_gate_shexp.weight`, `${m}.shared_expert.gate_proj.weight`));
      out_.push(plain(`${blk}.ffn_up_shexp.weight`, `${m}.shared_expert.up_proj.weight`));
      out_.push(plain(`${blk}.ffn_down_shexp.weight`, `${m}.shared_expert.down_proj.weight`));
      out_.push(plain(`${blk}.ffn_gate_inp_shexp.weight`, `${m}.shared_expert_gate.weight`, [H]));
    }
  };
  for (let i = 0; i < L; i++) block(`blk.${i}`, `model.layers.${i}`, layerTypes[i] === "linear_attention");
  const mtp = c.mtp_num_hidden_layers ?? 0;
  for (let j = 0; j < mtp; j++) block(`blk.${L + j}`, `mtp.layers.${j}`, false);
  if (mtp > 0) {
    out_.push(plain(`blk.${L}.nextn.eh_proj.weight`, "mtp.fc.weight"));
    out_.push(norm(`blk.${L}.nextn.enorm.weight`, "mtp.pre_fc_norm_embedding.weight"));
    out_.push(norm(`blk.${L}.nextn.hnorm.weight`, "mtp.pre_fc_norm_hidden.weight"));
    out_.push(norm(`blk.${L + mtp - 1}.nextn.shared_head_norm.weight`, "mtp.norm.weight"));
  }

  const a = (k: string) => `qwen3next.${k}`;
  const rotary = Math.trunc(c.head_dim * (c.partial_rotary_factor ?? 0.25));
  const metadata: GgufMetaToWrite[] = [
    meta.str("general.architecture", "qwen3next"),
    meta.u32(a("block_count"), L + mtp),
    meta.u32(a("context_length"), c.max_position_embeddings),
    meta.u32(a("embedding_length"), H),
    meta.u32(a("feed_forward_length"), c.intermediate_size),
    meta.u32(a("attention.head_count"), c.num_attention_heads),
    meta.u32(a("attention.head_count_kv"), c.num_key_value_heads),
    meta.f32(a("rope.freq_base"), c.rope_theta),
    meta.f32(a("attention.layer_norm_rms_epsilon"), c.rms_norm_eps),
    meta.u32(a("expert_count"), c.num_experts),
    meta.u32(a("expert_used_count"), c.num_experts_per_tok),
    meta.bool(a("expert_weights_norm"), c.norm_topk_prob),
    meta.u32(a("attention.key_length"), c.head_dim),
    meta.u32(a("attention.value_length"), c.head_dim),
    meta.u32(a("expert_feed_forward_length"), c.moe_intermediate_size),
    meta.u32(a("expert_shared_feed_forward_length"), c.shared_expert_intermediate_size),
    meta.u32(a("ssm.conv_kernel"), c.linear_conv_kernel_dim),
    meta.u32(a("ssm.state_size"), dk),
    meta.u32(a("ssm.group_count"), nk),
    meta.u32(a("ssm.time_step_rank"), nv),
    meta.u32(a("ssm.inner_size"), nv * dv),
    meta.u32(a("full_attention_interval"), c.full_attention_interval),
    meta.u32(a("rope.dimension_count"), rotary),
  ];
  if (mtp > 0) metadata.push(meta.u32(a("nextn_predict_layers"), mtp));
  const rs = c.rope_scaling;
  if (rs) {
    metadata.push(meta.str(a("rope.scaling.type"), rs.rope_type ?? rs.type));
    metadata.push(meta.f32(a("rope.scaling.factor"), rs.factor));
    if (rs.original_max_position_embeddings) metadata.push({ key: a("rope.scaling.original_context_length"), type: GgufType.UINT32, value: rs.original_max_position_embeddings });
  }
  await writeGguf(out, metadata, out_);
}

/**
 * A Hugging Face Qwen3.5 / Qwen3.5-MoE checkpoint folder written as a `qwen35` / `qwen35moe` GGUF, following
 * llama.cpp's Qwen3.5 converter (`Qwen3_5TextModel` / `Qwen3_5MoeTextModel` over `_LinearAttentionVReorderBase`
 * and `Qwen3NextModel`), written here from its description, not from the loader:
 *   - text tensors under `model.language_model.*` (plain `model.*` accepted), `lm_head` and `mtp.*` at the top;
 *   - norms as 1 + w (not the DeltaNet's gated norm), A_log as -exp(A_log), conv1d [C, 1, K] as [C, K];
 *   - DeltaNet value heads moved from grouped (value head j of key head g at g r + j) to tiled (at j Hk + g):
 *     the v rows of in_proj_qkv, the rows of in_proj_z (dv each), in_proj_b / in_proj_a, A_log and dt_bias (one
 *     each), the v channels of conv1d, and the columns of out_proj;
 *   - in_proj_b -> ssm_beta, in_proj_a -> ssm_alpha; fused experts gate_up_proj [E, 2I, H] as stacked
 *     ffn_gate_exps / ffn_up_exps, or kept fused as ffn_gate_up_exps; down_proj [E, H, I] as ffn_down_exps;
 *   - MTP block j at blk.{L + j}; eh_proj / enorm / hnorm / shared_head_norm written into every MTP block;
 *   - metadata under `qwen35.*` / `qwen35moe.*`, with rope.dimension_sections = mrope_section padded to 4.
 * BF16 matrices keep their bits; transformed 1-D tensors are F64 (exact), as in `hfToGguf`.
 */
export async function qwen35ToGguf(dir: string, out: string, opts: { experts: "stacked" | "fused" }): Promise<void> {
  const top = JSON.parse(await fsp.readFile(path.join(dir, "config.json"), "utf8"));
  const c = top.text_config ?? top;
  const moe = top.model_type === "qwen3_5_moe" || c.model_type === "qwen3_5_moe_text";
  const arch = moe ? "qwen35moe" : "qwen35";
  const { tensors } = await readSafetensors(path.join(dir, "model.safetensors"));
  const H = c.hidden_size;
  const L = c.num_hidden_layers;
  const nk = c.linear_num_key_heads;
  const nv = c.linear_num_value_heads;
  const dk = c.linear_key_head_dim;
  const dv = c.linear_value_head_dim;
  const r = nv / nk;
  const get = (name: string) => {
    const t = tensors.get(name) ?? (name.startsWith("model.language_model.") ? tensors.get(`model.${name.slice("model.language_model.".length)}`) : undefined);
    if (!t) throw new Error(`${dir}: no ${name}`);
    if (t.dtype !== "BF16") throw new Error(`${name}: expected BF16`);
    return { shape: [...t.shape], data: t.data as Uint16Array };
  };
  const has = (name: string) => tensors.has(name) || (name.startsWith("model.language_model.") && tensors.has(`model.${name.slice("model.language_model.".length)}`));
  const bf16 = (name: string, shape: number[], data: Uint16Array): GgufTensorToWrite => ({ name, type: "BF16", shape, data: bytes(data) });
  const out64 = (name: string, values: Float64Array): GgufTensorToWrite => ({ name, type: "F64", shape: [values.length], data: bytes(values) });
  const widen = (name: string): Float64Array => Float64Array.from(get(name).data, bf16ToF32);
  const plain = (gguf: string, hf: string, shape?: number[]): GgufTensorToWrite => {
    const t = get(hf);
    return bf16(gguf, shape ?? t.shape, t.data);
  };
  const norm = (gguf: string, hf: string) => out64(gguf, widen(hf).map((w) => 1 + w));
  /** Grouped -> tiled: the block of `size` rows (or values) of value head j of key head g moves to j Hk + g. */
  function tiled<T extends Uint16Array | Float64Array>(src: T, first: number, size: number, width: number): T {
    const dst = src.slice() as T;
    for (let g = 0; g < nk; g++) {
      for (let j = 0; j < r; j++) {
        const from = (first + (g * r + j) * size) * width;
        dst.set(src.subarray(from, from + size * width), (first + (j * nk + g) * size) * width);
      }
    }
    return dst;
  }
  /** The same move over the columns of a [rows, nv dv] matrix. */
  const tiledColumns = (src: Uint16Array, rows: number): Uint16Array => {
    const cols = nv * dv;
    const dst = new Uint16Array(src.length);
    for (let i = 0; i < rows; i++) dst.set(tiled(src.subarray(i * cols, (i + 1) * cols), 0, dv, 1), i * cols);
    return dst;
  };

  const T = (n: string) => `model.language_model.${n}`;
  const out_: GgufTensorToWrite[] = [plain("token_embd.weight", T("embed_tokens.weight"))];
  if (!c.tie_word_embeddings && !top.tie_word_embeddings) out_.push(plain("output.weight", "lm_head.weight"));
  out_.push(norm("output_norm.weight", T("norm.weight")));

  const layerTypes: string[] = c.layer_types ?? Array.from({ length: L }, (_, i) => ((i + 1) % (c.full_attention_interval ?? 4) === 0 ? "full_attention" : "linear_attention"));
  const block = (blk: string, p: string, linear: boolean) => {
    out_.push(norm(`${blk}.attn_norm.weight`, `${p}.input_layernorm.weight`));
    out_.push(norm(`${blk}.post_attention_norm.weight`, `${p}.post_attention_layernorm.weight`));
    if (linear) {
      const a = `${p}.linear_attn`;
      const qk = 2 * nk * dk;
      const qkv = get(`${a}.in_proj_qkv.weight`);
      out_.push(bf16(`${blk}.attn_qkv.weight`, qkv.shape, tiled(qkv.data, qk, dv, H)));
      const z = get(`${a}.in_proj_z.weight`);
      out_.push(bf16(`${blk}.attn_gate.weight`, z.shape, tiled(z.data, 0, dv, H)));
      out_.push(bf16(`${blk}.ssm_beta.weight`, [nv, H], tiled(get(`${a}.in_proj_b.weight`).data, 0, 1, H)));
      out_.push(bf16(`${blk}.ssm_alpha.weight`, [nv, H], tiled(get(`${a}.in_proj_a.weight`).data, 0, 1, H)));
      const conv = get(`${a}.conv1d.weight`);
      out_.push(bf16(`${blk}.ssm_conv1d.weight`, [conv.shape[0], conv.shape[2]], tiled(conv.data, qk, dv, conv.shape[2])));
      out_.push(out64(`${blk}.ssm_a`, tiled(widen(`${a}.A_log`).map((x) => -Math.exp(x)), 0, 1, 1)));
      out_.push(bf16(`${blk}.ssm_dt.bias`, [nv], tiled(get(`${a}.dt_bias`).data, 0, 1, 1)));
      out_.push(plain(`${blk}.ssm_norm.weight`, `${a}.norm.weight`));
      out_.push(bf16(`${blk}.ssm_out.weight`, [H, nv * dv], tiledColumns(get(`${a}.out_proj.weight`).data, H)));
    } else {
      const a = `${p}.self_attn`;
      out_.push(plain(`${blk}.attn_q.weight`, `${a}.q_proj.weight`));
      out_.push(plain(`${blk}.attn_k.weight`, `${a}.k_proj.weight`));
      out_.push(plain(`${blk}.attn_v.weight`, `${a}.v_proj.weight`));
      out_.push(plain(`${blk}.attn_output.weight`, `${a}.o_proj.weight`));
      out_.push(norm(`${blk}.attn_q_norm.weight`, `${a}.q_norm.weight`));
      out_.push(norm(`${blk}.attn_k_norm.weight`, `${a}.k_norm.weight`));
    }
    const m = `${p}.mlp`;
    if (!moe) {
      out_.push(plain(`${blk}.ffn_gate.weight`, `${m}.gate_proj.weight`));
      out_.push(plain(`${blk}.ffn_up.weight`, `${m}.up_proj.weight`));
      out_.push(plain(`${blk}.ffn_down.weight`, `${m}.down_proj.weight`));
      return;
    }
    out_.push(plain(`${blk}.ffn_gate_inp.weight`, `${m}.gate.weight`));
    const E = c.num_experts;
    const I = c.moe_intermediate_size;
    const gu = get(`${m}.experts.gate_up_proj`).data;
    if (opts.experts === "fused") out_.push(bf16(`${blk}.ffn_gate_up_exps.weight`, [E, 2 * I, H], gu));
    else {
      const gate = new Uint16Array(E * I * H);
      const up = new Uint16Array(E * I * H);
      for (let e = 0; e < E; e++) {
        gate.set(gu.subarray(e * 2 * I * H, (e * 2 + 1) * I * H), e * I * H);
        up.set(gu.subarray((e * 2 + 1) * I * H, (e + 1) * 2 * I * H), e * I * H);
      }
      out_.push(bf16(`${blk}.ffn_gate_exps.weight`, [E, I, H], gate), bf16(`${blk}.ffn_up_exps.weight`, [E, I, H], up));
    }
    out_.push(bf16(`${blk}.ffn_down_exps.weight`, [E, H, I], get(`${m}.experts.down_proj`).data));
    if (has(`${m}.shared_expert.gate_proj.weight`)) {
      out_.push(plain(`${blk}.ffn_gate_shexp.weight`, `${m}.shared_expert.gate_proj.weight`));
      out_.push(plain(`${blk}.ffn_up_shexp.weight`, `${m}.shared_expert.up_proj.weight`));
      out_.push(plain(`${blk}.ffn_down_shexp.weight`, `${m}.shared_expert.down_proj.weight`));
      out_.push(plain(`${blk}.ffn_gate_inp_shexp.weight`, `${m}.shared_expert_gate.weight`, [H]));
    }
  };
  for (let i = 0; i < L; i++) block(`blk.${i}`, T(`layers.${i}`), layerTypes[i] === "linear_attention");
  const mtp = c.mtp_num_hidden_layers ?? 0;
  for (let j = 0; j < mtp; j++) {
    block(`blk.${L + j}`, `mtp.layers.${j}`, false);
    out_.push(plain(`blk.${L + j}.nextn.eh_proj.weight`, "mtp.fc.weight"));
    out_.push(norm(`blk.${L + j}.nextn.enorm.weight`, "mtp.pre_fc_norm_embedding.weight"));
    out_.push(norm(`blk.${L + j}.nextn.hnorm.weight`, "mtp.pre_fc_norm_hidden.weight"));
    out_.push(norm(`blk.${L + j}.nextn.shared_head_norm.weight`, "mtp.norm.weight"));
  }

  const a = (k: string) => `${arch}.${k}`;
  const rope = c.rope_parameters ?? {};
  const partial = rope.partial_rotary_factor ?? c.partial_rotary_factor ?? 0.25;
  const sections: number[] = [...(rope.mrope_section ?? [11, 11, 10])];
  while (sections.length < 4) sections.push(0);
  const metadata: GgufMetaToWrite[] = [
    meta.str("general.architecture", arch),
    meta.u32(a("block_count"), L + mtp),
    meta.u32(a("context_length"), c.max_position_embeddings),
    meta.u32(a("embedding_length"), H),
    meta.u32(a("attention.head_count"), c.num_attention_heads),
    meta.u32(a("attention.head_count_kv"), c.num_key_value_heads),
    meta.f32(a("rope.freq_base"), rope.rope_theta ?? c.rope_theta),
    meta.f32(a("attention.layer_norm_rms_epsilon"), c.rms_norm_eps ?? 1e-6),
    meta.u32(a("attention.key_length"), c.head_dim),
    meta.u32(a("attention.value_length"), c.head_dim),
    meta.u32(a("ssm.conv_kernel"), c.linear_conv_kernel_dim),
    meta.u32(a("ssm.state_size"), dk),
    meta.u32(a("ssm.group_count"), nk),
    meta.u32(a("ssm.time_step_rank"), nv),
    meta.u32(a("ssm.inner_size"), nv * dv),
    meta.u32(a("full_attention_interval"), c.full_attention_interval ?? 4),
    meta.u32(a("rope.dimension_count"), Math.trunc(c.head_dim * partial)),
    meta.i32s(a("rope.dimension_sections"), sections),
  ];
  if (moe) {
    metadata.push(meta.u32(a("expert_count"), c.num_experts), meta.u32(a("expert_used_count"), c.num_experts_per_tok));
    metadata.push(meta.u32(a("expert_feed_forward_length"), c.moe_intermediate_size));
    if (c.shared_expert_intermediate_size) metadata.push(meta.u32(a("expert_shared_feed_forward_length"), c.shared_expert_intermediate_size));
  } else metadata.push(meta.u32(a("feed_forward_length"), c.intermediate_size));
  if (mtp > 0) metadata.push(meta.u32(a("nextn_predict_layers"), mtp));
  await writeGguf(out, metadata, out_);
}
