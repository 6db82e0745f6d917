/**
 * Qwen3-Next configuration: `config.json` as published, or as newer `transformers` writes it.
 *
 * Field names are exactly the checkpoint's (`linear_num_value_heads`, `decoder_sparse_step`, ...) so
 * that a reader can go from the JSON to the code without a dictionary. Two spellings of RoPE exist:
 *   - published:          flat `rope_theta`, `partial_rotary_factor`, `rope_scaling: {...} | null`;
 *   - newer transformers: nested `rope_parameters: {rope_type, rope_theta, partial_rotary_factor, ...}`.
 * Both parse into the same `rope` field. Absent fields take `transformers`' `Qwen3NextConfig` defaults.
 *
 * The Qwen3.5 family (`model_type` "qwen3_5" dense, "qwen3_5_moe") is the same architecture in a multimodal
 * wrapper: the text model's settings are nested in `text_config` (model_type "qwen3_5_text" /
 * "qwen3_5_moe_text"; a bare text config parses too), with transformers' `Qwen3_5TextConfig` /
 * `Qwen3_5MoeTextConfig` defaults. Its `rope_parameters` carry `mrope_section` / `mrope_interleaved`
 * (multimodal RoPE): for text alone the three position ids are equal, so that is plain partial RoPE, and only
 * the sections' total (rotary dims / 2) is checked. Image and video input are out of scope: `vision_config` is
 * not read. Qwen3.5 dense layers are all SwiGLU (`intermediate_size`); Qwen3.5-MoE layers are all sparse MoE with
 * a shared expert, top-k weights renormalised.
 */

export type LayerType = "linear_attention" | "full_attention";

/**
 * Which input projections the checkpoint's gated DeltaNet layers have, per pair: grouped per key head
 * (`in_proj_qkvz`, `in_proj_ba`: Qwen3-Next) or split (`in_proj_qkv` + `in_proj_z`, `in_proj_b` + `in_proj_a`:
 * Qwen3.5). Not a config.json field: it follows from the model type (and, for GGUF, from the tensors present).
 */
export interface DeltaNetProjections {
  qkvz: "grouped" | "split";
  ba: "grouped" | "split";
  /**
   * Order of the value heads in every per-value-head parameter: grouped by key head (value head h reads key head
   * h / r; every Hugging Face checkpoint) or tiled (h reads key head h mod Hk; llama.cpp's qwen35 GGUF files).
   * Absent: grouped.
   */
  valueHeads?: "grouped" | "tiled";
}

/** RoPE setup after parsing: plain rotary, linear interpolation, or YaRN. */
export interface RopeConfig {
  rope_type: "default" | "linear" | "yarn";
  rope_theta: number;
  partial_rotary_factor: number;
  /** Scaling factor (1 for default RoPE); YaRN's `factor` is taken as given, as vLLM does. */
  factor: number;
  /** YaRN: the context the model was trained on (L in the YaRN formulas). */
  original_max_position_embeddings: number;
  /** YaRN ramp bounds in rotations, defaults 32 and 1. */
  beta_fast: number;
  beta_slow: number;
  /** YaRN cos/sin multiplier; default 0.1 ln(factor) + 1. */
  attention_factor: number;
}

/** The checkpoint's family: its top-level `model_type`. */
export type ModelFamily = "qwen3_next" | "qwen3_5" | "qwen3_5_moe";

export interface Qwen3NextConfig {
  model_type: ModelFamily;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  hidden_act: "silu";
  max_position_embeddings: number;
  rms_norm_eps: number;
  tie_word_embeddings: boolean;
  // Gated attention
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  attention_bias: boolean;
  rope: RopeConfig;
  // Gated DeltaNet
  linear_conv_kernel_dim: number;
  linear_key_head_dim: number;
  linear_value_head_dim: number;
  linear_num_key_heads: number;
  linear_num_value_heads: number;
  deltanet_projections: DeltaNetProjections;
  // Mixture of experts
  decoder_sparse_step: number;
  mlp_only_layers: number[];
  num_experts: number;
  num_experts_per_tok: number;
  moe_intermediate_size: number;
  shared_expert_intermediate_size: number;
  norm_topk_prob: boolean;
  // Layer schedule and multi-token prediction
  full_attention_interval: number;
  layer_types: LayerType[];
  mtp_num_hidden_layers: number;
  // Tokens
  bos_token_id: number | null;
  eos_token_id: number[];
  torch_dtype: string;
}

/** Thrown for any config that cannot describe a Qwen3-Next model; the message is one line. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Json = Record<string, unknown>;

export const QWEN3_NEXT_DEFAULTS = {
  vocab_size: 151936,
  hidden_size: 2048,
  intermediate_size: 5632,
  num_hidden_layers: 48,
  num_attention_heads: 16,
  num_key_value_heads: 2,
  hidden_act: "silu",
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: false,
  rope_theta: 10000.0,
  partial_rotary_factor: 0.25,
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
  full_attention_interval: 4,
  mtp_num_hidden_layers: 0,
} as const;
const DEFAULTS = QWEN3_NEXT_DEFAULTS;

/** A family's defaults: the same keys as Qwen3-Next's, with their value types. */
export type Defaults = { readonly [K in keyof typeof DEFAULTS]: (typeof DEFAULTS)[K] extends number ? number : (typeof DEFAULTS)[K] extends boolean ? boolean : string };

/** transformers' Qwen3_5TextConfig defaults (the Qwen3.5-9B-style text model), no experts. */
export const QWEN3_5_DEFAULTS: Defaults = {
  ...DEFAULTS,
  vocab_size: 248320,
  hidden_size: 4096,
  intermediate_size: 12288,
  num_hidden_layers: 32,
  num_attention_heads: 16,
  num_key_value_heads: 4,
  num_experts: 0,
  num_experts_per_tok: 0,
};

/** transformers' Qwen3_5MoeTextConfig defaults (the Qwen3.5-35B-A3B-style text model). */
export const QWEN3_5_MOE_DEFAULTS: Defaults = {
  ...DEFAULTS,
  vocab_size: 248320,
  hidden_size: 2048,
  num_hidden_layers: 40,
  num_attention_heads: 16,
  num_key_value_heads: 2,
  moe_intermediate_size: 512,
  shared_expert_intermediate_size: 512,
  num_experts_per_tok: 8,
  num_experts: 256,
};

/** The text model type each Qwen3.5 wrapper nests. */
const TEXT_MODEL_TYPE = { qwen3_5: "qwen3_5_text", qwen3_5_moe: "qwen3_5_moe_text" } as const;

/**
 * Upper bounds on every size, checked before anything is built from the config (layer lists, the expected
 * tensors, RoPE tables): far above any published model (Qwen3-Next-80B: vocab 151936, hidden 2048, 48 layers,
 * 512 experts, context 262144), low enough that an absurd config (num_experts 1e12) fails at once instead of
 * after exhausting memory.
 */
export const CONFIG_LIMITS: Readonly<Record<string, number>> = {
  vocab_size: 1 << 22,
  hidden_size: 1 << 16,
  intermediate_size: 1 << 20,
  num_hidden_layers: 1024,
  max_position_embeddings: 1 << 24,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 4096,
  linear_conv_kernel_dim: 64,
  linear_key_head_dim: 4096,
  linear_value_head_dim: 4096,
  linear_num_key_heads: 1024,
  linear_num_value_heads: 1024,
  decoder_sparse_step: 1024,
  num_experts: 1 << 16,
  num_experts_per_tok: 1 << 16,
  moe_intermediate_size: 1 << 20,
  shared_expert_intermediate_size: 1 << 20,
  full_attention_interval: 1024,
  mtp_num_hidden_layers: 16,
};
/** Experts over all MoE layers at most (Qwen3-Next-80B: 48 x 512 = 24,576), each one a few tensors to find. */
export const MAX_TOTAL_EXPERTS = 1 << 20;
/** Largest RoPE scaling factor, and longest YaRN original context. */
const MAX_ROPE_FACTOR = 1024;

/** Parses a `config.json` object; `where` names the file in error messages. */
export function parseConfig(raw: unknown, where = "config.json"): Qwen3NextConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${where}: expected a JSON object, got ${describe(raw)}`);
  }
  const top = raw as Json;
  const fail = (msg: string): never => {
    throw new ConfigError(`${where}: ${msg}`);
  };
  const family = familyOf(top.model_type);
  if (!family) fail(`model_type is ${brief(top.model_type)}, expected "qwen3_next", "qwen3_5" or "qwen3_5_moe"`);
  const j = family === "qwen3_next" ? top : qwen3_5TextConfig(top, family!, fail);
  const DEFAULTS = family === "qwen3_next" ? QWEN3_NEXT_DEFAULTS : family === "qwen3_5" ? QWEN3_5_DEFAULTS : QWEN3_5_MOE_DEFAULTS;

  const int = (key: keyof typeof DEFAULTS, min = 1): number => {
    const v = key in j && j[key] !== null ? j[key] : DEFAULTS[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      fail(`${key} is ${brief(v)}, expected an integer >= ${min}`);
    }
    const limit = CONFIG_LIMITS[key];
    if (limit !== undefined && (v as number) > limit) fail(`${key} is ${v}, over the limit of ${limit}`);
    return v as number;
  };
  const num = (key: string, dflt: number, src: Json = j): number => {
    const v = key in src && src[key] !== null ? src[key] : dflt;
    if (typeof v !== "number" || !Number.isFinite(v)) fail(`${key} is ${brief(v)}, expected a number`);
    return v as number;
  };
  const bool = (key: keyof typeof DEFAULTS): boolean => {
    const v = key in j && j[key] !== null ? j[key] : DEFAULTS[key];
    if (typeof v !== "boolean") fail(`${key} is ${brief(v)}, expected true or false`);
    return v as boolean;
  };

  const num_hidden_layers = int("num_hidden_layers");
  const hidden_act = j.hidden_act ?? DEFAULTS.hidden_act;
  if (hidden_act !== "silu") fail(`hidden_act is ${brief(hidden_act)}, expected "silu"`);

  const dense = family === "qwen3_5";
  const cfg: Qwen3NextConfig = {
    model_type: family!,
    vocab_size: int("vocab_size"),
    hidden_size: int("hidden_size"),
    intermediate_size: int("intermediate_size"),
    num_hidden_layers,
    hidden_act: "silu",
    max_position_embeddings: int("max_position_embeddings"),
    rms_norm_eps: num("rms_norm_eps", DEFAULTS.rms_norm_eps),
    tie_word_embeddings: bool("tie_word_embeddings"),
    num_attention_heads: int("num_attention_heads"),
    num_key_value_heads: int("num_key_value_heads"),
    head_dim: int("head_dim"),
    attention_bias: bool("attention_bias"),
    rope: parseRope(j, fail, num, DEFAULTS),
    linear_conv_kernel_dim: int("linear_conv_kernel_dim"),
    linear_key_head_dim: int("linear_key_head_dim"),
    linear_value_head_dim: int("linear_value_head_dim"),
    linear_num_key_heads: int("linear_num_key_heads"),
    linear_num_value_heads: int("linear_num_value_heads"),
    deltanet_projections: family === "qwen3_next" ? { qkvz: "grouped", ba: "grouped" } : { qkvz: "split", ba: "split" },
    decoder_sparse_step: family === "qwen3_next" ? int("decoder_sparse_step") : 1,
    mlp_only_layers: family === "qwen3_next" ? parseLayerList(j.mlp_only_layers, num_hidden_layers, fail) : [],
    num_experts: dense ? 0 : int("num_experts", 0),
    num_experts_per_tok: dense ? 0 : int("num_experts_per_tok", 0),
    moe_intermediate_size: int("moe_intermediate_size"),
    shared_expert_intermediate_size: int("shared_expert_intermediate_size", 0),
    norm_topk_prob: family === "qwen3_next" ? bool("norm_topk_prob") : true,
    full_attention_interval: int("full_attention_interval"),
    layer_types: [],
    mtp_num_hidden_layers: int("mtp_num_hidden_layers", 0),
    bos_token_id: parseBos(j.bos_token_id, fail),
    eos_token_id: parseEos(j.eos_token_id, fail),
    torch_dtype: parseDType(j, fail),
  };
  cfg.layer_types = parseLayerTypes(j.layer_types, cfg, fail);
  validate(cfg, fail);
  checkMropeSection(j.rope_parameters, rotaryDim(cfg), fail);
  return cfg;
}

function parseRope(
  j: Json,
  fail: (m: string) => never,
  num: (key: string, dflt: number, src?: Json) => number,
  DEFAULTS: Defaults,
): RopeConfig {
  // Newer transformers: everything under rope_parameters. Published: flat keys plus rope_scaling.
  const nested = j.rope_parameters;
  let params: Json;
  if (nested !== undefined && nested !== null) {
    if (typeof nested !== "object" || Array.isArray(nested)) fail(`rope_parameters must be an object`);
    params = { ...(nested as Json) };
    if (!("rope_theta" in params) && "rope_theta" in j) params.rope_theta = j.rope_theta;
    if (!("partial_rotary_factor" in params) && "partial_rotary_factor" in j) {
      params.partial_rotary_factor = j.partial_rotary_factor;
    }
  } else {
    const scaling = j.rope_scaling;
    if (scaling !== undefined && scaling !== null && (typeof scaling !== "object" || Array.isArray(scaling))) {
      fail(`rope_scaling must be an object or null, got ${describe(scaling)}`);
    }
    params = {
      ...((scaling as Json | null) ?? {}),
      rope_theta: j.rope_theta ?? DEFAULTS.rope_theta,
      partial_rotary_factor: j.partial_rotary_factor ?? DEFAULTS.partial_rotary_factor,
    };
  }
  const type = params.rope_type ?? params.type ?? "default";
  if (type !== "default" && type !== "linear" && type !== "yarn") {
    fail(`rope type ${brief(type)} is not supported, expected "default", "linear" or "yarn"`);
  }
  const rope_theta = num("rope_theta", DEFAULTS.rope_theta, params);
  const partial_rotary_factor = num("partial_rotary_factor", DEFAULTS.partial_rotary_factor, params);
  if (rope_theta <= 1) fail(`rope_theta is ${rope_theta}, expected a number > 1`);
  if (!(partial_rotary_factor > 0 && partial_rotary_factor <= 1)) {
    fail(`partial_rotary_factor is ${partial_rotary_factor}, expected a number in (0, 1]`);
  }
  // Required keys are checked for presence first, so that the message says "required" rather than "null".
  if (type !== "default" && params.factor == null) fail(`rope_scaling.factor is required for rope type "${type}"`);
  if (type === "yarn" && params.original_max_position_embeddings == null) {
    fail(`rope_scaling.original_max_position_embeddings is required for YaRN and must be > 0`);
  }
  const factor = type === "default" ? 1 : num("factor", NaN, params);
  if (!(factor >= 1)) fail(`rope scaling factor is ${brief(params.factor)}, expected a number >= 1`);
  if (factor > MAX_ROPE_FACTOR) fail(`rope scaling factor is ${factor}, over the limit of ${MAX_ROPE_FACTOR}`);
  const maxPos = typeof j.max_position_embeddings === "number" ? j.max_position_embeddings : 0;
  const original = num("original_max_position_embeddings", type === "yarn" ? NaN : maxPos, params);
  if (type === "yarn" && !(original > 0)) {
    fail(`rope_scaling.original_max_position_embeddings is ${brief(params.original_max_position_embeddings)}, expected a number > 0`);
  }
  if (original > CONFIG_LIMITS.max_position_embeddings) {
    fail(`rope_scaling.original_max_position_embeddings is ${original}, over the limit of ${CONFIG_LIMITS.max_position_embeddings}`);
  }
  const attention_factor = num(
    "attention_factor",
    type === "yarn" ? 0.1 * Math.log(factor) + 1 : 1,
    params,
  );
  return {
    rope_type: type,
    rope_theta,
    partial_rotary_factor,
    factor,
    original_max_position_embeddings: original,
    beta_fast: num("beta_fast", 32, params),
    beta_slow: num("beta_slow", 1, params),
    attention_factor,
  };
}

function parseLayerList(v: unknown, layers: number, fail: (m: string) => never): number[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > layers || !v.every((x) => Number.isInteger(x) && x >= 0 && x < layers)) {
    fail(`mlp_only_layers is ${brief(v)}, expected a list of layer indices in [0, ${layers})`);
  }
  return [...(v as number[])];
}

function parseLayerTypes(v: unknown, cfg: Qwen3NextConfig, fail: (m: string) => never): LayerType[] {
  if (v === undefined || v === null) {
    // transformers: full attention every `full_attention_interval`-th layer, gated DeltaNet elsewhere.
    return Array.from({ length: cfg.num_hidden_layers }, (_, i) =>
      (i + 1) % cfg.full_attention_interval === 0 ? "full_attention" : "linear_attention",
    );
  }
  if (
    !Array.isArray(v) ||
    v.length !== cfg.num_hidden_layers ||
    !v.every((t) => t === "full_attention" || t === "linear_attention")
  ) {
    fail(
      `layer_types must list "linear_attention" or "full_attention" for each of the ${cfg.num_hidden_layers} layers`,
    );
  }
  return [...(v as LayerType[])];
}

function parseBos(v: unknown, fail: (m: string) => never): number | null {
  if (v === undefined || v === null) return null;
  if (Number.isInteger(v) && (v as number) >= 0) return v as number;
  return fail(`bos_token_id is ${brief(v)}, expected a token id or null`);
}

function parseDType(j: Json, fail: (m: string) => never): string {
  for (const key of ["torch_dtype", "dtype"]) {
    const v = j[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== "string") fail(`${key} is ${brief(v)}, expected a dtype name such as "bfloat16"`);
    return v as string;
  }
  return "bfloat16";
}

function parseEos(v: unknown, fail: (m: string) => never): number[] {
  if (v === undefined || v === null) return [];
  const ids = Array.isArray(v) ? v : [v];
  if (ids.length > 0 && ids.every((x) => Number.isInteger(x) && x >= 0)) return [...(ids as number[])];
  return fail(`eos_token_id is ${brief(v)}, expected a token id or a list of them`);
}

function validate(c: Qwen3NextConfig, fail: (m: string) => never): void {
  if (c.num_attention_heads % c.num_key_value_heads !== 0) {
    fail(
      `num_attention_heads (${c.num_attention_heads}) must be a multiple of num_key_value_heads (${c.num_key_value_heads})`,
    );
  }
  if (c.linear_num_value_heads % c.linear_num_key_heads !== 0) {
    fail(
      `linear_num_value_heads (${c.linear_num_value_heads}) must be a multiple of linear_num_key_heads (${c.linear_num_key_heads})`,
    );
  }
  const rotary = rotaryDim(c);
  if (rotary < 2 || rotary % 2 !== 0) {
    fail(`head_dim * partial_rotary_factor = ${c.head_dim * c.rope.partial_rotary_factor}, expected an even integer >= 2`);
  }
  const moeLayers = c.layer_types.filter((_, i) => isMoeLayer(c, i)).length;
  if (moeLayers * c.num_experts > MAX_TOTAL_EXPERTS) {
    fail(`${moeLayers} MoE layers x num_experts ${c.num_experts} = ${moeLayers * c.num_experts} experts, over the limit of ${MAX_TOTAL_EXPERTS}`);
  }
  const anyMoe = moeLayers > 0;
  if (anyMoe) {
    if (c.num_experts < 1) fail(`num_experts is ${c.num_experts}, expected >= 1 when a layer is MoE`);
    if (c.num_experts_per_tok < 1 || c.num_experts_per_tok > c.num_experts) {
      fail(`num_experts_per_tok (${c.num_experts_per_tok}) must be between 1 and num_experts (${c.num_experts})`);
    }
  }
}

/**
 * Multimodal RoPE splits the rotary frequencies into sections for the temporal, height and width position ids;
 * with text alone all three are the token position, so the sections only have to cover the rotary dims.
 */
function checkMropeSection(rope: unknown, rotary: number, fail: (m: string) => never): void {
  const section = typeof rope === "object" && rope !== null ? (rope as Json).mrope_section : undefined;
  if (section === undefined || section === null) return;
  if (!Array.isArray(section) || !section.every((x) => Number.isInteger(x) && x >= 0)) {
    fail(`rope_parameters.mrope_section is ${brief(section)}, expected a list of non-negative integers`);
  }
  const total = (section as number[]).reduce((a, b) => a + b, 0);
  if (total !== rotary / 2) {
    fail(`rope_parameters.mrope_section ${brief(section)} covers ${total} frequencies, expected rotary dims / 2 = ${rotary / 2}`);
  }
}

function familyOf(t: unknown): ModelFamily | null {
  return t === "qwen3_next" || t === "qwen3_5_text" ? (t === "qwen3_next" ? "qwen3_next" : "qwen3_5") : t === "qwen3_5" ? "qwen3_5" : t === "qwen3_5_moe" || t === "qwen3_5_moe_text" ? "qwen3_5_moe" : null;
}

/**
 * The text model's settings of a Qwen3.5 config: `text_config` of the multimodal wrapper (or the config itself
 * when it is a bare text config), with the wrapper's `tie_word_embeddings` / `torch_dtype` where the text
 * config has none.
 */
function qwen3_5TextConfig(top: Json, family: "qwen3_5" | "qwen3_5_moe", fail: (m: string) => never): Json {
  if (top.model_type === TEXT_MODEL_TYPE[family]) return top;
  const text = top.text_config;
  if (typeof text !== "object" || text === null || Array.isArray(text)) {
    return fail(`text_config is ${describe(text)}, expected an object with the text model's settings (model_type "${TEXT_MODEL_TYPE[family]}")`);
  }
  const t = text as Json;
  if (t.model_type !== undefined && t.model_type !== TEXT_MODEL_TYPE[family]) {
    fail(`text_config.model_type is ${brief(t.model_type)}, expected "${TEXT_MODEL_TYPE[family]}"`);
  }
  const inherited: Json = {};
  for (const key of ["tie_word_embeddings", "torch_dtype", "dtype", "eos_token_id", "bos_token_id"]) if (!(key in t) && key in top) inherited[key] = top[key];
  return { ...inherited, ...t };
}

/** Number of leading head dims that are rotated: int(head_dim * partial_rotary_factor), truncated as transformers does. */
export function rotaryDim(c: Qwen3NextConfig): number {
  return Math.trunc(c.head_dim * c.rope.partial_rotary_factor);
}

/** A layer is MoE when it is not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0. */
export function isMoeLayer(c: Qwen3NextConfig, layer: number): boolean {
  return (
    c.num_experts > 0 && !c.mlp_only_layers.includes(layer) && (layer + 1) % c.decoder_sparse_step === 0
  );
}

/**
 * Longest context the model can attend over: `max_position_embeddings`, or with YaRN
 * `factor * original_max_position_embeddings` when that is larger.
 */
export function contextLimit(config: Qwen3NextConfig): number {
  const r = config.rope;
  return r.rope_type === "yarn" ? Math.max(config.max_position_embeddings, Math.floor(r.factor * r.original_max_position_embeddings)) : config.max_position_embeddings;
}

/**
 * vLLM-style `--rope-scaling '{"rope_type":"yarn","factor":4,"original_max_position_embeddings":262144}'`: the
 * RoPE setup of `rawConfig` (a config.json object) with its scaling replaced by the JSON text `flag` (its base
 * theta and partial rotary factor are kept), validated by the same parser as config.json.
 */
export function ropeWithScaling(rawConfig: unknown, flag: string): RopeConfig {
  let scaling: unknown;
  try {
    scaling = JSON.parse(flag);
  } catch {
    throw new Error(`--rope-scaling is not JSON: ${flag}; expected e.g. '{"rope_type":"yarn","factor":4,"original_max_position_embeddings":262144}'`);
  }
  if (typeof scaling !== "object" || scaling === null || Array.isArray(scaling)) {
    throw new Error(`--rope-scaling must be a JSON object, got ${flag}`);
  }
  const base = parseConfig(rawConfig).rope;
  const raw = rawConfig as Record<string, unknown>;
  return parseConfig(
    { ...raw, rope_parameters: null, rope_theta: base.rope_theta, partial_rotary_factor: base.partial_rotary_factor, rope_scaling: scaling },
    "--rope-scaling",
  ).rope;
}

/** A value as JSON for an error message, cut to 60 characters (a config may hold anything, of any size). */
export function brief(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v;
}
