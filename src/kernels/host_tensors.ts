/**
 * The tensor handling shared by the host backends (TypeScript, WASM), whose tensors are typed arrays: views are
 * subarrays, reads are copies (settled at once: the work before them is already done), writes are sets.
 */
import type { HostKernels } from "./types.js";

export const hostTensors: Pick<HostKernels, "residual" | "indices" | "view" | "write" | "read" | "readIndices"> = {
  residual: (n) => new Float64Array(n),
  indices: (n) => new Int32Array(n),
  view: (t, start, end) => t.subarray(start, end),
  write: (t, data) => t.set(data),
  read: (t) => Promise.resolve(t.slice()),
  readIndices: (t) => Promise.resolve(t.slice()),
};
