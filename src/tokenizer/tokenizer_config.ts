/**
 * `tokenizer_config.json`, checked field by field before the tokenizer and the chat template read it: each field
 * read here or by `@huggingface/tokenizers` must have its type (or be null: not set); anything else is one line
 * naming the file, the field and what was expected. Fields nobody reads are ignored.
 */
import { brief } from "../config.js";

/** Special tokens: a string, or an AddedToken object `{content: string, ...}`. */
const TOKENS = ["bos_token", "eos_token", "pad_token", "unk_token", "sep_token", "cls_token", "mask_token"];
const BOOLEANS = ["clean_up_tokenization_spaces", "remove_space", "do_lowercase_and_remove_accent", "add_bos_token", "add_eos_token", "add_prefix_space", "legacy"];

const isToken = (v: unknown) =>
  typeof v === "string" || (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string");

/** The parsed `tokenizer_config.json` object, checked; throws one line naming `file` and the field. */
export function checkTokenizerConfig(raw: unknown, file: string): Record<string, unknown> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(`${file}: expected a JSON object, got ${raw === null ? "null" : Array.isArray(raw) ? "an array" : typeof raw}`);
  }
  const c = raw as Record<string, unknown>;
  const bad = (key: string, expected: string): never => {
    throw new Error(`${file}: ${key} is ${brief(c[key])}, expected ${expected}`);
  };
  for (const key of TOKENS) if (c[key] != null && !isToken(c[key])) bad(key, 'a token (a string or {"content": string})');
  for (const key of BOOLEANS) if (c[key] != null && typeof c[key] !== "boolean") bad(key, "true or false");
  const extra = c.additional_special_tokens;
  if (extra != null && !(Array.isArray(extra) && extra.every(isToken))) bad("additional_special_tokens", "a list of tokens");
  const t = c.chat_template;
  if (t != null && typeof t !== "string") {
    const named = (x: unknown) =>
      typeof x === "object" && x !== null && typeof (x as { template?: unknown }).template === "string";
    if (!(Array.isArray(t) && t.length > 0 && t.every(named))) bad("chat_template", 'a template string or a list of {"name", "template"}');
  }
  const added = c.added_tokens_decoder;
  if (added != null) {
    if (typeof added !== "object" || Array.isArray(added)) bad("added_tokens_decoder", "an object of tokens by id");
    for (const [id, tok] of Object.entries(added as object)) {
      if (!/^\d+$/.test(id) || !isToken(tok)) {
        throw new Error(`${file}: added_tokens_decoder["${id.slice(0, 20)}"] is ${brief(tok)}, expected {"content": string, ...} under a token id`);
      }
    }
  }
  if (c.model_max_length != null && typeof c.model_max_length !== "number") bad("model_max_length", "a number");
  return c;
}
