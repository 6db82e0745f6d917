/**
 * The metadata of a `qwen3next`, `qwen35` or `qwen35moe` GGUF file written from a Hugging Face checkpoint, as
 * llama.cpp's converter (convert_hf_to_gguf.py: Qwen3NextModel, Qwen3_5TextModel, Qwen3_5MoeTextModel) writes
 * it: the `ARCH.*` hyperparameters (the keys `loading/gguf_config.ts` reads back, listed there), the byte-level
 * BPE tokenizer as `tokenizer.ggml.*` (the keys `tokenizer/gguf_tokenizer.ts` reads back) and the chat
 * template, so that the file alone is a complete model.
 *
 * qwen35 / qwen35moe differ from qwen3next (the converter's Qwen3.5 mixins): the MTP blocks are kept, so
 * block_count = num_hidden_layers + mtp_num_hidden_layers and nextn_predict_layers is written when there are
 * any; rope.dimension_sections is always written (the checkpoint's mrope_section padded to 4, default
 * [11, 11, 10, 0]: llama.cpp requires it); the dense size (feed_forward_length) only for qwen35, the expert
 * sizes only for qwen35moe (the config has no other), no expert_weights_norm (Qwen3.5 configs have no
 * norm_topk_prob; the family always renormalises).
 *
 * Tokenizer conventions (the converter's `get_vocab_base`): one token per id up to the model's vocab size,
 * ids without a token become "[PAD<id>]" of type UNUSED; added tokens marked special, or looking special
 * ("<|...|>"), are CONTROL; other added tokens (e.g. <think>) USER_DEFINED; the rest NORMAL. Merges are
 * "left right" strings, highest priority first.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { rotaryDim, type ModelFamily, type Qwen3NextConfig } from "../config.js";
import { QWEN35_SPLIT } from "../tokenizer/gguf_tokenizer.js";
import { tokenContent } from "../tokenizer/tokenizer.js";
import { meta, type GgufMetaToWrite } from "./gguf_write.js";

/** The llama.cpp architecture of each checkpoint family. */
export const GGUF_ARCH: Record<ModelFamily, "qwen3next" | "qwen35" | "qwen35moe"> = { qwen3_next: "qwen3next", qwen3_5: "qwen35", qwen3_5_moe: "qwen35moe" };
/** The converter's rope.dimension_sections when a Qwen3.5 checkpoint states no mrope_section. */
export const QWEN35_DEFAULT_SECTIONS = [11, 11, 10, 0];
const TOKEN_TYPE = { NORMAL: 1, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5 } as const;

/** llama.cpp's GGML_QNT_VERSION: the version of the quantized block formats. */
export const GGML_QUANTIZATION_VERSION = 2;

const u32 = meta.u32;
const f32 = meta.f32;

/**
 * The `ARCH.*` hyperparameter keys of a config (qwen3next: without MTP blocks). A layer schedule other than
 * "full attention every full_attention_interval-th layer" has no GGUF spelling (llama.cpp derives it from
 * the interval) and is refused. `mropeSection`: the Qwen3.5 checkpoint's rope_parameters.mrope_section, if any.
 */
export function hyperparameterMetadata(c: Qwen3NextConfig, mropeSection?: readonly number[]): GgufMetaToWrite[] {
  const arch = GGUF_ARCH[c.model_type];
  const k = (s: string) => `${arch}.${s}`;
  const bad = c.layer_types.findIndex((t, i) => t !== ((i + 1) % c.full_attention_interval === 0 ? "full_attention" : "linear_attention"));
  if (bad >= 0) {
    throw new Error(
      `config layer_types[${bad}] is "${c.layer_types[bad]}", but a GGUF file can only say "full attention every ${c.full_attention_interval}th layer" (full_attention_interval)`,
    );
  }
  const qwen35 = arch !== "qwen3next";
  const mtp = qwen35 ? c.mtp_num_hidden_layers : 0;
  const out: GgufMetaToWrite[] = [
    u32(k("block_count"), c.num_hidden_layers + mtp),
    u32(k("context_length"), c.max_position_embeddings),
    u32(k("embedding_length"), c.hidden_size),
    ...(arch === "qwen35moe" ? [] : [u32(k("feed_forward_length"), c.intermediate_size)]),
    u32(k("attention.head_count"), c.num_attention_heads),
    u32(k("attention.head_count_kv"), c.num_key_value_heads),
    f32(k("rope.freq_base"), c.rope.rope_theta),
    f32(k("attention.layer_norm_rms_epsilon"), c.rms_norm_eps),
    ...(arch === "qwen35" ? [] : [u32(k("expert_count"), c.num_experts), u32(k("expert_used_count"), c.num_experts_per_tok)]),
    ...(qwen35 ? [] : [meta.bool(k("expert_weights_norm"), c.norm_topk_prob)]),
    u32(k("attention.key_length"), c.head_dim),
    u32(k("attention.value_length"), c.head_dim),
    ...(arch === "qwen35" ? [] : [u32(k("expert_feed_forward_length"), c.moe_intermediate_size)]),
    ...(arch === "qwen35" || (qwen35 && c.shared_expert_intermediate_size === 0) ? [] : [u32(k("expert_shared_feed_forward_length"), c.shared_expert_intermediate_size)]),
    u32(k("ssm.conv_kernel"), c.linear_conv_kernel_dim),
    u32(k("ssm.state_size"), c.linear_key_head_dim),
    u32(k("ssm.group_count"), c.linear_num_key_heads),
    u32(k("ssm.time_step_rank"), c.linear_num_value_heads),
    u32(k("ssm.inner_size"), c.linear_num_value_heads * c.linear_value_head_dim),
    u32(k("full_attention_interval"), c.full_attention_interval),
    u32(k("rope.dimension_count"), rotaryDim(c)),
  ];
  if (qwen35) {
    const sections = [...(mropeSection ?? QWEN35_DEFAULT_SECTIONS)];
    while (sections.length < 4) sections.push(0);
    out.push(meta.i32s(k("rope.dimension_sections"), sections));
    if (mtp > 0) out.push(u32(k("nextn_predict_layers"), mtp));
  }
  const r = c.rope;
  if (r.rope_type !== "default") {
    out.push(meta.str(k("rope.scaling.type"), r.rope_type), f32(k("rope.scaling.factor"), r.factor));
    if (r.rope_type === "yarn") {
      out.push(
        u32(k("rope.scaling.original_context_length"), r.original_max_position_embeddings),
        f32(k("rope.scaling.yarn_beta_fast"), r.beta_fast),
        f32(k("rope.scaling.yarn_beta_slow"), r.beta_slow),
      );
      // llama.cpp multiplies its default attention factor 0.1 ln(factor) + 1 by yarn_attn_factor.
      const dflt = 0.1 * Math.log(r.factor) + 1;
      if (Math.abs(r.attention_factor - dflt) > 1e-12 * dflt) out.push(f32(k("rope.scaling.yarn_attn_factor"), r.attention_factor / dflt));
    }
  }
  return out;
}

interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
}

const readJson = (file: string): Record<string, unknown> => {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
};

/** The `tokenizer.*` keys from a folder's tokenizer.json and tokenizer_config.json, for a vocabulary of `vocabSize` rows. */
export function tokenizerMetadata(dir: string, vocabSize: number): GgufMetaToWrite[] {
  const tjFile = path.join(dir, "tokenizer.json");
  const tj = readJson(tjFile);
  const tc = readJson(path.join(dir, "tokenizer_config.json"));
  const model = tj.model as { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] } | undefined;
  if (!model || model.type !== "BPE" || !model.vocab) throw new Error(`${tjFile}: model.type is ${JSON.stringify(model?.type ?? null)}, expected "BPE" with a vocab (Qwen's byte-level BPE)`);
  const tokens: (string | undefined)[] = new Array(vocabSize).fill(undefined);
  const types: number[] = new Array(vocabSize).fill(TOKEN_TYPE.UNUSED);
  const put = (id: number, s: string, type: number) => {
    if (!(Number.isInteger(id) && id >= 0 && id < vocabSize)) {
      throw new Error(`${tjFile}: token ${JSON.stringify(s)} has id ${id}, but the model's vocab_size is ${vocabSize} (a GGUF file holds one token per embedding row)`);
    }
    tokens[id] = s;
    types[id] = type;
  };
  for (const [s, id] of Object.entries(model.vocab)) put(id, s, TOKEN_TYPE.NORMAL);
  const ids = new Map<string, number>();
  for (const t of (tj.added_tokens ?? []) as AddedToken[]) {
    const looksSpecial = t.content.startsWith("<|") && t.content.endsWith("|>");
    put(t.id, t.content, t.special || looksSpecial ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED);
    ids.set(t.content, t.id);
  }
  for (const [s, id] of Object.entries(model.vocab)) if (!ids.has(s)) ids.set(s, id);
  const merges = (model.merges ?? []).map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : m));
  const out: GgufMetaToWrite[] = [
    meta.str("tokenizer.ggml.model", "gpt2"),
    // The converter names the pre-tokenizer by how it splits text: Qwen3.5's split (marks join letters) or Qwen2's.
    meta.str("tokenizer.ggml.pre", JSON.stringify(tj.pre_tokenizer ?? null).includes(JSON.stringify(QWEN35_SPLIT).slice(1, -1)) ? "qwen35" : "qwen2"),
    meta.strs("tokenizer.ggml.tokens", tokens.map((t, i) => t ?? `[PAD${i}]`)),
    meta.i32s("tokenizer.ggml.token_type", types),
    meta.strs("tokenizer.ggml.merges", merges),
  ];
  const idOf = (key: string): number | undefined => {
    const name = tokenContent(tc[key]);
    return name === undefined ? undefined : ids.get(name);
  };
  for (const [key, gguf] of [["bos_token", "bos_token_id"], ["eos_token", "eos_token_id"], ["pad_token", "padding_token_id"]] as const) {
    const id = idOf(key);
    if (id !== undefined) out.push(u32(`tokenizer.ggml.${gguf}`, id));
  }
  out.push(meta.bool("tokenizer.ggml.add_bos_token", tc.add_bos_token === true));
  if (typeof tc.chat_template === "string") out.push(meta.str("tokenizer.chat_template", tc.chat_template));
  return out;
}

/** Every metadata entry of a written file: general.*, hyperparameters, tokenizer, file type. */
export function modelMetadata(c: Qwen3NextConfig, tokenizerDir: string, name: string, fileType: number, mropeSection?: readonly number[]): GgufMetaToWrite[] {
  return [
    meta.str("general.architecture", GGUF_ARCH[c.model_type]),
    meta.str("general.type", "model"),
    meta.str("general.name", name),
    ...hyperparameterMetadata(c, mropeSection),
    ...tokenizerMetadata(tokenizerDir, c.vocab_size),
    u32("general.quantization_version", GGML_QUANTIZATION_VERSION),
    u32("general.file_type", fileType),
  ];
}
