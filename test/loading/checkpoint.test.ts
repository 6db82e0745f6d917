import { promises as fsp, truncateSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSafetensors } from "../../src/io/safetensors.js";
import { numel } from "../../src/shape.js";
import { loadCheckpoint, typedArrayAllocator, type WeightAllocator } from "../../src/loading/checkpoint.js";
import { expectedTensors } from "../../src/loading/expected.js";
import type { Weight } from "../../src/kernels/types.js";
import { ROOT } from "../helpers/cli.js";
import { bytesOf, fuseExperts, rewriteCheckpoint } from "./rewrite.js";

const MOE = path.join(ROOT, "reference/tiny-moe-mtp");
const DENSE = path.join(ROOT, "reference/tiny-dense-yarn-long");
/** Made by reference/generate.py from transformers' own modules (see reference/README.md): names and shapes not written by us. */
const TRANSFORMERS_MADE = ["tx-gqa1-conv3-interval2", "tx-yarn-full-rotary-tied"].map((d) => path.join(ROOT, "reference", d));

let tmp: string;
let n = 0;
const fresh = () => path.join(tmp, `ckpt-${n++}`);
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "ckpt-test-"));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** Every stored tensor of a fixture, read whole by the plain reader (a second path to the same bytes). */
async function storedBytes(dir: string): Promise<Map<string, Buffer>> {
  const { tensors } = await readSafetensors(path.join(dir, "model.safetensors"));
  return new Map([...tensors].map(([k, t]) => [k, bytesOf(t.data)]));
}

async function loadError(dir: string): Promise<string> {
  const err = await loadCheckpoint(dir).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(err, "expected the load to fail").toBeInstanceOf(Error);
  expect(err!.message).not.toContain("\n");
  return err!.message;
}

describe("loading the reference checkpoints", () => {
  for (const dir of [MOE, DENSE, ...TRANSFORMERS_MADE]) {
    it(`${path.basename(dir)}: every expected weight, in BF16, bit-identical to the file`, async () => {
      const ckpt = await loadCheckpoint(dir);
      const stored = await storedBytes(dir);
      const expected = expectedTensors(ckpt.config);
      // The Python-written file holds exactly the tensors the config implies.
      expect(new Set(expected.map((t) => t.name))).toEqual(new Set(stored.keys()));
      expect(ckpt.names()).toEqual(expected.map((t) => t.name));
      let bytes = 0;
      for (const t of expected) {
        const w = ckpt.get(t.name);
        expect(w.name).toBe(t.name);
        expect(w.dtype).toBe("BF16");
        expect(w.data).toBeInstanceOf(Uint16Array);
        expect(w.shape).toEqual(t.shape);
        expect(bytesOf(w.data).equals(stored.get(t.name)!)).toBe(true);
        bytes += w.data.byteLength;
      }
      expect(ckpt.totalBytes).toBe(bytes);
      expect(() => ckpt.get("model.layers.0.mlp.nothing")).toThrow(/has no weight "model\.layers\.0\.mlp\.nothing"/);
    });
  }

  it("streams into a caller's allocator (one arena, as WASM memory would be) and reports progress", async () => {
    const arena = new ArrayBuffer(2 * 1024 * 1024);
    let used = 0;
    const allocator: WeightAllocator = {
      allocWeight(name, dtype, shape): Weight {
        expect(dtype).toBe("BF16");
        const data = new Uint16Array(arena, used, numel(shape));
        used += data.byteLength + ((8 - (data.byteLength % 8)) % 8);
        return { name, dtype, shape, data };
      },
    };
    const progress: Array<[number, number]> = [];
    const ckpt = await loadCheckpoint(MOE, { allocator, onProgress: (d, t) => progress.push([d, t]) });
    expect(ckpt.get("lm_head.weight").data.buffer).toBe(arena);
    const stored = await storedBytes(MOE);
    for (const name of ckpt.names()) expect(bytesOf(ckpt.get(name).data).equals(stored.get(name)!)).toBe(true);
    expect(progress[0]).toEqual([0, ckpt.totalBytes]);
    expect(progress.at(-1)).toEqual([ckpt.totalBytes, ckpt.totalBytes]);
    for (let i = 1; i < progress.length; i++) expect(progress[i][0]).toBeGreaterThan(progress[i - 1][0]);
  });

  it("a file that shrinks while loading fails cleanly with the file and tensor named", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir);
    const file = path.join(dir, "model.safetensors");
    let calls = 0;
    const allocator: WeightAllocator = {
      allocWeight(name, dtype, shape) {
        if (++calls === 20) truncateSync(file, 30_000); // cut the data short under the loader
        return typedArrayAllocator.allocWeight(name, dtype, shape);
      },
    };
    await expect(loadCheckpoint(dir, { allocator })).rejects.toThrow(/model\.safetensors: tensor "[^"]+": unexpected end of file at byte \d+/);
  });

  it("rejects an allocator that gives the wrong amount of memory", async () => {
    const allocator: WeightAllocator = { allocWeight: (name, dtype) => ({ name, dtype, shape: [1], data: new Uint16Array(1) }) };
    await expect(loadCheckpoint(MOE, { allocator })).rejects.toThrow(/allocator gave "[^"]+" 2 bytes of BF16, expected \d+ of BF16/);
  });
});

describe("checkpoint layouts", () => {
  it("sharded with model.safetensors.index.json gives the same weights", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, { shards: 3 });
    expect((await fsp.readdir(dir)).filter((f) => f.endsWith(".safetensors"))).toHaveLength(3);
    const ckpt = await loadCheckpoint(dir);
    const stored = await storedBytes(MOE);
    expect(new Set(ckpt.names())).toEqual(new Set(stored.keys()));
    for (const name of ckpt.names()) expect(bytesOf(ckpt.get(name).data).equals(stored.get(name)!)).toBe(true);
  });

  it("fused experts (gate_up_proj [E, 2I, H], down_proj [E, H, I]) are exposed per expert, equal to the originals", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, { tensors: fuseExperts, shards: 2 });
    const names = (await readSafetensors(path.join(dir, "model-00001-of-00002.safetensors"))).tensors;
    expect([...names.keys()].some((k) => k.includes(".experts.0."))).toBe(false);
    const ckpt = await loadCheckpoint(dir);
    const stored = await storedBytes(MOE);
    for (const name of ckpt.names()) {
      expect(bytesOf(ckpt.get(name).data).equals(stored.get(name)!), name).toBe(true);
    }
    expect(ckpt.get("mtp.layers.0.mlp.experts.7.up_proj.weight").shape).toEqual([32, 64]);
    expect(ckpt.get("model.layers.2.mlp.experts.5.down_proj.weight").shape).toEqual([64, 32]);
  });

  it("F32 and F64 weights are kept in their dtype", async () => {
    const dir = fresh();
    await rewriteCheckpoint(DENSE, dir, {
      tensors: (ts) =>
        ts.map((t) => {
          if (t.name === "model.norm.weight") {
            const words = t.data as Uint16Array;
            return { ...t, dtype: "F32", data: Float32Array.from(words, (w) => new Float32Array(new Uint32Array([w << 16]).buffer)[0]) };
          }
          if (t.name === "model.layers.0.linear_attn.A_log") return { ...t, dtype: "F64", data: new Float64Array([0.5, -1, 2]) };
          return t;
        }),
    });
    const ckpt = await loadCheckpoint(dir);
    expect(ckpt.get("model.norm.weight").dtype).toBe("F32");
    expect(ckpt.get("model.norm.weight").data).toBeInstanceOf(Float32Array);
    expect([...ckpt.get("model.layers.0.linear_attn.A_log").data]).toEqual([0.5, -1, 2]);
    expect(ckpt.get("model.layers.1.mlp.gate.weight").dtype).toBe("BF16");
  });

  it("ignores tensors the config does not use (an MTP head, a stored lm_head when tied)", async () => {
    const dir = fresh();
    await rewriteCheckpoint(DENSE, dir, {
      tensors: (ts) => [
        ...ts,
        { name: "mtp.fc.weight", dtype: "BF16", shape: [48, 96], data: new Uint16Array(48 * 96) },
        { name: "lm_head.weight", dtype: "BF16", shape: [300, 48], data: new Uint16Array(300 * 48) },
      ],
    });
    const ckpt = await loadCheckpoint(dir);
    expect(ckpt.has("mtp.fc.weight")).toBe(false);
    expect(ckpt.has("lm_head.weight")).toBe(false);
    expect(ckpt.has("model.embed_tokens.weight")).toBe(true);
  });
});

describe("the MTP head", () => {
  it("a checkpoint saved without mtp.* (as transformers saves it) loads without the MTP head", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, { tensors: (ts) => ts.filter((t) => !t.name.startsWith("mtp.")) });
    const ckpt = await loadCheckpoint(dir);
    expect(ckpt.mtpDropped).toBe(true);
    expect(ckpt.config.mtp_num_hidden_layers).toBe(0);
    expect(ckpt.names().some((n) => n.startsWith("mtp."))).toBe(false);
    expect((await loadCheckpoint(MOE)).mtpDropped).toBe(false);
  });

  it("a partial MTP head is an error naming the missing tensor", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, { tensors: (ts) => ts.filter((t) => t.name !== "mtp.fc.weight") });
    expect(await loadError(dir)).toMatch(/checkpoint has no tensor "mtp\.fc\.weight" \(expected shape \[64, 128\]/);
  });
});

describe("bad checkpoints give one line naming what is wrong", () => {
  it("a missing tensor", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, { tensors: (ts) => ts.filter((t) => t.name !== "model.layers.3.self_attn.k_norm.weight") });
    expect(await loadError(dir)).toMatch(/checkpoint has no tensor "model\.layers\.3\.self_attn\.k_norm\.weight" \(expected shape \[32\]/);
  });

  it("a missing expert names the expert and both layouts", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, { tensors: (ts) => ts.filter((t) => t.name !== "model.layers.1.mlp.experts.6.up_proj.weight") });
    expect(await loadError(dir)).toMatch(/no tensor "model\.layers\.1\.mlp\.experts\.6\.up_proj\.weight" \(expected \[32, 64\] per expert, or a fused "model\.layers\.1\.mlp\.experts\.gate_up_proj"\)/);
  });

  it("a tensor of the wrong shape names its shape and the expected one", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, {
      tensors: (ts) => ts.map((t) => (t.name === "model.layers.0.linear_attn.out_proj.weight" ? { ...t, shape: [32, 128] } : t)),
    });
    expect(await loadError(dir)).toMatch(/model\.safetensors: tensor "model\.layers\.0\.linear_attn\.out_proj\.weight" has shape \[32, 128\], expected \[64, 64\] from config\.json/);
  });

  it("a config that disagrees with the weights (hidden size)", async () => {
    const dir = fresh();
    await rewriteCheckpoint(DENSE, dir, { config: (c) => ({ ...c, hidden_size: 64 }) });
    expect(await loadError(dir)).toMatch(/tensor "model\.embed_tokens\.weight" has shape \[300, 48\], expected \[300, 64\]/);
  });

  it("a fused tensor of the wrong shape", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, {
      tensors: (ts) => fuseExperts(ts).map((t) => (t.name === "model.layers.0.mlp.experts.down_proj" ? { ...t, shape: [8, 32, 64] } : t)),
    });
    expect(await loadError(dir)).toMatch(/tensor "model\.layers\.0\.mlp\.experts\.down_proj" has shape \[8, 32, 64\], expected \[8, 64, 32\]/);
  });

  it("a weight stored as an integer dtype", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, {
      tensors: (ts) => ts.map((t) => (t.name === "model.norm.weight" ? { ...t, dtype: "I16" } : t)),
    });
    expect(await loadError(dir)).toMatch(/tensor "model\.norm\.weight" has dtype I16, expected a weight dtype \(BF16, F16, F32 or F64\)/);
  });

  it("an index naming a shard that is not there", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, { shards: 2 });
    await fsp.rm(path.join(dir, "model-00002-of-00002.safetensors"));
    expect(await loadError(dir)).toMatch(/model\.safetensors\.index\.json: names shard "model-00002-of-00002\.safetensors", which is not in/);
  });

  it("an index mapping a tensor to a shard that lacks it", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, { shards: 2 });
    const indexPath = path.join(dir, "model.safetensors.index.json");
    const index = JSON.parse(await fsp.readFile(indexPath, "utf8"));
    index.weight_map["model.norm.weight"] = "model-00001-of-00002.safetensors";
    await fsp.writeFile(indexPath, JSON.stringify(index));
    expect(await loadError(dir)).toMatch(/maps tensor "model\.norm\.weight" to model-00001-of-00002\.safetensors, which has no such tensor/);
  });

  it("an index that is not JSON, or has no weight_map", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, { shards: 2 });
    const indexPath = path.join(dir, "model.safetensors.index.json");
    await fsp.writeFile(indexPath, "{ nope");
    expect(await loadError(dir)).toMatch(/model\.safetensors\.index\.json: not valid JSON/);
    await fsp.writeFile(indexPath, JSON.stringify({ metadata: {} }));
    expect(await loadError(dir)).toMatch(/model\.safetensors\.index\.json: expected an object with a "weight_map"/);
  });

  it("a corrupt shard names the shard file", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir, { shards: 2 });
    const shard = path.join(dir, "model-00002-of-00002.safetensors");
    const bytes = await fsp.readFile(shard);
    await fsp.writeFile(shard, bytes.subarray(0, bytes.length - 10));
    expect(await loadError(dir)).toMatch(/model-00002-of-00002\.safetensors: .*(run past the end|tensors cover)/);
  });

  it("no weights, no config, no folder, a bad config", async () => {
    const dir = fresh();
    await rewriteCheckpoint(MOE, dir);
    await fsp.rm(path.join(dir, "model.safetensors"));
    expect(await loadError(dir)).toMatch(/no model\.safetensors or model\.safetensors\.index\.json \(expected a Hugging Face checkpoint folder\)/);
    await fsp.rm(path.join(dir, "config.json"));
    expect(await loadError(dir)).toMatch(/config\.json: cannot read \(no such file\)/);
    expect(await loadError(path.join(tmp, "nowhere"))).toMatch(/nowhere: no such checkpoint folder/);
    await fsp.writeFile(path.join(dir, "config.json"), "{");
    expect(await loadError(dir)).toMatch(/config\.json: not valid JSON/);
    await fsp.writeFile(path.join(dir, "config.json"), JSON.stringify({ model_type: "llama" }));
    expect(await loadError(dir)).toMatch(/config\.json: model_type is "llama", expected "qwen3_next"/);
  });
});

describe("expectedTensors", () => {
  it("follows attention_bias and the shared expert size", async () => {
    const { parseConfig } = await import("../../src/config.js");
    const base = JSON.parse(await fsp.readFile(path.join(MOE, "config.json"), "utf8"));
    const withBias = expectedTensors(parseConfig({ ...base, attention_bias: true }));
    const names = new Set(withBias.map((t) => t.name));
    for (const p of ["q", "k", "v", "o"]) expect(names.has(`model.layers.3.self_attn.${p}_proj.bias`)).toBe(true);
    expect(withBias.find((t) => t.name === "model.layers.3.self_attn.q_proj.bias")!.shape).toEqual([2 * 4 * 32]);
    const noShared = expectedTensors(parseConfig({ ...base, shared_expert_intermediate_size: 0 }));
    expect(noShared.some((t) => t.name.includes("shared_expert"))).toBe(false);
  });
});
