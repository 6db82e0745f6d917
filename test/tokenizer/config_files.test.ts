/**
 * generation_config.json and tokenizer_config.json: every field read with the wrong type (or a whole file that
 * is null) is one line naming the file and the field, never an internal error; fuzzed files load or fail so.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { Tokenizer } from "@huggingface/tokenizers";
import { describe, expect, it } from "vitest";
import { checkGenerationConfig } from "../../src/generate/generation_config.js";
import { defaultSamplingParams } from "../../src/generate/sampler.js";
import { ensureDemoCheckpoint } from "../../src/init/demo.js";
import { ChatTemplate } from "../../src/tokenizer/chat_template.js";
import { bundledTokenizerDir, QwenTokenizer } from "../../src/tokenizer/tokenizer.js";
import { checkTokenizerConfig } from "../../src/tokenizer/tokenizer_config.js";
import { openSession } from "../../src/cli/generation_session.js";
import "../server/harness.js"; // the demo checkpoint's cache folder

const bundled = (name: string) => JSON.parse(readFileSync(path.join(bundledTokenizerDir(), name), "utf8"));
const INTERNAL = /Cannot read|is not a function|is not iterable|undefined is not|null is not|Maximum call stack/;

/** The demo checkpoint with `files` written over (other files are symlinks to the demo's). */
async function demoWith(files: Record<string, string>): Promise<string> {
  const demo = await ensureDemoCheckpoint();
  const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-next-files-"));
  for (const f of await readdir(demo)) if (!(f in files)) await symlink(path.join(demo, f), path.join(dir, f));
  for (const [f, text] of Object.entries(files)) await writeFile(path.join(dir, f), text);
  return dir;
}

describe("generation_config.json", () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ["the whole file null", null, /^g\.json: expected a JSON object, got null$/],
    ["a list", [1], /^g\.json: expected a JSON object, got an array$/],
    ["temperature as a string", { temperature: "0.7" }, /^g\.json: temperature is "0\.7", expected a number$/],
    ["top_k fractional", { top_k: 2.5 }, /^g\.json: top_k is 2\.5, expected an integer$/],
    ["top_p an object", { top_p: {} }, /^g\.json: top_p is \{\}, expected a number$/],
    ["do_sample a string", { do_sample: "false" }, /^g\.json: do_sample is "false", expected true or false$/],
    ["eos_token_id a string", { eos_token_id: "151645" }, /^g\.json: eos_token_id is "151645", expected a token id or a list of them$/],
    ["max_new_tokens negative", { max_new_tokens: -5 }, /^g\.json: max_new_tokens is -5, expected an integer >= 0$/],
    ["repetition_penalty a list", { repetition_penalty: [1.1] }, /^g\.json: repetition_penalty is \[1\.1\], expected a number$/],
  ];
  for (const [what, raw, message] of cases) {
    it(`refuses ${what} in one line`, () => {
      expect(() => checkGenerationConfig(raw, "g.json")).toThrow(message);
    });
  }

  it("reads null fields as not set, as Hugging Face does", () => {
    const p = defaultSamplingParams(checkGenerationConfig({ temperature: null, top_k: null, do_sample: null }, "g.json"));
    expect(p).toMatchObject({ temperature: 1, top_k: 50, top_p: 1 });
  });

  it("a checkpoint with a bad generation_config.json fails to open with that line", async () => {
    const dir = await demoWith({ "generation_config.json": JSON.stringify({ temperature: "hot" }) });
    await expect(openSession({ model: dir, backend: "ts", precision: "f32", accumulate: "f64" })).rejects.toThrow(
      `${path.join(dir, "generation_config.json")}: temperature is "hot", expected a number`,
    );
  });

  it("fuzzed: checked and turned into sampling defaults, or one line naming the file", () => {
    const keys = ["temperature", "top_k", "top_p", "min_p", "do_sample", "eos_token_id", "repetition_penalty", "presence_penalty", "max_new_tokens", "bos_token_id"];
    fc.assert(
      fc.property(fc.oneof(fc.dictionary(fc.constantFrom(...keys), fc.jsonValue()), fc.jsonValue()), (raw) => {
        try {
          defaultSamplingParams(checkGenerationConfig(raw, "g.json"));
        } catch (err) {
          const msg = (err as Error).message;
          expect(msg).toMatch(/^(g\.json|generation_config\.json): /);
          expect(msg.split("\n")).toHaveLength(1);
          expect(msg).not.toMatch(INTERNAL);
        }
      }),
      { numRuns: 1000, seed: 7 },
    );
  });
});

describe("tokenizer_config.json", () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ["the whole file null", null, /^t\.json: expected a JSON object, got null$/],
    ["eos_token a number", { eos_token: 5 }, /^t\.json: eos_token is 5, expected a token \(a string or \{"content": string\}\)$/],
    ["eos_token an object without content", { eos_token: { id: 3 } }, /^t\.json: eos_token is \{"id":3\}/],
    ["chat_template a number", { chat_template: 1 }, /^t\.json: chat_template is 1, expected a template string or a list of/],
    ["chat_template a list of strings", { chat_template: ["x"] }, /^t\.json: chat_template is \["x"\]/],
    ["additional_special_tokens a string", { additional_special_tokens: "<x>" }, /^t\.json: additional_special_tokens is "<x>", expected a list of tokens$/],
    ["clean_up_tokenization_spaces a string", { clean_up_tokenization_spaces: "yes" }, /^t\.json: clean_up_tokenization_spaces is "yes", expected true or false$/],
    ["added_tokens_decoder a list", { added_tokens_decoder: [] }, /^t\.json: added_tokens_decoder is \[\], expected an object of tokens by id$/],
    ["an added token that is null", { added_tokens_decoder: { "151643": null } }, /^t\.json: added_tokens_decoder\["151643"\] is null/],
    ["model_max_length a string", { model_max_length: "big" }, /^t\.json: model_max_length is "big", expected a number$/],
  ];
  for (const [what, raw, message] of cases) {
    it(`refuses ${what} in one line`, () => {
      expect(() => checkTokenizerConfig(raw, "t.json")).toThrow(message);
    });
  }

  it("accepts the bundled Qwen3 tokenizer_config.json and null fields (not set)", () => {
    expect(() => checkTokenizerConfig(bundled("tokenizer_config.json"), "t.json")).not.toThrow();
    expect(() => checkTokenizerConfig({ eos_token: null, chat_template: null, additional_special_tokens: null }, "t.json")).not.toThrow();
  });

  it("a checkpoint whose tokenizer_config.json is null fails to load tokenizer and template with one line", async () => {
    const demo = await ensureDemoCheckpoint();
    const dir = await demoWith({ "tokenizer_config.json": "null", "tokenizer.json": readFileSync(path.join(demo, "tokenizer.json"), "utf8") });
    const file = path.join(dir, "tokenizer_config.json");
    await expect(QwenTokenizer.load(dir)).rejects.toThrow(`${file}: expected a JSON object, got null`);
    await expect(ChatTemplate.load(dir)).rejects.toThrow(`${file}: expected a JSON object, got null`);
  });

  it("fuzzed: checked, then the tokenizer and the template build from it, or one line naming the file", async () => {
    const base = bundled("tokenizer_config.json");
    const tokenizerJson = bundled("tokenizer.json");
    const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-next-tokcfg-"));
    const keys = [...Object.keys(base), "sep_token", "remove_space", "do_lowercase_and_remove_accent"];
    const value = fc.oneof(
      fc.jsonValue(),
      fc.constantFrom(null, "<|im_end|>", { content: "<|im_end|>" }, ["<x>"], [{ name: "default", template: "{{ messages[0].content }}" }], "{{ x.y.z }}", "{% for %}"),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...keys), value), { maxLength: 4 }), async (edits) => {
        const raw: Record<string, unknown> = structuredClone(base);
        for (const [k, v] of edits) raw[k] = v;
        try {
          const cfg = checkTokenizerConfig(raw, "t.json");
          // What QwenTokenizer.load does with it: the library's tokenizer, and special token names.
          const tok = new Tokenizer(tokenizerJson, cfg);
          expect(tok.encode("Hi", { add_special_tokens: false }).ids.length).toBeGreaterThan(0);
          await writeFile(path.join(dir, "tokenizer_config.json"), JSON.stringify(raw));
          await ChatTemplate.load(dir);
        } catch (err) {
          const msg = (err as Error).message;
          expect(msg).toMatch(/^(t\.json|.*tokenizer_config\.json): |^chat template in .* does not parse: /);
          expect(msg.split("\n")).toHaveLength(1);
          expect(msg).not.toMatch(INTERNAL);
        }
      }),
      { numRuns: 150, seed: 11 },
    );
  });
});
