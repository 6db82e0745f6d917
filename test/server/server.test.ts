/**
 * End to end with the official `openai` client against a real server running the demo checkpoint.
 * The weights are random, so the text is gibberish, but every step is the real one: chat template,
 * tokenizer, prefill, batched decode, seeded sampling, detokenization, output parsing, SSE.
 */
import { rm } from "node:fs/promises";
import { NotFoundError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatTemplate } from "../../src/tokenizer/chat_template.js";
import { collectChat, loadSession, settledHealth, startTestServer, thinkingCheckpoint, type TestServer } from "./harness.js";

let t: TestServer;
beforeAll(async () => {
  // No prefix cache: every request really prefills, so equal outputs come from equal computation.
  t = await startTestServer({ maxConcurrency: 8, prefixCacheSize: 0 });
});
afterAll(async () => {
  await t?.server.close(1000);
});

const user = (content: string) => [{ role: "user" as const, content }];

describe("server: basic endpoints", () => {
  it("lists the served model and reports health", async () => {
    const models = await t.client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([t.model]);
    expect((await t.client.models.retrieve(t.model)).id).toBe(t.model);
    await expect(t.client.models.retrieve("gpt-4")).rejects.toBeInstanceOf(NotFoundError);
    const h = await t.health();
    expect(h.status).toBe("ok");
    expect(h.active).toBe(0);
  });

  it("streams the same chat completion it returns whole, for the same seed", async () => {
    const req = { model: t.model, messages: user("Tell me a story."), max_tokens: 12, seed: 7, temperature: 0.9 };
    const whole = await t.client.chat.completions.create(req);
    const choice = whole.choices[0];
    expect(whole.object).toBe("chat.completion");
    expect(choice.message.role).toBe("assistant");
    expect(choice.finish_reason).toBe("length");
    expect(whole.usage?.completion_tokens).toBe(12);
    expect(whole.usage?.total_tokens).toBe((whole.usage?.prompt_tokens ?? 0) + 12);
    expect((choice.message.content ?? "").length).toBeGreaterThan(0);

    const streamed = await collectChat(
      await t.client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } }),
    );
    expect(streamed.role).toBe("assistant");
    expect(streamed.content).toBe(choice.message.content);
    expect(streamed.finish).toBe("length");
    expect(streamed.usage).toEqual(whole.usage);
  });

  it("gives different text for a different seed and the same for the same seed", async () => {
    const req = { model: t.model, prompt: "Once upon a time", max_tokens: 8, temperature: 1 };
    const a = await t.client.completions.create({ ...req, seed: 1 });
    const b = await t.client.completions.create({ ...req, seed: 1 });
    const c = await t.client.completions.create({ ...req, seed: 2 });
    expect(a.choices[0].text).toBe(b.choices[0].text);
    expect(c.choices[0].text).not.toBe(a.choices[0].text);
  });

  it("serves /v1/completions streamed and not, with echo", async () => {
    const req = { model: t.model, prompt: "The capital of France is", max_tokens: 10, seed: 3 };
    const whole = await t.client.completions.create(req);
    expect(whole.object).toBe("text_completion");
    expect(whole.choices[0].finish_reason).toBe("length");
    let text = "";
    let finish: string | null = null;
    for await (const chunk of await t.client.completions.create({ ...req, stream: true })) {
      text += chunk.choices[0]?.text ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(whole.choices[0].text);
    expect(finish).toBe("length");
    const echoed = await t.client.completions.create({ ...req, echo: true });
    expect(echoed.choices[0].text).toBe(req.prompt + whole.choices[0].text);
  });

  it("ends the text before a stop string, with finish_reason stop", async () => {
    const req = { model: t.model, prompt: "Numbers:", max_tokens: 16, seed: 11 };
    const full = (await t.client.completions.create(req)).choices[0].text;
    // Take a stop string from the middle of the text the same request produces without one.
    const at = Math.floor(full.length / 2);
    const stop = full.slice(at, at + 2);
    const cut = await t.client.completions.create({ ...req, stop: [stop] });
    expect(cut.choices[0].text).toBe(full.slice(0, full.indexOf(stop)));
    expect(cut.choices[0].finish_reason).toBe("stop");
  });

  it("passes top_k, top_p, min_p and max_completion_tokens to sampling: each narrowed to one token is greedy", async () => {
    const req = { model: t.model, messages: user("Sampling knobs"), max_completion_tokens: 6, seed: 21, temperature: 1 };
    const greedy = await t.client.chat.completions.create({ ...req, temperature: 0 });
    expect(greedy.usage?.completion_tokens).toBe(6);
    const text = greedy.choices[0].message.content;
    const topK = await t.client.chat.completions.create({ ...req, top_k: 1 } as never);
    const topP = await t.client.chat.completions.create({ ...req, top_p: 1e-9 });
    const minP = await t.client.chat.completions.create({ ...req, min_p: 1 } as never);
    const free = await t.client.chat.completions.create(req);
    expect([topK, topP, minP].map((r) => (r as typeof greedy).choices[0].message.content)).toEqual([text, text, text]);
    expect(free.choices[0].message.content).not.toBe(text);
  });

  it("applies logit_bias: +100 on one token makes it the only one sampled", async () => {
    const forced = 9707; // "Hello"
    const r = await t.client.completions.create({
      model: t.model, prompt: "x", max_tokens: 3, seed: 5, logit_bias: { [forced]: 100 },
    });
    expect(r.choices[0].text).toBe("HelloHelloHello");
  });
});

describe("server: tools and reasoning", () => {
  const tools = [
    {
      type: "function" as const,
      function: {
        name: "get_weather",
        description: "Weather in a city",
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
      },
    },
  ];

  it("renders tools and a tool-call round trip into the prompt (same text as /v1/completions of the rendered prompt)", async () => {
    const messages = [
      { role: "user" as const, content: "Weather in Paris?" },
      {
        role: "assistant" as const,
        content: null,
        tool_calls: [{ id: "call_1", type: "function" as const, function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
      },
      { role: "tool" as const, tool_call_id: "call_1", content: '{"temp_c": 21}' },
    ];
    const chat = await t.client.chat.completions.create({ model: t.model, messages, tools, max_tokens: 10, seed: 9, temperature: 0 });
    const prompt = (await ChatTemplate.load()).render(
      [
        { role: "user", content: "Weather in Paris?" },
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
        { role: "tool", tool_call_id: "call_1", content: '{"temp_c": 21}' },
      ],
      { tools },
    );
    expect(prompt).toContain('"name": "get_weather"');
    expect(prompt).toContain("<tool_response>");
    const raw = await t.client.completions.create({ model: t.model, prompt, max_tokens: 10, seed: 9, temperature: 0 });
    expect(chat.usage?.prompt_tokens).toBe(raw.usage?.prompt_tokens);
    expect(chat.choices[0].message.content).toBe(raw.choices[0].text.trim());
  });

  it("does not show tools to the model with tool_choice none, and refuses a tool_choice naming no tool", async () => {
    const base = { model: t.model, messages: user("Hi"), max_tokens: 1, seed: 1 };
    const plain = await t.client.chat.completions.create(base);
    const none = await t.client.chat.completions.create({ ...base, tools, tool_choice: "none" });
    const auto = await t.client.chat.completions.create({ ...base, tools });
    expect(none.usage?.prompt_tokens).toBe(plain.usage?.prompt_tokens);
    expect(auto.usage!.prompt_tokens).toBeGreaterThan(plain.usage!.prompt_tokens);
    await expect(t.client.chat.completions.create({ ...base, tools, tool_choice: { type: "function", function: { name: "nope" } } })).rejects.toMatchObject({
      status: 400,
      param: "tool_choice",
    });
  });

  it("splits reasoning_content out when the prompt opened <think>, streamed and not", async () => {
    const dir = await thinkingCheckpoint();
    const think = await startTestServer({ model: dir, servedModelName: "thinker" });
    try {
      const req = { model: "thinker", messages: user("Why is the sky blue?"), max_tokens: 12, seed: 4 };
      const prompt = (await ChatTemplate.load(dir)).render(user("Why is the sky blue?"));
      expect(prompt.endsWith("<think>\n")).toBe(true);
      const raw = (await think.client.completions.create({ model: "thinker", prompt, max_tokens: 12, seed: 4 })).choices[0].text;

      // Thinking on: the model is still thinking when max_tokens cuts it, so all of it is reasoning and, as
      // vLLM's Qwen3 reasoning parser answers, the content is null.
      const on = await think.client.chat.completions.create(req);
      const msg = on.choices[0].message as { content: string | null; reasoning_content?: string };
      expect(msg.reasoning_content).toBe(raw.trim());
      expect(msg.content).toBeNull();
      const streamed = await collectChat(await think.client.chat.completions.create({ ...req, stream: true }));
      expect(streamed.reasoning).toBe(raw.trim());
      expect(streamed.content).toBe("");

      // Thinking off (chat_template_kwargs, as vLLM takes it): an empty think block is pre-filled, all is content.
      const off = await think.client.chat.completions.create({
        ...req,
        // @ts-expect-error vLLM's extension, not in the openai client's types
        chat_template_kwargs: { enable_thinking: false },
      });
      const offMsg = off.choices[0].message as { content: string | null; reasoning_content?: string };
      expect(offMsg.reasoning_content).toBeUndefined();
      expect((offMsg.content ?? "").length).toBeGreaterThan(0);
    } finally {
      await think.server.close(1000);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("server: concurrency", () => {
  it("runs 8 concurrent streams batched together, each equal to its single-request output", async () => {
    await concurrentEqualsAlone(t);
  });

  it("does the same on the TypeScript kernels", async () => {
    const session = await loadSession(undefined, "ts");
    const w = await startTestServer({ session, maxConcurrency: 8, prefixCacheSize: 0 });
    try {
      await concurrentEqualsAlone(w);
    } finally {
      await w.server.close(1000);
      await (session.model.kernels as { close?: () => unknown }).close?.();
    }
  });

  it("frees the slot of a client that disconnects mid-stream", async () => {
    const cancelledBefore = (await t.health()).cancelled as number;
    const stream = await t.client.chat.completions.create({
      model: t.model, messages: user("Talk for a long time."), max_tokens: 4000, seed: 1, stream: true,
    });
    let chunks = 0;
    for await (const _ of stream) {
      if (++chunks === 3) break; // leaving the loop aborts the HTTP request
    }
    expect((await t.health()).active).toBeLessThanOrEqual(1);
    const h = await settledHealth(t, cancelledBefore);
    expect(h.active).toBe(0);
    expect(h.cancelled).toBe(cancelledBefore + 1);
    // And the server goes on serving.
    const after = await t.client.completions.create({ model: t.model, prompt: "ok", max_tokens: 2 });
    expect(after.choices[0].finish_reason).toBe("length");
  });
});

/** 8 different requests, first one by one, then all at once as streams: the same text each. */
async function concurrentEqualsAlone(t: TestServer): Promise<void> {
  const reqs = Array.from({ length: 8 }, (_, i) => ({
    model: t.model,
    messages: user(`Request number ${i}: ${"more ".repeat(i)}`),
    max_tokens: 6 + i,
    seed: 100 + i,
    temperature: 0.8,
  }));
  const alone: string[] = [];
  for (const r of reqs) alone.push((await t.client.chat.completions.create(r)).choices[0].message.content ?? "");
  expect((await t.health()).largestBatch).toBe(1);

  const together = await Promise.all(
    reqs.map(async (r) => collectChat(await t.client.chat.completions.create({ ...r, stream: true }))),
  );
  expect(together.map((s) => s.content)).toEqual(alone);
  expect(together.every((s) => s.finish === "length")).toBe(true);
  const h = await t.health();
  expect(h.largestBatch as number).toBeGreaterThan(1);
  expect(h.active).toBe(0);
}
