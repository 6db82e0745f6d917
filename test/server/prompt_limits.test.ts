/**
 * No prompt stalls the other clients: rendering and tokenizing run in worker threads, bounded by the context
 * (text that cannot fit is refused before it is tokenized), by time and by memory. Each failure fails that
 * request alone, with a 400 that says why, and the server keeps serving.
 */
import { mkdtemp, readdir, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDemoCheckpoint } from "../../src/init/demo.js";
import { QwenTokenizer } from "../../src/tokenizer/tokenizer.js";
import { loadSession, startTestServer, type TestServer } from "./harness.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ defaultMaxTokens: 2, promptTimeoutMs: 3000, bodyLimit: 8 * 1024 * 1024 });
});
afterAll(async () => {
  await t?.server.close(1000);
});

async function post(url: string, route: string, body: unknown) {
  const res = await fetch(`${url}${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { error?: { message: string; code: string | null; param: string | null } } & Record<string, unknown> };
}

/** Latencies (ms) of GET /health, polled back to back until `until` settles. */
async function healthLatencies(url: string, until: Promise<unknown>): Promise<number[]> {
  let done = false;
  void until.finally(() => (done = true));
  const out: number[] = [];
  while (!done) {
    const t0 = performance.now();
    const r = await fetch(`${url}/health`);
    await r.json();
    out.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 20));
  }
  return out;
}

describe("server: prompts are bounded and never stall other clients", () => {
  it("knows the longest token of the Qwen vocabulary (128 bytes: a run of spaces)", async () => {
    const tok = await QwenTokenizer.load();
    expect(tok.longestTokenBytes).toBe(128);
    // The bound holds for the worst text: that run of spaces, repeated, is one token per 128 bytes.
    expect(tok.encode(" ".repeat(128 * 10)).length).toBe(10);
  });

  it("refuses text that cannot fit the context before tokenizing it", async () => {
    // 4 MiB of one word: over 8192 tokens x 128 bytes, so certainly over the demo's context.
    const r = await post(t.url, "/v1/completions", { model: t.model, prompt: "a".repeat(4 * 1024 * 1024 + 7), max_tokens: 1 });
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe("context_length_exceeded");
    expect(r.body.error?.param).toBe("prompt");
    expect(r.body.error?.message).toMatch(/maximum context length is 8192 tokens, but the prompt is 4194311 bytes long, so at least 32769 tokens/);
  });

  it("serves other clients while a prompt that is slow to tokenize is stopped at the time limit", async () => {
    // One 1,000,000-character word: under the length bound (1 MiB), tokenized in far more than 3 s.
    const big = post(t.url, "/v1/completions", { model: t.model, prompt: "a".repeat(1_000_000), max_tokens: 1 });
    await new Promise((r) => setTimeout(r, 200)); // let it reach a worker
    const small = (async () => {
      const done: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await post(t.url, "/v1/completions", { model: t.model, prompt: `Hello ${i}`, max_tokens: 2 });
        expect(r.status).toBe(200);
        done.push(i);
      }
      return done;
    })();
    const latencies = await healthLatencies(t.url, big);
    const r = await big;
    expect(r.status).toBe(400);
    expect(r.body.error?.code).toBe("prompt_timeout");
    expect(r.body.error?.message).toMatch(/took longer than 3 s/);
    expect(await small).toEqual([0, 1, 2]);
    // Behavioural bound, generous for a loaded 2-core machine: before, one such prompt froze /health for its
    // whole tokenization (93 s for 4 MB).
    expect(latencies.length).toBeGreaterThan(10);
    expect(Math.max(...latencies)).toBeLessThan(1500);
  });

  it("still serves after that, and tokenizes as the main thread does", async () => {
    const prompt = "The quick brown fox: 狐狸 🦊 jumps.";
    const r = await post(t.url, "/v1/completions", { model: t.model, prompt, max_tokens: 1 });
    expect(r.status).toBe(200);
    const tok = await QwenTokenizer.load();
    expect((r.body.usage as { prompt_tokens: number }).prompt_tokens).toBe(tok.encode(prompt).length);
  });
});

/** The demo checkpoint with its chat template replaced by `template`. */
async function withTemplate(template: string): Promise<string> {
  const demo = await ensureDemoCheckpoint();
  const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-next-template-"));
  for (const f of await readdir(demo)) await symlink(path.join(demo, f), path.join(dir, f));
  await writeFile(path.join(dir, "chat_template.jinja"), template);
  return dir;
}

describe("server: chat templates are bounded", () => {
  it("fails a request whose template loops over range(1e8), alone, and keeps serving", async () => {
    const dir = await withTemplate("{%- for i in range(100000000) %}x{%- endfor %}{{ messages[0].content }}");
    const s = await startTestServer({ session: await loadSession(dir), defaultMaxTokens: 2, promptTimeoutMs: 5000 });
    try {
      const chat = post(s.url, "/v1/chat/completions", { model: s.model, messages: [{ role: "user", content: "Hi" }] });
      const other = post(s.url, "/v1/completions", { model: s.model, prompt: "Hi", max_tokens: 2 });
      const [c, o] = await Promise.all([chat, other]);
      expect(c.status).toBe(400);
      expect(c.body.error?.message).toMatch(/took longer than 5 s|needed more than \d+ MB|at least \d+ tokens/);
      expect(o.status).toBe(200);
      expect((await s.health()).status).toBe("ok");
    } finally {
      await s.server.close(1000);
    }
  });

  it("refuses a rendered prompt too long for the context before tokenizing it", async () => {
    const dir = await withTemplate("{%- for i in range(3000) %}{{ messages[0].content }}{%- endfor %}");
    const s = await startTestServer({ session: await loadSession(dir), defaultMaxTokens: 2 });
    try {
      const c = await post(s.url, "/v1/chat/completions", { model: s.model, messages: [{ role: "user", content: "y".repeat(1000) }] });
      expect(c.status).toBe(400);
      expect(c.body.error?.code).toBe("context_length_exceeded");
      expect(c.body.error?.message).toMatch(/the prompt is 3000000 bytes long/);
    } finally {
      await s.server.close(1000);
    }
  });
});
