/**
 * Where checkpoint bytes come from in the browser: a File the user picked (read by slices, nothing uploaded) or
 * a URL (HTTP Range requests; a server that ignores Range is read once, whole). The browser's `node:fs`
 * (./fs.ts) serves these under mounted paths, so the project's loaders run unchanged.
 */
export interface ByteSource {
  readonly size: number;
  /** Up to `length` bytes from `position` (fewer only at the end). */
  read(position: number, length: number): Promise<Uint8Array>;
  /** The same, synchronously (a worker may block: FileReaderSync, synchronous XHR). */
  readSync(position: number, length: number): Uint8Array;
  /** The whole content, when it is already in memory. */
  readonly bytes?: Uint8Array;
}

declare const FileReaderSync: { new (): { readAsArrayBuffer(b: Blob): ArrayBuffer } };

export function blobSource(blob: Blob): ByteSource {
  return {
    size: blob.size,
    async read(position, length) {
      return new Uint8Array(await blob.slice(position, Math.min(blob.size, position + length)).arrayBuffer());
    },
    readSync(position, length) {
      return new Uint8Array(new FileReaderSync().readAsArrayBuffer(blob.slice(position, Math.min(blob.size, position + length))));
    },
  };
}

export function bytesSource(bytes: Uint8Array): ByteSource {
  const readSync = (p: number, n: number) => bytes.subarray(p, Math.min(bytes.length, p + n));
  return { size: bytes.length, bytes, readSync, read: async (p, n) => readSync(p, n) };
}

export function urlSource(url: string, size: number): ByteSource {
  let whole: Promise<Uint8Array> | null = null;
  let wholeSync: Uint8Array | null = null;
  return {
    size,
    async read(position, length) {
      const end = Math.min(size, position + length);
      if (end <= position) return new Uint8Array(0);
      if (whole) return (await whole).subarray(position, end);
      const res = await fetch(url, { headers: { Range: `bytes=${position}-${end - 1}` } });
      if (res.status === 206) return new Uint8Array(await res.arrayBuffer());
      if (res.status === 200) {
        // No Range support: keep the whole file and serve every later read from it.
        whole ??= res.arrayBuffer().then((b) => new Uint8Array(b));
        return (await whole).subarray(position, end);
      }
      throw new Error(`${url}: HTTP ${res.status} ${res.statusText}`);
    },
    readSync(position, length) {
      const end = Math.min(size, position + length);
      if (end <= position) return new Uint8Array(0);
      if (wholeSync) return wholeSync.subarray(position, end);
      const xhr = new XMLHttpRequest();
      xhr.open("GET", url, false);
      xhr.responseType = "arraybuffer";
      xhr.setRequestHeader("Range", `bytes=${position}-${end - 1}`);
      xhr.send();
      if (xhr.status === 206) return new Uint8Array(xhr.response as ArrayBuffer);
      if (xhr.status === 200) {
        wholeSync = new Uint8Array(xhr.response as ArrayBuffer);
        return wholeSync.subarray(position, end);
      }
      throw new Error(`${url}: HTTP ${xhr.status} ${xhr.statusText}`);
    },
  };
}
