/**
 * A Qwen3.5 checkpoint folder in every command: its own tokenizer files and chat template are the ones used
 * (here a tokenizer with an added token at a Qwen3.5 id past Qwen3's range, 248053 `<|vision_start|>`, and a
 * template of our own), vocabulary 248,320; `generate` and `info` run on it.
 */
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeRandomCheckpoint } from "../../src/init/random_checkpoint.js";
import { ChatTemplate } from "../../src/tokenizer/chat_template.js";
import { QwenTokenizer } from "../../src/tokenizer/tokenizer.js";
import { ROOT, runCli } from "../helpers/cli.js";
import { qwen35Config } from "../helpers/qwen35.js";

let dir: string;
const TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\nQ35 {{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n";

beforeAll(async () => {
  dir = path.join(await fsp.mkdtemp(path.join(os.tmpdir(), "qwen35-cli-")), "ckpt");
  const raw = qwen35Config({ moe: true, layers: 2, interval: 2, hidden: 16, heads: 2, kvHeads: 1, headDim: 16, keyHeads: 1, ratio: 2, dk: 4, dv: 4, kernel: 2, tied: true, mtp: 1, experts: 3, topK: 2, shared: 4, vocab: 248320 });
  await writeRandomCheckpoint(raw, dir, { seed: 5 });
  const tokenizerFile = path.join(dir, "tokenizer.json");
  const tok = JSON.parse(await fsp.readFile(tokenizerFile, "utf8"));
  tok.added_tokens.push({ id: 248053, content: "<|vision_start|>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  await fsp.writeFile(tokenizerFile, JSON.stringify(tok));
  await fsp.writeFile(path.join(dir, "chat_template.jinja"), TEMPLATE);
});
afterAll(async () => {
  await fsp.rm(path.dirname(dir), { recursive: true, force: true });
});

describe("a Qwen3.5 checkpoint folder", () => {
  it("its tokenizer and template are the folder's own", async () => {
    const tok = await QwenTokenizer.load(dir);
    expect(tok.encode("a<|vision_start|>b")).toEqual([...tok.encode("a"), 248053, ...tok.encode("b")]);
    expect(tok.decode([248053])).toBe("<|vision_start|>");
    expect(tok.vocabSize).toBe(248054);
    const template = await ChatTemplate.load(dir);
    expect(template.render([{ role: "user", content: "hi" }], { addGenerationPrompt: true })).toBe("<|im_start|>user\nQ35 hi<|im_end|>\n<|im_start|>assistant"); // jinja drops the final newline
  });

  it("generate runs on it with the folder's template (prompt tokens counted from it)", async () => {
    const tok = await QwenTokenizer.load(dir);
    const prompt = tok.encode("<|im_start|>user\nQ35 hello<|im_end|>\n<|im_start|>assistant");
    const r = await runCli(["generate", "--model", dir, "--prompt", "hello", "--max-tokens", "3", "--temperature", "0", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.usage.prompt_tokens).toBe(prompt.length);
    expect(out.usage.completion_tokens).toBeGreaterThan(0);
  });

  it("loading the fixture (which has a vision tower) says once that the tower is skipped", async () => {
    const out = path.join(path.dirname(dir), "trace.safetensors");
    const r = await runCli(["trace", "--model", path.join(ROOT, "reference/qwen35-dense-mtp-tied"), "--tokens", "1,2,3", "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    const notes = r.stderr.split("\n").filter((l) => l.startsWith("note: "));
    expect(notes).toEqual(["note: skipped the vision tower (2 tensors under model.visual.*): image and video input are not supported, text only"]);
  });

  it("info describes it as Qwen3.5-MoE", async () => {
    const r = await runCli(["info", "--model", dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("family: Qwen3.5-MoE (qwen3_5_moe), text only");
    expect(r.stdout).toContain("experts: 3 routed, top-2");
  });
});
