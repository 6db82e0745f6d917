/**
 * Writing GGUF v3 files (the layout is described in `gguf.ts`): metadata with explicit value types, tensor
 * infos, alignment padding, then each tensor's raw bytes (any ggml type, already encoded). Written to a
 * temporary file in the same folder and renamed, so readers never see half a file.
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { GGML_TYPES_BY_NAME, ggmlByteLength } from "./ggml_types.js";
import { GgufError, GgufType, type GgufValue } from "./gguf.js";

export interface GgufMetaToWrite {
  readonly key: string;
  readonly type: GgufType;
  /** For arrays: the element type (nested arrays are not written). */
  readonly arrayType?: GgufType;
  readonly value: GgufValue;
}

export interface GgufTensorToWrite {
  readonly name: string;
  /** ggml type name (F32, BF16, Q8_0, ...). */
  readonly type: string;
  /** PyTorch order (outermost first); written reversed as ne. */
  readonly shape: readonly number[];
  /** The encoded bytes: ggmlByteLength(type, shape) of them. */
  readonly data: Uint8Array;
}

/** Shorthands for the usual metadata types. */
export const meta = {
  str: (key: string, value: string): GgufMetaToWrite => ({ key, type: GgufType.STRING, value }),
  u32: (key: string, value: number): GgufMetaToWrite => ({ key, type: GgufType.UINT32, value }),
  f32: (key: string, value: number): GgufMetaToWrite => ({ key, type: GgufType.FLOAT32, value }),
  bool: (key: string, value: boolean): GgufMetaToWrite => ({ key, type: GgufType.BOOL, value }),
  strs: (key: string, value: string[]): GgufMetaToWrite => ({ key, type: GgufType.ARRAY, arrayType: GgufType.STRING, value }),
  i32s: (key: string, value: number[]): GgufMetaToWrite => ({ key, type: GgufType.ARRAY, arrayType: GgufType.INT32, value }),
};

class Bytes {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number | bigint): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.push(b);
  }
  scalar(type: GgufType, v: GgufValue, what: string): void {
    const b = Buffer.alloc(8);
    const num = () => {
      if (typeof v !== "number" && typeof v !== "bigint") throw new GgufError(`${what}: expected a number, got ${typeof v}`);
      return v;
    };
    switch (type) {
      case GgufType.UINT8: b.writeUInt8(Number(num())); return this.push(b.subarray(0, 1));
      case GgufType.INT8: b.writeInt8(Number(num())); return this.push(b.subarray(0, 1));
      case GgufType.UINT16: b.writeUInt16LE(Number(num())); return this.push(b.subarray(0, 2));
      case GgufType.INT16: b.writeInt16LE(Number(num())); return this.push(b.subarray(0, 2));
      case GgufType.UINT32: b.writeUInt32LE(Number(num())); return this.push(b.subarray(0, 4));
      case GgufType.INT32: b.writeInt32LE(Number(num())); return this.push(b.subarray(0, 4));
      case GgufType.FLOAT32: b.writeFloatLE(Number(num())); return this.push(b.subarray(0, 4));
      case GgufType.FLOAT64: b.writeDoubleLE(Number(num())); return this.push(b);
      case GgufType.UINT64: b.writeBigUInt64LE(BigInt(num())); return this.push(b);
      case GgufType.INT64: b.writeBigInt64LE(BigInt(num())); return this.push(b);
      case GgufType.BOOL:
        if (typeof v !== "boolean") throw new GgufError(`${what}: expected a boolean, got ${typeof v}`);
        b.writeUInt8(v ? 1 : 0);
        return this.push(b.subarray(0, 1));
      case GgufType.STRING:
        if (typeof v !== "string") throw new GgufError(`${what}: expected a string, got ${typeof v}`);
        return this.str(v);
      default:
        throw new GgufError(`${what}: cannot write value type ${type}`);
    }
  }
  concat(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

/** The header bytes (everything before the data region, padding included) and each tensor's data offset. */
export function encodeGgufHeader(
  metadata: readonly GgufMetaToWrite[],
  tensors: readonly Omit<GgufTensorToWrite, "data">[],
  alignment = 32,
): { header: Buffer; offsets: number[] } {
  const h = new Bytes();
  h.push(Buffer.from("GGUF", "latin1"));
  h.u32(3);
  h.u64(tensors.length);
  h.u64(metadata.length);
  for (const m of metadata) {
    h.str(m.key);
    h.u32(m.type);
    if (m.type === GgufType.ARRAY) {
      if (m.arrayType === undefined || !Array.isArray(m.value)) throw new GgufError(`metadata "${m.key}": an array needs arrayType and an array value`);
      h.u32(m.arrayType);
      h.u64(m.value.length);
      m.value.forEach((v, i) => h.scalar(m.arrayType!, v, `metadata "${m.key}"[${i}]`));
    } else {
      h.scalar(m.type, m.value, `metadata "${m.key}"`);
    }
  }
  const offsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    const type = GGML_TYPES_BY_NAME.get(t.type);
    if (!type) throw new GgufError(`tensor "${t.name}": unknown ggml type ${t.type}`);
    h.str(t.name);
    h.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) h.u64(d);
    h.u32(type.id);
    h.u64(offset);
    offsets.push(offset);
    offset += Math.ceil(ggmlByteLength(t.type, t.shape) / alignment) * alignment;
  }
  const pad = (alignment - (h.length % alignment)) % alignment;
  h.push(Buffer.alloc(pad));
  return { header: h.concat(), offsets };
}

/** Writes a GGUF v3 file atomically. A `general.alignment` entry in `metadata` sets the alignment. */
export async function writeGguf(file: string, metadata: readonly GgufMetaToWrite[], tensors: readonly GgufTensorToWrite[]): Promise<void> {
  await writeGgufStreamed(file, metadata, tensors, (i) => tensors[i].data);
}

/**
 * Writes a GGUF v3 file atomically, asking `data(i)` for tensor i's encoded bytes only when its turn comes
 * (all at once, or as consecutive pieces), so a file larger than memory streams through one piece at a time.
 * The header (which needs every tensor's name, type and shape) goes first.
 */
export async function writeGgufStreamed(
  file: string,
  metadata: readonly GgufMetaToWrite[],
  tensors: readonly Omit<GgufTensorToWrite, "data">[],
  data: (i: number) => Uint8Array | Promise<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<void> {
  const al = metadata.find((m) => m.key === "general.alignment");
  const alignment = al ? Number(al.value) : 32;
  const { header } = encodeGgufHeader(metadata, tensors, alignment);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fh: Awaited<ReturnType<typeof fsp.open>>;
  try {
    fh = await fsp.open(tmp, "wx");
  } catch (e) {
    throw new GgufError(`${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    await fh.write(header);
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i];
      const want = ggmlByteLength(t.type, t.shape);
      const d = await data(i);
      let written = 0;
      for await (const piece of d instanceof Uint8Array ? [d] : d) {
        written += piece.byteLength;
        if (written > want) break;
        await fh.write(piece);
      }
      if (written !== want) throw new GgufError(`${file}: tensor "${t.name}": ${t.type} [${t.shape.join(", ")}] needs ${want} bytes, data has ${written}`);
      const pad = (alignment - (written % alignment)) % alignment;
      if (pad) await fh.write(Buffer.alloc(pad));
    }
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    if (e instanceof GgufError) throw e;
    throw new GgufError(`${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
