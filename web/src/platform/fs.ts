/**
 * The browser's `node:fs` and `node:fs/promises`: the subset the project's loaders use (open + positioned
 * read, stat, readFile, access, readdir; and synchronously, as the model worker may block: existsSync,
 * statSync, readFileSync, readdirSync, openSync / fstatSync / readSync / closeSync), over byte sources mounted at
 * absolute paths. Read-only: there is no disk to write to in a page.
 */
import type { ByteSource } from "./byte_source.js";

const mounts = new Map<string, ByteSource>();

/** Makes `source` readable at absolute path `file`. */
export function mount(file: string, source: ByteSource): void {
  mounts.set(normal(file), source);
}

/** Forgets every file under `dir`. */
export function unmountAll(dir: string): void {
  const d = normal(dir) + "/";
  for (const k of [...mounts.keys()]) if (k.startsWith(d)) mounts.delete(k);
}

function normal(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, "") : p;
}

function enoent(p: string, op: string): Error {
  return Object.assign(new Error(`ENOENT: no such file or directory, ${op} '${p}'`), { code: "ENOENT", path: p });
}

function isDir(p: string): boolean {
  const d = normal(p) === "/" ? "/" : normal(p) + "/";
  for (const k of mounts.keys()) if (k.startsWith(d)) return true;
  return false;
}

interface Stats {
  size: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

function statOf(p: string): Stats | null {
  const s = mounts.get(normal(p));
  if (s) return { size: s.size, isFile: () => true, isDirectory: () => false };
  if (isDir(p)) return { size: 0, isFile: () => false, isDirectory: () => true };
  return null;
}

function source(p: string, op: string): ByteSource {
  const s = mounts.get(normal(p));
  if (!s) throw enoent(p, op);
  return s;
}

const decode = (b: Uint8Array, encoding?: unknown): string | Uint8Array => (encoding ? new TextDecoder().decode(b) : b);
const encodingOf = (o: unknown): unknown => (typeof o === "string" ? o : (o as { encoding?: unknown } | undefined)?.encoding);

export function existsSync(p: string): boolean {
  return statOf(p) !== null;
}

export function statSync(p: string): Stats {
  const s = statOf(p);
  if (!s) throw enoent(p, "stat");
  return s;
}

export function readFileSync(p: string, options?: unknown): string | Uint8Array {
  const s = source(p, "open");
  return decode(s.bytes ?? s.readSync(0, s.size), encodingOf(options));
}

/** The names directly under a mounted folder. */
export function readdirSync(p: string): string[] {
  if (!isDir(p)) throw enoent(p, "scandir");
  const d = normal(p) === "/" ? "/" : normal(p) + "/";
  const names = new Set<string>();
  for (const k of mounts.keys()) if (k.startsWith(d)) names.add(k.slice(d.length).split("/")[0]);
  return [...names].sort();
}

/** File descriptors: indexes into this table of open paths. */
const descriptors: Array<string | null> = [];

export function openSync(p: string): number {
  source(p, "open");
  descriptors.push(p);
  return descriptors.length - 1;
}

function pathOf(fd: number): string {
  const p = descriptors[fd];
  if (p == null) throw Object.assign(new Error(`EBADF: bad file descriptor ${fd}`), { code: "EBADF" });
  return p;
}

export function fstatSync(fd: number): Stats {
  return statSync(pathOf(fd));
}

export function readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number {
  const got = source(pathOf(fd), "read").readSync(position, length);
  buffer.set(got, offset);
  return got.length;
}

export function closeSync(fd: number): void {
  pathOf(fd);
  descriptors[fd] = null;
}

export class FileHandle {
  constructor(
    private readonly s: ByteSource,
    readonly path: string,
  ) {}
  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    const got = await this.s.read(position, length);
    buffer.set(got, offset);
    return { bytesRead: got.length, buffer };
  }
  async stat(): Promise<Stats> {
    return statSync(this.path);
  }
  async readFile(options?: unknown): Promise<string | Uint8Array> {
    return decode(await this.s.read(0, this.s.size), encodingOf(options));
  }
  async close(): Promise<void> {}
}

export async function open(p: string): Promise<FileHandle> {
  return new FileHandle(source(p, "open"), p);
}

export async function stat(p: string): Promise<Stats> {
  return statSync(p);
}

export async function access(p: string): Promise<void> {
  if (!existsSync(p)) throw enoent(p, "access");
}

export async function readFile(p: string, options?: unknown): Promise<string | Uint8Array> {
  const s = source(p, "open");
  return decode(s.bytes ?? (await s.read(0, s.size)), encodingOf(options));
}

export async function readdir(p: string): Promise<string[]> {
  return readdirSync(p);
}

export const promises = { open, stat, access, readFile, readdir };
export default { ...promises, promises, existsSync, statSync, readFileSync, readdirSync, openSync, fstatSync, readSync, closeSync };
