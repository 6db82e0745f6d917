/**
 * config.json keys the parser does not know: a typo such as `num_hiden_layers` would otherwise be ignored in
 * silence, its value replaced by the default (48 layers), and the checkpoint blamed for the mismatch.
 *
 * Known keys, per family: those parseConfig reads (the defaults' keys in config.ts, plus the few it reads without
 * a default) and those Hugging Face / the published configs write that change nothing here (harmless to have).
 *   - qwen3_next: the whole config;
 *   - qwen3_5 / qwen3_5_moe: the multimodal wrapper's own keys (transformers' Qwen3_5Config: text_config,
 *     vision_config, image/video/vision token ids, tie_word_embeddings), and in `text_config` the text model's
 *     (Qwen3_5TextConfig / Qwen3_5MoeTextConfig): the Qwen3-Next keys without Qwen3-Next's MoE layer schedule,
 *     and without the expert keys for the dense model, which ignores them. `vision_config` is not checked
 *     (image input is out of scope). A bare text config (model_type qwen3_5_text / qwen3_5_moe_text) is
 *     checked as a text_config.
 */
import { QWEN3_5_DEFAULTS, QWEN3_5_MOE_DEFAULTS, QWEN3_NEXT_DEFAULTS, type Defaults } from "./config.js";

/** Written by transformers' PreTrainedConfig (or other tools) on any config; never about the architecture. */
const COMMON = [
  "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "bos_token_id", "eos_token_id", "pad_token_id",
  "quantization_config", "_name_or_path", "auto_map", "id2label", "label2id", "output_hidden_states", "output_attentions",
  "return_dict", "tokenizer_class", "use_cache",
];
/** Read by parseConfig without a default in DEFAULTS, or written by transformers' text configs (not used here). */
const TEXT_EXTRA = ["rope_scaling", "rope_parameters", "layer_types", "attention_dropout", "initializer_range"];
/** Qwen3-Next only: its MoE layer schedule (Qwen3.5 makes every layer MoE) and what its published configs carry. */
const NEXT_ONLY = ["decoder_sparse_step", "mlp_only_layers", "norm_topk_prob", "use_sliding_window", "sliding_window", "max_window_layers"];
/** Experts: the dense Qwen3.5 ignores them. */
const EXPERTS = ["num_experts", "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size", "output_router_logits", "router_aux_loss_coef"];
/** In the published Qwen3.5 text configs; fixed by the architecture here (gated attention output, f32 DeltaNet state, shared MTP embedding). */
const QWEN3_5_PUBLISHED = ["attn_output_gate", "mamba_ssm_dtype", "mtp_use_dedicated_embeddings"];
/** transformers' Qwen3_5Config / Qwen3_5MoeConfig: the multimodal wrapper around text_config. */
const QWEN3_5_WRAPPER = ["text_config", "vision_config", "image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id", "tie_word_embeddings"];

const keysOf = (d: Defaults) => Object.keys(d);
const minus = (keys: string[], drop: string[]) => keys.filter((k) => !drop.includes(k));

interface Scope {
  /** Where the keys are: "" (the top level) or "text_config.". */
  prefix: string;
  known: Set<string>;
  /** Defaults of the keys parseConfig reads here. */
  defaults: Defaults | null;
}

const NEXT: Scope = { prefix: "", known: new Set([...COMMON, ...TEXT_EXTRA, ...keysOf(QWEN3_NEXT_DEFAULTS), ...NEXT_ONLY, ...EXPERTS]), defaults: QWEN3_NEXT_DEFAULTS };
const textScope = (prefix: string, d: Defaults, moe: boolean): Scope => ({
  prefix,
  known: new Set([...COMMON, ...TEXT_EXTRA, ...QWEN3_5_PUBLISHED, ...minus(keysOf(d), [...NEXT_ONLY, ...(moe ? [] : EXPERTS)]), ...(moe ? EXPERTS : [])]),
  defaults: d,
});
const WRAPPER: Scope = { prefix: "", known: new Set([...COMMON, ...QWEN3_5_WRAPPER]), defaults: null };

/** Levenshtein distance (small strings). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** `outer`: the Qwen3.5 wrapper, whose value of a key the text config lacks may be inherited (no default then). */
function warnings(obj: Record<string, unknown>, scope: Scope, where: string, outer: Record<string, unknown> = {}): string[] {
  const known = [...scope.known];
  return Object.keys(obj)
    .filter((k) => !scope.known.has(k))
    .map((k) => {
      const near = known.map((n) => [n, distance(k, n)] as const).sort((x, y) => x[1] - y[1])[0];
      const close = near !== undefined && near[1] <= Math.max(2, Math.floor(k.length / 5));
      const d = scope.defaults;
      const dflt = close && d !== null && near[0] in d && !(near[0] in obj) && !(near[0] in outer) ? `; ${near[0]} takes its default, ${JSON.stringify(d[near[0] as keyof Defaults])}` : "";
      return `${where}: unknown key ${scope.prefix}${k}, ignored${close ? ` (did you mean ${near[0]}?${dflt})` : ""}`;
    });
}

/**
 * One warning line per unknown key of a Qwen3-Next or Qwen3.5 config object (the Qwen3.5 wrapper's keys and its
 * text_config's), naming the closest known key when there is one and the default it then takes.
 */
export function unknownConfigKeyWarnings(raw: unknown, where = "config.json"): string[] {
  if (!isObject(raw)) return [];
  switch (raw.model_type) {
    case "qwen3_next":
      return warnings(raw, NEXT, where);
    case "qwen3_5_text":
      return warnings(raw, textScope("", QWEN3_5_DEFAULTS, false), where);
    case "qwen3_5_moe_text":
      return warnings(raw, textScope("", QWEN3_5_MOE_DEFAULTS, true), where);
    case "qwen3_5":
    case "qwen3_5_moe": {
      const moe = raw.model_type === "qwen3_5_moe";
      const text = isObject(raw.text_config) ? warnings(raw.text_config, textScope("text_config.", moe ? QWEN3_5_MOE_DEFAULTS : QWEN3_5_DEFAULTS, moe), where, raw) : [];
      return [...warnings(raw, WRAPPER, where), ...text];
    }
    default:
      return [];
  }
}
