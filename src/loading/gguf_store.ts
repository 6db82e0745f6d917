/**
 * A GGUF file as a `TensorStore` (see `plan.ts`): each tensor by its GGUF name, dtype = its ggml type name,
 * shape in PyTorch order. The types a parameter may have are the plain floats and the block-quantized types the
 * kernels compute with (`QUANT_DTYPES`); any other ggml type (IQ*, TQ*, MXFP4, Q2_K, ...) is refused by the
 * planner with one line naming the tensor and its type.
 */
import { GgufFile } from "../io/gguf.js";
import { QUANT_DTYPES } from "../io/ggml_quants.js";
import type { WeightDType } from "../kernels/types.js";
import type { StoredTensor, TensorStore } from "./plan.js";

export const GGUF_WEIGHT_DTYPES: readonly WeightDType[] = ["F32", "F16", "BF16", "F64", ...QUANT_DTYPES];

export async function openGgufStore(file: string): Promise<TensorStore & { gguf: GgufFile }> {
  const gguf = await GgufFile.open(file);
  const tensors = new Map<string, StoredTensor>();
  for (const t of gguf.header.tensors.values()) {
    tensors.set(t.name, {
      file,
      dtype: t.type.name,
      shape: t.shape,
      byteLength: t.byteLength,
      fileIndex: 0,
      fileOffset: t.fileOffset,
      readInto: (dest, byteOffset, onBytes) => gguf.readInto(t.name, dest, byteOffset, onBytes),
    });
  }
  return {
    gguf,
    files: [file],
    weightDTypes: GGUF_WEIGHT_DTYPES,
    configFrom: "the GGUF metadata",
    get: (name) => tensors.get(name),
    names: () => [...tensors.keys()],
    close: () => gguf.close(),
  };
}
