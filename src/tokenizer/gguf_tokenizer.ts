/**
 * A GGUF file's tokenizer, rebuilt as the `tokenizer.json` + `tokenizer_config.json` pair that
 * `@huggingface/tokenizers` runs, from the metadata llama.cpp's converter writes:
 *   tokenizer.ggml.model        "gpt2" (byte-level BPE)
 *   tokenizer.ggml.pre          pre-tokenizer name: "qwen2" (Qwen2/2.5/3/3-Next's split regex) or "qwen35"
 *                               (Qwen3.5's: combining marks \p{M} stay with the letters before them)
 *   tokenizer.ggml.tokens       token strings by id (byte-level alphabet, as in tokenizer.json's vocab)
 *   tokenizer.ggml.token_type   per id: 1 normal, 2 unknown, 3 control (special added token),
 *                               4 user-defined (non-special added token, e.g. <think>), 5 unused (padding), 6 byte
 *   tokenizer.ggml.merges       "left right" merge rules, highest priority first
 *   tokenizer.ggml.bos_token_id / eos_token_id / eot_token_id / padding_token_id, add_bos_token
 *   tokenizer.chat_template     the Jinja chat template
 */
import type { GgufHeader } from "../io/gguf.js";

/** Qwen2's pre-tokenizer split (the same regex as Qwen's tokenizer.json). */
const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** Qwen3.5's split (its tokenizer.json; llama.cpp's LLAMA_VOCAB_PRE_TYPE_QWEN35): marks join letters, not punctuation. */
export const QWEN35_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const PRE_TOKENIZERS: Record<string, string> = { qwen2: QWEN2_SPLIT, qwen35: QWEN35_SPLIT };

const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface GgufTokenizerFiles {
  /** A tokenizer.json equivalent. */
  tokenizerJson: Record<string, unknown>;
  /** A tokenizer_config.json equivalent (special token names, chat template). */
  tokenizerConfig: Record<string, unknown>;
  /** Ids that end a generation: eos, eot and eom ids present in the metadata. */
  eosIds: number[];
  /** The chat template, when the file has one. */
  chatTemplate: string | undefined;
}

/** The tokenizer files of a GGUF header; one-line errors name the file and the key. */
export function tokenizerFromGguf(h: GgufHeader): GgufTokenizerFiles {
  const fail = (msg: string): never => {
    throw new Error(`${h.file}: ${msg}`);
  };
  const m = (key: string) => h.metadata.get(key)?.value;
  const model = m("tokenizer.ggml.model");
  if (model !== "gpt2") fail(`tokenizer.ggml.model is ${JSON.stringify(model ?? null)}, expected "gpt2" (byte-level BPE, as Qwen's)`);
  const pre = m("tokenizer.ggml.pre") ?? "qwen2";
  const split = typeof pre === "string" ? PRE_TOKENIZERS[pre] : undefined;
  if (split === undefined) fail(`tokenizer.ggml.pre is ${JSON.stringify(pre)}, expected one of: ${Object.keys(PRE_TOKENIZERS).join(", ")}`);
  const tokens = m("tokenizer.ggml.tokens");
  if (!Array.isArray(tokens) || tokens.length === 0 || !tokens.every((t) => typeof t === "string")) {
    fail(`tokenizer.ggml.tokens is missing or not a list of strings`);
  }
  const toks = tokens as string[];
  const typesRaw = m("tokenizer.ggml.token_type");
  const types = typesRaw === undefined ? toks.map(() => TOKEN_TYPE.NORMAL) : typesRaw;
  if (!Array.isArray(types) || types.length !== toks.length || !types.every((t) => typeof t === "number")) {
    fail(`tokenizer.ggml.token_type must list one integer per token (${toks.length})`);
  }
  const mergesRaw = m("tokenizer.ggml.merges") ?? [];
  if (!Array.isArray(mergesRaw) || !mergesRaw.every((s) => typeof s === "string")) fail(`tokenizer.ggml.merges is not a list of strings`);
  const merges = (mergesRaw as string[]).map((s, i) => {
    const sp = s.indexOf(" ");
    if (sp <= 0 || sp === s.length - 1) fail(`tokenizer.ggml.merges[${i}] is ${JSON.stringify(s)}, expected "left right"`);
    return [s.slice(0, sp), s.slice(sp + 1)];
  });

  const vocab: Record<string, number> = {};
  const added: Array<Record<string, unknown>> = [];
  const decoderConfig: Record<string, unknown> = {};
  toks.forEach((t, id) => {
    const type = (types as number[])[id];
    if (type === TOKEN_TYPE.UNUSED) return;
    if (!Object.prototype.hasOwnProperty.call(vocab, t)) vocab[t] = id;
    if (type === TOKEN_TYPE.CONTROL || type === TOKEN_TYPE.USER_DEFINED) {
      const entry = { id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type === TOKEN_TYPE.CONTROL };
      added.push(entry);
      decoderConfig[String(id)] = { ...entry, id: undefined };
    }
  });

  const tokenName = (key: string): string | null => {
    const v = m(key);
    if (v === undefined) return null;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= toks.length) {
      fail(`${key} is ${JSON.stringify(typeof v === "bigint" ? String(v) : v)}, expected a token id below ${toks.length}`);
    }
    return toks[v as number];
  };
  const eosIds: number[] = [];
  for (const key of ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]) {
    if (tokenName(key) !== null && !eosIds.includes(m(key) as number)) eosIds.push(m(key) as number);
  }
  const template = m("tokenizer.chat_template");
  if (template !== undefined && typeof template !== "string") fail(`tokenizer.chat_template is not a string`);

  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: "NFC" },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [{ type: "Split", pattern: { Regex: split }, behavior: "Isolated", invert: false }, byteLevel],
    },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: m("tokenizer.ggml.add_bos_token") === true,
    add_prefix_space: false,
    added_tokens_decoder: decoderConfig,
    bos_token: tokenName("tokenizer.ggml.bos_token_id"),
    eos_token: tokenName("tokenizer.ggml.eos_token_id"),
    pad_token: tokenName("tokenizer.ggml.padding_token_id"),
    unk_token: null,
    clean_up_tokenization_spaces: false,
    split_special_tokens: false,
    tokenizer_class: "Qwen2Tokenizer",
  };
  if (typeof template === "string") tokenizerConfig.chat_template = template;
  return { tokenizerJson, tokenizerConfig, eosIds, chatTemplate: template as string | undefined };
}
