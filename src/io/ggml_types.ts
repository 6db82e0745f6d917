/**
 * ggml's tensor types: the ids a GGUF file stores, and how many bytes a block of elements takes.
 *
 * A quantized type packs `blockSize` consecutive elements of a row into `typeSize` bytes (a row's length
 * must be a multiple of `blockSize`); plain types have blockSize 1. Ids and sizes are those of ggml.h /
 * ggml.c (`ggml_type`, `type_traits`); ids that ggml has retired are absent.
 *
 * The block layouts themselves (what the bytes mean) are in `ggml_quants.ts`.
 */

export interface GgmlTypeInfo {
  readonly id: number;
  readonly name: string;
  readonly blockSize: number;
  readonly typeSize: number;
}

const table: readonly GgmlTypeInfo[] = [
  { id: 0, name: "F32", blockSize: 1, typeSize: 4 },
  { id: 1, name: "F16", blockSize: 1, typeSize: 2 },
  { id: 2, name: "Q4_0", blockSize: 32, typeSize: 18 },
  { id: 3, name: "Q4_1", blockSize: 32, typeSize: 20 },
  { id: 6, name: "Q5_0", blockSize: 32, typeSize: 22 },
  { id: 7, name: "Q5_1", blockSize: 32, typeSize: 24 },
  { id: 8, name: "Q8_0", blockSize: 32, typeSize: 34 },
  { id: 9, name: "Q8_1", blockSize: 32, typeSize: 36 },
  { id: 10, name: "Q2_K", blockSize: 256, typeSize: 84 },
  { id: 11, name: "Q3_K", blockSize: 256, typeSize: 110 },
  { id: 12, name: "Q4_K", blockSize: 256, typeSize: 144 },
  { id: 13, name: "Q5_K", blockSize: 256, typeSize: 176 },
  { id: 14, name: "Q6_K", blockSize: 256, typeSize: 210 },
  { id: 15, name: "Q8_K", blockSize: 256, typeSize: 292 },
  { id: 16, name: "IQ2_XXS", blockSize: 256, typeSize: 66 },
  { id: 17, name: "IQ2_XS", blockSize: 256, typeSize: 74 },
  { id: 18, name: "IQ3_XXS", blockSize: 256, typeSize: 98 },
  { id: 19, name: "IQ1_S", blockSize: 256, typeSize: 50 },
  { id: 20, name: "IQ4_NL", blockSize: 32, typeSize: 18 },
  { id: 21, name: "IQ3_S", blockSize: 256, typeSize: 110 },
  { id: 22, name: "IQ2_S", blockSize: 256, typeSize: 82 },
  { id: 23, name: "IQ4_XS", blockSize: 256, typeSize: 136 },
  { id: 24, name: "I8", blockSize: 1, typeSize: 1 },
  { id: 25, name: "I16", blockSize: 1, typeSize: 2 },
  { id: 26, name: "I32", blockSize: 1, typeSize: 4 },
  { id: 27, name: "I64", blockSize: 1, typeSize: 8 },
  { id: 28, name: "F64", blockSize: 1, typeSize: 8 },
  { id: 29, name: "IQ1_M", blockSize: 256, typeSize: 56 },
  { id: 30, name: "BF16", blockSize: 1, typeSize: 2 },
  { id: 34, name: "TQ1_0", blockSize: 256, typeSize: 54 },
  { id: 35, name: "TQ2_0", blockSize: 256, typeSize: 66 },
  { id: 39, name: "MXFP4", blockSize: 32, typeSize: 17 },
];

export const GGML_TYPES_BY_ID: ReadonlyMap<number, GgmlTypeInfo> = new Map(table.map((t) => [t.id, t]));
export const GGML_TYPES_BY_NAME: ReadonlyMap<string, GgmlTypeInfo> = new Map(table.map((t) => [t.name, t]));

/** Bytes of a row-major tensor of `shape` (PyTorch order, last axis innermost) stored as ggml type `name`. */
export function ggmlByteLength(name: string, shape: readonly number[]): number {
  const t = GGML_TYPES_BY_NAME.get(name);
  if (!t) throw new Error(`unknown ggml type ${name}`);
  const inner = shape.length ? shape[shape.length - 1] : 1;
  if (inner % t.blockSize !== 0) {
    throw new Error(`a ${name} row holds whole blocks of ${t.blockSize}, but the last axis is ${inner}`);
  }
  let n = 1;
  for (const d of shape) n *= d;
  return (n / t.blockSize) * t.typeSize;
}
