#!/usr/bin/env node
// Builds the two WASM kernel builds of asconfig.json when missing or older than the AssemblyScript sources:
// build/kernels.wasm (target "release", plain SIMD) and build/kernels-relaxed.wasm (target "relaxed", the same
// sources with relaxed SIMD; src/kernels/wasm/simd.ts picks one at run time). Run before the tests
// (`pretest`); `npm run build:asm` always rebuilds both.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const sources = [path.join(root, "asconfig.json"), ...readdirSync(path.join(root, "asm")).filter((f) => f.endsWith(".ts")).map((f) => path.join(root, "asm", f))];
const newest = Math.max(...sources.map((s) => statSync(s).mtimeMs));
const asc = path.join(root, "node_modules", ".bin", process.platform === "win32" ? "asc.cmd" : "asc");
for (const [target, file] of [["release", "kernels.wasm"], ["relaxed", "kernels-relaxed.wasm"]]) {
  const wasm = path.join(root, "build", file);
  if (existsSync(wasm) && statSync(wasm).mtimeMs >= newest) continue;
  const r = spawnSync(asc, ["asm/index.ts", "--target", target], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`qwen3-next: building the WASM kernels (${target}: build/${file}) failed (asc exited ${r.status ?? r.signal})`);
    process.exit(1);
  }
}
