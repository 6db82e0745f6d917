/** Process entry point: runs the CLI and turns any error into one line on stderr and exit code 1. */
import { main } from "./main.js";

main(process.argv).catch((err: unknown) => {
  process.stderr.write(`qwen3-next: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
