/**
 * Random request bodies against a running server (fast-check): valid, nearly valid and garbage bodies, on both
 * completion endpoints, streamed or not. The server never answers 5xx (nor sends a server_error event inside a
 * stream), always answers JSON, and keeps serving.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./harness.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ defaultMaxTokens: 3, bodyLimit: 256 * 1024 });
});
afterAll(async () => {
  await t?.server.close(1000);
});

const anyValue = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, -1, 0, 1, 2, 0.5, 1e300, -1e300, 2 ** 53, "", "x", [], {}, true) },
);
const text = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("<|im_start|>", "<think>", "</think>", "<tool_call>\n{\"name\": 1}\n</tool_call>", "\u0000", "\ud800", "{{ x }}", "{% for %}"));
const message = fc.record(
  {
    role: fc.oneof(fc.constantFrom("system", "developer", "user", "assistant", "tool"), anyValue),
    content: fc.oneof(text, fc.constant(null), fc.array(fc.record({ type: fc.constant("text"), text }), { maxLength: 2 }), anyValue),
    tool_calls: fc.oneof(
      fc.array(fc.record({ id: fc.string(), type: fc.constant("function"), function: fc.record({ name: text, arguments: fc.oneof(text, fc.object()) }) }), { maxLength: 2 }),
      anyValue,
    ),
    tool_call_id: fc.oneof(fc.string(), anyValue),
    reasoning_content: fc.oneof(text, anyValue),
    name: fc.oneof(fc.string(), anyValue),
  },
  { requiredKeys: ["role"] },
);
/** Valid values of the sampling fields (each body takes a few of them). */
const validSampling = fc.record(
  {
    temperature: fc.double({ min: 0, max: 2, noNaN: true }),
    top_p: fc.double({ min: 0.01, max: 1, noNaN: true }),
    top_k: fc.integer({ min: -1, max: 200_000 }),
    min_p: fc.double({ min: 0, max: 1, noNaN: true }),
    presence_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
    frequency_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
    repetition_penalty: fc.double({ min: 0.1, max: 3, noNaN: true }),
    max_tokens: fc.integer({ min: 1, max: 4 }),
    seed: fc.integer(),
    stop: fc.oneof(fc.string({ minLength: 1, maxLength: 3 }), fc.array(fc.string({ minLength: 1, maxLength: 3 }), { maxLength: 3 })),
    stream: fc.boolean(),
    stream_options: fc.record({ include_usage: fc.boolean() }),
    logit_bias: fc.dictionary(fc.stringMatching(/^[0-9]{1,5}$/), fc.double({ min: -100, max: 100, noNaN: true }), { maxKeys: 3 }),
  },
  { requiredKeys: [] },
);
const FIELDS = [
  "model", "messages", "prompt", "temperature", "top_p", "top_k", "min_p", "presence_penalty", "frequency_penalty",
  "repetition_penalty", "max_tokens", "max_completion_tokens", "seed", "stop", "n", "stream", "stream_options", "logit_bias",
  "response_format", "user", "tools", "tool_choice", "chat_template_kwargs", "echo", "parallel_tool_calls",
];
/** 0-2 fields replaced by anything (most bodies stay valid or nearly so). */
const edits = fc.array(fc.tuple(fc.constantFrom(...FIELDS), anyValue), { maxLength: 2 });
const chatBody = fc
  .tuple(
    fc.array(message, { minLength: 1, maxLength: 3 }),
    fc.oneof(fc.constant([{ role: "user", content: "Hi" }]), fc.array(fc.record({ role: fc.constantFrom("system", "user"), content: text }), { minLength: 1, maxLength: 2 })),
    validSampling,
    fc.record(
      {
        tools: fc.array(fc.record({ type: fc.constant("function"), function: fc.record({ name: fc.string({ minLength: 1, maxLength: 10 }), parameters: fc.object({ maxDepth: 1 }) }) }), { maxLength: 2 }),
        tool_choice: fc.constantFrom("none", "auto", "required"),
        chat_template_kwargs: fc.record({ enable_thinking: fc.boolean() }),
      },
      { requiredKeys: [] },
    ),
    fc.boolean(),
    edits,
  )
  .map(([wild, plain, samplingFields, extra, useWild, e]) => {
    const b: Record<string, unknown> = { model: "MODEL", messages: useWild ? wild : plain, ...samplingFields, ...extra };
    for (const [k, v] of e) b[k] = v;
    return b;
  });
const completionBody = fc
  .tuple(fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 1 })), validSampling, fc.option(fc.boolean()), edits)
  .map(([prompt, samplingFields, echo, e]) => {
    const b: Record<string, unknown> = { model: "MODEL", prompt, ...samplingFields };
    if (echo !== null) b.echo = echo;
    for (const [k, v] of e) b[k] = v;
    return b;
  });
const request = fc.oneof(
  { weight: 4, arbitrary: fc.record({ route: fc.constant("/v1/chat/completions"), body: chatBody.map((b) => JSON.stringify(b)) }) },
  { weight: 4, arbitrary: fc.record({ route: fc.constant("/v1/completions"), body: completionBody.map((b) => JSON.stringify(b)) }) },
  { weight: 1, arbitrary: fc.record({ route: fc.constantFrom("/v1/chat/completions", "/v1/completions"), body: fc.oneof(fc.string({ maxLength: 60 }), fc.jsonValue().map((v) => JSON.stringify(v) ?? "")) }) },
);

/** Keeps generation short: budgets above a few tokens are cut (the fuzz is about inputs, not long outputs). */
function shorten(body: string): string {
  try {
    const b = JSON.parse(body) as Record<string, unknown>;
    if (typeof b !== "object" || b === null || Array.isArray(b)) return body;
    if (b.model === "MODEL") b.model = t.model;
    for (const k of ["max_tokens", "max_completion_tokens"]) if (typeof b[k] === "number" && (b[k] as number) > 4) b[k] = 4;
    return JSON.stringify(b);
  } catch {
    return body;
  }
}

describe("server: fuzzed request bodies", () => {
  it("never answers 5xx, always answers JSON or SSE, and keeps serving", async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain"), async (r, type) => {
        const res = await fetch(`${t.url}${r.route}`, { method: "POST", headers: { "content-type": type }, body: shorten(r.body) });
        const body = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status, body).toBeLessThan(500);
        if (res.headers.get("content-type")?.startsWith("text/event-stream")) {
          expect(body).not.toContain('"server_error"');
          expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
        } else {
          const json = JSON.parse(body) as { error?: { message: string } };
          if (res.status >= 400) expect(json.error?.message.length).toBeGreaterThan(5);
        }
      }),
      { numRuns: 250, seed: 2026 },
    );
    // Both refusals and real generations were exercised.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(20);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(20);
    expect((await t.health()).status).toBe("ok");
    const ok = await t.client.completions.create({ model: t.model, prompt: "Hi", max_tokens: 2 });
    expect(ok.choices).toHaveLength(1);
  }, 400_000); // a few minutes when the whole suite shares two cores
});
