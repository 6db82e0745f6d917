/**
 * The prompt-prefix cache seen from outside (/health counters, identical outputs), chunked prefill, and
 * cancellation of a non-streamed request whose client goes away.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSession, settledHealth, startTestServer, type TestServer } from "./harness.js";
import type { ServedSession } from "../../src/server/start.js";

let session: ServedSession;
let t: TestServer;
beforeAll(async () => {
  session = await loadSession();
  t = await startTestServer({ session, prefixCacheSize: 4 });
});
afterAll(async () => {
  await t?.server.close(1000);
});

const hitTokens = async () => (await t.health()).prefixCacheHitTokens as number;

describe("server: prefix cache", () => {
  it("reuses the state of an identical prompt, with the same output for the same seed", async () => {
    const req = { model: t.model, messages: [{ role: "user" as const, content: "A prompt seen twice" }], max_tokens: 6, seed: 3 };
    const first = await t.client.chat.completions.create(req);
    const before = await hitTokens();
    const second = await t.client.chat.completions.create(req);
    expect((await hitTokens()) - before).toBe(first.usage!.prompt_tokens);
    expect(second.choices[0].message.content).toBe(first.choices[0].message.content);
  });

  it("resumes a longer conversation from the snapshot of its earlier prompt", async () => {
    const turn1 = [{ role: "user" as const, content: "First turn of a conversation" }];
    const r1 = await t.client.chat.completions.create({ model: t.model, messages: turn1, max_tokens: 4, seed: 1 });
    // Turn 2's prompt starts with turn 1's prompt (the template renders history unchanged), so its snapshot applies.
    const before = await hitTokens();
    const r2 = await t.client.chat.completions.create({
      model: t.model,
      messages: [...turn1, { role: "assistant" as const, content: r1.choices[0].message.content }, { role: "user" as const, content: "Second" }],
      max_tokens: 4,
      seed: 1,
    });
    const reused = (await hitTokens()) - before;
    expect(reused).toBeGreaterThan(0);
    expect(reused).toBeLessThan(r2.usage!.prompt_tokens);
    expect(r2.choices[0].finish_reason).toBe("length");
  });
});

describe("server: chunked prefill", () => {
  it("gives a long prompt prefilled 5 tokens at a time the same greedy continuation as one pass", async () => {
    const chunked = await startTestServer({ session, prefillChunk: 5, prefixCacheSize: 0 });
    try {
      const req = { model: t.model, prompt: "one two three four five six seven eight nine ten eleven twelve", max_tokens: 6, temperature: 0 };
      const whole = await t.client.completions.create(req);
      expect(whole.usage!.prompt_tokens).toBeGreaterThan(10);
      const pieces = await chunked.client.completions.create(req);
      expect(pieces.choices[0].text).toBe(whole.choices[0].text);
    } finally {
      await chunked.server.close(1000);
    }
  });
});

describe("server: cancellation", () => {
  it("cancels a non-streamed request when its client aborts, and frees its slot", async () => {
    const cancelled = (await t.health()).cancelled as number;
    const ac = new AbortController();
    const pending = t.client.completions.create(
      { model: t.model, prompt: "A long answer please", max_tokens: 4000 },
      { signal: ac.signal },
    );
    while (((await t.health()).active as number) === 0) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await expect(pending).rejects.toThrow();
    const h = await settledHealth(t, cancelled);
    expect(h.active).toBe(0);
    expect(h.cancelled).toBe(cancelled + 1);
  });

  it("drops a queued request whose client aborts before it starts", async () => {
    const one = await startTestServer({ session, maxConcurrency: 1, maxQueue: 4 });
    let running: Promise<{ choices: { finish_reason: string | null }[] }> | undefined;
    try {
      // The running request is long enough (300 steps) that the second one is still queued while we poll; the
      // polls are bounded so a missed window fails with a message instead of hanging the file. The second is
      // sent once the first runs: sent together, their prompts go through the prompt workers in parallel and
      // the second could reach the scheduler first (then it ran, finished, and nothing was cancelled).
      running = one.client.completions.create({ model: one.model, prompt: "first", max_tokens: 300, seed: 1 });
      const until = async (what: string, ok: (h: Record<string, unknown>) => boolean) => {
        const deadline = Date.now() + 20_000;
        while (!ok(await one.health())) {
          if (Date.now() > deadline) throw new Error(`never seen: ${what}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await until("the first request running", (h) => h.active === 1);
      const ac = new AbortController();
      const queued = one.client.completions.create({ model: one.model, prompt: "second", max_tokens: 30 }, { signal: ac.signal });
      await until("the second request queued behind the first", (h) => (h.queued as number) > 0);
      ac.abort();
      await expect(queued).rejects.toThrow();
      // The client rejects at once; the server cancels when it sees the connection close (between two decode
      // steps of the running request): wait, bounded, for its counters.
      let h = await one.health();
      for (let i = 0; i < 250 && (h.queued !== 0 || h.cancelled !== 1); i++) {
        await new Promise((r) => setTimeout(r, 20));
        h = await one.health();
      }
      expect(h.queued).toBe(0);
      expect(h.cancelled).toBe(1);
      expect((await running).choices[0].finish_reason).toBe("length");
    } finally {
      running?.catch(() => {}); // a failed assertion above closes the server under it: not a second error
      await one.server.close(1000);
    }
  });
});
