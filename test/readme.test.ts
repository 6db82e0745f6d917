/** The README's library example, run as it stands (the package import pointed at the sources). */
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./helpers/cli.js";

describe("README", () => {
  it("the library example is self-contained and runs", async () => {
    const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### As a library"));
    const code = /```ts\n([\s\S]*?)```/.exec(section)![1];
    const tmp = await mkdtemp(path.join(os.tmpdir(), "readme-"));
    try {
      const file = path.join(tmp, "example.mts");
      await writeFile(file, code.replace(/from "qwen3-next-ts"/, `from ${JSON.stringify(path.join(ROOT, "src/index.ts"))}`));
      const child = spawn(process.execPath, ["--import", "tsx", file], { cwd: ROOT, env: { ...process.env, QWEN3_NEXT_CACHE: path.join(tmp, "cache") } });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
      const exit = await new Promise<number | null>((resolve) => child.on("close", resolve));
      clearTimeout(timer);
      expect(stderr).toBe("");
      expect(exit).toBe(0);
      expect(stdout.startsWith("true true true\n")).toBe(true);
      expect(stdout).toMatch(/\n\d+ tokens\n$/);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }, 100_000);
});
