/**
 * A lone .gguf file everywhere a checkpoint folder works, run as a user would: `trace` (float64 over the exact
 * dequantized values, against the llama.cpp fixture), `info` (type mix, bytes per token), `generate` and `serve`
 * (tokenizer and chat template from the file's metadata), a folder holding one file, and one-line errors.
 */
import { spawn } from "node:child_process";
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toFloat64 } from "../../src/io/dtype.js";
import { readGgufHeader } from "../../src/io/gguf.js";
import { readSafetensors, readSafetensorsHeader } from "../../src/io/safetensors.js";
import { ggufFixture, rewriteGguf } from "../helpers/gguf.js";
import OpenAI from "openai";
import { ROOT, runCli } from "../helpers/cli.js";
import { maxAbsDiff, readReference } from "../helpers/reference.js";

const Q4 = ggufFixture("gguf-q4_k_m");
let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "gguf-cli-"));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  return lines[0];
}

describe("--model FILE.gguf", () => {
  it("trace in float64 reproduces the llama.cpp fixture to 1e-9, prefill then decode", async () => {
    const { tensors: expected, metadata } = await readReference("gguf/gguf-q4_k_m/expected.safetensors");
    const ids = Array.from(expected.get("input_ids")!.data);
    const out = path.join(tmp, "trace.safetensors");
    const r = await runCli(["trace", "--model", Q4, "--tokens", ids.join(","), "--precision", "f64", "--decode-from", metadata.n_prefill, "--out", out]);
    expect(r.code, r.stderr).toBe(0);
    const { tensors } = await readSafetensors(out);
    for (const [name, ref] of expected) {
      const got = tensors.get(name)!;
      expect(got.shape, name).toEqual(ref.shape);
      expect(maxAbsDiff(toFloat64(got.dtype, got.data), ref.data), name).toBeLessThanOrEqual(ref.dtype === "I64" ? 0 : 1e-9);
    }
  });

  it("info shows the file's tensor-type mix and the bytes one token reads", async () => {
    const r = await runCli(["info", "--model", Q4, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.weights.from).toBe("GGUF header");
    // The mix llama-quantize chose, as recorded in the fixture's metadata.
    const expected = JSON.parse((await readSafetensorsHeader(Q4.replace("model.gguf", "expected.safetensors"))).metadata.tensor_types);
    expect(info.weights.tensorsByDtype).toEqual(expected);
    // Stored bytes per type: the sum of the tensors' sizes in the header.
    const h = readGgufHeader(Q4);
    const byType: Record<string, number> = {};
    for (const t of h.tensors.values()) byType[t.type.name] = (byType[t.type.name] ?? 0) + t.byteLength;
    expect(info.weights.byDtype).toEqual(byType);
    // Per token: everything but the routed experts (2 of 8 of them) and all but one embedding row.
    const sizeOf = (re: RegExp) => [...h.tensors.values()].filter((t) => re.test(t.name)).reduce((s, t) => s + t.byteLength, 0);
    const experts = sizeOf(/_exps\.weight$/);
    const embd = sizeOf(/^token_embd\./);
    const all = sizeOf(/./);
    expect(info.weights.bytesPerToken).toBe(Math.round(all - experts - embd + (experts * 2) / 8 + embd / 512));
    const text = await runCli(["info", "--model", Q4]);
    expect(text.stdout).toContain("Q4_K 3.52 MiB in 31 tensors");
    expect(text.stdout).toContain("from the GGUF header");
  });

  it("generate uses the file's own tokenizer and chat template; a folder holding the file works too", async () => {
    const folder = path.join(tmp, "only-gguf");
    await fsp.mkdir(folder);
    await fsp.copyFile(Q4, path.join(folder, "q4.gguf"));
    for (const model of [Q4, folder]) {
      const r = await runCli(["generate", "--model", model, "--prompt", "the test", "--temperature", "0", "--max-tokens", "4", "--json", "--backend", "ts"]);
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout);
      // "<|im_start|>user\nthe test<|im_end|>\n<|im_start|>assistant\n" in the file's 512-token vocabulary.
      expect(j.usage.prompt_tokens).toBeGreaterThan(6);
      expect(j.usage.completion_tokens).toBeGreaterThanOrEqual(1);
    }
    const a = JSON.parse((await runCli(["generate", "--model", Q4, "--prompt", "the test", "--temperature", "0", "--max-tokens", "4", "--json"])).stdout);
    const b = JSON.parse((await runCli(["generate", "--model", folder, "--prompt", "the test", "--temperature", "0", "--max-tokens", "4", "--json"])).stdout);
    expect(a.text).toBe(b.text);
  });

  it("serve answers chat requests with the file's template and names the model after the file", async () => {
    const proc = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/cli/bin.ts"), "serve", "--port", "0", "--model", Q4], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exit = new Promise<number | null>((resolve) => proc.on("close", resolve));
    try {
      let stdout = "";
      let stderr = "";
      proc.stderr!.on("data", (d) => (stderr += d));
      const url = await new Promise<string>((resolve, reject) => {
        proc.stdout!.on("data", (d) => {
          stdout += d;
          const m = /at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(stdout);
          if (m) resolve(m[1]);
        });
        void exit.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
      });
      const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
      expect((await client.models.list()).data.map((m) => m.id)).toEqual(["model"]);
      const r = await client.chat.completions.create({ model: "model", messages: [{ role: "user", content: "the test" }], max_tokens: 3, temperature: 0 });
      // "<|im_start|>user\nthe test<|im_end|>\n<|im_start|>assistant\n" in the file's vocabulary, as generate counts it.
      const g = JSON.parse((await runCli(["generate", "--model", Q4, "--prompt", "the test", "--temperature", "0", "--max-tokens", "3", "--json"])).stdout);
      expect(r.usage?.prompt_tokens).toBe(g.usage.prompt_tokens);
      expect(r.choices[0].message.content).toBe(g.text);
    } finally {
      proc.kill("SIGTERM");
      await exit;
    }
  });

  it("bad files and folders: one line, exit 1", async () => {
    const two = path.join(tmp, "two");
    await fsp.mkdir(two);
    await fsp.copyFile(Q4, path.join(two, "a.gguf"));
    await fsp.copyFile(Q4, path.join(two, "b.gguf"));
    const r2 = await runCli(["info", "--model", two]);
    expect(r2.code).toBe(1);
    expect(oneLine(r2.stderr)).toContain("holds 2 GGUF files (a.gguf, b.gguf) and no config.json");

    const cut = path.join(tmp, "cut.gguf");
    const bytes = await fsp.readFile(Q4);
    await fsp.writeFile(cut, bytes.subarray(0, bytes.length - 1000));
    const rc = await runCli(["generate", "--model", cut, "--prompt", "hi"]);
    expect(rc.code).toBe(1);
    expect(oneLine(rc.stderr)).toMatch(/cut\.gguf: tensor "[^"]+": .*\(truncated file\?\)/);

    // A tensor whose shape the metadata does not imply.
    const wrong = path.join(tmp, "wrong-shape.gguf");
    await rewriteGguf(Q4, wrong, { metadata: { "qwen3next.expert_feed_forward_length": { type: 4, value: 128 } } });
    const rs = await runCli(["info", "--model", wrong]);
    expect(rs.code).toBe(1);
    expect(oneLine(rs.stderr)).toMatch(/wrong-shape\.gguf: tensor "blk\.0\.ffn_(gate|up|down)_exps\.weight" has shape \[8, 256, 256\], expected \[8, (128, 256|256, 128)\] from the GGUF metadata$/);

    // A type the kernels do not compute with: IQ4_NL (a 4-bit non-linear type of 32-value blocks, as Q4_0's).
    const iq = path.join(tmp, "iq4_nl.gguf");
    await rewriteGguf(Q4, iq, {
      tensors: (ts) => ts.map((t) => (t.name === "blk.3.attn_q.weight" ? { ...t, type: "IQ4_NL", data: new Uint8Array((t.shape[0] * t.shape[1] / 32) * 18) } : t)),
    });
    const rq = await runCli(["trace", "--model", iq, "--tokens", "1,2", "--out", path.join(tmp, "x.safetensors")]);
    expect(rq.code).toBe(1);
    expect(oneLine(rq.stderr)).toMatch(/iq4_nl\.gguf: tensor "blk\.3\.attn_q\.weight" has dtype IQ4_NL, expected a weight dtype/);

    const notGguf = path.join(tmp, "config.gguf");
    await fsp.writeFile(notGguf, '{"model_type": "qwen3_next"}');
    const rn = await runCli(["info", "--model", notGguf]);
    expect(rn.code).toBe(1);
    expect(oneLine(rn.stderr)).toMatch(/config\.gguf: (file is \d+ bytes, too short for a GGUF header|not a GGUF file)/);
  });
});
