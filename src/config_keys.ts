/**
 * config.json keys the parser does not know: a typo such as `num_hiden_layers` would otherwise be ignored in
 * silence, its value replaced by the default (48 layers), and the checkpoint blamed for the mismatch.
 */
import { QWEN3_NEXT_DEFAULTS as DEFAULTS } from "./config.js";

/** Keys read by parseConfig or written by Hugging Face / the published Qwen3-Next configs (harmless to have). */
const KNOWN = new Set<string>([
  ...Object.keys(DEFAULTS),
  "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "use_cache", "attention_dropout",
  "bos_token_id", "eos_token_id", "pad_token_id", "initializer_range", "output_router_logits", "router_aux_loss_coef",
  "rope_scaling", "rope_parameters", "use_sliding_window", "sliding_window", "max_window_layers", "mlp_only_layers",
  "layer_types", "quantization_config", "_name_or_path", "auto_map", "tie_word_embeddings", "text_config",
  "vision_config", "id2label", "label2id", "output_hidden_states", "output_attentions", "return_dict", "tokenizer_class",
]);

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

/**
 * One warning line per unknown top-level key of a Qwen3-Next config object, naming the closest known key when
 * there is one. (Qwen3.5 configs, a multimodal wrapper around `text_config`, are not checked.)
 */
export function unknownConfigKeyWarnings(raw: unknown, where = "config.json"): string[] {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return [];
  if ((raw as { model_type?: unknown }).model_type !== "qwen3_next") return [];
  return Object.keys(raw)
    .filter((k) => !KNOWN.has(k))
    .map((k) => {
      const near = [...KNOWN].map((n) => [n, distance(k, n)] as const).sort((x, y) => x[1] - y[1])[0];
      const hint = near !== undefined && near[1] <= Math.max(2, Math.floor(k.length / 5)) ? ` (did you mean ${near[0]}?` : null;
      const fallback = hint !== null && near[0] in DEFAULTS && !(near[0] in raw) ? `; ${near[0]} takes its default, ${JSON.stringify(DEFAULTS[near[0] as keyof typeof DEFAULTS])})` : hint !== null ? ")" : "";
      return `${where}: unknown key ${k}, ignored${hint ?? ""}${fallback}`;
    });
}
