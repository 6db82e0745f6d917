import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtemp, writeFile, copyFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { QwenTokenizer, StreamDecoder, bundledTokenizerDir } from "../../src/tokenizer/tokenizer.js";

let tok: QwenTokenizer;
beforeAll(async () => {
  tok = await QwenTokenizer.load();
});

/** Text pieces that stress byte-level BPE: multi-byte characters, combining marks, whitespace runs, code. */
const pieces = fc.constantFrom(
  "Hello", " world", "  ", "\t", "\n", "\n\n", "   \n ", "é", "e\u0301", "n\u0303", "中文", "日本語の文", "한국어",
  "😀", "👋🏽", "👩‍👩‍👧", "🇫🇷", "∑", "x²", "def f(x):\n    return x ** 2\n", "{\"a\": [1, 2]}", "<div>", "’", "«»",
  "0123456789", "ﬁ", "Å", "\u00a0", "\u200b", "ç", "𝔘𝔫𝔦", "Ω",
);
const mixedText = fc.array(fc.oneof(pieces, fc.string({ unit: "binary", maxLength: 12 })), { maxLength: 12 }).map((a) => a.join(""));

describe("QwenTokenizer", () => {
  it("gives Qwen's ids for known text and the special tokens", () => {
    expect(tok.encode("Hello world")).toEqual([9707, 1879]);
    expect(tok.encode("<|im_start|>user\nHi<|im_end|>")).toEqual([151644, 872, 198, 13048, 151645]);
    expect(tok.encode("<think></think><tool_call></tool_call>")).toEqual([151667, 151668, 151657, 151658]);
    expect(tok.tokenId("<|im_start|>")).toBe(151644);
    expect(tok.tokenId("<|im_end|>")).toBe(151645);
    expect(tok.tokenId("<|endoftext|>")).toBe(151643);
    expect(tok.tokenId("<tool_response>")).toBe(151665);
    expect(tok.tokenId("no such token")).toBeUndefined();
    expect(tok.vocabSize).toBe(151669); // 151,643 BPE tokens + 26 added tokens
    expect(tok.eosIds).toEqual([151645, 151643]);
  });

  it("decodes special tokens, or skips the ones marked special", () => {
    const ids = [151644, 872, 198, 13048, 151667, 151645];
    expect(tok.decode(ids)).toBe("<|im_start|>user\nHi<think><|im_end|>");
    // <think> is an added token but not a special one in Qwen3's tokenizer_config.json.
    expect(tok.decode(ids, { skipSpecial: true })).toBe("user\nHi<think>");
    expect(tok.decode([])).toBe("");
  });

  it("decodes model ids that have no token (rows 151669..151935) as nothing, and rejects invalid ids", () => {
    expect(tok.decode([9707, 151700, 1879])).toBe("Hello world");
    expect(() => tok.decode([-1])).toThrow(/token id -1 is invalid/);
    expect(() => tok.decode([1.5])).toThrow(/invalid/);
  });

  it("round-trips any Unicode text up to NFC normalisation (the tokenizer's normalizer)", () => {
    expect(tok.decode(tok.encode("e\u0301"))).toBe("\u00e9");
    fc.assert(
      fc.property(fc.oneof(mixedText, fc.string({ unit: "grapheme" }), fc.string({ unit: "binary" })), (s) => {
        expect(tok.decode(tok.encode(s))).toBe(s.normalize("NFC"));
      }),
      { numRuns: 300 },
    );
  });

  it("reads a checkpoint folder's tokenizer and eos ids, and names a corrupt file", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-tok-"));
    try {
      await copyFile(path.join(bundledTokenizerDir(), "tokenizer.json"), path.join(dir, "tokenizer.json"));
      await copyFile(path.join(bundledTokenizerDir(), "tokenizer_config.json"), path.join(dir, "tokenizer_config.json"));
      await writeFile(path.join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: [151645, 151662] }));
      const t = await QwenTokenizer.load(dir);
      expect(t.filesDir).toBe(dir);
      expect(t.eosIds.sort()).toEqual([151645, 151662]);
      await expect(QwenTokenizer.load(path.join(dir, "missing"))).rejects.toThrow(/model folder .*missing does not exist/);
      await writeFile(path.join(dir, "tokenizer.json"), "{ not json");
      await expect(QwenTokenizer.load(dir)).rejects.toThrow(/tokenizer\.json is not valid JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("StreamDecoder", () => {
  const streamed = (ids: number[], opts?: { skipSpecial?: boolean }) => {
    const d = new StreamDecoder(tok, opts);
    const parts = ids.map((id) => d.push(id));
    parts.push(d.flush());
    return parts;
  };

  it("holds a character split across tokens back until it is complete", () => {
    const ids = tok.encode("👋🏽!");
    expect(ids.length).toBeGreaterThan(2); // the emoji takes several byte-level tokens
    const parts = streamed(ids);
    expect(parts.join("")).toBe("👋🏽!");
    for (const p of parts) expect(p).not.toContain("\uFFFD");
  });

  it("emits exactly the one-shot decode of text, never a replacement character", () => {
    fc.assert(
      fc.property(mixedText, (s) => {
        const ids = tok.encode(s);
        const parts = streamed(ids);
        expect(parts.join("")).toBe(tok.decode(ids));
        for (const p of parts) {
          expect(p).not.toContain("\uFFFD");
          expect(p).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/); // no lone surrogate
        }
      }),
      { numRuns: 200 },
    );
  });

  it("equals the one-shot decode for arbitrary id sequences (broken bytes, added tokens, unknown ids)", () => {
    const id = fc.oneof(
      fc.integer({ min: 0, max: 151935 }),
      fc.integer({ min: 151643, max: 151668 }), // added tokens
      fc.integer({ min: 120000, max: 151642 }), // mostly multi-byte pieces
    );
    fc.assert(
      fc.property(fc.array(id, { maxLength: 30 }), fc.boolean(), (ids, skipSpecial) => {
        expect(streamed(ids, { skipSpecial }).join("")).toBe(tok.decode(ids, { skipSpecial }));
      }),
      { numRuns: 300 },
    );
  });
});
