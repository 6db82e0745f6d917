/**
 * NaN / Infinity in a GGUF file fail the load with one line naming the tensor, as in safetensors: float tensors
 * element by element, quantized ones by their blocks' F16 scales (the packed quants themselves are integers).
 * Byte offsets of the scales are ggml-common.h's block structs: Q8_0 {d, qs[32]} (34 bytes), Q4_K {d, dmin,
 * scales[12], qs[128]} (144), Q6_K {ql[128], qh[64], scales[16], d} (210).
 */
import { copyFile, mkdtemp, open } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readGgufHeader } from "../../src/io/gguf.js";
import type { Weight } from "../../src/kernels/types.js";
import { loadCheckpoint } from "../../src/loading/checkpoint.js";
import { firstNonFiniteWeight } from "../../src/loading/finite.js";
import { ggufFixture } from "../helpers/gguf.js";

const F16_NAN = 0x7e00;
const F16_INF = 0x7c00;
const F16_NEG_INF = 0xfc00;
const F16_MAX = 0x7bff; // 65504: finite

/** A copy of the Q4_K_M fixture with `bytes` written at byte `byte` of each stored tensor's data. */
async function damaged(edits: Array<{ tensor: string; byte: number; bytes: Uint8Array }>): Promise<string> {
  const src = ggufFixture("gguf-q4_k_m");
  const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-next-gguf-nan-"));
  const file = path.join(dir, "model.gguf");
  await copyFile(src, file);
  const h = readGgufHeader(file);
  const fh = await open(file, "r+");
  try {
    for (const e of edits) {
      const t = h.tensors.get(e.tensor);
      if (!t) throw new Error(`no tensor ${e.tensor} in the fixture`);
      await fh.write(e.bytes, 0, e.bytes.length, t.fileOffset + e.byte);
    }
  } finally {
    await fh.close();
  }
  return file;
}

const word = (w: number) => new Uint8Array([w & 0xff, w >> 8]);
const f32 = (v: number) => new Uint8Array(new Float32Array([v]).buffer);

describe("non-finite values in GGUF files", () => {
  it("finds a non-finite block scale of each quantized type, and nothing in finite blocks", () => {
    const q = (dtype: Weight["dtype"], blockBytes: number, blocks: number, scaleAt: number[], bad?: { block: number; at: number; word: number }): Weight => {
      const data = new Uint8Array(blockBytes * blocks).fill(0xff); // quants: any bytes
      for (let b = 0; b < blocks; b++) for (const o of scaleAt) data.set(word(F16_MAX), b * blockBytes + o);
      if (bad) data.set(word(bad.word), bad.block * blockBytes + bad.at);
      return { name: "w", dtype, shape: [blocks * (blockBytes === 34 ? 32 : 256)], data };
    };
    expect(firstNonFiniteWeight(q("Q8_0", 34, 5, [0]))).toBeUndefined();
    expect(firstNonFiniteWeight(q("Q4_K", 144, 3, [0, 2]))).toBeUndefined();
    expect(firstNonFiniteWeight(q("Q6_K", 210, 3, [208]))).toBeUndefined();
    expect(firstNonFiniteWeight(q("Q8_0", 34, 5, [0], { block: 3, at: 0, word: F16_NAN }))).toMatchObject({ index: 96, value: NaN });
    expect(firstNonFiniteWeight(q("Q4_K", 144, 3, [0, 2], { block: 2, at: 2, word: F16_NEG_INF }))).toMatchObject({ index: 512, value: -Infinity });
    expect(firstNonFiniteWeight(q("Q6_K", 210, 3, [208], { block: 1, at: 208, word: F16_INF }))).toMatchObject({ index: 256, value: Infinity });
  });

  it("fails the load naming the tensor for a NaN float weight and for a quantized block's NaN / Infinity scale", async () => {
    const router = await damaged([{ tensor: "blk.0.ffn_gate_inp.weight", byte: 13 * 4, bytes: f32(NaN) }]);
    let err = String(await loadCheckpoint(router).catch((e: Error) => e));
    expect(err).toMatch(/blk\.0\.ffn_gate_inp\.weight\): tensor "model\.layers\.0\.mlp\.gate\.weight" holds NaN at element 13 \(shape \[8, 256\]\)/);
    expect(err.split("\n")).toHaveLength(1);

    // token_embd is Q4_K [512, 256]: block 3 starts at element 768; its dmin (bytes 2..3) is NaN.
    const embed = await damaged([{ tensor: "token_embd.weight", byte: 3 * 144 + 2, bytes: word(F16_NAN) }]);
    err = String(await loadCheckpoint(embed).catch((e: Error) => e));
    expect(err).toMatch(/tensor "model\.embed_tokens\.weight" holds NaN as the Q4_K block scale of element 768 \(shape \[512, 256\]\); the checkpoint is damaged/);

    // output is Q6_K [512, 256]: block 2's d sits at its bytes 208..209.
    const out = await damaged([{ tensor: "output.weight", byte: 2 * 210 + 208, bytes: word(F16_INF) }]);
    err = String(await loadCheckpoint(out).catch((e: Error) => e));
    expect(err).toMatch(/tensor "lm_head\.weight" holds Infinity as the Q6_K block scale of element 512/);
  });

  it("loads damaged weights when asked not to check, and loads the intact fixture", async () => {
    const file = await damaged([{ tensor: "token_embd.weight", byte: 0, bytes: word(F16_NAN) }]);
    const ckpt = await loadCheckpoint(file, { checkFinite: false });
    expect(ckpt.get("model.embed_tokens.weight").dtype).toBe("Q4_K");
    await expect(loadCheckpoint(ggufFixture("gguf-q4_k_m"))).resolves.toBeDefined();
  });
});
