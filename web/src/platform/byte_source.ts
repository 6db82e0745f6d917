/**
 * Where checkpoint bytes come from in the browser: a File the user picked (read by slices, nothing uploaded) or
 * a URL (HTTP Range requests; a server that ignores Range is read once, whole). The browser's `node:fs`
 * (./fs.ts) serves these under mounted paths, so the project's loaders run unchanged.
 */
export interface ByteSource {
  readonly size: number;
  /** Up to `length` bytes from `position` (fewer only at the end). */
  read(position: number, length: number): Promise<Uint8Array>;
  /** The whole content, when it is already in memory (for synchronous reads). */
  readonly bytes?: Uint8Array;
}

export function blobSource(blob: Blob): ByteSource {
  return {
    size: blob.size,
    async read(position, length) {
      return new Uint8Array(await blob.slice(position, Math.min(blob.size, position + length)).arrayBuffer());
    },
  };
}

export function bytesSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, bytes, read: async (p, n) => bytes.subarray(p, Math.min(bytes.length, p + n)) };
}

export function urlSource(url: string, size: number): ByteSource {
  let whole: Promise<Uint8Array> | null = null;
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
  };
}
