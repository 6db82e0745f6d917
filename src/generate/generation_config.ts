/**
 * A checkpoint's `generation_config.json`, checked field by field before it is used: each field this project
 * reads must have its type (or be null, which Hugging Face's GenerationConfig reads as "not set"); anything
 * else is one line naming the file, the field and what was expected. Fields it does not read are ignored.
 */
import { brief } from "../config.js";

const NUMBERS = ["temperature", "top_p", "min_p", "typical_p", "presence_penalty", "frequency_penalty", "repetition_penalty"];
const INTEGERS = ["top_k", "max_new_tokens", "max_length", "min_length", "min_new_tokens", "bos_token_id", "pad_token_id"];
const BOOLEANS = ["do_sample"];

/** The object of a parsed `generation_config.json`, checked; throws one line naming `where` and the field. */
export function checkGenerationConfig(raw: unknown, where = "generation_config.json"): Record<string, unknown> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(`${where}: expected a JSON object, got ${raw === null ? "null" : Array.isArray(raw) ? "an array" : typeof raw}`);
  }
  const g = raw as Record<string, unknown>;
  const bad = (key: string, expected: string): never => {
    throw new Error(`${where}: ${key} is ${brief(g[key])}, expected ${expected}`);
  };
  for (const key of NUMBERS) {
    const v = g[key];
    if (v != null && !(typeof v === "number" && Number.isFinite(v))) bad(key, "a number");
  }
  for (const key of INTEGERS) {
    const v = g[key];
    if (v != null && !Number.isSafeInteger(v)) bad(key, key === "top_k" ? "an integer" : "an integer >= 0");
    if (v != null && key !== "top_k" && (v as number) < 0) bad(key, "an integer >= 0");
  }
  for (const key of BOOLEANS) {
    const v = g[key];
    if (v != null && typeof v !== "boolean") bad(key, "true or false");
  }
  const eos = g.eos_token_id;
  if (eos != null) {
    const ids = Array.isArray(eos) ? eos : [eos];
    if (!ids.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) bad("eos_token_id", "a token id or a list of them");
  }
  return g;
}
