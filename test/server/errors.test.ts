/**
 * Bad input gets a 4xx with an OpenAI-style error body, and the server keeps serving: checked with raw
 * HTTP (what the `openai` client cannot send) and with the client (how users see the errors).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { loadSession, startTestServer, type TestServer } from "./harness.js";
import type { ServedSession } from "../../src/server/start.js";

let session: ServedSession;
let t: TestServer;
beforeAll(async () => {
  session = await loadSession();
  t = await startTestServer({ session, bodyLimit: 64 * 1024 });
});
afterAll(async () => {
  await t?.server.close(1000);
});

const chat = (extra: Record<string, unknown> = {}) => ({
  model: t.model,
  messages: [{ role: "user", content: "Hi" }],
  max_tokens: 2,
  ...extra,
});

async function post(path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${t.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  return { status: res.status, body: (await res.json()) as { error?: { message: string; type: string; param: string | null; code: string | null } } };
}

describe("server: bad requests", () => {
  const cases: Array<[string, string, number, string | null]> = [
    ["malformed JSON", "{\"model\": ", 400, null],
    ["a body that is not an object", "[1, 2]", 400, null],
    ["missing messages", JSON.stringify({ model: "qwen3-next-demo" }), 400, "messages"],
    ["empty messages", JSON.stringify({ model: "qwen3-next-demo", messages: [] }), 400, "messages"],
    ["a wrongly typed temperature", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], temperature: "hot" }), 400, "temperature"],
    ["temperature out of range", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], temperature: 2.5 }), 400, "temperature"],
    ["an unknown role", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "wizard", content: "Hi" }] }), 400, "messages[0].role"],
    ["a message without content", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user" }] }), 400, "messages[0].content"],
    ["max_tokens 0", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], max_tokens: 0 }), 400, "max_tokens"],
    ["max_tokens beyond the context", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], max_tokens: 10_000_000 }), 400, "max_tokens"],
    ["a fractional max_tokens", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], max_tokens: 2.5 }), 400, "max_tokens"],
    ["n = 17 (at most 16)", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], n: 17 }), 400, "n"],
    ["top_logprobs without logprobs", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], top_logprobs: 2 }), 400, "top_logprobs"],
    ["top_logprobs 21 (at most 20)", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], logprobs: true, top_logprobs: 21 }), 400, "top_logprobs"],
    ["tool_choice required without tools", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], tool_choice: "required" }), 400, "tool_choice"],
    ["an unknown model", JSON.stringify({ model: "gpt-4", messages: [{ role: "user", content: "Hi" }] }), 400, "model"],
    ["a logit_bias for a token outside the vocabulary", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], logit_bias: { "999999": 1 } }), 400, "logit_bias"],
    ["an unsafe integer seed", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], seed: 1e20 }), 400, "seed"],
    ["an unknown response_format type", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], response_format: { type: "yaml" } }), 400, "response_format.type"],
    ["a json_schema format without its json_schema", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "user", content: "Hi" }], response_format: { type: "json_schema" } }), 400, "response_format.json_schema"],
    ["a tool message without tool_call_id", JSON.stringify({ model: "qwen3-next-demo", messages: [{ role: "tool", content: "x" }] }), 400, "messages[0].tool_call_id"],
  ];
  for (const [what, body, status, param] of cases) {
    it(`answers ${status} to ${what}`, async () => {
      const r = await post("/v1/chat/completions", body);
      expect(r.status).toBe(status);
      expect(r.body.error?.type).toBe("invalid_request_error");
      expect(r.body.error?.param).toBe(param);
      expect(r.body.error?.message.length).toBeGreaterThan(10);
    });
  }

  it("answers 400 to a prompt longer than the context", async () => {
    const limit = (await t.client.models.list()).data[0] as unknown as { max_model_len: number };
    const prompt = "hello ".repeat(limit.max_model_len + 10);
    await expect(t.client.completions.create({ model: t.model, prompt, max_tokens: 1 })).rejects.toMatchObject({
      status: 400,
      code: "context_length_exceeded",
    });
  });

  it("answers 413 to a body over the size limit, 404 to an unknown route", async () => {
    const big = await post("/v1/chat/completions", JSON.stringify(chat({ messages: [{ role: "user", content: "x".repeat(100_000) }] })));
    expect(big.status).toBe(413);
    expect(big.body.error?.type).toBe("invalid_request_error");
    // The limit, stated once (it was "Request body is too large: Request body is too large").
    expect(big.body.error?.message).toBe("Request body is larger than the limit of 65536 bytes");
    const res = await fetch(`${t.url}/v1/nothing`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
  });

  it("surfaces errors through the openai client as APIError with status, param and message", async () => {
    const err = await t.client.chat.completions.create({ ...chat(), model: t.model, temperature: -1 } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("temperature");
  });

  it("keeps serving after all of that", async () => {
    const r = await t.client.chat.completions.create(chat() as never);
    expect(r.choices[0].finish_reason).toBe("length");
    expect((await t.health()).status).toBe("ok");
  });
});

describe("server: API key and queue limit", () => {
  it("answers 401 to a wrong or missing key when --api-key is set, and serves the right one", async () => {
    const secured = await startTestServer({ session, apiKey: "s3cret" });
    try {
      const wrong = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: "nope", maxRetries: 0 });
      await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      const missing = await fetch(`${secured.url}/v1/models`);
      expect(missing.status).toBe(401);
      expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
      expect((await secured.client.models.list()).data[0].id).toBe(secured.model);
      expect((await fetch(`${secured.url}/health`)).status).toBe(200);
    } finally {
      await secured.server.close(1000);
    }
  });

  it("answers 429 beyond --max-concurrency + --max-queue, with Retry-After, then serves again", async () => {
    const small = await startTestServer({ session, maxConcurrency: 1, maxQueue: 1 });
    try {
      const req = { model: small.model, prompt: "count", max_tokens: 4000, seed: 1 };
      // Two long streams hold the slot and the queue place (the first has started once a chunk arrived).
      const first = await small.client.completions.create({ ...req, stream: true });
      const it1 = first[Symbol.asyncIterator]();
      await it1.next();
      const second = small.client.completions.create({ ...req, stream: true });
      for (let i = 0; i < 200 && (await small.health()).queued !== 1; i++) await new Promise((r) => setTimeout(r, 25));
      expect(await small.health()).toMatchObject({ active: 1, queued: 1 });
      const refused = await small.client.completions.create({ ...req, max_tokens: 2 }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
      const retryAfter = Number((refused as InstanceType<typeof OpenAI.RateLimitError>).headers?.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      first.controller.abort();
      (await second).controller.abort();
      for (let i = 0; i < 200 && (await small.health()).active !== 0; i++) await new Promise((r) => setTimeout(r, 25));
      const again = await small.client.completions.create({ ...req, max_tokens: 2 });
      expect(again.choices[0].finish_reason).toBe("length");
    } finally {
      await small.server.close(1000);
    }
  });
});
