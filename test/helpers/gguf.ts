/** Test helpers: GGUF headers with changed metadata, and rewritten GGUF files. */
import path from "node:path";
import { GgufFile, GgufType, readGgufHeader, type GgufHeader, type GgufMetadataEntry } from "../../src/io/gguf.js";
import { writeGguf, type GgufMetaToWrite, type GgufTensorToWrite } from "../../src/io/gguf_write.js";
import { REFERENCE_DIR } from "./reference.js";

export const GGUF_FIXTURES = ["gguf-q8_0", "gguf-q4_k_m"] as const;

export function ggufFixture(name: string): string {
  return path.join(REFERENCE_DIR, "gguf", name, "model.gguf");
}

/** A header whose metadata is changed by `edit` (set a value, or delete with undefined). */
export function withMetadata(h: GgufHeader, edit: Record<string, GgufMetadataEntry | undefined>): GgufHeader {
  const metadata = new Map(h.metadata);
  for (const [k, v] of Object.entries(edit)) {
    if (v === undefined) metadata.delete(k);
    else metadata.set(k, v);
  }
  return { ...h, metadata };
}

export const u32 = (value: number): GgufMetadataEntry => ({ type: GgufType.UINT32, value });
export const f32 = (value: number): GgufMetadataEntry => ({ type: GgufType.FLOAT32, value: Math.fround(value) });
export const bool = (value: boolean): GgufMetadataEntry => ({ type: GgufType.BOOL, value });
export const str = (value: string): GgufMetadataEntry => ({ type: GgufType.STRING, value });

export interface GgufRewrite {
  /** Metadata changes: a new entry, or undefined to delete the key. */
  metadata?: Record<string, GgufMetadataEntry | undefined>;
  /** Changes the tensor list (raw bytes, any type). */
  tensors?: (ts: GgufTensorToWrite[]) => GgufTensorToWrite[];
}

/** Reads every tensor's raw bytes and metadata of `src`, changes them, writes `dst`. */
export async function rewriteGguf(src: string, dst: string, how: GgufRewrite = {}): Promise<void> {
  const h = withMetadata(readGgufHeader(src), how.metadata ?? {});
  const metadata: GgufMetaToWrite[] = [...h.metadata].map(([key, e]) => ({ key, type: e.type, arrayType: e.arrayType, value: e.value }));
  const f = await GgufFile.open(src);
  let tensors: GgufTensorToWrite[] = [];
  try {
    for (const t of h.tensors.values()) tensors.push({ name: t.name, type: t.type.name, shape: t.shape, data: await f.readBytes(t.name) });
  } finally {
    await f.close();
  }
  if (how.tensors) tensors = how.tensors(tensors);
  await writeGguf(dst, metadata, tensors);
}
