/**
 * The GGUF reader: the shipped llama.cpp files, a write/read round trip of every value type, corrupt files
 * (one line naming the file and the tensor or key), and a fuzz property over header mutations.
 */
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesSource, GgufError, GgufFile, GgufType, parseGgufHeader, readGgufHeader } from "../../src/io/gguf.js";
import { encodeGgufHeader, meta, writeGguf, type GgufMetaToWrite, type GgufTensorToWrite } from "../../src/io/gguf_write.js";
import { readSafetensorsHeader } from "../../src/io/safetensors.js";
import { REFERENCE_DIR } from "../helpers/reference.js";

const FIXTURES = ["gguf-q8_0", "gguf-q4_k_m"];
let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "gguf-test-"));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** A small valid file in memory: two F32 tensors and one Q8_0, some metadata. */
function smallGguf(extraMeta: GgufMetaToWrite[] = []): Uint8Array {
  const tensors: GgufTensorToWrite[] = [
    { name: "a.weight", type: "F32", shape: [3, 4], data: new Uint8Array(new Float32Array(12).map((_, i) => i).buffer) },
    { name: "b", type: "F32", shape: [5], data: new Uint8Array(20).fill(7) },
    { name: "q.weight", type: "Q8_0", shape: [2, 32], data: new Uint8Array(68).fill(1) },
  ];
  const metadata = [meta.str("general.architecture", "test"), meta.u32("test.count", 3), meta.strs("test.words", ["x", "yz"]), ...extraMeta];
  const { header, offsets } = encodeGgufHeader(metadata, tensors);
  const size = header.length + offsets[offsets.length - 1] + 68;
  const out = new Uint8Array(size);
  out.set(header);
  tensors.forEach((t, i) => out.set(t.data, header.length + offsets[i]));
  return out;
}

/** smallGguf with a bool "test.flag" set to 2. */
function corruptBool(_: Uint8Array): Uint8Array {
  const b = smallGguf([meta.bool("test.flag", true)]).slice();
  const key = Buffer.from("test.flag");
  const at = Buffer.from(b).indexOf(key) + key.length + 4;
  b[at] = 2;
  return b;
}

/** Byte position of tensor `name`'s info field `field` in a file made by smallGguf. */
function infoPos(bytes: Uint8Array, name: string, field: "n_dims" | "type" | "offset"): number {
  const enc = Buffer.from(name);
  const at = Buffer.from(bytes).indexOf(Buffer.concat([Buffer.from(new BigUint64Array([BigInt(enc.length)]).buffer), enc]));
  const nDimsPos = at + 8 + enc.length;
  if (field === "n_dims") return nDimsPos;
  const nDims = Buffer.from(bytes).readUInt32LE(nDimsPos);
  const typePos = nDimsPos + 4 + 8 * nDims;
  return field === "type" ? typePos : typePos + 4;
}

function parse(bytes: Uint8Array) {
  return parseGgufHeader("x.gguf", bytesSource(bytes));
}

describe("the shipped llama.cpp files", () => {
  it.each(FIXTURES)("%s: header, metadata and tensor types as llama-quantize wrote them", async (name) => {
    const h = readGgufHeader(path.join(REFERENCE_DIR, "gguf", name, "model.gguf"));
    expect(h.version).toBe(3);
    expect(h.alignment).toBe(32);
    expect(h.metadata.get("general.architecture")?.value).toBe("qwen3next");
    expect(h.metadata.get("qwen3next.block_count")).toEqual({ type: GgufType.UINT32, value: 4 });
    const tokens = h.metadata.get("tokenizer.ggml.tokens")!;
    expect(tokens.arrayType).toBe(GgufType.STRING);
    expect((tokens.value as string[]).length).toBe(512);
    // PyTorch order: the stacked experts are [E, out, in].
    expect(h.tensors.get("blk.0.ffn_gate_exps.weight")!.shape).toEqual([8, 256, 256]);
    expect(h.tensors.get("blk.0.ssm_conv1d.weight")!.shape).toEqual([512, 4]);
    // The type mix recorded independently in expected.safetensors' metadata.
    const expected = await readSafetensorsHeader(path.join(REFERENCE_DIR, "gguf", name, "expected.safetensors"));
    const mix: Record<string, number> = {};
    for (const t of h.tensors.values()) mix[t.type.name] = (mix[t.type.name] ?? 0) + 1;
    expect(mix).toEqual(JSON.parse(expected.metadata.tensor_types));
    // Every tensor lies inside the file, after the header.
    for (const t of h.tensors.values()) {
      expect(t.fileOffset).toBeGreaterThanOrEqual(h.dataStart);
      expect(t.fileOffset + t.byteLength).toBeLessThanOrEqual(h.fileSize);
    }
  });

  it("reads a tensor's bytes, and a byte range of it, by positioned reads", async () => {
    const f = await GgufFile.open(path.join(REFERENCE_DIR, "gguf", "gguf-q8_0", "model.gguf"));
    try {
      const t = f.info("blk.0.ssm_a");
      expect(t.type.name).toBe("F32");
      const a = new Float32Array((await f.readBytes("blk.0.ssm_a")).buffer);
      // ssm_a = -exp(A_log) < 0.
      expect(a.length).toBe(4);
      for (const x of a) expect(x).toBeLessThan(0);
      const part = new Float32Array(2);
      await f.readInto("blk.0.ssm_a", part, 8);
      expect(Array.from(part)).toEqual(Array.from(a.subarray(2)));
      await expect(f.readInto("blk.0.ssm_a", new Float32Array(3), 8)).rejects.toThrow(/blk\.0\.ssm_a.*cannot read 12 bytes at 8/);
      expect(() => f.info("nope")).toThrow(/no tensor named "nope"/);
    } finally {
      await f.close();
    }
  });
});

describe("writing and reading back", () => {
  it("keeps every metadata value type, arrays, alignment and tensor bytes", async () => {
    const file = path.join(tmp, "all.gguf");
    const metadata: GgufMetaToWrite[] = [
      { key: "u8", type: GgufType.UINT8, value: 255 },
      { key: "i8", type: GgufType.INT8, value: -128 },
      { key: "u16", type: GgufType.UINT16, value: 65535 },
      { key: "i16", type: GgufType.INT16, value: -32768 },
      { key: "u32", type: GgufType.UINT32, value: 4294967295 },
      { key: "i32", type: GgufType.INT32, value: -2147483648 },
      { key: "f32", type: GgufType.FLOAT32, value: 0.1 },
      { key: "f64", type: GgufType.FLOAT64, value: 0.1 },
      { key: "bool", type: GgufType.BOOL, value: true },
      { key: "str", type: GgufType.STRING, value: "héllo" },
      { key: "u64", type: GgufType.UINT64, value: 2n ** 63n },
      { key: "i64", type: GgufType.INT64, value: -5 },
      { key: "arr", type: GgufType.ARRAY, arrayType: GgufType.INT32, value: [1, -2, 3] },
      { key: "empty", type: GgufType.ARRAY, arrayType: GgufType.STRING, value: [] },
      { key: "general.alignment", type: GgufType.UINT32, value: 64 },
    ];
    const data = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
    await writeGguf(file, metadata, [
      { name: "t0", type: "F32", shape: [3], data },
      { name: "t1", type: "BF16", shape: [2, 2], data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) },
    ]);
    const h = readGgufHeader(file);
    const v = (k: string) => h.metadata.get(k)?.value;
    expect([v("u8"), v("i8"), v("u16"), v("i16"), v("u32"), v("i32")]).toEqual([255, -128, 65535, -32768, 4294967295, -2147483648]);
    expect(v("f32")).toBe(Math.fround(0.1));
    expect(v("f64")).toBe(0.1);
    expect([v("bool"), v("str"), v("u64"), v("i64")]).toEqual([true, "héllo", 2n ** 63n, -5]);
    expect(v("arr")).toEqual([1, -2, 3]);
    expect(v("empty")).toEqual([]);
    expect(h.alignment).toBe(64);
    expect(h.dataStart % 64).toBe(0);
    expect(h.tensors.get("t1")!.fileOffset % 64).toBe(0);
    const f = await GgufFile.open(file);
    expect(Array.from(await f.readBytes("t0"))).toEqual(Array.from(data));
    expect(Array.from(await f.readBytes("t1"))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await f.close();
  });
});

describe("corrupt files: one line naming the file and what is wrong", () => {
  const cases: Array<[string, (b: Uint8Array) => Uint8Array, RegExp]> = [
    ["bad magic", (b) => { b[0] = 0x47 + 1; return b; }, /x\.gguf: not a GGUF file \(starts with "HGUF", expected "GGUF"\)/],
    ["version 1", (b) => { b.set([1, 0, 0, 0], 4); return b; }, /version 1 is not supported.*expected 2 or 3/],
    ["version 4", (b) => { b.set([4, 0, 0, 0], 4); return b; }, /version 4 is not supported/],
    ["big-endian", (b) => { b.set([0, 0, 0, 3], 4); return b; }, /big-endian/],
    ["too short for the header", (b) => b.subarray(0, 10), /too short for a GGUF header/],
    ["cut inside the metadata", (b) => b.subarray(0, 60), /x\.gguf: metadata .*truncated/],
    ["absurd tensor count", (b) => { new DataView(b.buffer).setBigUint64(8, 1n << 40n, true); return b; }, /tensor count 1099511627776 is absurd/],
    ["absurd metadata count", (b) => { new DataView(b.buffer).setBigUint64(16, 1n << 60n, true); return b; }, /metadata count .* is absurd/],
    ["tensor past the end", (b) => b.subarray(0, b.length - 1), /tensor "q\.weight": Q8_0 \[2, 32\] needs bytes .*truncated file/],
    ["unknown ggml type", (b) => { new DataView(b.buffer).setUint32(infoPos(b, "b", "type"), 99, true); return b; }, /tensor "b": unknown ggml type id 99/],
    ["too many dimensions", (b) => { new DataView(b.buffer).setUint32(infoPos(b, "b", "n_dims"), 5, true); return b; }, /tensor "b": 5 dimensions, expected at most 4/],
    ["misaligned offset", (b) => { new DataView(b.buffer).setBigUint64(infoPos(b, "b", "offset"), 4n, true); return b; }, /tensor "b": data offset 4 is not a multiple of the alignment 32/],
    ["overlapping data", (b) => { new DataView(b.buffer).setBigUint64(infoPos(b, "b", "offset"), 0n, true); return b; }, /tensor "b": data \[0, 20\) overlaps tensor "a\.weight"|tensor "a\.weight": data \[0, 48\) overlaps tensor "b"/],
    ["invalid UTF-8 in a string array", (b) => { b[Buffer.from(b).indexOf(Buffer.from("yz"))] = 0xff; return b; }, /metadata "test\.words"\[1\] is not valid UTF-8/],
    ["a bool that is not 0 or 1", (b) => { b[b.length - 1] = 0; return corruptBool(b); }, /metadata "test\.flag": a bool must be 0 or 1, got 2/],
  ];
  it.each(cases)("%s", (_, corrupt, message) => {
    const bytes = corrupt(smallGguf().slice());
    let err: unknown;
    try {
      parse(bytes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GgufError);
    const msg = (err as Error).message;
    expect(msg).toMatch(message);
    expect(msg).not.toContain("\n");
  });

  it("a row that is not whole blocks", () => {
    const bytes = smallGguf().slice();
    // q.weight is Q8_0 [2, 32]: make its row 16 values long.
    const pos = infoPos(bytes, "q.weight", "n_dims") + 4;
    new DataView(bytes.buffer).setBigUint64(pos, 16n, true);
    expect(() => parse(bytes)).toThrow(/tensor "q\.weight": Q8_0 rows hold whole blocks of 32 values, but ne\[0\] is 16/);
  });

  it("a bad alignment, duplicate keys and tensors", () => {
    expect(() => parse(smallGguf([meta.u32("general.alignment", 3)]))).toThrow(/general\.alignment is "3", expected a power of two/);
    expect(() => parse(smallGguf([meta.u32("test.count", 4)]))).toThrow(/metadata key "test\.count" appears twice/);
    const { header } = encodeGgufHeader([], [
      { name: "dup", type: "F32", shape: [1] },
      { name: "dup", type: "F32", shape: [1] },
    ]);
    const file = new Uint8Array(header.length + 64);
    file.set(header);
    expect(() => parse(file)).toThrow(/tensor "dup" appears twice/);
  });

  it("a file that does not exist, or a folder", async () => {
    expect(() => readGgufHeader(path.join(tmp, "missing.gguf"))).toThrow(/missing\.gguf: cannot open \(ENOENT\)/);
    expect(() => readGgufHeader(tmp)).toThrow(/not a file|EISDIR/);
  });
});

describe("fuzzing the header", () => {
  const valid = smallGguf();
  /** The header region (where mutations matter most), the rest is tensor data. */
  const headerEnd = parse(valid).dataStart;

  it("mutated bytes give a clear GgufError or a valid parse, never a crash or a hang", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: headerEnd - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.option(fc.nat({ max: valid.length }), { nil: undefined }),
        (edits, cut) => {
          const bytes = valid.slice();
          for (const [pos, v] of edits) bytes[pos] = v;
          const input = cut === undefined ? bytes : bytes.subarray(0, cut);
          try {
            const h = parse(input);
            for (const t of h.tensors.values()) {
              expect(t.fileOffset + t.byteLength).toBeLessThanOrEqual(input.length);
              expect(t.fileOffset).toBeGreaterThanOrEqual(h.dataStart);
            }
          } catch (e) {
            expect(e).toBeInstanceOf(GgufError);
            expect((e as Error).message.startsWith("x.gguf: ")).toBe(true);
            expect((e as Error).message).not.toContain("\n");
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("mutated 64-bit counts and lengths (the fields that size allocations) are refused before allocating", () => {
    const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset);
    // Every 8-byte-aligned window of the header, set to a huge value.
    fc.assert(
      fc.property(fc.nat({ max: headerEnd - 8 }), fc.bigInt({ min: 1n << 32n, max: (1n << 64n) - 1n }), (pos, v) => {
        const bytes = valid.slice();
        dv(bytes).setBigUint64(pos, v, true);
        try {
          parse(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(GgufError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
