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
