/**
 * `qwen3-next serve` as a user runs it: the API key from a file or the environment (never only a flag, which
 * `ps` shows), and a warning when it would listen beyond loopback without a key.
 */
import { spawn } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT, runCli } from "../helpers/cli.js";
import { TEST_CACHE } from "./harness.js";

async function serveWith(args: string[], env: NodeJS.ProcessEnv = {}) {
  const proc = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/cli/bin.ts"), "serve", "--port", "0", ...args], {
    cwd: ROOT,
    env: { ...process.env, QWEN3_NEXT_API_KEY: "", VLLM_API_KEY: "", QWEN3_NEXT_CACHE: TEST_CACHE, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => proc.on("close", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout.on("data", (d) => {
      stdout += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(stdout);
      if (m) resolve(m[1]);
    });
    void exit.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  return { proc, url, stderr: () => stderr, exit };
}

const status = async (url: string, key?: string) =>
  (await fetch(`${url}/v1/models`, { headers: key ? { authorization: `Bearer ${key}` } : {} })).status;

describe("qwen3-next serve: the API key", () => {
  it("reads it from --api-key-file, and from $VLLM_API_KEY", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-next-keyfile-"));
    const file = path.join(dir, "key");
    await writeFile(file, "from-a-file\n");
    const a = await serveWith(["--api-key-file", file]);
    try {
      // The file's newline is not part of the key.
      expect([await status(a.url), await status(a.url, "from-a-file"), await status(a.url, "from-a-fil")]).toEqual([401, 200, 401]);
      expect(a.stderr()).not.toMatch(/warning/);
    } finally {
      a.proc.kill("SIGKILL");
    }
    const b = await serveWith([], { VLLM_API_KEY: "vllm-style" });
    try {
      expect([await status(b.url), await status(b.url, "vllm-style")]).toEqual([401, 200]);
    } finally {
      b.proc.kill("SIGKILL");
    }
  });

  it("warns before anything else when told to listen beyond loopback without a key", async () => {
    // A missing model folder makes it stop right after the warning, so nothing ever listens.
    const r = await runCli(["serve", "--host", "0.0.0.0", "--model", "/nonexistent/folder"], {
      env: { QWEN3_NEXT_API_KEY: "", VLLM_API_KEY: "", QWEN3_NEXT_CACHE: TEST_CACHE },
    });
    const lines = r.stderr.trim().split("\n");
    expect(lines[0]).toMatch(/^qwen3-next: warning: listening on 0\.0\.0\.0 without an API key/);
    expect(r.code).toBe(1);
    const quiet = await runCli(["serve", "--host", "0.0.0.0", "--model", "/nonexistent/folder"], {
      env: { QWEN3_NEXT_API_KEY: "k", QWEN3_NEXT_CACHE: TEST_CACHE },
    });
    expect(quiet.stderr).not.toMatch(/warning/);
  });

  it("refuses --api-key with --api-key-file, and an empty key file, in one line", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-next-keyfile-"));
    const empty = path.join(dir, "empty");
    await writeFile(empty, "");
    const both = await runCli(["serve", "--api-key", "a", "--api-key-file", empty], { env: { QWEN3_NEXT_CACHE: TEST_CACHE } });
    expect(both.code).toBe(1);
    expect(both.stderr.trim()).toBe("qwen3-next: give --api-key or --api-key-file, not both");
    const none = await runCli(["serve", "--api-key-file", empty], { env: { QWEN3_NEXT_CACHE: TEST_CACHE } });
    expect(none.code).toBe(1);
    expect(none.stderr.trim()).toBe(`qwen3-next: --api-key-file ${empty}: the first line is empty; expected the key`);
  });
});
