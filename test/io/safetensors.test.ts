import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toFloat64, type SafetensorsDType } from "../../src/io/dtype.js";
import {
  readSafetensors,
  readSafetensorsHeader,
  SafetensorsFile,
  writeSafetensors,
  type TensorToWrite,
} from "../../src/io/safetensors.js";
import { ROOT } from "../helpers/cli.js";

let tmp: string;
beforeAll(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "st-test-"));
});
afterAll(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** Builds a file by hand (independently of the writer): u64 LE header length, header text, data bytes. */
async function rawFile(name: string, header: unknown, data: Uint8Array = new Uint8Array(0), lengthField?: bigint): Promise<string> {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const h = Buffer.from(text, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthField ?? BigInt(h.length));
  const p = path.join(tmp, name);
  await fsp.writeFile(p, Buffer.concat([len, h, data]));
  return p;
}

const entry = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });

describe("reading", () => {
  it("reads a hand-built file: values, shapes, metadata, scalar and empty tensors", async () => {
    const f32 = new Float32Array([1.5, -2, 3.25, 0]);
    const i64 = new BigInt64Array([7n, -1n]);
    const data = new Uint8Array(16 + 16);
    data.set(new Uint8Array(f32.buffer), 0);
    data.set(new Uint8Array(i64.buffer), 16);
    const p = await rawFile("hand.safetensors", {
      __metadata__: { format: "pt" },
      b: entry("I64", [2], 16, 32),
      a: entry("F32", [2, 2], 0, 16),
      empty: entry("F32", [0, 3], 32, 32),
    }, data);
    const { tensors, metadata } = await readSafetensors(p);
    expect(metadata).toEqual({ format: "pt" });
    expect([...tensors.keys()]).toEqual(["a", "b", "empty"]); // in data order, not header order
    expect(tensors.get("a")!.shape).toEqual([2, 2]);
    expect([...(tensors.get("a")!.data as Float32Array)]).toEqual([1.5, -2, 3.25, 0]);
    expect(tensors.get("b")!.data).toBeInstanceOf(BigInt64Array);
    expect([...(tensors.get("b")!.data as BigInt64Array)]).toEqual([7n, -1n]);
    expect(tensors.get("empty")!.data.length).toBe(0);
  });

  it("reads the Python-written reference fixtures", async () => {
    const { tensors, metadata } = await readSafetensors(path.join(ROOT, "reference/tiny-moe-mtp/expected.safetensors"));
    const T = Number(metadata.n_prefill) + Number(metadata.n_decode);
    expect(tensors.get("input_ids")!.dtype).toBe("I64");
    expect(tensors.get("input_ids")!.shape).toEqual([T]);
    const ids = toFloat64("I64", tensors.get("input_ids")!.data);
    expect(ids.every((x) => Number.isInteger(x) && x >= 0 && x < 512)).toBe(true);
    expect(tensors.get("logits")!.shape).toEqual([T, 512]);
    // router weights are normalised in this model (norm_topk_prob): each row sums to 1
    const w = tensors.get("router.0.weights")!.data as Float64Array;
    for (let t = 0; t < T; t++) expect(w[2 * t] + w[2 * t + 1]).toBeCloseTo(1, 12);
  });

  it("reads a byte range of a tensor into a caller's view, including shared memory", async () => {
    const data = new Float64Array([0, 1, 2, 3, 4, 5]);
    const p = await rawFile("range.safetensors", { x: entry("F64", [6], 0, 48) }, new Uint8Array(data.buffer));
    const f = await SafetensorsFile.open(p);
    try {
      const into = new Float64Array(new SharedArrayBuffer(8 * 4), 8, 2);
      let got = 0;
      await f.readInto("x", into, 16, (n) => (got += n));
      expect([...into]).toEqual([2, 3]);
      expect(got).toBe(16);
      await expect(f.readInto("x", new Float64Array(2), 40)).rejects.toThrow(/cannot read 16 bytes at 40/);
      await expect(f.read("nope")).rejects.toThrow(/range\.safetensors: no tensor named "nope"/);
    } finally {
      await f.close();
    }
  });
});

describe("corrupt input gives a one-line error naming the file and the tensor", () => {
  const cases: Array<[string, () => Promise<string>, RegExp]> = [
    ["short file", async () => {
      const p = path.join(tmp, "short.safetensors");
      await fsp.writeFile(p, Buffer.from([1, 2, 3]));
      return p;
    }, /short\.safetensors: file is 3 bytes, too short/],
    ["empty file", async () => {
      const p = path.join(tmp, "empty.safetensors");
      await fsp.writeFile(p, "");
      return p;
    }, /empty\.safetensors: file is 0 bytes/],
    ["header length bigger than the file", () => rawFile("biglen.safetensors", {}, new Uint8Array(0), 1000n), /biglen\.safetensors: header length 1000 exceeds the file size 10/],
    ["absurd header length", () => rawFile("absurd.safetensors", {}, new Uint8Array(0), 1n << 62n), /absurd\.safetensors: header length \d+ is absurd/],
    ["bad JSON", () => rawFile("badjson.safetensors", "{\"a\": [1, 2"), /badjson\.safetensors: header is not valid JSON/],
    ["JSON that is not an object", () => rawFile("array.safetensors", "[1, 2]"), /array\.safetensors: header is not a JSON object/],
    ["an entry that is not an object", () => rawFile("entry.safetensors", { w: 5 }), /entry\.safetensors: tensor "w": entry is not an object/],
    ["unknown dtype", () => rawFile("dtype.safetensors", { w: entry("F8_E4M3", [2], 0, 2) }, new Uint8Array(2)), /dtype\.safetensors: tensor "w": unknown dtype "F8_E4M3"/],
    ["bad shape", () => rawFile("shape.safetensors", { w: entry("F32", [-1], 0, 4) }, new Uint8Array(4)), /shape\.safetensors: tensor "w": shape \[-1\] is not a list/],
    ["bad data_offsets", () => rawFile("offs.safetensors", { w: entry("F32", [1], 4, 0) }, new Uint8Array(4)), /offs\.safetensors: tensor "w": data_offsets \[4,0\]/],
    ["shape/size mismatch", () => rawFile("size.safetensors", { w: entry("F32", [3], 0, 8) }, new Uint8Array(8)), /size\.safetensors: tensor "w": F32 \[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/],
    ["offsets past the end", () => rawFile("oob.safetensors", { w: entry("F32", [4], 0, 16) }, new Uint8Array(8)), /oob\.safetensors: tensor "w": data_offsets \[0, 16\] run past the end of the data region \(8 bytes/],
    ["overlapping tensors", () => rawFile("overlap.safetensors", { a: entry("F32", [2], 0, 8), b: entry("F32", [2], 4, 12) }, new Uint8Array(12)), /overlap\.safetensors: tensor "b": data_offsets \[4, 12\] overlap tensor "a"/],
    ["a gap between tensors", () => rawFile("gap.safetensors", { a: entry("F32", [1], 0, 4), b: entry("F32", [1], 8, 12) }, new Uint8Array(12)), /gap\.safetensors: tensor "b": data_offsets start at 8, expected 4/],
    ["trailing bytes", () => rawFile("trail.safetensors", { a: entry("F32", [1], 0, 4) }, new Uint8Array(8)), /trail\.safetensors: tensors cover 4 bytes of a 8-byte data region/],
    ["non-string metadata", () => rawFile("meta.safetensors", { __metadata__: { n: 3 } }), /meta\.safetensors: __metadata__\.n is 3, expected a string/],
    ["a missing file", async () => path.join(tmp, "does-not-exist.safetensors"), /does-not-exist\.safetensors: cannot open \(ENOENT\)/],
    ["a folder", async () => tmp, /: not a file \(expected a \.safetensors file\)/],
  ];
  for (const [what, make, message] of cases) {
    it(what, async () => {
      const p = await make();
      const err = await readSafetensorsHeader(p).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toMatch(message);
      expect(err!.message).not.toContain("\n");
    });
  }
});

describe("writing", () => {
  const samples: Record<SafetensorsDType, ArrayBufferView> = {
    BOOL: new Uint8Array([0, 1, 1, 0, 1, 0]),
    U8: new Uint8Array([0, 255, 3, 4, 5, 6]),
    I8: new Int8Array([-128, 127, 0, -1, 2, 3]),
    I16: new Int16Array([-32768, 32767, 0, 1, 2, 3]),
    U16: new Uint16Array([65535, 0, 1, 2, 3, 4]),
    F16: new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0]),
    BF16: new Uint16Array([0x3f80, 0xc000, 0x7f7f, 0x0001, 0xff80, 0x8000]),
    I32: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, 1, 2, 3]),
    U32: new Uint32Array([2 ** 32 - 1, 0, 1, 2, 3, 4]),
    F32: new Float32Array([1.5, -0, Infinity, 1e-45, 3.4e38, -7]),
    F64: new Float64Array([Math.PI, -0, -Infinity, 5e-324, 1.7976931348623157e308, 1e-9]),
    I64: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, 1n, 2n, 3n]),
    U64: new BigUint64Array([2n ** 64n - 1n, 0n, 1n, 2n, 3n, 4n]),
  };

  it("round-trips every dtype with metadata, bit for bit", async () => {
    const tensors: TensorToWrite[] = Object.entries(samples).map(([dtype, data]) => ({
      name: `t.${dtype}`,
      dtype: dtype as SafetensorsDType,
      shape: [2, 3],
      data,
    }));
    tensors.push({ name: "scalar", dtype: "F64", shape: [], data: new Float64Array([42]) });
    const p = path.join(tmp, "all.safetensors");
    await writeSafetensors(p, tensors, { n_prefill: "9", note: "ünïcode ✓" });
    const { tensors: back, metadata } = await readSafetensors(p);
    expect(metadata).toEqual({ n_prefill: "9", note: "ünïcode ✓" });
    expect([...back.keys()]).toEqual(tensors.map((t) => t.name));
    for (const t of tensors) {
      const r = back.get(t.name)!;
      expect(r.dtype).toBe(t.dtype);
      expect(r.shape).toEqual(t.shape);
      expect(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength)).toEqual(
        Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
      );
    }
  });

  it("pads the header with spaces so the data starts 8-byte aligned", async () => {
    for (const name of ["a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "abcdefgh"]) {
      const p = path.join(tmp, `pad-${name}.safetensors`);
      await writeSafetensors(p, [{ name, dtype: "U8", shape: [1], data: new Uint8Array([9]) }]);
      const bytes = await fsp.readFile(p);
      const n = Number(bytes.readBigUInt64LE(0));
      expect((8 + n) % 8).toBe(0);
      const header = bytes.subarray(8, 8 + n).toString("utf8");
      expect(header).toMatch(/^\{.*\} *$/);
      expect(JSON.parse(header)[name]).toEqual({ dtype: "U8", shape: [1], data_offsets: [0, 1] });
      expect(bytes.length).toBe(8 + n + 1);
    }
  });

  it("rejects bad tensors and leaves no file (not even a temporary one) behind", async () => {
    const dir = await fsp.mkdtemp(path.join(tmp, "atomic-"));
    const p = path.join(dir, "out.safetensors");
    await expect(
      writeSafetensors(p, [{ name: "w", dtype: "F32", shape: [3], data: new Float32Array(2) }]),
    ).rejects.toThrow(/tensor "w": F32 \[3\] needs 12 bytes, data has 8/);
    await expect(
      writeSafetensors(p, [
        { name: "w", dtype: "F32", shape: [1], data: new Float32Array(1) },
        { name: "w", dtype: "F32", shape: [1], data: new Float32Array(1) },
      ]),
    ).rejects.toThrow(/tensor "w": name is empty, reserved or repeated/);
    expect(await fsp.readdir(dir)).toEqual([]);
  });

  it("replaces an existing file only once the new one is complete", async () => {
    const dir = await fsp.mkdtemp(path.join(tmp, "replace-"));
    const p = path.join(dir, "out.safetensors");
    await writeSafetensors(p, [{ name: "old", dtype: "U8", shape: [1], data: new Uint8Array([1]) }]);
    await expect(
      writeSafetensors(p, [{ name: "new", dtype: "F64", shape: [2], data: new Float64Array(1) }]),
    ).rejects.toThrow();
    expect([...(await readSafetensors(p)).tensors.keys()]).toEqual(["old"]);
    await writeSafetensors(p, [{ name: "new", dtype: "F64", shape: [1], data: new Float64Array([2]) }]);
    expect([...(await readSafetensors(p)).tensors.keys()]).toEqual(["new"]);
    expect(await fsp.readdir(dir)).toEqual(["out.safetensors"]);
  });

  it("fails with one line when the folder does not exist", async () => {
    await expect(
      writeSafetensors(path.join(tmp, "no/such/dir/x.safetensors"), [{ name: "a", dtype: "U8", shape: [0], data: new Uint8Array(0) }]),
    ).rejects.toThrow(/x\.safetensors/);
  });
});
