/**
 * The tokenizer and chat template a GGUF file carries: rebuilt from `tokenizer.ggml.*`, the real Qwen3 vocabulary
 * written the way llama.cpp's converter does must tokenize exactly as Qwen's own tokenizer.json does.
 */
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GgufType } from "../../src/io/gguf.js";
import { meta, writeGguf } from "../../src/io/gguf_write.js";
import { readJsonFile } from "../../src/io/json.js";
import { ChatTemplate } from "../../src/tokenizer/chat_template.js";
import { bundledTokenizerDir, QwenTokenizer } from "../../src/tokenizer/tokenizer.js";
import { ggufFixture } from "../helpers/gguf.js";

let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "gguf-tok-"));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

const TEXTS = [
  "Hello, world! How's it going?",
  "  leading spaces\n\nand\r\nnewlines\t\ttabs",
  "数字 12345 and ünïcödé — emoji 🤖👍🏽",
  "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n4<|im_end|>",
  "def f(x):\n    return x ** 2  # it's squared\n",
  "I'LL SAY IT'S 'QUOTED' and you've, we'd",
];

/** The bundled Qwen3 tokenizer written as llama.cpp's converter writes a GGUF vocabulary (no tensors). */
async function qwenVocabGguf(file: string): Promise<void> {
  const tj = (await readJsonFile(path.join(bundledTokenizerDir(), "tokenizer.json"))) as {
    model: { vocab: Record<string, number>; merges: Array<[string, string] | string> };
    added_tokens: Array<{ id: number; content: string; special: boolean }>;
  };
  const tokens: string[] = [];
  const types: number[] = [];
  for (const [t, id] of Object.entries(tj.model.vocab)) {
    tokens[id] = t;
    types[id] = 1;
  }
  for (const a of tj.added_tokens) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4;
  }
  const merges = tj.model.merges.map((m) => (typeof m === "string" ? m : m.join(" ")));
  // The model's 151,936 rows: ids past the tokenizer are padding tokens of type "unused".
  for (let id = tokens.length; id < 151936; id++) {
    tokens[id] = `[PAD${id}]`;
    types[id] = 5;
  }
  await writeGguf(
    file,
    [
      meta.str("general.architecture", "qwen3next"),
      meta.str("tokenizer.ggml.model", "gpt2"),
      meta.str("tokenizer.ggml.pre", "qwen2"),
      meta.strs("tokenizer.ggml.tokens", tokens),
      meta.i32s("tokenizer.ggml.token_type", types),
      meta.strs("tokenizer.ggml.merges", merges),
      meta.u32("tokenizer.ggml.eos_token_id", 151645),
      meta.u32("tokenizer.ggml.padding_token_id", 151643),
      meta.bool("tokenizer.ggml.add_bos_token", false),
    ],
    [],
  );
}

describe("tokenizer from GGUF metadata", () => {
  it("the Qwen3 vocabulary in GGUF form tokenizes and decodes exactly as Qwen's tokenizer.json", async () => {
    const file = path.join(tmp, "qwen-vocab.gguf");
    await qwenVocabGguf(file);
    const fromGguf = await QwenTokenizer.load(file);
    const reference = await QwenTokenizer.load();
    for (const text of TEXTS) {
      const ids = fromGguf.encode(text);
      expect(ids, text).toEqual(reference.encode(text));
      expect(fromGguf.decode(ids)).toBe(reference.decode(ids));
      expect(fromGguf.decode(ids, { skipSpecial: true })).toBe(reference.decode(ids, { skipSpecial: true }));
    }
    expect(fromGguf.vocabSize).toBe(reference.vocabSize);
    expect(fromGguf.tokenId("<think>")).toBe(151667);
    expect(fromGguf.isSpecial(151645)).toBe(true);
    expect(fromGguf.isSpecial(151667)).toBe(false);
    expect(fromGguf.eosIds).toEqual([151645]);
    // Padding ids have no text.
    expect(fromGguf.decode([151900])).toBe("");
    expect(fromGguf.piece(151900)).toBeNull();
  });

  it("the shipped file's own vocabulary, eos and chat template; a folder holding it works the same", async () => {
    const file = ggufFixture("gguf-q8_0");
    const tok = await QwenTokenizer.load(file);
    expect(tok.eosIds).toEqual([511]);
    const text = "<|im_start|>user\nthe test<|im_end|>\n";
    const ids = tok.encode(text);
    expect(ids[0]).toBe(510);
    expect(ids).toContain(511);
    expect(tok.decode(ids)).toBe(text);
    const template = await ChatTemplate.load(file);
    expect(template.origin).toContain("tokenizer.chat_template");
    expect(template.render([{ role: "user", content: "hi" }])).toBe("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    const folder = await ChatTemplate.load(path.dirname(file));
    // The fixture folder has config.json (for reference), so it is a checkpoint folder, not a GGUF folder.
    expect(folder.origin).not.toContain("tokenizer.chat_template");
    const only = path.join(tmp, "only");
    await fsp.mkdir(only);
    await fsp.copyFile(file, path.join(only, "model.gguf"));
    expect((await ChatTemplate.load(only)).origin).toContain("tokenizer.chat_template");
    expect((await QwenTokenizer.load(only)).encode(text)).toEqual(ids);
  });

  it("a file without a chat template or a vocabulary falls back to the bundled Qwen3 ones", async () => {
    const file = path.join(tmp, "no-template.gguf");
    await writeGguf(file, [meta.str("general.architecture", "qwen3next"), meta.str("tokenizer.ggml.model", "gpt2"), meta.strs("tokenizer.ggml.tokens", ["a", "b"])], []);
    expect((await ChatTemplate.load(file)).origin).toContain(bundledTokenizerDir());
    const bare = path.join(tmp, "no-vocab.gguf");
    await writeGguf(bare, [meta.str("general.architecture", "qwen3next")], []);
    const tok = await QwenTokenizer.load(bare);
    expect(tok.filesDir).toBe(bundledTokenizerDir());
    expect(tok.encode("Hello")).toEqual((await QwenTokenizer.load()).encode("Hello"));
  });

  it("unsupported or broken tokenizer metadata: one line naming the file and key", async () => {
    const file = path.join(tmp, "bad.gguf");
    const base = [meta.str("general.architecture", "qwen3next"), meta.strs("tokenizer.ggml.tokens", ["a", "b"])];
    await writeGguf(file, [...base, meta.str("tokenizer.ggml.model", "llama")], []);
    await expect(QwenTokenizer.load(file)).rejects.toThrow(`${file}: tokenizer.ggml.model is "llama", expected "gpt2"`);
    await writeGguf(file, [...base, meta.str("tokenizer.ggml.model", "gpt2"), meta.str("tokenizer.ggml.pre", "llama-bpe")], []);
    await expect(QwenTokenizer.load(file)).rejects.toThrow(`${file}: tokenizer.ggml.pre is "llama-bpe", expected one of: qwen2`);
    await writeGguf(file, [...base, meta.str("tokenizer.ggml.model", "gpt2"), meta.u32("tokenizer.ggml.eos_token_id", 7)], []);
    await expect(QwenTokenizer.load(file)).rejects.toThrow(`${file}: tokenizer.ggml.eos_token_id is 7, expected a token id below 2`);
    await writeGguf(file, [...base, meta.str("tokenizer.ggml.model", "gpt2"), { key: "tokenizer.ggml.token_type", type: GgufType.ARRAY, arrayType: GgufType.INT32, value: [1] }], []);
    await expect(QwenTokenizer.load(file)).rejects.toThrow(`${file}: tokenizer.ggml.token_type must list one integer per token (2)`);
  });
});
