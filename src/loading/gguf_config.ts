/**
 * The Qwen3-Next config of a `qwen3next` GGUF file, from its metadata (and, for what the metadata does not
 * say, which tensors it holds), never from a config.json. The keys, as llama.cpp's converter writes them:
 *
 *   qwen3next.block_count                 num_hidden_layers (+ nextn_predict_layers MTP blocks at the end)
 *   qwen3next.context_length              max_position_embeddings
 *   qwen3next.embedding_length            hidden_size
 *   qwen3next.feed_forward_length         intermediate_size (dense layers)
 *   qwen3next.attention.head_count / head_count_kv / key_length (= value_length)
 *                                         num_attention_heads / num_key_value_heads / head_dim
 *   qwen3next.attention.layer_norm_rms_epsilon   rms_norm_eps (a float32: read as the shortest decimal)
 *   qwen3next.rope.freq_base              rope_theta
 *   qwen3next.rope.dimension_count        rotary dims: partial_rotary_factor = dimension_count / head_dim
 *                                         (absent: every dim rotates, as in llama.cpp)
 *   qwen3next.rope.scaling.type / factor / original_context_length / yarn_beta_fast / yarn_beta_slow /
 *   yarn_attn_factor                      rope_scaling (none | linear | yarn; attention_factor)
 *   qwen3next.expert_count / expert_used_count / expert_feed_forward_length /
 *   expert_shared_feed_forward_length     num_experts / num_experts_per_tok / moe_intermediate_size /
 *                                         shared_expert_intermediate_size
 *   qwen3next.expert_weights_norm         norm_topk_prob (absent: true)
 *   qwen3next.ssm.conv_kernel / state_size / group_count / time_step_rank / inner_size
 *                                         linear_conv_kernel_dim / linear_key_head_dim / linear_num_key_heads /
 *                                         linear_num_value_heads / linear_num_value_heads * linear_value_head_dim
 *   qwen3next.full_attention_interval     full_attention_interval
 *   qwen3next.nextn_predict_layers        mtp_num_hidden_layers (absent: 0)
 *   tokenizer.ggml.bos_token_id / eos_token_id   bos_token_id / eos_token_id
 * From the tensors: vocab_size (token_embd rows), tie_word_embeddings (no `output`), attention_bias
 * (`attn_q.bias`), dense layers (no `ffn_gate_inp`: listed in mlp_only_layers), each layer's kind (`ssm_a`:
 * gated DeltaNet, `attn_q`: gated attention), and the DeltaNet projection form (`attn_qkv` + `attn_gate` split,
 * or the older grouped `ssm_in`).
 */
import { parseConfig, ConfigError, type Qwen3NextConfig } from "../config.js";
import { GgufType, type GgufHeader } from "../io/gguf.js";

export const GGUF_ARCH = "qwen3next";

/** The config of a GGUF file's header; errors are one line naming the file and the key. */
export function configFromGguf(h: GgufHeader): Qwen3NextConfig {
  const c = parseConfig(rawConfigFromGguf(h), h.file);
  // Current files split the DeltaNet input projection (attn_qkv + attn_gate); older ones keep the grouped ssm_in.
  const firstLinear = c.layer_types.indexOf("linear_attention");
  const split = firstLinear < 0 || h.tensors.has(`blk.${firstLinear}.attn_qkv.weight`) || !h.tensors.has(`blk.${firstLinear}.ssm_in.weight`);
  return { ...c, deltanet_projections: { qkvz: split ? "split" : "grouped", ba: "grouped" } };
}

/** The same as a config.json object (what `parseConfig` reads), for code that edits a raw config. */
export function rawConfigFromGguf(h: GgufHeader): Record<string, unknown> {
  const fail = (msg: string): never => {
    throw new ConfigError(`${h.file}: ${msg}`);
  };
  const arch = h.metadata.get("general.architecture")?.value;
  if (arch !== GGUF_ARCH) {
    fail(`general.architecture is ${JSON.stringify(arch ?? null)}, expected "${GGUF_ARCH}" (a Qwen3-Next GGUF)`);
  }
  const get = (key: string) => h.metadata.get(`${GGUF_ARCH}.${key}`)?.value;
  const int = (key: string, dflt?: number): number => {
    let v = get(key) ?? dflt;
    // Per-layer arrays (llama.cpp writes some hybrid models' head counts that way, 0 for recurrent layers):
    // the attention layers must agree, and their value is the model's.
    if (Array.isArray(v)) {
      const used = [...new Set(v.filter((x) => x !== 0))];
      if (used.length !== 1) fail(`metadata ${GGUF_ARCH}.${key} is ${show(v)}, expected one non-zero value for every attention layer`);
      v = used[0];
    }
    if (v === undefined) fail(`metadata ${GGUF_ARCH}.${key} is missing`);
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) fail(`metadata ${GGUF_ARCH}.${key} is ${show(v)}, expected a non-negative integer`);
    return v as number;
  };
  const float = (key: string): number | undefined => {
    const e = h.metadata.get(`${GGUF_ARCH}.${key}`);
    if (e === undefined) return undefined;
    const v = e.value;
    if (typeof v !== "number" || !Number.isFinite(v)) fail(`metadata ${GGUF_ARCH}.${key} is ${show(v)}, expected a number`);
    return e.type === GgufType.FLOAT32 ? shortestFloat32(v as number) : (v as number);
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = get(key) ?? dflt;
    if (typeof v !== "boolean") fail(`metadata ${GGUF_ARCH}.${key} is ${show(v)}, expected true or false`);
    return v as boolean;
  };
  const tensor = (name: string) => h.tensors.get(name);

  const blocks = int("block_count");
  // Every block holds tensors: a count beyond the file's tensors is corrupt (and would be walked layer by layer).
  if (blocks < 1 || blocks > h.tensors.size) fail(`metadata ${GGUF_ARCH}.block_count is ${blocks}, which a file of ${h.tensors.size} tensors cannot hold`);
  const nextn = int("nextn_predict_layers", 0);
  if (nextn >= blocks) fail(`metadata ${GGUF_ARCH}.nextn_predict_layers (${nextn}) must be less than block_count (${blocks})`);
  const layers = blocks - nextn;
  // llama.cpp's default head size is embedding_length / head_count (Qwen3-Next's converter always writes it).
  const headDim = int("attention.key_length", Math.floor(int("embedding_length") / Math.max(1, int("attention.head_count"))));
  const valueLength = int("attention.value_length", headDim);
  if (valueLength !== headDim) fail(`metadata ${GGUF_ARCH}.attention.value_length (${valueLength}) differs from key_length (${headDim}), which Qwen3-Next does not allow`);
  const rotary = int("rope.dimension_count", headDim);

  const embd = tensor("token_embd.weight");
  if (!embd) fail(`no tensor "token_embd.weight" (the token embedding)`);
  const vocab = get("vocab_size") ?? embd!.shape[0];

  const valueHeads = int("ssm.time_step_rank");
  const inner = int("ssm.inner_size");
  if (valueHeads === 0 || inner % valueHeads !== 0) {
    fail(`metadata ${GGUF_ARCH}.ssm.inner_size (${inner}) must be a multiple of ssm.time_step_rank (${valueHeads}), the value heads`);
  }

  // Layer kinds from the tensors each block holds (llama.cpp derives them from full_attention_interval, which a
  // file it loads agrees with); the interval decides only for a block that holds neither kind.
  const interval = int("full_attention_interval", 4);
  const layerTypes = Array.from({ length: layers }, (_, i) =>
    tensor(`blk.${i}.ssm_a`) ? "linear_attention" : tensor(`blk.${i}.attn_q.weight`) ? "full_attention" : (i + 1) % interval === 0 ? "full_attention" : "linear_attention",
  );
  const mlpOnly: number[] = [];
  for (let i = 0; i < layers; i++) if (!tensor(`blk.${i}.ffn_gate_inp.weight`)) mlpOnly.push(i);
  // The routers' rows are the experts: a count that disagrees is refused before E experts per layer are listed.
  const experts = int("expert_count", 0);
  const router = [...Array(layers).keys()].map((i) => tensor(`blk.${i}.ffn_gate_inp.weight`)).find((t) => t !== undefined);
  if (router && router.shape[0] !== experts) {
    fail(`metadata ${GGUF_ARCH}.expert_count is ${experts}, but tensor "${router.name}" routes to ${router.shape[0]} experts`);
  }
  const sharedShape = tensor("blk.0.ffn_gate_shexp.weight")?.shape;

  const json: Record<string, unknown> = {
    model_type: "qwen3_next",
    vocab_size: vocab,
    hidden_size: int("embedding_length"),
    intermediate_size: int("feed_forward_length", 1),
    num_hidden_layers: layers,
    hidden_act: "silu",
    max_position_embeddings: int("context_length"),
    rms_norm_eps: float("attention.layer_norm_rms_epsilon"),
    tie_word_embeddings: !tensor("output.weight"),
    num_attention_heads: int("attention.head_count"),
    num_key_value_heads: int("attention.head_count_kv"),
    head_dim: headDim,
    attention_bias: tensor("blk.0.attn_q.bias") !== undefined || hasAny(h, /^blk\.\d+\.attn_q\.bias$/),
    rope_theta: float("rope.freq_base"),
    partial_rotary_factor: rotary / headDim,
    rope_scaling: ropeScaling(h, fail, float),
    linear_conv_kernel_dim: int("ssm.conv_kernel"),
    linear_key_head_dim: int("ssm.state_size"),
    linear_value_head_dim: inner / valueHeads,
    linear_num_key_heads: int("ssm.group_count"),
    linear_num_value_heads: valueHeads,
    decoder_sparse_step: 1,
    mlp_only_layers: mlpOnly,
    num_experts: experts,
    num_experts_per_tok: int("expert_used_count", 0),
    moe_intermediate_size: int("expert_feed_forward_length", 1),
    shared_expert_intermediate_size: int("expert_shared_feed_forward_length", sharedShape ? sharedShape[0] : 0),
    norm_topk_prob: bool("expert_weights_norm", true),
    full_attention_interval: interval,
    layer_types: layerTypes,
    mtp_num_hidden_layers: nextn,
    bos_token_id: tokenId(h, "tokenizer.ggml.bos_token_id", fail),
    eos_token_id: tokenId(h, "tokenizer.ggml.eos_token_id", fail),
    torch_dtype: "gguf",
  };
  if (json.rope_theta === undefined) delete json.rope_theta;
  if (json.rms_norm_eps === undefined) delete json.rms_norm_eps;
  return json;
}

function ropeScaling(
  h: GgufHeader,
  fail: (m: string) => never,
  float: (key: string) => number | undefined,
): Record<string, unknown> | null {
  const typeEntry = h.metadata.get(`${GGUF_ARCH}.rope.scaling.type`)?.value;
  const linearOld = float("rope.scale_linear");
  const type = typeEntry ?? (linearOld !== undefined && linearOld !== 1 ? "linear" : "none");
  if (type === "none") return null;
  if (type !== "linear" && type !== "yarn") fail(`metadata ${GGUF_ARCH}.rope.scaling.type is ${show(type)}, expected "none", "linear" or "yarn"`);
  const factor = float("rope.scaling.factor") ?? linearOld;
  const out: Record<string, unknown> = { rope_type: type, factor: factor ?? null };
  if (type === "yarn") {
    const orig = h.metadata.get(`${GGUF_ARCH}.rope.scaling.original_context_length`)?.value;
    out.original_max_position_embeddings = orig ?? null;
    const fast = float("rope.scaling.yarn_beta_fast");
    const slow = float("rope.scaling.yarn_beta_slow");
    if (fast !== undefined) out.beta_fast = fast;
    if (slow !== undefined) out.beta_slow = slow;
    // llama.cpp's converter copies the config's YaRN attention_factor here as is (absent: 0.1 ln(factor) + 1).
    const attn = float("rope.scaling.yarn_attn_factor") ?? float("rope.scaling.attn_factor");
    if (attn !== undefined) out.attention_factor = attn;
  }
  return out;
}

function tokenId(h: GgufHeader, key: string, fail: (m: string) => never): number | null {
  const v = h.metadata.get(key)?.value;
  if (v === undefined) return null;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) fail(`metadata ${key} is ${show(v)}, expected a token id`);
  return v as number;
}

function hasAny(h: GgufHeader, re: RegExp): boolean {
  for (const n of h.tensors.keys()) if (re.test(n)) return true;
  return false;
}

/**
 * GGUF stores floats like rms_norm_eps as float32 (1e-6 becomes 9.99999997e-7): the shortest decimal that
 * rounds to the same float32 is the value the converter was given.
 */
export function shortestFloat32(x: number): number {
  if (Math.fround(x) !== x) return x;
  for (let p = 1; p <= 9; p++) {
    const v = Number(x.toPrecision(p));
    if (Math.fround(v) === x) return v;
  }
  return x;
}

function show(v: unknown): string {
  return typeof v === "bigint" ? String(v) : JSON.stringify(v);
}
