/**
 * Random Qwen3.5-MoE checkpoints (made with `init`) written as llama.cpp `qwen35moe` GGUF files by the test-side
 * converter (test/helpers/hf_to_gguf.ts, `qwen35ToGguf`: tiled value heads, ssm_beta / ssm_alpha, stacked or fused
 * experts, nextn MTP) load as the same model as the safetensors folder:
 *   - every parameter outside the DeltaNet's value-head-ordered ones holds exactly the folder's values;
 *   - with one value head per key head (no reordering) every traced tensor is identical (difference 0);
 *   - with two per key head the DeltaNet's out projection sums its heads in the stored (tiled) order, so the
 *     results agree to rounding only (float64 within 1e-12, float32 within 1e-3, the same expert ids) for every
 *     traced tensor outside the DeltaNet (whose per-head intermediates are in the stored order);
 * full pass and prefill + decode, ts/f64 and wasm/f32. `info` reads such a file. The config from `qwen35.*` /
 * `qwen35moe.*` metadata equals the folder's config.json parsed (but for the stored projection form).
 */
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { bf16ToF32 } from "../../src/io/dtype.js";
import { GgufType, readGgufHeader } from "../../src/io/gguf.js";
import { createKernels } from "../../src/kernels/index.js";
import type { Backend, HostKernels as Kernels, Precision, Weight } from "../../src/kernels/types.js";
import { writeRandomCheckpoint } from "../../src/init/random_checkpoint.js";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { configFromGguf } from "../../src/loading/gguf_config.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { Trace } from "../../src/model/trace.js";
import { runCli } from "../helpers/cli.js";
import { str, withMetadata } from "../helpers/gguf.js";
import { qwen35ToGguf } from "../helpers/hf_to_gguf.js";
import { qwen35Config, type TinyQwen35 } from "../helpers/qwen35.js";
import { maxAbsDiff, REFERENCE_DIR } from "../helpers/reference.js";
import { rng } from "../helpers/random.js";

const BASE = { moe: true, layers: 4, interval: 2, hidden: 32, heads: 4, kvHeads: 2, headDim: 16, keyHeads: 2, dk: 8, dv: 8, kernel: 4, experts: 4, topK: 2 };
const SHAPES: Array<[string, TinyQwen35, "stacked" | "fused"]> = [
  ["r = 1, no shared expert, tied, stacked experts", { ...BASE, ratio: 1, shared: 0, tied: true, mtp: 0 }, "stacked"],
  ["r = 2, shared expert, untied, MTP, fused experts", { ...BASE, ratio: 2, shared: 8, tied: false, mtp: 1 }, "fused"],
];

let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "qwen35-gguf-"));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

async function run(model: Qwen3NextForCausalLM, ids: number[], nPrefill: number): Promise<Trace> {
  const trace = new Trace();
  const state = model.newState();
  await model.forward(ids.slice(0, nPrefill), state, { trace });
  for (const id of ids.slice(nPrefill)) await model.forward([id], state, { trace });
  return trace;
}

const values = (w: Weight): Float64Array => (w.dtype === "BF16" ? Float64Array.from(w.data as Uint16Array, bf16ToF32) : Float64Array.from(w.data as Float64Array));
/** The parameters the converter reorders by value head (only when there are more value heads than key heads). */
const REORDERED = /linear_attn\.(in_proj_qkv|in_proj_z|in_proj_b|in_proj_a|conv1d\.weight|A_log|dt_bias|out_proj)/;

describe.each(SHAPES)("a random Qwen3.5-MoE checkpoint as a qwen35moe GGUF: %s", (label, shape, experts) => {
  const dir = () => path.join(tmp, label.replace(/\W+/g, "-"));
  const gguf = () => `${dir()}.gguf`;
  beforeAll(async () => {
    await writeRandomCheckpoint(qwen35Config(shape), dir(), { seed: 35 });
    await qwen35ToGguf(dir(), gguf(), { experts });
  });

  it("holds the folder's parameters exactly (the value-head-ordered DeltaNet ones as a permutation)", async () => {
    const a = await loadCheckpoint(dir());
    const b = await loadCheckpoint(gguf());
    expect(b.config.model_type).toBe("qwen3_5_moe");
    expect(b.config.deltanet_projections).toEqual({ qkvz: "split", ba: "split", valueHeads: "tiled" });
    expect(b.names().sort()).toEqual(a.names().sort());
    for (const name of a.names()) {
      const x = values(a.get(name));
      const y = values(b.get(name));
      expect(b.get(name).shape, name).toEqual(a.get(name).shape);
      if (shape.ratio > 1 && REORDERED.test(name)) expect([...y].sort((p, q) => p - q), name).toEqual([...x].sort((p, q) => p - q));
      else expect(maxAbsDiff(x, y), name).toBe(0);
    }
  });

  it.each([["ts", "f64"], ["wasm", "f32"]] as Array<[Backend, Precision]>)("%s %s: the same model, full pass and prefill + decode", async (backend, precision) => {
    const kernels: Kernels & { close?: () => Promise<void> } = await createKernels({ backend, precision, threads: 1 });
    try {
      const ma = Qwen3NextForCausalLM.fromCheckpoint(await loadCheckpoint(dir(), { allocator: kernels }), kernels);
      const mb = Qwen3NextForCausalLM.fromCheckpoint(await loadCheckpoint(gguf(), { allocator: kernels }), kernels);
      const rand = rng(11);
      const ids = Array.from({ length: 40 }, () => Math.floor(rand() * 48));
      const tol = shape.ratio === 1 ? 0 : precision === "f64" ? 1e-12 : 1e-3;
      for (const nPrefill of [40, 36]) {
        const ta = await run(ma, ids, nPrefill);
        const tb = await run(mb, ids, nPrefill);
        expect(tb.has("mtp_logits")).toBe(shape.mtp > 0);
        expect(tb.names().sort()).toEqual(ta.names().sort());
        for (const name of ta.names()) {
          // Inside the DeltaNet (r > 1) the per-head intermediates are in the stored order: a permutation.
          if (shape.ratio > 1 && name.startsWith("deltanet.") && !/^deltanet\.\d+\.(out|output)$/.test(name)) continue;
          if (name.includes("experts")) expect(Array.from(tb.get(name).data), name).toEqual(Array.from(ta.get(name).data));
          else expect(maxAbsDiff(ta.get(name).data, tb.get(name).data), name).toBeLessThanOrEqual(tol);
        }
      }
    } finally {
      await kernels.close?.();
    }
  });

  it("info describes the file as Qwen3.5-MoE", async () => {
    const r = await runCli(["info", "--model", gguf()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("family: Qwen3.5-MoE (qwen3_5_moe), text only");
    expect(r.stdout).toContain("experts: 4 routed, top-2");
    expect(r.stdout.includes("value heads stored tiled (llama.cpp's order)")).toBe(shape.ratio > 1);
    expect(r.stdout).toMatch(/BF16/);
  });
});

describe("config from qwen35 / qwen35moe metadata", () => {
  const strip = ({ bos_token_id, eos_token_id, torch_dtype, deltanet_projections, ...rest }: ReturnType<typeof parseConfig>) => (
    void bos_token_id, void eos_token_id, void torch_dtype, void deltanet_projections, rest
  );
  const configs: Array<[string, () => Promise<{ dir: string; gguf: string }>]> = [
    ["the Qwen3.5 fixture (qwen35)", async () => {
      const gguf = path.join(tmp, "fixture.gguf");
      const dir = path.join(REFERENCE_DIR, "qwen35-dense-mtp-tied");
      await qwen35ToGguf(dir, gguf, { experts: "stacked" });
      return { dir, gguf };
    }],
    ["a Qwen3.5-MoE checkpoint (qwen35moe)", async () => {
      const dir = path.join(tmp, "cfg-moe");
      await writeRandomCheckpoint(qwen35Config({ ...BASE, ratio: 2, shared: 8, tied: false, mtp: 1 }), dir, { seed: 3 });
      await qwen35ToGguf(dir, `${dir}.gguf`, { experts: "stacked" });
      return { dir, gguf: `${dir}.gguf` };
    }],
  ];
  it.each(configs)("%s: the same config as its config.json", async (_, make) => {
    const { dir, gguf } = await make();
    const fromJson = parseConfig(JSON.parse(await fsp.readFile(path.join(dir, "config.json"), "utf8")));
    const h = readGgufHeader(gguf);
    const fromGguf = configFromGguf(h);
    expect(strip(fromGguf)).toEqual(strip(fromJson));
    expect(fromGguf.deltanet_projections).toEqual({ qkvz: "split", ba: "split", valueHeads: "tiled" });
  });

  it("bad Qwen3.5 metadata is one line naming the file and the key", async () => {
    const gguf = path.join(tmp, "fixture-errors.gguf");
    await qwen35ToGguf(path.join(REFERENCE_DIR, "qwen35-dense-mtp-tied"), gguf, { experts: "stacked" });
    const h = readGgufHeader(gguf);
    const sections = (v: number[]) => ({ type: GgufType.ARRAY, arrayType: GgufType.INT32, value: v }) as never;
    expect(() => configFromGguf(withMetadata(h, { "qwen35.rope.dimension_sections": sections([2, 2, 3, 0]) }))).toThrow(
      `${gguf}: rope_parameters.mrope_section [2,2,3,0] covers 7 frequencies, expected rotary dims / 2 = 6`,
    );
    expect(() => configFromGguf(withMetadata(h, { "qwen35.rope.dimension_sections": str("2,2,2") }))).toThrow(
      `${gguf}: metadata qwen35.rope.dimension_sections is "2,2,2", expected a list of non-negative integers`,
    );
    expect(() => configFromGguf(withMetadata(h, { "qwen35.ssm.group_count": undefined }))).toThrow(`${gguf}: metadata qwen35.ssm.group_count is missing`);
    expect(() => configFromGguf(withMetadata(h, { "general.architecture": str("qwen3") }))).toThrow(
      `${gguf}: general.architecture is "qwen3", expected "qwen3next", "qwen35" or "qwen35moe" (a Qwen3-Next or Qwen3.5 GGUF)`,
    );
    // A qwen35 file read under another prefix finds none of its keys.
    expect(() => configFromGguf(withMetadata(h, { "general.architecture": str("qwen35moe") }))).toThrow(`${gguf}: metadata qwen35moe.block_count is missing`);
  });
});
