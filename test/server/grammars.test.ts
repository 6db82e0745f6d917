/**
 * The grammars of constrained decoding, fed real token sequences (the Qwen tokenizer's encoding of a
 * text) through XGrammar: what they must accept (a tool call in Qwen's Hermes format, after free reasoning
 * for thinking prompts; several calls when parallel) and what they must refuse (an unknown tool, arguments
 * outside the schema, a second call when parallel_tool_calls is false, trailing text). Under speculative
 * decoding the matcher advances over drafts and is taken back over the rejected ones: it then equals a
 * matcher fed only the kept tokens.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { Grammars } from "../../src/server/grammar/grammars.js";
import type { ChatBody } from "../../src/server/requests.js";
import type { TokenConstraint } from "../../src/server/scheduler.js";
import { QwenTokenizer } from "../../src/tokenizer/tokenizer.js";

let tokenizer: QwenTokenizer;
let grammars: Grammars;
beforeAll(async () => {
  tokenizer = await QwenTokenizer.load();
  grammars = new Grammars(tokenizer, 151_936);
});

const tools = [
  { type: "function" as const, function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" }, unit: { enum: ["c", "f"] } }, required: ["city", "unit"] } } },
  { type: "function" as const, function: { name: "add", parameters: { type: "object", properties: { a: { type: "integer" } }, required: ["a"] } } },
];
const call = (name: string, args: object) => `<tool_call>\n{"name": "${name}", "arguments": ${JSON.stringify(args).replace(/":/g, '": ').replace(/,"/g, ', "')}}\n</tool_call>`;

/** Feeds `text`'s tokens, then the end token; true when every token (and the end) was accepted. */
async function accepts(c: TokenConstraint, text: string): Promise<boolean> {
  try {
    for (const id of [...tokenizer.encode(text), tokenizer.eosIds[0]]) {
      const mask = await c.nextMask();
      if (((mask[id >> 5] >>> (id & 31)) & 1) === 0) return false;
      if (!c.accept(id)) return false;
    }
    return true;
  } finally {
    c.free();
  }
}

const chat = (extra: Partial<ChatBody>) => ({ model: "m", messages: [{ role: "user" as const, content: "x" }], tools, ...extra }) as ChatBody;

describe("tool-call grammars", () => {
  it("tool_choice required: one call of any tool, or several; nothing else", async () => {
    const g = (await grammars.forChat(chat({ tool_choice: "required" }), false))!;
    expect(await accepts(g(), call("get_weather", { city: "Oslo", unit: "c" }))).toBe(true);
    expect(await accepts(g(), `${call("add", { a: 2 })}\n${call("get_weather", { city: "Rome", unit: "f" })}`)).toBe(true);
    expect(await accepts(g(), call("get_weather", { city: "Oslo", unit: "k" }))).toBe(false); // not in the enum
    expect(await accepts(g(), call("add", { a: "2" }))).toBe(false); // not an integer
    expect(await accepts(g(), call("search", { q: "x" }))).toBe(false); // no such tool
    expect(await accepts(g(), "Sure! " + call("add", { a: 1 }))).toBe(false); // text first
    expect(await accepts(g(), "")).toBe(false); // at least one call
  });

  it("parallel_tool_calls false: exactly one call", async () => {
    const g = (await grammars.forChat(chat({ tool_choice: "required", parallel_tool_calls: false }), false))!;
    expect(await accepts(g(), call("add", { a: 1 }))).toBe(true);
    expect(await accepts(g(), `${call("add", { a: 1 })}\n${call("add", { a: 2 })}`)).toBe(false);
  });

  it("a named function: only that one", async () => {
    const g = (await grammars.forChat(chat({ tool_choice: { type: "function", function: { name: "add" } } }), false))!;
    expect(await accepts(g(), call("add", { a: -7 }))).toBe(true);
    expect(await accepts(g(), call("get_weather", { city: "Oslo", unit: "c" }))).toBe(false);
  });

  it("after a thinking prompt's <think>: free reasoning up to </think>, then the call", async () => {
    const g = (await grammars.forChat(chat({ tool_choice: "required" }), true))!;
    expect(await accepts(g(), `The user wants a sum. {not json} <b>\n</think>\n\n${call("add", { a: 3 })}`)).toBe(true);
    expect(await accepts(g(), call("add", { a: 3 }))).toBe(false); // the reasoning must be closed first
  });

  it("tool_choice auto and none add no grammar", async () => {
    expect(await grammars.forChat(chat({ tool_choice: "auto" }), false)).toBeUndefined();
    expect(await grammars.forChat(chat({ tool_choice: "none" }), false)).toBeUndefined();
  });
});

describe("response_format grammars", () => {
  it("json_object: an object; json_schema strict: no extra properties", async () => {
    const obj = (await grammars.forFormat({ type: "json_object" }))!;
    expect(await accepts(obj(), '{"a": [1, {"b": null}], "c": "d"}')).toBe(true);
    expect(await accepts(obj(), "[1, 2]")).toBe(false);
    const schema = { type: "object", properties: { n: { type: "integer" } }, required: ["n"] };
    const strict = (await grammars.forFormat({ type: "json_schema", json_schema: { name: "s", schema, strict: true } }))!;
    expect(await accepts(strict(), '{"n": 3}')).toBe(true);
    expect(await accepts(strict(), '{"n": 3, "m": 4}')).toBe(false);
    expect(await accepts(strict(), '{"n": "3"}')).toBe(false);
  });

  it("json_schema after a thinking prompt's reasoning", async () => {
    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] };
    const g = (await grammars.forFormat({ type: "json_schema", json_schema: { name: "s", schema, strict: true } }, true))!;
    expect(await accepts(g(), 'hmm</think>\n\n{"ok": true}')).toBe(true);
  });
});

describe("the matcher under speculative decoding", () => {
  /** The allowed ids of a mask. */
  const allowed = (mask: Int32Array) => {
    const ids: number[] = [];
    for (let id = 0; id < 32 * mask.length; id++) if ((mask[id >> 5] >>> (id & 31)) & 1) ids.push(id);
    return ids;
  };

  it("after drafts advanced over, a forbidden one refused and the rejected ones taken back, equals a matcher fed only the kept tokens", async () => {
    const schema = { type: "object", properties: { n: { type: "integer" }, ok: { type: "boolean" } }, required: ["n", "ok"], additionalProperties: false };
    const make = (await grammars.forFormat({ type: "json_schema", json_schema: { name: "s", schema, strict: true } }))!;
    const target = [...tokenizer.encode('{"n": 3, "ok": true}'), tokenizer.eosIds[0]];
    let endings = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ picks: fc.array(fc.nat(), { maxLength: 4 }), keep: fc.nat({ max: 4 }), forbidden: fc.nat() }), { minLength: 1, maxLength: 10 }),
        async (rounds) => {
          const c = make();
          const kept: number[] = [];
          try {
            let mask = await c.nextMask();
            for (const r of rounds) {
              // Drafting: each draft one of the ids its position allows (the stop token among them near the end).
              let advanced = 0;
              const forbidden = (() => {
                for (let id = r.forbidden % 151_936; ; id = (id + 1) % 151_936) if (!((mask[id >> 5] >>> (id & 31)) & 1)) return id;
              })();
              expect(c.accept(forbidden)).toBe(false);
              for (const pick of r.picks) {
                // Mostly the next token of a valid output while on its path (so drafts reach its end and the
                // stop token), else any id the position allows.
                const onPath = kept.every((t, i) => t === target[i]);
                const ids = allowed(mask);
                const t = onPath && pick % 4 !== 0 ? target[kept.length] : ids[pick % ids.length];
                expect(c.accept(t)).toBe(true);
                advanced++;
                kept.push(t);
                if (c.terminated()) break;
                mask = await c.nextMask();
              }
              const keep = Math.min(r.keep, advanced);
              c.rollback(advanced - keep);
              kept.length -= advanced - keep;
              if (c.terminated()) break;
              mask = await c.nextMask();
            }
            endings += c.terminated() ? 1 : 0;
            const fresh = make();
            try {
              await fresh.nextMask();
              for (const t of kept) expect(fresh.accept(t)).toBe(true);
              expect(c.terminated()).toBe(fresh.terminated());
              if (!fresh.terminated()) expect(await c.nextMask()).toEqual(await fresh.nextMask());
            } finally {
              fresh.free();
            }
          } finally {
            c.free();
          }
        },
      ),
      // The example keeps four on-path drafts a round, so it reaches the stop token: the ending case is always
      // covered, whatever the random rounds do.
      { numRuns: 60, examples: [[Array.from({ length: 10 }, () => ({ picks: [1, 1, 1, 1], keep: 4, forbidden: 0 }))]] },
    );
    expect(endings).toBeGreaterThan(0);
  });
});
