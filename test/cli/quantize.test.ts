/** `qwen3-next quantize` spawned as a user runs it: a file that loads, a summary line, one-line errors. */
import { mkdtempSync, rmSync, writeFileSync, cpSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readGgufHeader } from "../../src/io/gguf.js";
import { tokenizerFromGguf } from "../../src/tokenizer/gguf_tokenizer.js";
import { runCli } from "../helpers/cli.js";

const tmp = mkdtempSync(path.join(tmpdir(), "quantize-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function oneLineError(stderr: string): string {
  const lines = stderr.trimEnd().split("\n").filter((l) => !l.startsWith("npm warn"));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^qwen3-next: /);
  return lines[0];
}

describe("qwen3-next quantize", () => {
  it("writes a loadable GGUF of a checkpoint folder and says what it wrote", async () => {
    // tiny-moe-mtp with the 512-token tokenizer of the llama.cpp fixture (its vocab size is 512 too).
    const dir = path.join(tmp, "tiny");
    cpSync("reference/tiny-moe-mtp", dir, { recursive: true });
    const t = tokenizerFromGguf(readGgufHeader("reference/gguf/gguf-q8_0/model.gguf"));
    writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(t.tokenizerJson));
    writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(t.tokenizerConfig));
    const out = path.join(tmp, "tiny-q4_k_m.gguf");
    const r = await runCli(["quantize", "--model", dir, "--type", "q4_k_m", "--out", out]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // Rows of 64 and 32 are not whole 256-blocks: llama.cpp's fallbacks (Q5_0, Q5_1, Q8_0; F16 for rows of 48).
    expect(r.stdout).toMatch(/^wrote .*tiny-q4_k_m\.gguf: 73 tensors \(31 F32, 29 Q5_0, 8 Q8_0, 4 F16, 1 Q5_1\) in [\d.]+ s\n$/);
    const gen = await runCli(["generate", "--model", out, "--prompt", "hi", "--max-tokens", "3", "--temperature", "0"]);
    expect(gen.code, gen.stderr).toBe(0);
    const again = await runCli(["quantize", "--model", dir, "--type", "q4_k_m", "--out", out]);
    expect(again.code).toBe(1);
    expect(oneLineError(again.stderr)).toMatch(/--out .* exists \(add --force to overwrite it\)/);
  }, 120_000);

  it("writes a Qwen3.5 folder as a qwen35 GGUF that generates what the folder generates, MTP drafts included", async () => {
    const dir = path.join(tmp, "qwen35");
    cpSync("reference/qwen35-dense-mtp-tied", dir, { recursive: true });
    const t = tokenizerFromGguf(readGgufHeader("reference/gguf/gguf-q8_0/model.gguf"));
    writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(t.tokenizerJson));
    writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(t.tokenizerConfig));
    const out = path.join(tmp, "qwen35-bf16.gguf");
    const r = await runCli(["quantize", "--model", dir, "--type", "bf16", "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*qwen35-bf16\.gguf: 70 tensors \(40 BF16, 30 F32\) in [\d.]+ s\n$/);
    expect(readGgufHeader(out).metadata.get("general.architecture")?.value).toBe("qwen35");
    const args = ["--prompt", "hello", "--max-tokens", "8", "--temperature", "0", "--json", "--speculative", "mtp"];
    const [a, b] = [await runCli(["generate", "--model", dir, ...args]), await runCli(["generate", "--model", out, ...args])];
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const [ja, jb] = [JSON.parse(a.stdout), JSON.parse(b.stdout)];
    expect(jb.tokens).toHaveLength(8);
    expect(jb.tokens).toEqual(ja.tokens);
    expect(jb.timings.draft_tokens).toBeGreaterThan(0);
    expect(jb.timings.accepted_tokens).toBe(ja.timings.accepted_tokens);
  }, 180_000);

  it("refuses an unknown type (usage, exit 2) and a missing folder (exit 1), writing nothing", async () => {
    const out = path.join(tmp, "x.gguf");
    const bad = await runCli(["quantize", "--model", "reference/tiny-moe-mtp", "--type", "q3_k", "--out", out]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/argument 'q3_k' is invalid. Allowed choices are f32, bf16, q8_0, q4_0, q4_k_m, q6_k/);
    const missing = await runCli(["quantize", "--model", path.join(tmp, "nope"), "--type", "q8_0", "--out", out]);
    expect(missing.code).toBe(1);
    expect(oneLineError(missing.stderr)).toMatch(/no such checkpoint folder/);
    expect(existsSync(out)).toBe(false);
  }, 60_000);
});
