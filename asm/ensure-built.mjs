#!/usr/bin/env node
// Builds build/kernels.wasm (the release target of asconfig.json) when it is missing or older than the
// AssemblyScript sources. Run before the tests (`pretest`); `npm run build:asm` always rebuilds.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const wasm = path.join(root, "build", "kernels.wasm");
const sources = [path.join(root, "asconfig.json"), ...readdirSync(path.join(root, "asm")).filter((f) => f.endsWith(".ts")).map((f) => path.join(root, "asm", f))];
const built = existsSync(wasm) ? statSync(wasm).mtimeMs : -1;
if (sources.some((s) => statSync(s).mtimeMs > built)) {
  const asc = path.join(root, "node_modules", ".bin", process.platform === "win32" ? "asc.cmd" : "asc");
  const r = spawnSync(asc, ["asm/index.ts", "--target", "release"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`qwen3-next: building the WASM kernels failed (asc exited ${r.status ?? r.signal})`);
    process.exit(1);
  }
}
