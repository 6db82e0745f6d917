/**
 * The Qwen3.5 family through `init` and the loader: random Qwen3.5 and Qwen3.5-MoE checkpoints of several shapes
 * (head ratios, GQA, tied or not, MTP, shared expert or not) load and give exactly the logits, MTP logits and
 * expert ids of the same weights converted to the Qwen3-Next layout by an independent route
 * (test/helpers/qwen35.ts), on both backends. Plus the layout's own facts: names, fused experts, the vision tower
 * note, one-line errors.
 */
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { readSafetensorsHeader } from "../../src/io/safetensors.js";
import { createKernels } from "../../src/kernels/index.js";
import type { Backend, HostKernels as Kernels, Precision } from "../../src/kernels/types.js";
import { writeRandomCheckpoint } from "../../src/init/random_checkpoint.js";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { expectedTensors } from "../../src/loading/expected.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { Trace } from "../../src/model/trace.js";
import { ROOT } from "../helpers/cli.js";
import { convertToQwen3Next, qwen35Config, type TinyQwen35 } from "../helpers/qwen35.js";
import { maxAbsDiff } from "../helpers/reference.js";
import { rng } from "../helpers/random.js";
import { rewriteCheckpoint } from "./rewrite.js";

const SHAPES: Array<[string, TinyQwen35]> = [
  ["dense, r = 2, GQA 4:2, tied, MTP", { moe: false, layers: 4, interval: 4, hidden: 32, heads: 4, kvHeads: 2, headDim: 16, keyHeads: 2, ratio: 2, dk: 8, dv: 6, kernel: 4, tied: true, mtp: 1 }],
  ["dense, r = 3, MQA, untied, no MTP", { moe: false, layers: 3, interval: 2, hidden: 24, heads: 3, kvHeads: 1, headDim: 16, keyHeads: 1, ratio: 3, dk: 4, dv: 8, kernel: 3, tied: false, mtp: 0 }],
  ["MoE, r = 1, shared expert, MTP", { moe: true, layers: 4, interval: 4, hidden: 32, heads: 4, kvHeads: 2, headDim: 16, keyHeads: 2, ratio: 1, dk: 8, dv: 8, kernel: 4, tied: false, mtp: 1, experts: 6, topK: 2, shared: 8 }],
  ["MoE, r = 4, no shared expert, tied", { moe: true, layers: 2, interval: 2, hidden: 16, heads: 2, kvHeads: 1, headDim: 32, keyHeads: 1, ratio: 4, dk: 6, dv: 4, kernel: 2, tied: true, mtp: 1, experts: 5, topK: 3, shared: 0 }],
];

let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "qwen35-"));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

const COMBOS: Array<[Backend, Precision]> = [["ts", "f64"], ["wasm", "f32"]];

async function run(model: Qwen3NextForCausalLM, ids: number[], nPrefill: number): Promise<Trace> {
  const trace = new Trace();
  const state = model.newState();
  await model.forward(ids.slice(0, nPrefill), state, { trace });
  for (const id of ids.slice(nPrefill)) await model.forward([id], state, { trace });
  return trace;
}

describe.each(SHAPES)("a random Qwen3.5 checkpoint: %s", (label, shape) => {
  const dir = () => path.join(tmp, label.replace(/\W+/g, "-"));
  let written: Promise<string> | undefined;
  const made = () =>
    (written ??= (async () => {
      const qwen35 = dir();
      await writeRandomCheckpoint(qwen35Config(shape), qwen35, { seed: 35 });
      await convertToQwen3Next(qwen35, `${qwen35}-next`);
      return qwen35;
    })());

  it("is written in the Qwen3.5 layout", async () => {
    const qwen35 = await made();
    const names = [...(await readSafetensorsHeader(path.join(qwen35, "model.safetensors"))).tensors.keys()];
    expect(names.some((n) => n.startsWith("model.layers."))).toBe(false);
    expect(names).toContain("model.language_model.embed_tokens.weight");
    expect(names).toContain("model.language_model.layers.0.linear_attn.in_proj_qkv.weight");
    expect(names.some((n) => n.includes("in_proj_qkvz"))).toBe(false);
    expect(names.includes("lm_head.weight")).toBe(!shape.tied);
    expect(names.includes("mtp.fc.weight")).toBe(shape.mtp > 0);
    if (shape.moe) {
      expect(names).toContain("model.language_model.layers.0.mlp.experts.gate_up_proj");
      expect(names.some((n) => /experts\.\d+\./.test(n))).toBe(false);
    } else expect(names).toContain("model.language_model.layers.0.mlp.gate_proj.weight");
    const config = JSON.parse(await fsp.readFile(path.join(qwen35, "config.json"), "utf8"));
    expect(config.model_type).toBe(shape.moe ? "qwen3_5_moe" : "qwen3_5");
    expect(config.text_config.model_type).toBe(shape.moe ? "qwen3_5_moe_text" : "qwen3_5_text");
  });

  it.each(COMBOS)("equals the same weights in the Qwen3-Next layout, exactly (%s, %s), full pass and prefill + decode", async (backend, precision) => {
    const qwen35 = await made();
    const kernels: Kernels & { close?: () => Promise<void> } = await createKernels({ backend, precision, threads: 1 });
    try {
      const a = await loadCheckpoint(qwen35, { allocator: kernels });
      const b = await loadCheckpoint(`${qwen35}-next`, { allocator: kernels });
      expect(a.config.model_type).not.toBe(b.config.model_type);
      const rand = rng(7);
      const ids = Array.from({ length: 70 }, () => Math.floor(rand() * a.config.vocab_size));
      const ma = Qwen3NextForCausalLM.fromCheckpoint(a, kernels);
      const mb = Qwen3NextForCausalLM.fromCheckpoint(b, kernels);
      for (const nPrefill of [70, 66]) {
        const ta = await run(ma, ids, nPrefill);
        const tb = await run(mb, ids, nPrefill);
        expect(ta.has("mtp_logits")).toBe(shape.mtp > 0);
        for (const name of tb.names()) expect(maxAbsDiff(ta.get(name).data, tb.get(name).data), name).toBe(0);
      }
    } finally {
      await kernels.close?.();
    }
  });
});

describe("the Qwen3.5 layout", () => {
  const FIXTURE = path.join(ROOT, "reference/qwen35-dense-mtp-tied");

  it("the fixture equals its Qwen3-Next conversion exactly, and its parameters are the declared ones", async () => {
    const next = path.join(tmp, "fixture-next");
    await convertToQwen3Next(FIXTURE, next);
    const a = await loadCheckpoint(FIXTURE);
    const b = await loadCheckpoint(next);
    expect(a.names()).toEqual(expectedTensors(a.config).map((t) => t.name));
    const kernels = await createKernels({ backend: "ts", precision: "f64" });
    const ids = Array.from({ length: 20 }, (_, i) => (i * 37) % a.config.vocab_size);
    const ta = await run(Qwen3NextForCausalLM.fromCheckpoint(a, kernels), ids, 20);
    const tb = await run(Qwen3NextForCausalLM.fromCheckpoint(b, kernels), ids, 20);
    for (const name of tb.names()) expect(maxAbsDiff(ta.get(name).data, tb.get(name).data), name).toBe(0);
  });

  it("a missing tensor is one line naming both spellings", async () => {
    const dir = path.join(tmp, "missing");
    await rewriteCheckpoint(FIXTURE, dir, { tensors: (ts) => ts.filter((t) => !t.name.endsWith("layers.1.linear_attn.in_proj_z.weight")) });
    const err = await loadCheckpoint(dir).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(
      /checkpoint has no tensor "model\.language_model\.layers\.1\.linear_attn\.in_proj_z\.weight" \(expected \[64, 96\], or legacy "model\.layers\.1\.linear_attn\.in_proj_z\.weight"\)$/,
    );
    expect(err?.message).not.toContain("\n");
  });

  it("a config whose text_config is missing or of another model is one line", () => {
    expect(() => parseConfig({ model_type: "qwen3_5" })).toThrow(/^config\.json: text_config is undefined, expected an object with the text model's settings \(model_type "qwen3_5_text"\)$/);
    expect(() => parseConfig({ model_type: "qwen3_5_moe", text_config: { model_type: "qwen3_5_text" } })).toThrow(/text_config\.model_type is "qwen3_5_text", expected "qwen3_5_moe_text"/);
    const raw = qwen35Config(SHAPES[0][1]);
    (raw.text_config as Record<string, unknown>).rope_parameters = { rope_theta: 1e7, partial_rotary_factor: 0.25, mrope_section: [1, 1, 1] };
    expect(() => parseConfig(raw)).toThrow(/rope_parameters\.mrope_section \[1,1,1\] covers 3 frequencies, expected rotary dims \/ 2 = 2/);
  });
});
