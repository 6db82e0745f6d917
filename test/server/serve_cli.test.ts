/**
 * `qwen3-next serve` spawned as a user runs it: prints its URL, serves, and on SIGTERM drains in-flight
 * requests (or cancels them after --grace) and exits 0. Flag errors exit non-zero with one line.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import OpenAI from "openai";
import { ROOT, runCli } from "../helpers/cli.js";
import { TEST_CACHE } from "./harness.js";

interface Child {
  proc: ChildProcess;
  url: string;
  stderr: () => string;
  exit: Promise<number | null>;
}

async function spawnServe(args: string[]): Promise<Child> {
  const proc = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/cli/bin.ts"), "serve", "--port", "0", ...args], {
    cwd: ROOT,
    env: { ...process.env, QWEN3_NEXT_CACHE: TEST_CACHE },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => proc.on("close", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on("data", (d) => {
      stdout += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(stdout);
      if (m) resolve(m[1]);
    });
    void exit.then((code) => reject(new Error(`serve exited ${code} before listening: ${stderr}`)));
  });
  return { proc, url, stderr: () => stderr, exit };
}

describe("qwen3-next serve", () => {
  it("prints its URL, says it runs the demo, applies --max-tokens, and on SIGTERM finishes the in-flight stream, stops accepting, exits 0", async () => {
    const s = await spawnServe(["--grace", "60", "--max-tokens", "5"]);
    try {
      expect(s.stderr()).toMatch(/demo checkpoint.*RANDOM/);
      const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
      // --max-tokens is the default of requests that leave max_tokens out.
      const short = await client.completions.create({ model: "qwen3-next-demo", prompt: "Hi", seed: 1 });
      expect(short.usage?.completion_tokens).toBe(5);
      const stream = await client.completions.create({ model: "qwen3-next-demo", prompt: "Hi", max_tokens: 20, seed: 1, stream: true });
      let text = "";
      let finish: string | null = null;
      let signalled = false;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.text ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (!signalled) {
          s.proc.kill("SIGTERM");
          signalled = true;
        }
      }
      expect(finish).toBe("length");
      expect(text.length).toBeGreaterThan(0);
      expect(await s.exit).toBe(0);
      expect(s.stderr()).toContain("SIGTERM: draining");
      await expect(fetch(`${s.url}/health`)).rejects.toThrow();
    } finally {
      s.proc.kill("SIGKILL");
    }
  });

  it("cancels in-flight requests after --grace and still exits 0", async () => {
    const s = await spawnServe(["--grace", "0"]);
    try {
      const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: "none", maxRetries: 0 });
      const stream = await client.completions.create({ model: "qwen3-next-demo", prompt: "Hi", max_tokens: 4000, stream: true });
      const consume = (async () => {
        let n = 0;
        for await (const _ of stream) if (++n === 1) s.proc.kill("SIGTERM");
      })();
      // The stream ends early with the server's error event (503 shutting down).
      await expect(consume).rejects.toThrow(/shutting down/);
      expect(await s.exit).toBe(0);
    } finally {
      s.proc.kill("SIGKILL");
    }
  });

  it("rejects bad flags with a one-line message and a non-zero exit", async () => {
    const port = await runCli(["serve", "--port", "http"], { env: { QWEN3_NEXT_CACHE: TEST_CACHE } });
    expect(port.code).toBe(2);
    expect(port.stderr).toContain("--port expects an integer >= 0");
    const model = await runCli(["serve", "--model", "/nonexistent/folder"], { env: { QWEN3_NEXT_CACHE: TEST_CACHE } });
    expect(model.code).toBe(1);
    expect(model.stderr.trim().split("\n")).toHaveLength(1);
    expect(model.stderr).toMatch(/^qwen3-next: .*\/nonexistent\/folder/);
  });
});
