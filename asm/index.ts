// WASM SIMD kernels for qwen3-next-ts. Every export works on raw addresses in (imported, shared) memory;
// the host (src/kernels/wasm/) owns allocation. No AssemblyScript runtime objects are used, so several
// threads can run the same module on one memory.
export { permute8, permute8Rows } from "./widen";
export * from "./matvec";
export * from "./quant";
export * from "./quant_int";
export { axpy, gatherRows, scatterAxpyRows, sameBytes, copyBytes } from "./mem";
export * from "./ops";
export * from "./attention";
export * from "./deltanet";
export * from "./delta_chunked";
export * from "./router";
export { expLanes } from "./exp2";

/** First free byte after this module's static data; the host allocator starts above it. */
export function heapBase(): usize {
  return __heap_base;
}
