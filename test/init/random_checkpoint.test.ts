import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, statSync, readdirSync } from "node:fs";
import { mkdtemp, rm, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseConfig } from "../../src/config.js";
import { bf16ArrayToF32 } from "../../src/io/dtype.js";
import { readSafetensors, type SafetensorsTensor } from "../../src/io/safetensors.js";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { expectedTensors } from "../../src/loading/expected.js";
import { writeRandomCheckpoint } from "../../src/init/random_checkpoint.js";
import { DEMO_CONFIG, ensureDemoCheckpoint } from "../../src/init/demo.js";

let tmp: string;
let tensors: Map<string, SafetensorsTensor>;
const values = (name: string) => Array.from(bf16ArrayToF32(tensors.get(name)!.data as Uint16Array));

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "qwen3-init-"));
  await writeRandomCheckpoint(DEMO_CONFIG, path.join(tmp, "a"), { seed: 1 });
  tensors = (await readSafetensors(path.join(tmp, "a", "model.safetensors"))).tensors;
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("writeRandomCheckpoint", () => {
  it("writes every tensor the config needs, BF16, in the published layout, plus config and tokenizer files", () => {
    const config = parseConfig(DEMO_CONFIG);
    const expected = expectedTensors(config);
    expect([...tensors.keys()].sort()).toEqual(expected.map((t) => t.name).sort());
    for (const t of expected) {
      expect(tensors.get(t.name)!.dtype).toBe("BF16");
      expect(tensors.get(t.name)!.shape).toEqual(t.shape);
    }
    expect(tensors.has("model.layers.0.mlp.experts.7.down_proj.weight")).toBe(true); // one tensor per expert
    expect(tensors.has("mtp.fc.weight")).toBe(true);
    expect(tensors.has("lm_head.weight")).toBe(false); // tied
    const files = readdirSync(path.join(tmp, "a")).sort();
    expect(files).toEqual(["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
    const gen = JSON.parse(readFileSync(path.join(tmp, "a", "generation_config.json"), "utf8"));
    expect(gen).toMatchObject({ eos_token_id: [151645, 151643], temperature: 0.7, top_k: 20, top_p: 0.8 });
    expect(parseConfig(JSON.parse(readFileSync(path.join(tmp, "a", "config.json"), "utf8")))).toEqual(config);
  });

  it("initialises like transformers: N(0, 0.02) matrices, zero-centred norms 0, gated norm and dt_bias 1, A_log = log U(1, 16)", () => {
    const emb = values("model.embed_tokens.weight");
    const mean = emb.reduce((a, b) => a + b, 0) / emb.length;
    const std = Math.sqrt(emb.reduce((a, b) => a + (b - mean) ** 2, 0) / emb.length);
    expect(Math.abs(mean)).toBeLessThan(1e-4);
    expect(Math.abs(std - 0.02) / 0.02).toBeLessThan(0.01);
    for (const name of ["model.layers.0.input_layernorm.weight", "model.layers.3.self_attn.q_norm.weight", "model.norm.weight", "mtp.pre_fc_norm_hidden.weight"]) {
      expect(values(name).every((v) => v === 0)).toBe(true);
    }
    expect(values("model.layers.0.linear_attn.norm.weight").every((v) => v === 1)).toBe(true);
    expect(values("model.layers.1.linear_attn.dt_bias").every((v) => v === 1)).toBe(true);
    const aLog = values("model.layers.2.linear_attn.A_log");
    expect(aLog.every((v) => v >= 0 && v <= Math.log(16) * 1.01)).toBe(true);
    expect(new Set(aLog).size).toBeGreaterThan(1);
    const conv = values("model.layers.0.linear_attn.conv1d.weight");
    expect(conv.every((v) => Math.abs(v) <= 0.5 * 1.01)).toBe(true); // 1/sqrt(kernel 4)
    expect(Math.max(...conv.map(Math.abs))).toBeGreaterThan(0.45);
  });

  it("is deterministic for a seed and differs across seeds", async () => {
    await writeRandomCheckpoint(DEMO_CONFIG, path.join(tmp, "b"), { seed: 1 });
    await writeRandomCheckpoint(DEMO_CONFIG, path.join(tmp, "c"), { seed: 2 });
    const a = await readFile(path.join(tmp, "a", "model.safetensors"));
    expect((await readFile(path.join(tmp, "b", "model.safetensors"))).equals(a)).toBe(true);
    expect((await readFile(path.join(tmp, "c", "model.safetensors"))).equals(a)).toBe(false);
  });

  it("shards a large checkpoint with an index that the loader reads", async () => {
    const dir = path.join(tmp, "sharded");
    await writeRandomCheckpoint(DEMO_CONFIG, dir, { seed: 1, maxShardBytes: 4 * 1024 ** 2 });
    const shards = readdirSync(dir).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    expect(shards.length).toBeGreaterThan(1);
    const index = JSON.parse(readFileSync(path.join(dir, "model.safetensors.index.json"), "utf8"));
    expect(Object.keys(index.weight_map).length).toBe(tensors.size);
    const ckpt = await loadCheckpoint(dir);
    const w = ckpt.get("model.layers.1.mlp.experts.3.up_proj.weight");
    expect(Array.from(w.data as Uint16Array)).toEqual(Array.from(tensors.get("model.layers.1.mlp.experts.3.up_proj.weight")!.data as Uint16Array));
  });

  it("refuses an existing folder and an invalid config without leaving anything behind", async () => {
    await expect(writeRandomCheckpoint(DEMO_CONFIG, path.join(tmp, "a"), { seed: 1 })).rejects.toThrow(/already exists/);
    await expect(writeRandomCheckpoint({ ...DEMO_CONFIG, num_experts_per_tok: 9 }, path.join(tmp, "bad"))).rejects.toThrow(
      /num_experts_per_tok \(9\) must be between 1 and num_experts \(8\)/,
    );
    expect(readdirSync(tmp).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });
});

describe("ensureDemoCheckpoint", () => {
  it("builds the demo once in $QWEN3_NEXT_CACHE (under 25 MB), atomically, even when two callers race", async () => {
    const before = process.env.QWEN3_NEXT_CACHE;
    process.env.QWEN3_NEXT_CACHE = path.join(tmp, "cache");
    try {
      const [d1, d2] = await Promise.all([ensureDemoCheckpoint(), ensureDemoCheckpoint()]);
      expect(d1).toBe(path.join(tmp, "cache", "demo-v1"));
      expect(d2).toBe(d1);
      expect(readdirSync(path.join(tmp, "cache"))).toEqual(["demo-v1"]);
      const weights = statSync(path.join(d1, "model.safetensors"));
      expect(weights.size).toBeLessThan(25e6);
      const again = await ensureDemoCheckpoint();
      expect(statSync(path.join(again, "model.safetensors")).mtimeMs).toBe(weights.mtimeMs);
      expect(parseConfig(JSON.parse(readFileSync(path.join(d1, "config.json"), "utf8"))).vocab_size).toBe(151936);
    } finally {
      if (before === undefined) delete process.env.QWEN3_NEXT_CACHE;
      else process.env.QWEN3_NEXT_CACHE = before;
    }
  });
});
