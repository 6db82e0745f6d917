/**
 * `quantize` on Qwen3.5 checkpoints: `qwen35` / `qwen35moe` GGUF files as llama.cpp's converter (Qwen3_5TextModel,
 * Qwen3_5MoeTextModel) and llama-quantize write them, checked against:
 *   - the test-side converter (test/helpers/hf_to_gguf.ts `qwen35ToGguf`, written separately from the converter's
 *     description and itself checked against the fixture's expected outputs in gguf_fixtures.test.ts): the same
 *     tensors in llama.cpp's file order with the same shapes, the same hyperparameters, every BF16 matrix byte
 *     for byte (the tiled value-head order included) and every F32 tensor the float32 rounding of its float64
 *     value (norms as 1 + w, A = -exp(A_log));
 *   - the fixture reference/qwen35-dense-mtp-tied: our f32 and bf16 files reproduce its expected outputs at its
 *     float32 tolerance (1e-3) on both backends, full pass and prefill-then-decode, MTP logits included; in
 *     float64 the logits differ from the checkpoint's by the float32 storage of A only (the bound of the
 *     qwen3next round trip in to_gguf.test.ts);
 *   - a random Qwen3.5-MoE checkpoint from `init` (two value heads per key head, shared expert, MTP, untied);
 *   - q8_0: every quantized weight within half a quantization step of the bf16 file's value (logits are not
 *     compared: these random models amplify the 0.4% weight error, 13% of the largest logit on the fixture);
 *   - the types llama-quantize gives the Qwen3.5 names, worked out by hand from its rules (src/llama-quant.cpp):
 *     attn_qkv counts as attention-v, the MTP block's ffn_down is one of n_layer_all blocks, ssm_beta /
 *     ssm_alpha / attn_gate / nextn.eh_proj are quantized, the conv taps and the router are not.
 * The llama.cpp side of the same files is checked by bench/llama_cpp_agreement.ts (llama.cpp itself loads them
 * and its logits agree; not a test: node-llama-cpp is not a dependency).
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bf16ToF32 } from "../../src/io/dtype.js";
import { readGgufHeader, type GgufHeader } from "../../src/io/gguf.js";
import { createKernels } from "../../src/kernels/index.js";
import { createTsKernels } from "../../src/kernels/ts/index.js";
import type { HostKernels as Kernels, Weight } from "../../src/kernels/types.js";
import { widenWeight } from "../../src/kernels/host_weights.js";
import { writeRandomCheckpoint } from "../../src/init/random_checkpoint.js";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { GGUF_QWEN3NEXT } from "../../src/loading/gguf_layout.js";
import { checkpointToGguf } from "../../src/loading/to_gguf.js";
import { Qwen3NextForCausalLM } from "../../src/model/qwen3_next_for_causal_lm.js";
import { Trace } from "../../src/model/trace.js";
import { tokenizerFromGguf } from "../../src/tokenizer/gguf_tokenizer.js";
import { qwen35ToGguf } from "../helpers/hf_to_gguf.js";
import { qwen35Config } from "../helpers/qwen35.js";
import { COMBOS, expectTraceMatches, maxAbsDiff, readReference, REFERENCE_DIR, TOL } from "../helpers/reference.js";

const tmp = mkdtempSync(path.join(tmpdir(), "to-gguf-qwen35-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The llama.cpp fixture's 512-token tokenizer written into a checkpoint folder (the fixtures ship none). */
function addTokenizer(dir: string): void {
  const t = tokenizerFromGguf(readGgufHeader(path.join(REFERENCE_DIR, "gguf/gguf-q8_0/model.gguf")));
  writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(t.tokenizerJson));
  writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(t.tokenizerConfig));
}

const FIXTURE = path.join(tmp, "qwen35-dense-mtp-tied");
/** Random Qwen3.5-MoE: 2 value heads per key head, dk = dv (as llama.cpp requires), shared expert, MTP, untied. */
const MOE = path.join(tmp, "qwen35-moe");
const MOE_SHAPE = { moe: true, layers: 4, interval: 2, hidden: 32, heads: 4, kvHeads: 2, headDim: 16, keyHeads: 2, ratio: 2, dk: 8, dv: 8, kernel: 4, tied: false, mtp: 1, experts: 4, topK: 2, shared: 32, vocab: 520 };

beforeAll(async () => {
  cpSync(path.join(REFERENCE_DIR, "qwen35-dense-mtp-tied"), FIXTURE, { recursive: true });
  addTokenizer(FIXTURE);
  const moe = qwen35Config(MOE_SHAPE);
  (moe.text_config as Record<string, unknown>).moe_intermediate_size = 32; // rows of whole Q8_0 blocks
  await writeRandomCheckpoint(moe, MOE, { seed: 16 });
  addTokenizer(MOE);
}, 60_000);

const ours = async (dir: string, type: "f32" | "bf16" | "q8_0" | "q4_k_m"): Promise<string> => {
  const out = `${dir}-${type}.gguf`;
  await checkpointToGguf(dir, out, { fileType: type, layout: GGUF_QWEN3NEXT });
  return out;
};
const theirs = async (dir: string): Promise<string> => {
  const out = `${dir}-helper.gguf`;
  await qwen35ToGguf(dir, out, { experts: "stacked" });
  return out;
};

const float = (w: Weight): Float64Array => (w.dtype === "BF16" ? Float64Array.from(w.data as Uint16Array, bf16ToF32) : Float64Array.from(widenWeight(w, "f64")));

describe.each([
  ["the Qwen3.5 fixture (qwen35, dense, tied, MTP)", FIXTURE, "qwen35"],
  ["a random Qwen3.5-MoE checkpoint (qwen35moe, shared expert, untied, MTP)", MOE, "qwen35moe"],
] as const)("quantize %s", (_, dir, arch) => {
  it("bf16: the test-side converter's tensors, order, shapes, hyperparameters; matrices byte for byte, F32 = fround(F64)", async () => {
    const a = readGgufHeader(await ours(dir, "bf16"));
    const b = readGgufHeader(await theirs(dir));
    expect(a.metadata.get("general.architecture")?.value).toBe(arch);
    // (Tensor order: ours is llama-quantize's, the helper's the checkpoint's; llama.cpp reads either.)
    const list = (h: GgufHeader) => [...h.tensors.values()].map((t) => `${t.name} [${t.shape}]`).sort();
    expect(list(a)).toEqual(list(b));
    for (const [key, e] of b.metadata) {
      expect(a.metadata.has(key), key).toBe(true);
      expect(a.metadata.get(key)!.value, key).toEqual(e.value);
    }
    // The converter writes nothing else about the model (tokenizer and general.* keys aside).
    const modelKeys = (h: GgufHeader) => [...h.metadata.keys()].filter((k) => k.startsWith(`${arch}.`)).sort();
    expect(modelKeys(a)).toEqual(modelKeys(b));
    expect(a.metadata.get("tokenizer.ggml.pre")?.value).toBe("qwen2"); // the fixture's tokenizer splits as Qwen2's
    const [wa, wb] = [await loadCheckpoint(a.file), await loadCheckpoint(b.file)];
    expect(wa.names().sort()).toEqual(wb.names().sort());
    for (const t of a.tensors.values()) if (t.shape.length === 1 || t.name.includes("ssm_conv1d")) expect(t.type.name, t.name).toBe("F32");
    for (const name of wb.names()) {
      const [x, y] = [wa.get(name), wb.get(name)];
      if (x.dtype === "BF16") {
        expect(y.dtype, name).toBe("BF16");
        expect(Buffer.compare(Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength), Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength)), name).toBe(0);
        continue;
      }
      // F32 in our file (1-D tensors, conv taps); the helper keeps BF16 or writes transformed ones as F64. Compare
      // what is stored: the float32 rounding of the helper's exact value.
      const { transform } = GGUF_QWEN3NEXT.spell({ name, shape: [...x.shape] } as never, wa.config)[0];
      const stored = (v: number) => (transform ? transform.toStored(v) : v);
      const [fx, fy] = [float(x), float(y)];
      for (let i = 0; i < fy.length; i++) expect(Math.fround(stored(fx[i])), `${name}[${i}]`).toBe(Math.fround(stored(fy[i])));
    }
  }, 120_000);

  it("q8_0: every quantized weight within half a step of its block's scale of the bf16 file's (the same tiled order)", async () => {
    const [q, b] = [await loadCheckpoint(await ours(dir, "q8_0")), await loadCheckpoint(await ours(dir, "bf16"))];
    let worst = 0, checked = 0;
    for (const name of q.names()) {
      const w = q.get(name);
      if (w.dtype !== "Q8_0") continue;
      const [a, x] = [float(w), float(b.get(name))];
      for (let k = 0; k < a.length; k += 32) {
        let amax = 0;
        for (let i = k; i < k + 32; i++) amax = Math.max(amax, Math.abs(x[i]));
        // ggml's Q8_0: d = amax / 127 stored as f16 (relative error <= 2^-11), q = round(x / d).
        const bound = (amax / 127) * (0.5 + 127 * 2 ** -11);
        for (let i = k; i < k + 32; i++) worst = Math.max(worst, Math.abs(a[i] - x[i]) / bound);
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(20);
    expect(worst).toBeLessThanOrEqual(1);
  }, 120_000);

  it("f64: the file's logits are the checkpoint's up to A's float32 storage, MTP and expert ids included", async () => {
    const k = createTsKernels("f64");
    const run = async (p: string) => {
      const m = Qwen3NextForCausalLM.fromCheckpoint(await loadCheckpoint(p, { allocator: k }), k);
      const trace = new Trace();
      const ids = [3, 141, 59, 26, 5, 358, 97, 93, 23, 84, 62, 64, 33, 83, 27, 95, 200, 7];
      const state = m.newState();
      await m.forward(ids.slice(0, 12), state, { trace });
      for (const id of ids.slice(12)) await m.forward([id], state, { trace });
      return trace;
    };
    const [x, y] = [await run(dir), await run(await ours(dir, "f32"))];
    expect(y.has("mtp_logits")).toBe(true);
    const d = Math.max(maxAbsDiff(x.get("logits").data, y.get("logits").data), maxAbsDiff(x.get("mtp_logits").data, y.get("mtp_logits").data));
    console.log(`${arch} f32 gguf vs checkpoint (f64): logits max |diff| ${d.toExponential(3)}`);
    expect(d).toBeLessThan(1e-5); // A = -exp(A_log) rounded once to float32; measured ~1e-6
    for (const name of x.names().filter((n) => n.endsWith(".experts"))) expect(Array.from(y.get(name).data), name).toEqual(Array.from(x.get(name).data));
  }, 120_000);
});

describe("quantize the Qwen3.5 fixture: its expected outputs from our files", () => {
  const kernelSets = new Map<string, Promise<Kernels & { close?: () => Promise<void> }>>();
  afterAll(async () => {
    for (const k of kernelSets.values()) await (await k).close?.();
  });
  it.each(COMBOS.filter(([, p]) => p === "f32"))("%s %s: f32 and bf16 files, full pass and prefill-then-decode, MTP logits included (float32 tolerance)", async (backend, precision) => {
    const key = `${backend}/${precision}`;
    if (!kernelSets.has(key)) kernelSets.set(key, createKernels({ backend, precision, threads: 1 }));
    const kernels = await kernelSets.get(key)!;
    const { tensors, metadata } = await readReference("qwen35-dense-mtp-tied/expected.safetensors");
    const ids = Array.from(tensors.get("input_ids")!.data);
    for (const type of ["f32", "bf16"] as const) {
      const ckpt = await loadCheckpoint(await ours(FIXTURE, type), { allocator: kernels });
      expect(ckpt.config.deltanet_projections).toEqual({ qkvz: "split", ba: "split", valueHeads: "tiled" });
      const model = Qwen3NextForCausalLM.fromCheckpoint(ckpt, kernels);
      for (const mode of ["full", "decode"] as const) {
        const trace = new Trace();
        const state = model.newState();
        const n = mode === "full" ? ids.length : Number(metadata.n_prefill);
        await model.forward(ids.slice(0, n), state, { trace });
        for (const id of ids.slice(n)) await model.forward([id], state, { trace });
        expect(trace.has("mtp_logits")).toBe(true);
        expectTraceMatches(trace, tensors, TOL[precision]);
      }
    }
  }, 240_000);
});

describe("quantize a Qwen3.5 checkpoint: the types llama-quantize chooses", () => {
  /**
   * hidden 256, 4 x 64 attention heads, 2 value heads of 128 so that every row is whole K-quant blocks; 4 layers (3 DeltaNet + 1 attention) + 1 MTP block, dense.
   * Worked out from llama-quant.cpp: attention-v-like tensors in file order are blk.0-2.attn_qkv, blk.3.attn_v,
   * blk.4.attn_v (n = 5; use_more_bits(i, 5): i < 0 || i >= 4 || i % 3 == 2 -> i = 2, 4); ffn_down by block
   * over n_layer_all = 5 blocks: use_more_bits(b, 5) -> b = 2, 4. Q4_K_M: those Q6_K, other matrices Q4_K
   * (tied token_embd: the output's rule, Q6_K), 1-D tensors and the conv taps F32.
   */
  it("q4_k_m and q8_0 on a dense Qwen3.5 with an MTP block", async () => {
    const dir = path.join(tmp, "types");
    const raw = qwen35Config({ moe: false, layers: 4, interval: 4, hidden: 256, heads: 4, kvHeads: 1, headDim: 64, keyHeads: 1, ratio: 2, dk: 128, dv: 128, kernel: 4, tied: true, mtp: 1, vocab: 520 });
    (raw.text_config as Record<string, unknown>).intermediate_size = 512;
    await writeRandomCheckpoint(raw, dir, { seed: 5 });
    addTokenizer(dir);
    const typesOf = (file: string) => new Map([...readGgufHeader(file).tensors.values()].map((t) => [t.name, t.type.name]));
    const q4 = typesOf(await ours(dir, "q4_k_m"));
    const expected = (name: string): string => {
      if (name === "token_embd.weight") return "Q6_K";
      if (/ssm_conv1d|norm|ssm_a$|ssm_dt/.test(name)) return "F32";
      const blk = Number(/^blk\.(\d+)\./.exec(name)![1]);
      if (name.endsWith("attn_qkv.weight") || name.endsWith("attn_v.weight")) return blk === 2 || blk === 4 ? "Q6_K" : "Q4_K";
      if (name.endsWith("ffn_down.weight")) return blk === 2 || blk === 4 ? "Q6_K" : "Q4_K";
      return "Q4_K";
    };
    expect(q4.size).toBe(1 + 1 + 3 * 14 + 11 + 15);
    for (const [name, type] of q4) expect(type, name).toBe(expected(name));
    for (const name of ["blk.0.ssm_beta.weight", "blk.0.ssm_alpha.weight", "blk.0.attn_gate.weight", "blk.4.nextn.eh_proj.weight"]) expect(q4.get(name), name).toBe("Q4_K");
    const q8 = typesOf(await ours(dir, "q8_0"));
    for (const [name, type] of q8) expect(type, name).toBe(expected(name) === "F32" ? "F32" : "Q8_0");
  }, 240_000);
});
