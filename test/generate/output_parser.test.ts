import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseAssistantOutput, StreamingOutputParser, type ParsedOutput } from "../../src/generate/output_parser.js";

describe("parseAssistantOutput", () => {
  it("splits reasoning from the answer", () => {
    expect(parseAssistantOutput("<think>\nLet me add.\n</think>\n\nIt is 4.")).toEqual({
      reasoning: "Let me add.",
      content: "It is 4.",
      toolCalls: [],
      errors: [],
    });
  });

  it("reads reasoning when the prompt already opened <think>", () => {
    const r = parseAssistantOutput("Let me add.\n</think>\n\nIt is 4.", { thinkingOpened: true });
    expect(r.reasoning).toBe("Let me add.");
    expect(r.content).toBe("It is 4.");
  });

  it("treats output cut off inside the reasoning as reasoning only", () => {
    expect(parseAssistantOutput("<think>\nstill thinking")).toMatchObject({ reasoning: "still thinking", content: "" });
  });

  it("has no reasoning without a think block, and keeps a late <think> as text", () => {
    expect(parseAssistantOutput("Hi <think> there")).toEqual({ reasoning: null, content: "Hi <think> there", toolCalls: [], errors: [] });
  });

  it("parses tool calls into names and JSON argument text", () => {
    const text =
      '<think>\nneed weather\n</think>\n\nChecking.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n' +
      '<tool_call>\n{"name": "now", "arguments": "{}"}\n</tool_call>';
    expect(parseAssistantOutput(text)).toEqual({
      reasoning: "need weather",
      content: "Checking.",
      toolCalls: [
        { name: "get_weather", arguments: '{"city":"Paris"}' },
        { name: "now", arguments: "{}" },
      ],
      errors: [],
    });
  });

  it("reports malformed tool calls without throwing", () => {
    const r = parseAssistantOutput(
      '<tool_call>\n{"name": "f", "arguments": {"a": 1}\n</tool_call>\n<tool_call>[1]</tool_call><tool_call>{"arguments": {}}</tool_call>' +
        '<tool_call>{"name": "g", "arguments": 3}</tool_call><tool_call>{"name": "h"',
    );
    expect(r.toolCalls).toEqual([]);
    expect(r.content).toBe("");
    expect(r.errors).toHaveLength(5);
    expect(r.errors[0]).toMatch(/^tool call 1 is not valid JSON/);
    expect(r.errors[1]).toMatch(/^tool call 2 is not a JSON object/);
    expect(r.errors[2]).toMatch(/^tool call 3 has no "name"/);
    expect(r.errors[3]).toMatch(/^tool call 4 \("g"\) has arguments that are not an object/);
    expect(r.errors[4]).toMatch(/^tool call 5 is not valid JSON/);
  });

  it("accepts a tool call cut off before its closing tag when its JSON is complete", () => {
    expect(parseAssistantOutput('<tool_call>\n{"name": "f", "arguments": {}}\n').toolCalls).toEqual([{ name: "f", arguments: "{}" }]);
  });
});

/** Assistant outputs assembled from the pieces that matter: tags (also malformed), whitespace, text, JSON. */
const piece = fc.oneof(
  fc.constantFrom(
    "<think>", "</think>", "<tool_call>", "</tool_call>", "\n", "\n\n", " ", "  \t", "<", "</", "<think", "</tool",
    '{"name": "f", "arguments": {"x": 1}}', '{"name": "g"}', "{bad json", "Hello", " world.", "😀", "中文",
  ),
  fc.string({ maxLength: 6 }),
);
const output = fc.array(piece, { maxLength: 16 }).map((a) => a.join(""));

/** Splits `s` at the given fractions into consecutive chunks (possibly empty). */
function splitAt(s: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * (s.length + 1))))].sort((a, b) => a - b);
  const chunks: string[] = [];
  let prev = 0;
  for (const p of points) {
    chunks.push(s.slice(prev, p));
    prev = p;
  }
  chunks.push(s.slice(prev));
  return chunks;
}

function stream(chunks: string[], thinkingOpened: boolean): { parsed: ParsedOutput; reasoning: string; content: string; sawReasoning: boolean } {
  const p = new StreamingOutputParser({ thinkingOpened });
  const deltas = chunks.flatMap((c) => p.push(c));
  deltas.push(...p.flush());
  const text = (k: string) => deltas.filter((d) => d.kind === k).map((d) => d.text).join("");
  return { parsed: p.finish(), reasoning: text("reasoning"), content: text("content"), sawReasoning: deltas.some((d) => d.kind === "reasoning") };
}

describe("StreamingOutputParser", () => {
  it("streams reasoning then content, holding back partial tags", () => {
    const p = new StreamingOutputParser();
    expect(p.push("<thi")).toEqual([]);
    expect(p.push("nk>\nStep one")).toEqual([{ kind: "reasoning", text: "Step one" }]);
    expect(p.push(".\n</thi")).toEqual([{ kind: "reasoning", text: "." }]);
    expect(p.push("nk>\n\nAnswer")).toEqual([{ kind: "content", text: "Answer" }]);
    expect(p.push(" <tool_")).toEqual([]);
    expect(p.push('call>{"name": "f"}</tool_call> done')).toEqual([{ kind: "content", text: "  done" }]); // the held space before the call, then the one after
    expect(p.flush()).toEqual([]);
    expect(p.finish()).toEqual({ reasoning: "Step one.", content: "Answer  done", toolCalls: [{ name: "f", arguments: "{}" }], errors: [] });
  });

  it("equals the one-shot parse however the output is split (property)", () => {
    fc.assert(
      fc.property(output, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }), fc.boolean(), (text, cuts, opened) => {
        const oneShot = parseAssistantOutput(text, { thinkingOpened: opened });
        const s = stream(splitAt(text, cuts), opened);
        expect(s.parsed).toEqual(oneShot);
        // The deltas themselves add up to the parsed reasoning and content.
        expect(s.content).toBe(oneShot.content);
        expect(s.reasoning).toBe(oneShot.reasoning ?? "");
        if (oneShot.reasoning === null) expect(s.sawReasoning).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it("refuses text after the end of the stream", () => {
    const p = new StreamingOutputParser();
    p.flush();
    expect(() => p.push("x")).toThrow(/after flush/);
  });
});
