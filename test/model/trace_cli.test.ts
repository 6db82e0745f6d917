/** `qwen3-next trace` run as a user would: dumps that match the fixtures, and one-line errors. */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { toFloat64 } from "../../src/io/dtype.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { runCli } from "../helpers/cli.js";
import { maxAbsDiff, readReference, REFERENCE_DIR } from "../helpers/reference.js";

const dir = mkdtempSync(path.join(tmpdir(), "trace-cli-"));
const model = path.join(REFERENCE_DIR, "tiny-moe-mtp");

describe("qwen3-next trace", () => {
  it.each([
    ["f64", 1e-9, "F64"],
    ["f32", 1e-3, "F32"],
  ])("prefill-then-decode dump in %s matches the fixture", async (precision, tol, dtype) => {
    const { tensors: expected } = await readReference("tiny-moe-mtp/expected.safetensors");
    const ids = Array.from(expected.get("input_ids")!.data);
    const out = path.join(dir, `dump-${precision}.safetensors`);
    const tokensFile = path.join(dir, "ids.txt");
    writeFileSync(tokensFile, ids.join("\n") + "\n");
    const args = ["trace", "--model", model, "--out", out, "--precision", precision, "--decode-from", "9"];
    const r = await runCli(precision === "f64" ? [...args, "--tokens", ids.join(",")] : [...args, "--tokens-file", tokensFile]);
    expect(r.stderr).toContain("14 tokens (9 prefill, 5 decode)");
    expect(r.code).toBe(0);
    const { tensors, metadata } = await readSafetensors(out);
    expect(metadata).toMatchObject({ n_prefill: "9", n_decode: "5" });
    for (const [name, ref] of expected) {
      const got = tensors.get(name)!;
      expect(got.dtype, name).toBe(ref.dtype === "I64" ? "I64" : dtype);
      expect(got.shape, name).toEqual(ref.shape);
      expect(maxAbsDiff(toFloat64(got.dtype, got.data), ref.data), name).toBeLessThanOrEqual(ref.dtype === "I64" ? 0 : tol);
    }
    for (const i of [0, 1, 2]) expect(tensors.get(`deltanet.${i}.state`)!.shape).toEqual([4, 16, 16]);
    expect(tensors.has("deltanet.3.state")).toBe(false); // layer 3 is full attention
  });

  it("rejects bad token ids with one line and writes nothing", async () => {
    const out = path.join(dir, "bad.safetensors");
    // Exit 2 for a mistake in the command line, 1 for what only running finds out (the model's vocabulary).
    const cases: Array<[string[], RegExp, number]> = [
      [["--tokens", "1,2,512"], /^qwen3-next: token id 512 is out of range, expected an integer in \[0, 512\)\n$/, 1],
      [["--tokens", "1,x"], /^qwen3-next: --tokens: "x" is not a token id, expected a non-negative integer\n$/, 2],
      [["--tokens", "1,2", "--decode-from", "3"], /^qwen3-next: --decode-from is 3, expected at most the number of tokens \(2\)\n$/, 2],
      [[], /^qwen3-next: no tokens given: pass --tokens 1,2,3 or --tokens-file FILE\n$/, 2],
      [["--tokens", "1,2", "--layers", "3-1"], /^qwen3-next: --layers: "3-1" is not a layer or a range, expected e.g. 0,3-5\n$/, 2],
    ];
    for (const [extra, message, code] of cases) {
      const r = await runCli(["trace", "--model", model, "--out", out, ...extra]);
      expect(r.code).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(existsSync(out)).toBe(false);
    }
  });
});
