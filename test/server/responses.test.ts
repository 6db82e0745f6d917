/**
 * Unit level: the response builder of the chat endpoint, fed by the real output parser. (End to end,
 * the random-weight demo model cannot be made to write a tool call; server.test.ts checks the request
 * side of tools and the reasoning split end to end.)
 */
import { describe, expect, it } from "vitest";
import { parseAssistantOutput } from "../../src/generate/output_parser.js";
import { chatChunk, chatCompletion, responseMeta, toolCallDeltas, usage } from "../../src/server/responses.js";

const meta = responseMeta("chatcmpl", "m");
const CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';

describe("chat responses", () => {
  it("turns a thinking + tool-call output into reasoning_content, tool_calls and finish_reason tool_calls", () => {
    const parsed = parseAssistantOutput(`<think>\nThe user wants weather.\n</think>\n\n${CALL}`);
    const body = chatCompletion(meta, [{ parsed, ended: "stop" }], usage(10, 5));
    expect(body.object).toBe("chat.completion");
    expect(body.id).toMatch(/^chatcmpl-/);
    const choice = body.choices[0];
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.role).toBe("assistant");
    expect(choice.message.content).toBeNull();
    expect(choice.message.reasoning_content).toBe("The user wants weather.");
    expect(choice.message.reasoning).toBe("The user wants weather.");
    const calls = choice.message.tool_calls as Array<{ id: string; type: string; function: { name: string; arguments: string } }>;
    expect(calls).toHaveLength(1);
    expect(calls[0].id).toMatch(/^call_/);
    expect(calls[0].type).toBe("function");
    expect(calls[0].function.name).toBe("get_weather");
    expect(JSON.parse(calls[0].function.arguments)).toEqual({ city: "Paris" });
    expect(body.usage).toEqual({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
  });

  it("keeps plain answers as content with the generation's finish reason", () => {
    const parsed = parseAssistantOutput("Hello there.");
    const body = chatCompletion(meta, [{ parsed, ended: "length" }], usage(3, 4));
    expect(body.choices[0].finish_reason).toBe("length");
    expect(body.choices[0].message).toEqual({ role: "assistant", content: "Hello there." });
  });

  it("keeps the text around a tool call as content, and numbers streamed calls", () => {
    const parsed = parseAssistantOutput(`Let me check.\n${CALL}\n${CALL.replace("Paris", "Oslo")}`);
    const body = chatCompletion(meta, [{ parsed, ended: "stop" }], usage(1, 1));
    expect(body.choices[0].message.content).toBe("Let me check.");
    const deltas = toolCallDeltas(parsed);
    expect(deltas.map((d) => d.index)).toEqual([0, 1]);
    expect(deltas.map((d) => JSON.parse(d.function.arguments).city)).toEqual(["Paris", "Oslo"]);
    expect(new Set(deltas.map((d) => d.id)).size).toBe(2);
    const chunk = chatChunk(meta, { tool_calls: deltas });
    expect(chunk.object).toBe("chat.completion.chunk");
    expect(chunk.choices[0].finish_reason).toBeNull();
  });

  it("does not report a malformed tool call as a call", () => {
    const parsed = parseAssistantOutput("<tool_call>{not json</tool_call>");
    const body = chatCompletion(meta, [{ parsed, ended: "stop" }], usage(1, 1));
    expect(body.choices[0].finish_reason).toBe("stop");
    expect(body.choices[0].message.tool_calls).toBeUndefined();
  });
});
