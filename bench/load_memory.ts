/**
 * `node --import tsx bench/load_memory.ts DIR [--backend wasm|ts]`: loads a checkpoint folder and prints
 * the peak resident memory against the weights' size (the loader streams each tensor straight into the
 * kernels' memory; the target is at most 1.25x). Make a large folder with
 * `qwen3-next init --config CONFIG --out DIR` (e.g. the real-slice config of bench/real_slice.ts).
 */
import { createKernels } from "../src/kernels/index.js";
import { loadCheckpoint } from "../src/loading/checkpoint.js";

async function main(): Promise<void> {
  const [dir, ...rest] = process.argv.slice(2);
  if (!dir) throw new Error("expected a checkpoint folder: bench/load_memory.ts DIR [--backend wasm|ts]");
  const i = rest.indexOf("--backend");
  const backend = i >= 0 ? rest[i + 1] : "wasm";
  if (backend !== "wasm" && backend !== "ts") throw new Error(`--backend is ${JSON.stringify(backend)}, expected wasm or ts`);
  const kernels = await createKernels({ backend, threads: 1 });
  const t = performance.now();
  const ckpt = await loadCheckpoint(dir, { allocator: kernels });
  const seconds = (performance.now() - t) / 1e3;
  const weightBytes = ckpt.totalBytes;
  const maxRss = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ backend, seconds: +seconds.toFixed(2), weightBytes, maxRssBytes: maxRss, ratio: +(maxRss / weightBytes).toFixed(3) }));
}

main().catch((e: unknown) => {
  console.error(`load_memory: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
