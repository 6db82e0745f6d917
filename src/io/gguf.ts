/**
 * The GGUF format (llama.cpp's model files), versions 2 and 3: read the header eagerly, tensors lazily with
 * positioned reads straight into caller memory (never a whole file in memory).
 *
 * File layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), all little-endian:
 *   magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
 *   kv_count x { string key | u32 value_type | value }
 *   tensor_count x { string name | u32 n_dims | n_dims x u64 ne | u32 ggml_type | u64 offset }
 *   padding to `general.alignment` (default 32) | data region
 *   string = u64 length + UTF-8 bytes; array = u32 element type + u64 count + elements.
 * A tensor's `ne` lists its dimensions innermost first (ne[0] is the row length), the reverse of PyTorch's
 * shape; its offset is relative to the data region and a multiple of the alignment; its bytes are
 * prod(ne) / blockSize * typeSize of its ggml type (`ggml_types.ts`). Version 1 (u32 counts) is long gone.
 *
 * Why not `@huggingface/gguf` (evaluated, 0.4.6): it parses metadata and tensor infos well, but on a
 * truncated local file it returns tensor infos with empty names and zero shapes instead of an error, and it
 * does not check tensor extents, overlaps or types; the checks are the part that matters here, and the
 * parser itself is small, so this file does both.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { promises as fsp } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { GGML_TYPES_BY_ID, type GgmlTypeInfo } from "./ggml_types.js";

/** Thrown for unreadable or malformed GGUF input; the message is one line naming the file (and tensor or key). */
export class GgufError extends Error {
  override name = "GgufError";
}

/** GGUF metadata value types (`gguf_type`). */
export enum GgufType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** Bytes of each fixed-size value type. */
const FIXED_SIZE: Partial<Record<GgufType, number>> = {
  [GgufType.UINT8]: 1,
  [GgufType.INT8]: 1,
  [GgufType.UINT16]: 2,
  [GgufType.INT16]: 2,
  [GgufType.UINT32]: 4,
  [GgufType.INT32]: 4,
  [GgufType.FLOAT32]: 4,
  [GgufType.BOOL]: 1,
  [GgufType.UINT64]: 8,
  [GgufType.INT64]: 8,
  [GgufType.FLOAT64]: 8,
};

/**
 * A metadata value: numbers for 8-64-bit integers that fit a double exactly and for floats (a 64-bit integer
 * beyond 2^53 is a bigint), booleans, strings, and arrays of those (arrays of arrays are allowed).
 */
export type GgufScalar = number | bigint | boolean | string;
export type GgufValue = GgufScalar | GgufValue[];

export interface GgufMetadataEntry {
  readonly type: GgufType;
  /** Element type of an array (its first level). */
  readonly arrayType?: GgufType;
  readonly value: GgufValue;
}

export interface GgufTensorInfo {
  readonly name: string;
  /** The ggml type (`ggml_types.ts`). */
  readonly type: GgmlTypeInfo;
  /** Dimensions as stored, innermost first. */
  readonly ne: readonly number[];
  /** The same dimensions in PyTorch order (outermost first): ne reversed. */
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's data in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
  /** Bytes of one row (ne[0] elements). */
  readonly rowBytes: number;
  readonly file: string;
}

export interface GgufHeader {
  readonly file: string;
  readonly fileSize: number;
  readonly version: number;
  readonly alignment: number;
  /** Absolute offset of the data region. */
  readonly dataStart: number;
  /** Metadata in file order. */
  readonly metadata: ReadonlyMap<string, GgufMetadataEntry>;
  /** Tensors in file order (of their infos). */
  readonly tensors: ReadonlyMap<string, GgufTensorInfo>;
}

/** Bytes that can be read at absolute positions; `read` may return a view valid until the next call. */
export interface ByteSource {
  readonly size: number;
  read(position: number, length: number): Uint8Array;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
const MAX_DIMS = 4;
/** Sanity limits on counts (far above any real model, far below what would exhaust memory). */
const MAX_TENSORS = 1 << 20;
const MAX_KV = 1 << 20;
const MAX_ARRAY_DEPTH = 4;
const MAX_NAME_BYTES = 1 << 16;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("GGUF data is little-endian and this platform is big-endian, which is not supported");
}

/** What is being read, for error messages: built only when an error is reported. */
type What = string | (() => string);
const describe = (w: What): string => (typeof w === "string" ? w : w());

/** Reads values sequentially from a ByteSource, failing with one line naming the file and what was read. */
class Cursor {
  pos = 0;
  readonly utf8 = new TextDecoder("utf-8", { fatal: true });
  constructor(
    private readonly src: ByteSource,
    private readonly fail: (msg: string) => never,
  ) {}

  remaining(): number {
    return this.src.size - this.pos;
  }

  bytes(n: number, what: What): Uint8Array {
    if (n > this.remaining()) {
      this.fail(`${describe(what)}: needs ${n} bytes at byte ${this.pos}, but the file ends at ${this.src.size} (truncated?)`);
    }
    const b = this.src.read(this.pos, n);
    this.pos += n;
    return b;
  }

  private view(n: number, what: What): DataView {
    const b = this.bytes(n, what);
    return new DataView(b.buffer, b.byteOffset, n);
  }

  u32(what: What): number {
    return this.view(4, what).getUint32(0, true);
  }

  /** A u64 as a number; values past 2^53 fail (no count or size in a real file gets near). */
  u64(what: What): number {
    const v = this.view(8, what).getBigUint64(0, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${describe(what)} is ${v}, which is absurd`);
    return Number(v);
  }

  string(what: What, maxBytes = Number.MAX_SAFE_INTEGER): string {
    const n = this.u64(() => `${describe(what)} (length)`);
    if (n > maxBytes) this.fail(`${describe(what)}: length ${n} is absurd (limit ${maxBytes} bytes)`);
    const b = this.bytes(n, what);
    try {
      return this.utf8.decode(b);
    } catch {
      return this.fail(`${describe(what)} is not valid UTF-8`);
    }
  }

  scalar(type: GgufType, what: What): GgufScalar {
    switch (type) {
      case GgufType.UINT8:
        return this.view(1, what).getUint8(0);
      case GgufType.INT8:
        return this.view(1, what).getInt8(0);
      case GgufType.UINT16:
        return this.view(2, what).getUint16(0, true);
      case GgufType.INT16:
        return this.view(2, what).getInt16(0, true);
      case GgufType.UINT32:
        return this.view(4, what).getUint32(0, true);
      case GgufType.INT32:
        return this.view(4, what).getInt32(0, true);
      case GgufType.FLOAT32:
        return this.view(4, what).getFloat32(0, true);
      case GgufType.FLOAT64:
        return this.view(8, what).getFloat64(0, true);
      case GgufType.BOOL: {
        const b = this.view(1, what).getUint8(0);
        if (b > 1) this.fail(`${describe(what)}: a bool must be 0 or 1, got ${b}`);
        return b === 1;
      }
      case GgufType.UINT64:
        return exact(this.view(8, what).getBigUint64(0, true));
      case GgufType.INT64:
        return exact(this.view(8, what).getBigInt64(0, true));
      case GgufType.STRING:
        return this.string(what);
      default:
        return this.fail(`${describe(what)}: unknown value type ${type}`);
    }
  }

  /** A value of `type`; arrays read their element type and count first. */
  value(type: GgufType, what: What, depth = 0): { value: GgufValue; arrayType?: GgufType } {
    if (type !== GgufType.ARRAY) return { value: this.scalar(type, what) };
    if (depth >= MAX_ARRAY_DEPTH) this.fail(`${describe(what)}: arrays nested more than ${MAX_ARRAY_DEPTH} deep`);
    const elemType = this.u32(() => `${describe(what)} (array element type)`);
    if (!(elemType in GgufType)) this.fail(`${describe(what)}: unknown array element type ${elemType}`);
    const count = this.u64(() => `${describe(what)} (array length)`);
    // Every element takes at least one byte (a string 8, a nested array 12), so a count the rest of the
    // file cannot hold is refused before anything is allocated.
    const minSize = FIXED_SIZE[elemType as GgufType] ?? (elemType === GgufType.STRING ? 8 : 12);
    if (count * minSize > this.remaining()) {
      this.fail(`${describe(what)}: array of ${count} ${GgufType[elemType]} values cannot fit in the ${this.remaining()} bytes left (truncated or corrupt)`);
    }
    const out: GgufValue[] = new Array(count);
    const element = (i: number) => () => `${describe(what)}[${i}]`;
    if (elemType === GgufType.STRING) {
      // The tokenizer's 150k-string arrays: a tight loop (no per-element closures or views).
      for (let i = 0; i < count; i++) {
        const lb = this.bytes(8, element(i));
        const n = lb[0] + lb[1] * 2 ** 8 + lb[2] * 2 ** 16 + lb[3] * 2 ** 24 + (lb[4] + lb[5] * 2 ** 8 + lb[6] * 2 ** 16 + lb[7] * 2 ** 24) * 2 ** 32;
        if (n > this.remaining()) this.bytes(n, element(i));
        try {
          out[i] = this.utf8.decode(this.bytes(n, element(i)));
        } catch {
          this.fail(`${element(i)()} is not valid UTF-8`);
        }
      }
    } else if (elemType === GgufType.INT32 || elemType === GgufType.UINT32 || elemType === GgufType.FLOAT32) {
      const b = this.bytes(4 * count, what);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let i = 0; i < count; i++) {
        out[i] = elemType === GgufType.INT32 ? dv.getInt32(4 * i, true) : elemType === GgufType.UINT32 ? dv.getUint32(4 * i, true) : dv.getFloat32(4 * i, true);
      }
    } else {
      for (let i = 0; i < count; i++) out[i] = this.value(elemType, element(i), depth + 1).value;
    }
    return { value: out, arrayType: elemType };
  }
}

function exact(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/** Parses and checks a GGUF header from `src` (a file of `src.size` bytes); `file` names it in errors. */
export function parseGgufHeader(file: string, src: ByteSource): GgufHeader {
  const fail = (msg: string): never => {
    throw new GgufError(`${file}: ${msg}`);
  };
  const c = new Cursor(src, fail);
  if (src.size < 24) fail(`file is ${src.size} bytes, too short for a GGUF header (24 bytes: magic, version, counts)`);
  const magic = c.u32("magic");
  if (magic !== MAGIC) {
    const shown = Buffer.from(src.read(0, 4)).toString("latin1").replace(/[^\x20-\x7e]/g, "?");
    fail(`not a GGUF file (starts with "${shown}", expected "GGUF")`);
  }
  const version = c.u32("version");
  if (version !== 2 && version !== 3) {
    const hint = version === 1 ? " (GGUF v1, which llama.cpp dropped in 2023)" : version >= 1 << 16 ? " (a big-endian file?)" : "";
    fail(`GGUF version ${version} is not supported${hint}, expected 2 or 3`);
  }
  const tensorCount = c.u64("tensor count");
  const kvCount = c.u64("metadata count");
  if (tensorCount > MAX_TENSORS) fail(`tensor count ${tensorCount} is absurd (limit ${MAX_TENSORS})`);
  if (kvCount > MAX_KV) fail(`metadata count ${kvCount} is absurd (limit ${MAX_KV})`);

  const metadata = new Map<string, GgufMetadataEntry>();
  for (let i = 0; i < kvCount; i++) {
    const key = c.string(`metadata key ${i}`, MAX_NAME_BYTES);
    if (metadata.has(key)) fail(`metadata key ${JSON.stringify(key)} appears twice`);
    const type = c.u32(`metadata ${JSON.stringify(key)} (type)`);
    if (!(type in GgufType)) fail(`metadata ${JSON.stringify(key)} has unknown value type ${type}`);
    const { value, arrayType } = c.value(type, `metadata ${JSON.stringify(key)}`);
    metadata.set(key, arrayType === undefined ? { type, value } : { type, arrayType, value });
  }

  let alignment = DEFAULT_ALIGNMENT;
  const al = metadata.get("general.alignment");
  if (al !== undefined) {
    const v = al.value;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || (v & (v - 1)) !== 0 || v > 1 << 30) {
      fail(`general.alignment is ${JSON.stringify(String(v))}, expected a power of two`);
    }
    alignment = v as number;
  }

  interface Raw {
    name: string;
    type: GgmlTypeInfo;
    ne: number[];
    offset: number;
    bytes: number;
    rowBytes: number;
  }
  const raw: Raw[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = c.string(`tensor info ${i} (name)`, MAX_NAME_BYTES);
    const where = `tensor ${JSON.stringify(name)}`;
    if (seen.has(name)) fail(`${where} appears twice`);
    seen.add(name);
    const nDims = c.u32(`${where} (n_dims)`);
    if (nDims > MAX_DIMS) fail(`${where}: ${nDims} dimensions, expected at most ${MAX_DIMS}`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(c.u64(`${where} (ne[${d}])`));
    const typeId = c.u32(`${where} (type)`);
    const type = GGML_TYPES_BY_ID.get(typeId);
    if (!type) fail(`${where}: unknown ggml type id ${typeId}`);
    const offset = c.u64(`${where} (offset)`);
    const t = type as GgmlTypeInfo;
    const n = ne.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(n)) fail(`${where}: dimensions [${ne.join(", ")}] are absurd`);
    const row = ne.length ? ne[0] : 1;
    if (row % t.blockSize !== 0) {
      fail(`${where}: ${t.name} rows hold whole blocks of ${t.blockSize} values, but ne[0] is ${row}`);
    }
    if (offset % alignment !== 0) fail(`${where}: data offset ${offset} is not a multiple of the alignment ${alignment}`);
    raw.push({ name, type: t, ne, offset, bytes: (n / t.blockSize) * t.typeSize, rowBytes: (row / t.blockSize) * t.typeSize });
  }
  const dataStart = Math.ceil(c.pos / alignment) * alignment;
  if (dataStart > src.size && raw.length > 0) fail(`the data region would start at byte ${dataStart}, past the end of the file (${src.size} bytes)`);
  const dataLen = Math.max(0, src.size - dataStart);
  for (const t of raw) {
    if (t.offset + t.bytes > dataLen) {
      fail(`tensor ${JSON.stringify(t.name)}: ${t.type.name} [${[...t.ne].reverse().join(", ")}] needs bytes [${t.offset}, ${t.offset + t.bytes}) of a ${dataLen}-byte data region (truncated file?)`);
    }
  }
  // Tensors may leave gaps (alignment padding) but must not share bytes.
  const byOffset = [...raw].sort((a, b) => a.offset - b.offset || a.bytes - b.bytes);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1];
    const t = byOffset[i];
    if (t.offset < prev.offset + prev.bytes) {
      fail(`tensor ${JSON.stringify(t.name)}: data [${t.offset}, ${t.offset + t.bytes}) overlaps tensor ${JSON.stringify(prev.name)} [${prev.offset}, ${prev.offset + prev.bytes})`);
    }
  }
  const tensors = new Map<string, GgufTensorInfo>();
  for (const t of raw) {
    tensors.set(t.name, {
      name: t.name,
      type: t.type,
      ne: t.ne,
      shape: [...t.ne].reverse(),
      fileOffset: dataStart + t.offset,
      byteLength: t.bytes,
      rowBytes: t.rowBytes,
      file,
    });
  }
  return { file, fileSize: src.size, version, alignment, dataStart, metadata, tensors };
}

/** A ByteSource over a file descriptor: positioned reads through a window that grows as needed. */
function fileSource(fd: number, size: number, file: string): ByteSource {
  let buf = new Uint8Array(1 << 20);
  let start = 0;
  let end = 0;
  return {
    size,
    read(position, length) {
      if (position < start || position + length > end) {
        if (length > buf.length) buf = new Uint8Array(Math.max(length, 2 * buf.length));
        const want = Math.min(buf.length, size - position);
        let done = 0;
        while (done < want) {
          const n = readSync(fd, buf, done, want - done, position + done);
          if (n === 0) throw new GgufError(`${file}: unexpected end of file at byte ${position + done}`);
          done += n;
        }
        start = position;
        end = position + want;
      }
      return buf.subarray(position - start, position - start + length);
    },
  };
}

/** A ByteSource over bytes in memory (tests, fuzzing). */
export function bytesSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: (p, n) => bytes.subarray(p, p + n) };
}

/** Reads only a file's header (metadata and tensor infos). */
export function readGgufHeader(file: string): GgufHeader {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (e) {
    throw new GgufError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new GgufError(`${file}: not a file (expected a .gguf file)`);
    return parseGgufHeader(file, fileSource(fd, st.size, file));
  } finally {
    closeSync(fd);
  }
}

/** Positioned reads are issued in pieces of at most this many bytes (fs rejects single reads over 2 GiB). */
const READ_CHUNK = 64 * 1024 * 1024;

/** An open GGUF file: header parsed, tensors read on demand. Close it when done. */
export class GgufFile {
  private constructor(
    readonly header: GgufHeader,
    private readonly fh: FileHandle,
  ) {}

  static async open(file: string): Promise<GgufFile> {
    const header = readGgufHeader(file);
    let fh: FileHandle;
    try {
      fh = await fsp.open(file, "r");
    } catch (e) {
      throw new GgufError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const size = (await fh.stat()).size;
    if (size !== header.fileSize) {
      await fh.close();
      throw new GgufError(`${file}: changed size while being opened (${header.fileSize} -> ${size} bytes)`);
    }
    return new GgufFile(header, fh);
  }

  get file(): string {
    return this.header.file;
  }

  /** The tensor's info; throws naming the file and the missing tensor. */
  info(name: string): GgufTensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new GgufError(`${this.file}: no tensor named ${JSON.stringify(name)}`);
    return t;
  }

  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  /**
   * Streams bytes [byteOffset, byteOffset + dest.byteLength) of a tensor's data into `dest`.
   * `onBytes` is called after each piece with the number of bytes just read.
   */
  async readInto(name: string, dest: ArrayBufferView, byteOffset = 0, onBytes?: (n: number) => void): Promise<void> {
    const t = this.info(name);
    if (byteOffset < 0 || byteOffset + dest.byteLength > t.byteLength) {
      throw new GgufError(`${this.file}: tensor ${JSON.stringify(name)}: cannot read ${dest.byteLength} bytes at ${byteOffset} from a ${t.byteLength}-byte tensor`);
    }
    const bytes = new Uint8Array(dest.buffer, dest.byteOffset, dest.byteLength);
    let done = 0;
    while (done < bytes.length) {
      const want = Math.min(READ_CHUNK, bytes.length - done);
      const pos = t.fileOffset + byteOffset + done;
      const { bytesRead } = await this.fh.read(bytes, done, want, pos);
      if (bytesRead === 0) throw new GgufError(`${this.file}: tensor ${JSON.stringify(name)}: unexpected end of file at byte ${pos}`);
      done += bytesRead;
      onBytes?.(bytesRead);
    }
  }

  /** A whole tensor's raw bytes in a new buffer (small tensors, tests). */
  async readBytes(name: string): Promise<Uint8Array> {
    const out = new Uint8Array(this.info(name).byteLength);
    await this.readInto(name, out);
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
