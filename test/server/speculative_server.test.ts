/**
 * `serve --speculative mtp` seen from a client: greedy completions equal those without speculation (per
 * request, num_speculative_tokens 0 turns it off), also when the prompt's state comes from the prefix
 * cache; usage counts the drafts (accepted and rejected prediction tokens) and /metrics' vllm:spec_decode_*
 * counters move by the same amounts; a request may lower the draft length but not raise it. Requests with a
 * grammar (response_format, tool_choice) draft under it and give constrained greedy's text for K = 1..4,
 * requests with logprobs draft (same tokens, same logprobs as without speculation); `n` choices each draft
 * and each equal greedy's text.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { collectChat, loadSession, startTestServer, type TestServer } from "./harness.js";
import type { ServedSession } from "../../src/server/start.js";

let session: ServedSession;
let spec: TestServer;
let plain: TestServer;
beforeAll(async () => {
  session = await loadSession();
  spec = await startTestServer({ session, prefixCacheSize: 4, draftTokens: 4 });
  plain = await startTestServer({ session, prefixCacheSize: 0 });
});
afterAll(async () => {
  await spec?.server.close(1000);
  await plain?.server.close(1000);
});

type Extra = { num_speculative_tokens?: number };
const details = (u: OpenAI.CompletionUsage | undefined) =>
  (u as { completion_tokens_details?: { accepted_prediction_tokens: number; rejected_prediction_tokens: number } } | undefined)?.completion_tokens_details;

describe("server: speculative decoding", () => {
  it("gives greedy's exact text for any draft length, through the prefix cache, and counts the drafts", async () => {
    const messages = [{ role: "user" as const, content: "Count with me" }];
    const base = { messages, max_tokens: 9, temperature: 0 };
    const expected = await plain.client.chat.completions.create({ model: plain.model, ...base });
    expect(details(expected.usage)).toBeUndefined();
    for (const k of [undefined, 1, 2, 3, 0, 3]) {
      const body = { model: spec.model, ...base, ...(k === undefined ? {} : { num_speculative_tokens: k }) } as OpenAI.ChatCompletionCreateParamsNonStreaming & Extra;
      const r = await spec.client.chat.completions.create(body);
      expect(r.choices[0].message.content, `k=${k}`).toBe(expected.choices[0].message.content);
      expect(r.usage!.completion_tokens).toBe(expected.usage!.completion_tokens);
      const d = details(r.usage);
      if (k === 0) expect(d).toBeUndefined();
      else {
        expect(d!.accepted_prediction_tokens + d!.rejected_prediction_tokens).toBeGreaterThan(0);
        expect(d!.accepted_prediction_tokens).toBeGreaterThanOrEqual(0);
      }
    }
    const h = await spec.health();
    expect(h.prefixCacheHitTokens as number).toBeGreaterThan(0);
    expect(h.draftTokens as number).toBeGreaterThan(0);
  });

  it("streams the same text, with the draft counts in the usage chunk", async () => {
    const base = { messages: [{ role: "user" as const, content: "Stream it" }], max_tokens: 7, temperature: 0 };
    const expected = await plain.client.chat.completions.create({ model: plain.model, ...base });
    const stream = await spec.client.chat.completions.create({ model: spec.model, ...base, stream: true, stream_options: { include_usage: true } });
    const got = await collectChat(stream);
    expect(got.content).toBe(expected.choices[0].message.content);
    expect(details(got.usage)).toBeDefined();
  });

  it("moves /metrics' spec-decode counters by the drafts that usage reports", async () => {
    const metric = async (name: string) => {
      const text = await (await fetch(`${spec.url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
    };
    const names = ["vllm:spec_decode_num_drafts_total", "vllm:spec_decode_num_draft_tokens_total", "vllm:spec_decode_num_accepted_tokens_total"];
    const before = await Promise.all(names.map(metric));
    const body = { model: spec.model, messages: [{ role: "user" as const, content: "Metrics please" }], max_tokens: 8, temperature: 0, num_speculative_tokens: 2 };
    const r = await spec.client.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming & Extra);
    const d = details(r.usage)!;
    const after = await Promise.all(names.map(metric));
    expect(after[1] - before[1]).toBe(d.accepted_prediction_tokens + d.rejected_prediction_tokens);
    expect(after[2] - before[2]).toBe(d.accepted_prediction_tokens);
    // One draft per verify step of at most 2 tokens.
    expect(after[0] - before[0]).toBeGreaterThanOrEqual(Math.ceil((after[1] - before[1]) / 2));
    expect(after[0] - before[0]).toBeGreaterThan(0);
  });

  it("drafts under a grammar (json_schema, json_object, tool_choice named and required): constrained greedy's text for K = 1..4, the drafts counted", async () => {
    const messages = [{ role: "user" as const, content: "Give me JSON" }];
    const person = { type: "object", properties: { name: { type: "string" }, age: { type: "integer" }, ok: { type: "boolean" } }, required: ["name", "age", "ok"], additionalProperties: false };
    const tools = [{ type: "function" as const, function: { name: "add", parameters: { type: "object", properties: { a: { type: "integer" }, b: { enum: ["x", "y"] } }, required: ["a", "b"] } } }];
    const bodies = [
      { messages, max_tokens: 40, temperature: 0, response_format: { type: "json_schema" as const, json_schema: { name: "person", schema: person, strict: true } } },
      { messages, max_tokens: 16, temperature: 0, response_format: { type: "json_object" as const } },
      { messages, max_tokens: 40, temperature: 0, tools, tool_choice: { type: "function" as const, function: { name: "add" } } },
      { messages, max_tokens: 40, temperature: 0, tools, tool_choice: "required" as const, parallel_tool_calls: false },
    ];
    let accepted = 0;
    for (const body of bodies) {
      const expected = await plain.client.chat.completions.create({ model: plain.model, ...body });
      for (const k of [1, 2, 3, 4]) {
        const got = await spec.client.chat.completions.create({ model: spec.model, ...body, num_speculative_tokens: k } as OpenAI.ChatCompletionCreateParamsNonStreaming & Extra);
        const what = `${JSON.stringify(body.response_format ?? body.tool_choice)} k=${k}`;
        expect(got.choices[0].message, what).toEqual(expected.choices[0].message);
        expect(got.choices[0].finish_reason, what).toBe(expected.choices[0].finish_reason);
        expect(got.usage!.completion_tokens, what).toBe(expected.usage!.completion_tokens);
        const d = details(got.usage)!;
        expect(d.accepted_prediction_tokens + d.rejected_prediction_tokens, what).toBeGreaterThan(0);
        accepted += d.accepted_prediction_tokens;
      }
    }
    // Under a grammar the random model's masked drafts are right where the grammar leaves one choice.
    expect(accepted).toBeGreaterThan(0);
  });

  it("drafts for requests with logprobs: the same tokens and logprobs as without speculation", async () => {
    const messages = [{ role: "user" as const, content: "Give me JSON" }];
    const lp = { messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 };
    const plainLp = await plain.client.chat.completions.create({ model: plain.model, ...lp });
    const specLp = await spec.client.chat.completions.create({ model: spec.model, ...lp, num_speculative_tokens: 3 } as OpenAI.ChatCompletionCreateParamsNonStreaming & Extra);
    expect(specLp.choices[0].message.content).toBe(plainLp.choices[0].message.content);
    expect(specLp.choices[0].logprobs!.content!.length).toBe(specLp.usage!.completion_tokens);
    expect(specLp.choices[0].logprobs).toEqual(plainLp.choices[0].logprobs);
    const d = details(specLp.usage)!;
    expect(d.accepted_prediction_tokens + d.rejected_prediction_tokens).toBeGreaterThan(0);
  });

  it("drafts for each of n greedy choices, each equal to greedy's text, the drafts summed in usage", async () => {
    const base = { messages: [{ role: "user" as const, content: "Twice" }], max_tokens: 8, temperature: 0 };
    const expected = await plain.client.chat.completions.create({ model: plain.model, ...base });
    const r = await spec.client.chat.completions.create({ model: spec.model, ...base, n: 3, num_speculative_tokens: 2 } as OpenAI.ChatCompletionCreateParamsNonStreaming & Extra);
    expect(r.choices.map((c) => c.message.content)).toEqual([0, 1, 2].map(() => expected.choices[0].message.content));
    expect(r.usage!.completion_tokens).toBe(3 * expected.usage!.completion_tokens);
    const d = details(r.usage)!;
    expect(d.accepted_prediction_tokens + d.rejected_prediction_tokens).toBeGreaterThan(0);
  });

  it("refuses more drafts than the server's --draft-tokens, and any on a server without speculation (400)", async () => {
    const body = (s: TestServer, k: number) =>
      ({ model: s.model, messages: [{ role: "user" as const, content: "hi" }], max_tokens: 2, num_speculative_tokens: k }) as OpenAI.ChatCompletionCreateParamsNonStreaming & Extra;
    await expect(spec.client.chat.completions.create(body(spec, 5))).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining("num_speculative_tokens is 5, expected at most 4: the server's --draft-tokens is 4"),
    });
    await expect(plain.client.chat.completions.create(body(plain, 1))).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining("this server runs without speculative decoding (start it with --speculative mtp)"),
    });
  });
});
