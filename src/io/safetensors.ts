/**
 * The safetensors format: read (headers eagerly, tensors lazily with positioned reads) and write (atomically).
 *
 * File layout (https://huggingface.co/docs/safetensors):
 *   [8 bytes: N, u64 little-endian] [N bytes: JSON header] [data region]
 *   header = { "__metadata__"?: {string: string},
 *              "<name>": { "dtype": "BF16", "shape": [d0, d1, ...], "data_offsets": [begin, end] }, ... }
 *   Offsets are relative to the start of the data region; the tensors tile it exactly (no gap, no overlap),
 *   and end - begin = prod(shape) * bytes(dtype). Data is little-endian, row-major.
 *
 * Reading never loads a whole file: `SafetensorsFile.readInto` streams one tensor (or a byte range of it)
 * straight into a caller-provided view, e.g. a weight allocated inside WASM memory.
 */
import { promises as fsp } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import { DTYPE_BYTES, isSafetensorsDType, typedArrayFor, type AnyTypedArray, type SafetensorsDType } from "./dtype.js";
import { numel } from "../shape.js";

/** Thrown for unreadable or malformed safetensors input; the message is one line naming the file (and tensor). */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

/** One tensor's entry in a header, with its absolute position in the file. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the first element in the file. */
  readonly fileOffset: number;
  readonly byteLength: number;
  /** The file holding it. */
  readonly file: string;
}

export interface SafetensorsHeader {
  readonly file: string;
  readonly fileSize: number;
  /** Byte offset where the data region starts (8 + header length). */
  readonly dataStart: number;
  readonly metadata: Record<string, string>;
  /** Tensors in the order of their data offsets. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
}

/** The spec's (and the Rust library's) limit on the JSON header: anything larger is not a real header. */
const MAX_HEADER_BYTES = 100_000_000;
/** Positioned reads are issued in pieces of at most this many bytes (fs rejects single reads over 2 GiB). */
const READ_CHUNK = 64 * 1024 * 1024;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("safetensors data is little-endian and this platform is big-endian, which is not supported");
}

/** Validates the 8-byte header length of a file of `fileSize` bytes and returns it. */
export function headerLength(file: string, fileSize: number, first8: Uint8Array): number {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${file}: ${msg}`);
  };
  if (fileSize < 8) fail(`file is ${fileSize} bytes, too short for a safetensors header (8-byte length first)`);
  const n64 = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n64} is absurd (limit ${MAX_HEADER_BYTES} bytes); not a safetensors file?`);
  const n = Number(n64);
  if (8 + n > fileSize) fail(`header length ${n} exceeds the file size ${fileSize} (truncated or not a safetensors file)`);
  if (n < 2) fail(`header length ${n} is too small for a JSON object`);
  return n;
}

/** Parses and validates the JSON header (`json`, n bytes) of a file of `fileSize` bytes. */
export function parseHeader(file: string, fileSize: number, json: Uint8Array): SafetensorsHeader {
  const fail = (msg: string): never => {
    throw new SafetensorsError(`${file}: ${msg}`);
  };
  const n = json.length;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  const j = parsed;
  if (typeof j !== "object" || j === null || Array.isArray(j)) fail(`header is not a JSON object`);
  const dataStart = 8 + n;
  const dataLen = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Array<{ name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }> = [];
  for (const [name, v] of Object.entries(j as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof v !== "object" || v === null || Array.isArray(v)) fail(`__metadata__ is not an object of strings`);
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== "string") fail(`__metadata__.${k} is ${JSON.stringify(s)}, expected a string`);
        metadata[k] = s as string;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (typeof v !== "object" || v === null || Array.isArray(v)) fail(`${where}: entry is not an object`);
    const { dtype, shape, data_offsets } = v as Record<string, unknown>;
    if (!isSafetensorsDType(dtype)) {
      fail(`${where}: unknown dtype ${JSON.stringify(dtype)}, expected one of ${Object.keys(DTYPE_BYTES).join(", ")}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(data_offsets) ||
      data_offsets.length !== 2 ||
      !data_offsets.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      data_offsets[0] > data_offsets[1]
    ) {
      fail(`${where}: data_offsets ${JSON.stringify(data_offsets)} is not [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = data_offsets as number[];
    const dt = dtype as SafetensorsDType;
    const expected = numel(shape as number[]) * DTYPE_BYTES[dt];
    if (end - begin !== expected) {
      fail(`${where}: ${dt} ${JSON.stringify(shape)} needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    if (end > dataLen) {
      fail(`${where}: data_offsets [${begin}, ${end}] run past the end of the data region (${dataLen} bytes; truncated file?)`);
    }
    entries.push({ name, dtype: dt, shape: shape as number[], begin, end });
  }
  // The tensors must tile the data region: sorted by offset, each starts where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (let i = 0; i < entries.length; i++) {
    const t = entries[i];
    if (t.begin < pos) fail(`tensor "${t.name}": data_offsets [${t.begin}, ${t.end}] overlap tensor "${entries[i - 1].name}"`);
    if (t.begin > pos) fail(`tensor "${t.name}": data_offsets start at ${t.begin}, expected ${pos} (a gap in the data region)`);
    pos = t.end;
  }
  if (pos !== dataLen) fail(`tensors cover ${pos} bytes of a ${dataLen}-byte data region (trailing bytes)`);
  const tensors = new Map<string, TensorInfo>();
  for (const t of entries) {
    tensors.set(t.name, {
      name: t.name,
      dtype: t.dtype,
      shape: t.shape,
      fileOffset: dataStart + t.begin,
      byteLength: t.end - t.begin,
      file,
    });
  }
  return { file, fileSize, dataStart, metadata, tensors };
}

/** An open safetensors file: header parsed, tensors read on demand. Close it when done. */
export class SafetensorsFile {
  private constructor(
    readonly header: SafetensorsHeader,
    private readonly fh: FileHandle,
  ) {}

  static async open(file: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await fsp.open(file, "r");
    } catch (e) {
      throw new SafetensorsError(`${file}: cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new SafetensorsError(`${file}: not a file (expected a .safetensors file)`);
      const size = st.size;
      const first8 = new Uint8Array(8);
      if (size >= 8) await readFully(fh, first8, 0, file, "header length");
      // The length is checked before the JSON is read, so an absurd length never allocates.
      const n = headerLength(file, size, first8);
      const json = new Uint8Array(n);
      await readFully(fh, json, 8, file, "header");
      return new SafetensorsFile(parseHeader(file, size, json), fh);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get file(): string {
    return this.header.file;
  }

  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  /** The tensor's header entry; throws naming the file and the missing tensor. */
  info(name: string): TensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new SafetensorsError(`${this.file}: no tensor named "${name}"`);
    return t;
  }

  /**
   * Streams bytes [byteOffset, byteOffset + dest.byteLength) of a tensor's data into `dest`.
   * `onBytes` is called after each piece with the number of bytes just read.
   */
  async readInto(name: string, dest: ArrayBufferView, byteOffset = 0, onBytes?: (n: number) => void): Promise<void> {
    const t = this.info(name);
    if (byteOffset < 0 || byteOffset + dest.byteLength > t.byteLength) {
      throw new SafetensorsError(
        `${this.file}: tensor "${name}": cannot read ${dest.byteLength} bytes at ${byteOffset} from a ${t.byteLength}-byte tensor`,
      );
    }
    const bytes = new Uint8Array(dest.buffer, dest.byteOffset, dest.byteLength);
    await readFully(this.fh, bytes, t.fileOffset + byteOffset, this.file, `tensor "${name}"`, onBytes);
  }

  /** Reads a whole tensor into a new, properly aligned typed array of its dtype. */
  async read(name: string): Promise<SafetensorsTensor> {
    const t = this.info(name);
    const data = typedArrayFor(t.dtype, new ArrayBuffer(t.byteLength), 0, numel(t.shape));
    await this.readInto(name, data);
    return { name, dtype: t.dtype, shape: t.shape, data };
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Positioned reads until `dest` is full; a short read means the file shrank under us. */
async function readFully(
  fh: FileHandle,
  dest: Uint8Array,
  position: number,
  file: string,
  what: string,
  onBytes?: (n: number) => void,
): Promise<void> {
  let done = 0;
  while (done < dest.length) {
    const want = Math.min(READ_CHUNK, dest.length - done);
    const { bytesRead } = await fh.read(dest, done, want, position + done);
    if (bytesRead === 0) {
      throw new SafetensorsError(`${file}: ${what}: unexpected end of file at byte ${position + done}`);
    }
    done += bytesRead;
    onBytes?.(bytesRead);
  }
}

/** A tensor read whole into memory (for dumps and fixtures). */
export interface SafetensorsTensor {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** BF16/F16/U16: Uint16Array of raw words; F32/F64: Float32Array/Float64Array; I64/U64: BigInt64Array/
   *  BigUint64Array; I32/U32/I16/I8: their typed arrays; U8 and BOOL: Uint8Array. `toFloat64` gives numbers. */
  readonly data: AnyTypedArray;
}

/**
 * Reads every tensor of a (small) file: for trace dumps and fixtures, not for checkpoints.
 * Returns the tensors by name (in data order) and the `__metadata__` map.
 */
export async function readSafetensors(
  file: string,
): Promise<{ tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> }> {
  const f = await SafetensorsFile.open(file);
  try {
    const tensors = new Map<string, SafetensorsTensor>();
    for (const name of f.names()) tensors.set(name, await f.read(name));
    return { tensors, metadata: { ...f.header.metadata } };
  } finally {
    await f.close();
  }
}

/** Reads only a file's header (names, dtypes, shapes, metadata). */
export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const f = await SafetensorsFile.open(file);
  await f.close();
  return f.header;
}

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** The raw little-endian elements; byteLength must be prod(shape) * bytes(dtype). */
  data: ArrayBufferView;
}

/**
 * Writes tensors (in the given order) and optional `__metadata__` to `file` atomically: a temporary file in
 * the same folder is written, flushed and renamed over the target, so readers never see a half-written file.
 * The header is padded with spaces so that the data region starts at a multiple of 8 bytes.
 */
export async function writeSafetensors(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new SafetensorsError(`${file}: metadata "${k}" must be a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const t of tensors) {
    const where = `${file}: tensor "${t.name}"`;
    if (!t.name || t.name === "__metadata__" || Object.prototype.hasOwnProperty.call(header, t.name)) {
      throw new SafetensorsError(`${where}: name is empty, reserved or repeated`);
    }
    if (!isSafetensorsDType(t.dtype)) throw new SafetensorsError(`${where}: unknown dtype ${JSON.stringify(t.dtype)}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(`${where}: shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
    }
    const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== bytes) {
      throw new SafetensorsError(`${where}: ${t.dtype} ${JSON.stringify(t.shape)} needs ${bytes} bytes, data has ${t.data.byteLength}`);
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, "utf8");
  json += " ".repeat((8 - ((8 + jsonBytes) % 8)) % 8);
  const head = Buffer.alloc(8 + Buffer.byteLength(json, "utf8"));
  head.writeBigUInt64LE(BigInt(head.length - 8), 0);
  head.write(json, 8, "utf8");

  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fail = (e: unknown): never => {
    throw new SafetensorsError(`${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  };
  const fh = await fsp.open(tmp, "wx").catch(fail);
  try {
    await writeFully(fh, head);
    for (const t of tensors) await writeFully(fh, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    await fh.sync();
    await fh.close();
    await fsp.rename(tmp, file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    fail(e);
  }
}

async function writeFully(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(READ_CHUNK, bytes.length - done));
    done += bytesWritten;
  }
}
