import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseAssistantOutput, StreamingOutputParser, type ParsedOutput } from "../../src/generate/output_parser.js";
import type { ToolSpec } from "../../src/tokenizer/chat_template.js";

interface VllmCase {
  name: string;
  output: string;
  thinking_opened: boolean | null;
  tools?: ToolSpec[];
  vllm: { reasoning: string | null; content: string | null; tool_calls: Array<{ name: string; arguments: unknown }>; fallback: boolean };
}
const fixture = JSON.parse(readFileSync(new URL("../fixtures/vllm_output_parsing.json", import.meta.url), "utf8")) as { cases: VllmCase[] };

/** vLLM's expected fields with this parser's one documented difference applied: whitespace trimmed, blank content null. */
function expectedFromVllm(c: VllmCase) {
  const reasoning = c.vllm.reasoning === null ? null : c.vllm.reasoning.trim();
  const trimmed = c.vllm.content === null ? null : c.vllm.content.trim();
  const content = trimmed === "" && (reasoning !== null || c.vllm.tool_calls.length > 0) ? null : trimmed;
  return { reasoning, content, toolCalls: c.vllm.tool_calls };
}

function asComparable(p: ParsedOutput) {
  return { reasoning: p.reasoning, content: p.content, toolCalls: p.toolCalls.map((t) => ({ name: t.name, arguments: JSON.parse(t.arguments) as unknown })) };
}

describe("parseAssistantOutput against vLLM's Qwen3 reasoning parser and hermes / qwen3_coder tool parsers", () => {
  for (const c of fixture.cases) {
    it(c.name, () => {
      const opts = { thinkingOpened: c.thinking_opened ?? undefined, tools: c.tools };
      const got = parseAssistantOutput(c.output, opts);
      expect(asComparable(got)).toEqual(expectedFromVllm(c));
      // vLLM logs the error of a fallback; here it is reported in `errors`.
      expect(got.errors.length > 0).toBe(c.vllm.fallback);
      // The streamed parse agrees whenever the prompt is known (a stream must know it).
      if (c.thinking_opened !== null) {
        const s = stream([...c.output], c.thinking_opened, c.tools);
        expect(asComparable(s.parsed)).toEqual(expectedFromVllm(c));
        expect(s.content).toBe(got.content ?? "");
        expect(s.reasoning).toBe(got.reasoning ?? "");
      }
    });
  }

  it("names what was wrong with a tool call that fell back to content", () => {
    const bad = (body: string) => parseAssistantOutput(`<tool_call>${body}</tool_call>`, { thinkingOpened: false }).errors;
    expect(bad('{"name": "f", "arguments": {"a": 1}')[0]).toMatch(/^tool call 1 is not valid JSON/);
    expect(bad("[1]")[0]).toMatch(/^tool call 1 is not a JSON object/);
    expect(bad('{"arguments": {}}')[0]).toMatch(/^tool call 1 has no "name" string/);
    expect(bad('{"name": "now"}')[0]).toMatch(/^tool call 1 \("now"\) has no "arguments"/);
  });

  it("keeps a <think> that is not at the start as text", () => {
    expect(parseAssistantOutput("Hi <think> there", { thinkingOpened: false })).toEqual({ reasoning: null, content: "Hi <think> there", toolCalls: [], errors: [] });
  });
});

/** Assistant outputs assembled from the pieces that matter: tags (also malformed), whitespace, text, JSON, XML. */
const piece = fc.oneof(
  fc.constantFrom(
    "<think>", "</think>", "<tool_call>", "</tool_call>", "\n", "\n\n", " ", "  \t", "<", "</", "<think", "</tool",
    '{"name": "f", "arguments": {"x": 1}}', '{"name": "g"}', "{bad json", "Hello", " world.", "😀", "中文",
    "<function=f>", "<function", "<parameter=a>", "1", "</parameter>", "</function>",
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

function stream(chunks: string[], thinkingOpened: boolean, tools?: ToolSpec[]) {
  const p = new StreamingOutputParser({ thinkingOpened, tools });
  const deltas = chunks.flatMap((c) => p.push(c));
  deltas.push(...p.flush());
  const text = (k: string) => deltas.filter((d) => d.kind === k).map((d) => d.text).join("");
  return { parsed: p.finish(), reasoning: text("reasoning"), content: text("content"), sawReasoning: deltas.some((d) => d.kind === "reasoning") };
}

describe("StreamingOutputParser", () => {
  it("streams reasoning then content, holding back partial tags and the tool-call tail", () => {
    const p = new StreamingOutputParser({ thinkingOpened: false });
    expect(p.push("<thi")).toEqual([]);
    expect(p.push("nk>\nStep one")).toEqual([{ kind: "reasoning", text: "Step one" }]);
    expect(p.push(".\n</thi")).toEqual([{ kind: "reasoning", text: "." }]);
    expect(p.push("nk>\n\nAnswer")).toEqual([{ kind: "content", text: "Answer" }]);
    expect(p.push(" <tool_")).toEqual([]);
    expect(p.push('call>{"name": "f", "arguments": {}}</tool_call> done')).toEqual([]);
    expect(p.flush()).toEqual([]);
    expect(p.finish()).toEqual({ reasoning: "Step one.", content: "Answer", toolCalls: [{ name: "f", arguments: "{}" }], errors: [] });
  });

  it("releases a tool call that does not parse as content at the end", () => {
    const p = new StreamingOutputParser({ thinkingOpened: false });
    expect(p.push("See <tool_call>{oops</tool_call>")).toEqual([{ kind: "content", text: "See" }]);
    expect(p.flush()).toEqual([{ kind: "content", text: " <tool_call>{oops</tool_call>" }]);
    expect(p.finish().errors).toHaveLength(1);
  });

  it("equals the one-shot parse however the output is split (property)", () => {
    fc.assert(
      fc.property(output, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }), fc.boolean(), (text, cuts, opened) => {
        const oneShot = parseAssistantOutput(text, { thinkingOpened: opened });
        const s = stream(splitAt(text, cuts), opened);
        expect(s.parsed).toEqual(oneShot);
        // The deltas themselves add up to the parsed reasoning and content.
        expect(s.content).toBe(oneShot.content ?? "");
        expect(s.reasoning).toBe(oneShot.reasoning ?? "");
        if (oneShot.reasoning === null) expect(s.sawReasoning).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it("refuses text after the end of the stream", () => {
    const p = new StreamingOutputParser();
    p.flush();
    expect(() => p.push("x")).toThrow(/after flush/);
  });
});
