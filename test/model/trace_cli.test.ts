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

  it("dumps every module; the dumped pieces add up as the decoder layer's equations say", async () => {
    const out = path.join(dir, "modules.safetensors");
    const ids = [5, 17, 300, 2, 99, 7];
    const r = await runCli(["trace", "-m", model, "--tokens", ids.join(","), "--decode-from", "4", "--precision", "f64", "--out", out]);
    expect(r.code).toBe(0);
    const { tensors } = await readReference(path.relative(REFERENCE_DIR, out));
    const t = (name: string) => {
      const x = tensors.get(name);
      if (!x) throw new Error(`no ${name} in the dump`);
      return x;
    };
    // The embedding rows are the embedding matrix's rows for the ids (read from the checkpoint itself).
    const { tensors: weights } = await readSafetensors(path.join(model, "model.safetensors"));
    const E = weights.get("model.embed_tokens.weight")!;
    const table = toFloat64(E.dtype, E.data);
    const H = 64;
    const expectedEmbedding = ids.flatMap((id) => Array.from(table.subarray(id * H, (id + 1) * H)));
    expect(maxAbsDiff(t("embedding").data, expectedEmbedding)).toBe(0);
    // Residual stream: hidden.i = hidden.{i-1} + mixer.i.out + moe.i.out (hidden.{-1} = embedding).
    const mixers = ["deltanet", "deltanet", "deltanet", "attention"];
    for (let i = 0; i < 4; i++) {
      const before = i === 0 ? t("embedding").data : t(`hidden.${i - 1}`).data;
      const sum = before.map((x, j) => x + t(`${mixers[i]}.${i}.out`).data[j] + t(`moe.${i}.out`).data[j]);
      expect(maxAbsDiff(t(`hidden.${i}`).data, sum), `layer ${i}`).toBeLessThan(1e-12);
      expect(t(`moe.${i}.shared_gate`).shape).toEqual([6]);
      for (const g of t(`moe.${i}.shared_gate`).data) expect(g > 0 && g < 1).toBe(true);
    }
    // Attention: the KV cache holds every token's k (after norm and RoPE), prefill and decode alike.
    expect(t("attention.3.q").shape).toEqual([6, 4, 32]);
    expect(t("attention.3.k_cache").shape).toEqual([6, 2, 32]);
    expect(maxAbsDiff(t("attention.3.k_cache").data, t("attention.3.k").data)).toBe(0);
    // DeltaNet: beta = sigmoid(b) in (0, 1), g = -exp(A_log) softplus(...) < 0; shapes per token.
    for (const i of [0, 1, 2]) {
      expect(t(`deltanet.${i}.core`).shape).toEqual([6, 4, 16]);
      expect(t(`deltanet.${i}.conv_state`).shape).toEqual([128, 3]);
      for (const b of t(`deltanet.${i}.beta`).data) expect(b > 0 && b < 1).toBe(true);
      for (const g of t(`deltanet.${i}.g`).data) expect(g).toBeLessThan(0);
    }
    expect(t("deltanet.0.conv").shape).toEqual([6, 128]); // per token; the conv state above is fixed-size
  });

  it("--only and --layers keep the dump small", async () => {
    const out = path.join(dir, "only.safetensors");
    const base = ["trace", "-m", model, "--tokens", "1,2,3", "--precision", "f64", "--out", out];
    const only = await runCli([...base, "--only", "attention.*.q,hidden.*"]);
    expect(only.code).toBe(0);
    expect([...(await readSafetensors(out)).tensors.keys()].sort()).toEqual(["attention.3.q", "hidden.0", "hidden.1", "hidden.2", "hidden.3"]);
    const layers = await runCli([...base, "--layers", "1"]);
    expect(layers.code).toBe(0);
    const names = [...(await readSafetensors(out)).tensors.keys()];
    expect(names.filter((n) => /\.\d+(\.|$)/.test(n)).every((n) => /^[a-z_]+\.1(\.|$)/.test(n))).toBe(true);
    expect(names).toContain("deltanet.1.core");
    expect(names).toContain("logits");
  });
});
