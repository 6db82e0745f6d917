/**
 * The outputs and endpoints vLLM clients read, end to end with the official `openai` client against the
 * demo checkpoint (random weights): constrained decoding (json_schema, forced tool calls), logprobs, n,
 * /tokenize, /detokenize, /metrics, the response cache, model-name aliases, token-id prompts, CORS.
 * Independent checks: JSON output is validated by ajv (not XGrammar); logprobs are recomputed from the
 * model's own forward pass in the test; the Prometheus text is parsed by the small parser below.
 */
import { Ajv } from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SchedulableState } from "../../src/server/scheduler.js";
import { collectChat, loadSession, startTestServer, type TestServer } from "./harness.js";
import type { ServedSession } from "../../src/server/start.js";

let t: TestServer;
let session: ServedSession;
const logLines: string[] = [];
beforeAll(async () => {
  session = await loadSession();
  t = await startTestServer({
    session,
    servedModelName: ["demo", "demo-alias"],
    modelPath: "/models/demo",
    responseCacheSize: 4,
    allowedOrigins: ["http://app.example"],
    requestLog: (line) => logLines.push(line),
  });
});
afterAll(async () => {
  await t?.server.close(1000);
});

const user = (content: string) => [{ role: "user" as const, content }];
const ajv = new Ajv({ strict: false });

// Bounded strings and numbers: a random-weight model cannot be trusted to end an unbounded one.
const person = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 12 },
    age: { type: "integer", minimum: 0, maximum: 120 },
    tags: { type: "array", items: { enum: ["red", "green"] }, maxItems: 3 },
    member: { type: "boolean" },
  },
  required: ["name", "age", "tags", "member"],
  additionalProperties: false,
};

const tools = [
  {
    type: "function" as const,
    function: {
      name: "get_weather",
      description: "Weather in a city",
      parameters: {
        type: "object",
        properties: { city: { type: "string", maxLength: 10 }, unit: { enum: ["c", "f"] } },
        required: ["city", "unit"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function" as const,
    function: {
      name: "add",
      parameters: {
        type: "object",
        properties: { a: { type: "integer", minimum: -50, maximum: 50 }, b: { type: "integer", minimum: 0, maximum: 9 } },
        required: ["a", "b"],
        additionalProperties: false,
      },
    },
  },
];
const toolSchema = (name: string) => tools.find((x) => x.function.name === name)!.function.parameters;

/** Prometheus text exposition -> {"name{labels}": value} (comments skipped), and the TYPE of each family. */
function parseProm(text: string): { samples: Map<string, number>; types: Map<string, string> } {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const value = Number(m[3]);
    if (Number.isNaN(value) && m[3] !== "NaN") throw new Error(`bad value in: ${line}`);
    samples.set(m[1] + (m[2] ?? ""), value);
  }
  return { samples, types };
}
async function metrics() {
  const r = await fetch(`${t.url}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
  return parseProm(await r.text());
}
const M = (name: string) => `${name}{model_name="demo"}`;

describe("constrained decoding (XGrammar)", () => {
  it("returns JSON valid against a strict json_schema, streamed and not, even from random weights", async () => {
    const validate = ajv.compile(person);
    for (const seed of [1, 2, 3]) {
      const req = {
        model: t.model,
        messages: user("Describe a person."),
        max_tokens: 120,
        seed,
        temperature: 1,
        response_format: { type: "json_schema" as const, json_schema: { name: "person", schema: person, strict: true } },
      };
      const r = await t.client.chat.completions.create(req);
      expect(r.choices[0].finish_reason).toBe("stop");
      const value = JSON.parse(r.choices[0].message.content ?? "");
      expect(validate(value), JSON.stringify(validate.errors)).toBe(true);
      const streamed = await collectChat(await t.client.chat.completions.create({ ...req, stream: true }));
      expect(streamed.content).toBe(r.choices[0].message.content);
    }
  });

  it("constrains /v1/completions too", async () => {
    const r = await t.client.completions.create({
      model: t.model,
      prompt: "A person:",
      max_tokens: 120,
      seed: 5,
      // vLLM accepts response_format on completions; the openai types only list it for chat.
      ...({ response_format: { type: "json_schema", json_schema: { name: "p", schema: person, strict: true } } } as object),
    });
    expect(ajv.validate(person, JSON.parse(r.choices[0].text))).toBe(true);
  });

  it("tool_choice required: a call of one of the tools with schema-valid arguments, finish_reason tool_calls", async () => {
    for (const seed of [1, 2]) {
      const r = await t.client.chat.completions.create({
        model: t.model, messages: user("What is the weather?"), tools, tool_choice: "required", max_tokens: 200, seed, temperature: 1,
      });
      const choice = r.choices[0];
      expect(choice.finish_reason).toBe("tool_calls");
      const calls = choice.message.tool_calls ?? [];
      expect(calls.length).toBeGreaterThanOrEqual(1);
      for (const c of calls) {
        if (c.type !== "function") throw new Error("expected a function call");
        expect(tools.map((x) => x.function.name)).toContain(c.function.name);
        expect(ajv.validate(toolSchema(c.function.name), JSON.parse(c.function.arguments)), c.function.arguments).toBe(true);
      }
    }
  });

  it("a named tool_choice calls exactly that function; parallel_tool_calls false gives one call", async () => {
    const r = await t.client.chat.completions.create({
      model: t.model, messages: user("Add numbers."), tools, tool_choice: { type: "function", function: { name: "add" } }, max_tokens: 200, seed: 3,
    });
    const calls = r.choices[0].message.tool_calls ?? [];
    expect(r.choices[0].finish_reason).toBe("tool_calls");
    expect(calls).toHaveLength(1);
    const call = calls[0];
    if (call.type !== "function") throw new Error("expected a function call");
    expect(call.function.name).toBe("add");
    expect(ajv.validate(toolSchema("add"), JSON.parse(call.function.arguments))).toBe(true);

    const single = await t.client.chat.completions.create({
      model: t.model, messages: user("Weather?"), tools, tool_choice: "required", parallel_tool_calls: false, max_tokens: 200, seed: 4,
    });
    expect(single.choices[0].message.tool_calls).toHaveLength(1);
  });

  it("streams a forced tool call with finish_reason tool_calls", async () => {
    const stream = await t.client.chat.completions.create({
      model: t.model, messages: user("Add."), tools, tool_choice: { type: "function", function: { name: "add" } }, max_tokens: 200, seed: 3, stream: true,
    });
    let args = "";
    let name = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      for (const tc of c.delta.tool_calls ?? []) {
        name += tc.function?.name ?? "";
        args += tc.function?.arguments ?? "";
      }
      finish = c.finish_reason ?? finish;
    }
    expect(finish).toBe("tool_calls");
    expect(name).toBe("add");
    expect(ajv.validate(toolSchema("add"), JSON.parse(args))).toBe(true);
  });

  it("answers 400 to a schema XGrammar cannot compile", async () => {
    await expect(
      t.client.chat.completions.create({
        model: t.model, messages: user("x"), max_tokens: 5,
        response_format: { type: "json_schema", json_schema: { name: "bad", schema: { type: "object", properties: { a: { $ref: "#/nowhere" } }, required: ["a"] } } },
      }),
    ).rejects.toMatchObject({ status: 400 });
  });
});

describe("logprobs and n", () => {
  it("chat logprobs: one entry per token, top_logprobs of the asked length, <= 0, equal to the model's log-softmax", async () => {
    const messages = user("Count to three.");
    const r = await t.client.chat.completions.create({ model: t.model, messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = r.choices[0].logprobs?.content ?? [];
    expect(content).toHaveLength(r.usage!.completion_tokens);
    for (const e of content) {
      expect(e.logprob).toBeLessThanOrEqual(0);
      expect(e.top_logprobs).toHaveLength(3);
      for (const alt of e.top_logprobs) expect(alt.logprob).toBeLessThanOrEqual(0);
      expect(e.top_logprobs[0].logprob).toBeGreaterThanOrEqual(e.top_logprobs[1].logprob);
      // Greedy: the chosen token is the most likely one.
      expect(e.token).toBe(e.top_logprobs[0].token);
      expect(e.logprob).toBe(e.top_logprobs[0].logprob);
    }
    // Second computation: the model's logits for the prompt, log-softmax in float64 here.
    const prompt = (await (await fetch(`${t.url}/tokenize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messages }) })).json()) as { tokens: number[] };
    const state = session.model.newState() as unknown as SchedulableState;
    const logits = await session.model.forward(prompt.tokens, state as never, { lastOnly: true });
    state.free();
    const n = session.tokenizer.vocabSize;
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, logits[i]);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += Math.exp(logits[i] - max);
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    expect(content[0].logprob).toBeCloseTo(logits[best] - max - Math.log(sum), 9);
    expect(Buffer.from(content[0].bytes ?? []).toString("utf8")).toBe(session.tokenizer.decode([best]));
  });

  it("streamed chat logprobs add up to the same entries", async () => {
    const req = { model: t.model, messages: user("Hi"), max_tokens: 8, seed: 11, temperature: 1, logprobs: true, top_logprobs: 2 };
    const whole = await t.client.chat.completions.create(req);
    const streamed: unknown[] = [];
    for await (const chunk of await t.client.chat.completions.create({ ...req, stream: true })) {
      streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    }
    expect(streamed).toEqual(whole.choices[0].logprobs?.content);
  });

  it("completions logprobs: parallel arrays, one per token, top maps of the asked size", async () => {
    const r = await t.client.completions.create({ model: t.model, prompt: "The sky is", max_tokens: 5, seed: 2, logprobs: 2 });
    const lp = r.choices[0].logprobs!;
    expect(lp.tokens).toHaveLength(r.usage!.completion_tokens);
    expect(lp.token_logprobs).toHaveLength(lp.tokens!.length);
    expect(lp.text_offset).toHaveLength(lp.tokens!.length);
    for (const v of lp.token_logprobs!) expect(v).toBeLessThanOrEqual(0);
    for (const top of lp.top_logprobs!) expect(Object.keys(top).length).toBeLessThanOrEqual(2);
    expect(lp.tokens!.join("")).toContain(r.choices[0].text);
  });

  it("n: 3 gives 3 choices from one prefill; seeded choices differ, greedy ones agree", async () => {
    const before = (await metrics()).samples.get(M("vllm:prefix_cache_queries_total"))!;
    const prompt = "Tell me something new about otters and beavers.";
    const r = await t.client.chat.completions.create({ model: t.model, messages: user(prompt), n: 3, max_tokens: 6, seed: 9, temperature: 1 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(new Set(r.choices.map((c) => c.message.content)).size).toBeGreaterThan(1);
    expect(r.usage!.completion_tokens).toBe(18);
    // The prompt was looked up (and prefilled) once, not three times.
    expect((await metrics()).samples.get(M("vllm:prefix_cache_queries_total"))! - before).toBe(r.usage!.prompt_tokens);

    const greedy = await t.client.chat.completions.create({ model: t.model, messages: user("Otters?"), n: 3, max_tokens: 6, temperature: 0 });
    expect(new Set(greedy.choices.map((c) => c.message.content)).size).toBe(1);
    const streamedIdx = new Set<number>();
    for await (const chunk of await t.client.chat.completions.create({ model: t.model, messages: user("Otters?"), n: 3, max_tokens: 3, temperature: 0, stream: true })) {
      for (const c of chunk.choices) streamedIdx.add(c.index);
    }
    expect([...streamedIdx].sort()).toEqual([0, 1, 2]);
  });
});

describe("endpoints and names", () => {
  const post = async (path: string, body: unknown) => {
    const r = await fetch(`${t.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  it("/tokenize and /detokenize in vLLM's shapes", async () => {
    const tok = await post("/tokenize", { model: "demo", prompt: "Hello world" });
    expect(tok.status).toBe(200);
    expect(tok.body.tokens).toEqual([9707, 1879]);
    expect(tok.body.count).toBe(2);
    expect(typeof tok.body.max_model_len).toBe("number");
    expect((await post("/detokenize", { tokens: [9707, 1879] })).body).toEqual({ prompt: "Hello world" });
    expect((await post("/detokenize", { tokens: [99_999_999] })).status).toBe(400);
    expect((await post("/tokenize", { model: "gpt-4", prompt: "x" })).status).toBe(400);
  });

  it("accepts an assistant turn's reasoning under vLLM's current name, as reasoning_content", async () => {
    const turn = (extra: object) => [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello!", ...extra }];
    const a = await post("/tokenize", { messages: turn({ reasoning: "greet back" }), add_generation_prompt: false });
    const b = await post("/tokenize", { messages: turn({ reasoning_content: "greet back" }), add_generation_prompt: false });
    const none = await post("/tokenize", { messages: turn({}), add_generation_prompt: false });
    expect(a.body.tokens).toEqual(b.body.tokens);
    expect(a.body.tokens).not.toEqual(none.body.tokens);
  });

  it("serves under every --served-model-name (all listed) and the model path, reporting the first", async () => {
    expect((await t.client.models.list()).data.map((m) => m.id)).toEqual(["demo", "demo-alias"]);
    expect((await t.client.models.retrieve("demo-alias")).id).toBe("demo-alias");
    for (const model of ["demo", "demo-alias", "/models/demo"]) {
      const r = await t.client.completions.create({ model, prompt: "Hi", max_tokens: 1 });
      expect(r.model).toBe("demo");
    }
  });

  it("takes token ids as a /v1/completions prompt, with the same output as the text", async () => {
    const ids = (await post("/tokenize", { prompt: "Once upon a time" })).body.tokens as number[];
    const req = { model: t.model, max_tokens: 6, temperature: 0 };
    const fromText = await t.client.completions.create({ ...req, prompt: "Once upon a time" });
    const fromIds = await t.client.completions.create({ ...req, prompt: ids });
    expect(fromIds.choices[0].text).toBe(fromText.choices[0].text);
    expect(fromIds.usage?.prompt_tokens).toBe(ids.length);
    await expect(t.client.completions.create({ ...req, prompt: [1, 99_999_999] })).rejects.toMatchObject({ status: 400, param: "prompt" });
  });

  it("reports prompt tokens taken from the prefix cache as cached_tokens", async () => {
    const req = { model: t.model, messages: user("A prompt seen twice, for the prefix cache."), max_tokens: 2, seed: 1 };
    await t.client.chat.completions.create(req);
    const again = await t.client.chat.completions.create({ ...req, max_tokens: 3 }); // not the response cache's answer
    expect(again.usage?.prompt_tokens_details?.cached_tokens).toBe(again.usage?.prompt_tokens);
  });

  it("/metrics parses as Prometheus text under vLLM's names, and its counters move with traffic", async () => {
    const a = await metrics();
    for (const [name, type] of [
      ["vllm:num_requests_running", "gauge"],
      ["vllm:num_requests_waiting", "gauge"],
      ["vllm:time_to_first_token_seconds", "histogram"],
      ["vllm:e2e_request_latency_seconds", "histogram"],
      ["vllm:prompt_tokens_total", "counter"],
      ["vllm:generation_tokens_total", "counter"],
      ["vllm:prefix_cache_queries_total", "counter"],
      ["vllm:prefix_cache_hits_total", "counter"],
      ["vllm:spec_decode_num_accepted_tokens_total", "counter"],
    ]) {
      expect(a.types.get(name), name).toBe(type);
    }
    const r = await t.client.completions.create({ model: t.model, prompt: "Counting tokens for metrics", max_tokens: 7, seed: 1 });
    const b = await metrics();
    const delta = (k: string) => b.samples.get(M(k))! - a.samples.get(M(k))!;
    expect(delta("vllm:generation_tokens_total")).toBe(r.usage!.completion_tokens);
    expect(delta("vllm:prompt_tokens_total")).toBe(r.usage!.prompt_tokens);
    expect(delta("vllm:e2e_request_latency_seconds_count")).toBe(1);
    expect(delta("vllm:time_to_first_token_seconds_count")).toBe(1);
    expect(b.samples.get(M("vllm:num_requests_running"))).toBe(0);
  });

  it("exposes speculative-decoding acceptance through the hook MTP drafting reports to", async () => {
    const a = await metrics();
    t.server.metrics.specDecode(4, 3);
    t.server.metrics.specDecode(4, 1);
    const b = await metrics();
    const delta = (k: string) => b.samples.get(M(k))! - a.samples.get(M(k))!;
    expect(delta("vllm:spec_decode_num_drafts_total")).toBe(2);
    expect(delta("vllm:spec_decode_num_draft_tokens_total")).toBe(8);
    expect(delta("vllm:spec_decode_num_accepted_tokens_total")).toBe(4);
  });

  it("--response-cache answers a repeated deterministic request from the cache (streamed or not), counted in /metrics", async () => {
    const a = await metrics();
    const req = { model: t.model, messages: user("Cache me."), max_tokens: 5, temperature: 0 };
    const first = await t.client.chat.completions.create(req);
    const second = await t.client.chat.completions.create({ ...req, user: "someone" });
    expect(second.choices).toEqual(first.choices);
    expect(second.id).not.toBe(first.id);
    await t.client.chat.completions.create({ ...req, max_tokens: 4 }); // a different request: a miss
    await t.client.chat.completions.create({ ...req, temperature: 1 }); // not deterministic: not looked up
    // A streamed request is answered from the same entry, replayed as a stream.
    const replayed = await collectChat(await t.client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } }));
    expect(replayed).toMatchObject({ role: "assistant", content: first.choices[0].message.content, finish: first.choices[0].finish_reason });
    expect(replayed.usage).toEqual(first.usage);
    // A streamed miss fills the cache for the same request unstreamed.
    const live = await collectChat(await t.client.chat.completions.create({ ...req, max_tokens: 6, stream: true }));
    const fromStream = await t.client.chat.completions.create({ ...req, max_tokens: 6 });
    expect(fromStream.choices[0].message.content).toBe(live.content);
    const b = await metrics();
    const delta = (k: string) => b.samples.get(M(k))! - a.samples.get(M(k))!;
    expect(delta("qwen3_next:response_cache_lookups_total")).toBe(6);
    expect(delta("qwen3_next:response_cache_hits_total")).toBe(3);
  });

  it("CORS: the allowed origin gets the headers and a preflight answer; another origin does not", async () => {
    const pre = await fetch(`${t.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: { origin: "http://app.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("http://app.example");
    expect(pre.headers.get("access-control-allow-methods")).toContain("POST");
    const ok = await fetch(`${t.url}/v1/models`, { headers: { origin: "http://app.example" } });
    expect(ok.headers.get("access-control-allow-origin")).toBe("http://app.example");
    const other = await fetch(`${t.url}/v1/models`, { headers: { origin: "http://evil.example" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const streamed = await fetch(`${t.url}/v1/completions`, {
      method: "POST",
      headers: { origin: "http://app.example", "content-type": "application/json" },
      body: JSON.stringify({ model: t.model, prompt: "Hi", max_tokens: 1, stream: true }),
    });
    expect(streamed.headers.get("access-control-allow-origin")).toBe("http://app.example");
    await streamed.text();
  });

  it("logs one JSON line per request (method, path, status, duration, model, token counts)", async () => {
    const before = logLines.length;
    await t.client.completions.create({ model: t.model, prompt: "log me", max_tokens: 1 });
    await fetch(`${t.url}/nowhere`);
    for (let i = 0; i < 50 && logLines.length < before + 2; i++) await new Promise((r) => setTimeout(r, 20));
    const lines = logLines.slice(before).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({ method: "POST", path: "/v1/completions", status: 200, completed: true, model: t.model, completion_tokens: 1, prompt_tokens: 2 }),
    );
    expect(lines).toContainEqual(expect.objectContaining({ method: "GET", path: "/nowhere", status: 404 }));
    for (const l of lines) expect(typeof l.ms).toBe("number");
  });

  it("/ready is 200 while serving", async () => {
    const r = await fetch(`${t.url}/ready`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: "ready" });
  });
});
