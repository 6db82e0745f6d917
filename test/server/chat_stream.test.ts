/**
 * Unit level: the streamed chat chunks for outputs the random-weight demo model cannot be made to write
 * (reasoning + answer + tool calls), fed in arbitrary pieces. The expectation is built from the parts the
 * text was made of, not from the parser.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ChatStream } from "../../src/server/chat_stream.js";
import { responseMeta, usage } from "../../src/server/responses.js";

interface Chunk {
  object: string;
  choices: Array<{ delta: Record<string, unknown>; finish_reason: string | null }>;
  usage?: unknown;
}

function splitAt(text: string, cuts: number[]): string[] {
  const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let prev = 0;
  for (const c of [...at, text.length]) {
    pieces.push(text.slice(prev, c));
    prev = c;
  }
  return pieces;
}

function collect(chunks: Chunk[]) {
  let reasoning = "";
  let content = "";
  const calls: Array<{ index: number; id: string; name: string; args: string }> = [];
  const finish: string[] = [];
  for (const c of chunks) {
    expect(c.object).toBe("chat.completion.chunk");
    const choice = c.choices[0];
    if (!choice) continue;
    reasoning += (choice.delta.reasoning_content as string | undefined) ?? "";
    content += (choice.delta.content as string | undefined) ?? "";
    // As OpenAI clients assemble streamed calls: the first delta of an index has its id and name, the
    // following ones append to its arguments.
    for (const tc of (choice.delta.tool_calls as Array<{ index: number; id?: string; function: { name?: string; arguments: string } }>) ?? []) {
      if (tc.id !== undefined) {
        expect(tc.index).toBe(calls.length);
        calls.push({ index: tc.index, id: tc.id, name: tc.function.name ?? "", args: tc.function.arguments });
      } else {
        calls[tc.index].args += tc.function.arguments;
      }
    }
    if (choice.finish_reason) finish.push(choice.finish_reason);
  }
  return { reasoning, content, calls: calls.map((c) => ({ ...c, args: JSON.parse(c.args) as unknown })), finish };
}

const words = fc.array(fc.constantFrom("a", "bc", " ", "\n", "é", "{", "}", "<", ">", "/", "x y"), { maxLength: 12 }).map((w) => w.join(""));
const call = fc.record({ name: fc.constantFrom("get_weather", "search", "f"), args: fc.dictionary(fc.constantFrom("city", "q", "n"), fc.oneof(fc.string({ maxLength: 6 }), fc.integer())) });

describe("ChatStream", () => {
  it("streams reasoning, content and tool calls (name first, then pieces of the arguments) for any split of the text", () => {
    fc.assert(
      fc.property(words, words, fc.array(call, { maxLength: 3 }), fc.array(fc.nat(), { maxLength: 8 }), fc.boolean(), (r, c, calls, cuts, opened) => {
        // Text that cannot contain the tags by accident: "<" and ">" never form "<think>" etc. from these words.
        const toolText = calls.map((x) => `<tool_call>\n${JSON.stringify({ name: x.name, arguments: x.args })}\n</tool_call>`).join("\n");
        const text = `${opened ? "" : "<think>"}${r}</think>${c}${toolText}`;
        const s = new ChatStream(responseMeta("chatcmpl", "m"), { thinkingOpened: opened });
        const chunks = [...s.start()] as Chunk[];
        expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
        for (const piece of splitAt(text, cuts)) chunks.push(...(s.push(piece) as Chunk[]));
        chunks.push(...(s.finish("stop", usage(5, 7)) as Chunk[]));

        const got = collect(chunks);
        expect(got.reasoning).toBe(r.trim());
        expect(got.content).toBe(c.trim());
        expect(got.calls.map((x) => ({ name: x.name, args: x.args }))).toEqual(calls.map((x) => ({ name: x.name, args: x.args })));
        expect(got.calls.map((x) => x.index)).toEqual(calls.map((_, i) => i));
        expect(got.finish).toEqual([calls.length > 0 ? "tool_calls" : "stop"]);
        const last = chunks[chunks.length - 1];
        expect(last.choices).toEqual([]);
        expect(last.usage).toEqual({ prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 });
      }),
      { numRuns: 300 },
    );
  });

  it("sends a call's name before its arguments are complete, and the arguments in pieces as they are written", () => {
    const s = new ChatStream(responseMeta("chatcmpl", "m"), { thinkingOpened: false });
    const text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2]}}\n</tool_call>';
    const before: Array<{ id?: string; function: { name?: string; arguments: string } }> = [];
    const closeAt = text.indexOf("</tool_call>");
    for (let i = 0; i < closeAt; i++) {
      for (const c of s.push(text[i]) as Chunk[]) before.push(...((c.choices[0].delta.tool_calls as typeof before) ?? []));
    }
    expect(before[0]).toMatchObject({ function: { name: "get_weather", arguments: "" } });
    expect(before[0].id).toMatch(/^call_/);
    const pieces = before.slice(1).map((d) => d.function.arguments);
    expect(pieces.length).toBeGreaterThan(5);
    // Held back until the close tag: the braces that may close the call object.
    expect(pieces.join("")).toBe('{"city": "Paris", "days": [1, 2]');
    const rest = [...(s.push(text.slice(closeAt)) as Chunk[]), ...(s.finish("stop") as Chunk[])];
    const tail = rest.flatMap((c) => (c.choices[0]?.delta.tool_calls as typeof before) ?? []).map((d) => d.function.arguments).join("");
    expect(JSON.parse(pieces.join("") + tail)).toEqual({ city: "Paris", days: [1, 2] });
    expect(rest.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason).toBe("tool_calls");
  });

  it("keeps everything as content when no reasoning was opened, and reports length", () => {
    const s = new ChatStream(responseMeta("chatcmpl", "m"), { thinkingOpened: false });
    const chunks = [...s.start(), ...s.push("Hello "), ...s.push("world"), ...s.finish("length")] as Chunk[];
    const got = collect(chunks);
    expect(got).toMatchObject({ reasoning: "", content: "Hello world", calls: [], finish: ["length"] });
    expect(chunks[chunks.length - 1].usage).toBeUndefined();
  });
});
