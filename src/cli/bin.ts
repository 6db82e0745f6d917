/** Process entry point: runs the CLI and turns any error into one line on stderr and exit code 1 (2: usage). */
// First: switches relaxed SIMD on (a V8 flag in Node 20) before any module compiles the WASM kernels.
import "../kernels/wasm/simd.js";
import { main } from "./main.js";
import { UsageError } from "./options.js";

main(process.argv).catch((err: unknown) => {
  process.stderr.write(`qwen3-next: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
