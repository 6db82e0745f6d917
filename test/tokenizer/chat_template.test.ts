/**
 * Expected prompts are written by hand from the Qwen3 chat format (ChatML turns `<|im_start|>role\n...<|im_end|>\n`,
 * tools in the system turn inside <tools></tools>, calls as <tool_call> JSON, results as <tool_response> in a
 * user turn, thinking switched off by an empty `<think>\n\n</think>\n\n`), as documented on Qwen3's model cards.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ChatTemplate, promptOpensThinking, type ChatMessage, type ToolSpec } from "../../src/tokenizer/chat_template.js";

let tpl: ChatTemplate;
beforeAll(async () => {
  tpl = await ChatTemplate.load();
});

const conversation: ChatMessage[] = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "What is 2+2?" },
  { role: "assistant", content: "4", reasoning_content: "Simple sum." },
  { role: "user", content: "And 3+3?" },
];

describe("ChatTemplate (bundled Qwen3 template)", () => {
  it("renders system, history and the generation prompt (thinking left to the model)", () => {
    expect(tpl.render(conversation)).toBe(
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n" +
        // Reasoning of turns before the last user message is dropped from the history.
        "<|im_start|>assistant\n4<|im_end|>\n" +
        "<|im_start|>user\nAnd 3+3?<|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
  });

  it("pre-fills an empty think block when thinking is switched off", () => {
    const p = tpl.render(conversation.slice(1, 2), { enableThinking: false });
    expect(p).toBe("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    expect(promptOpensThinking(p)).toBe(false);
  });

  it("omits the generation prompt on request", () => {
    expect(tpl.render(conversation.slice(0, 2), { addGenerationPrompt: false })).toBe(
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n",
    );
  });

  it("renders tools, a tool call and its response", () => {
    const tools: ToolSpec[] = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Current weather",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    const messages: ChatMessage[] = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: { city: "Paris" } } }],
      },
      { role: "tool", tool_call_id: "call_1", content: '{"celsius": 21}' },
    ];
    expect(tpl.render(messages, { tools })).toBe(
      "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n" +
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" +
        '{"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": ' +
        '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n</tools>\n\n' +
        "For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n" +
        '<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call><|im_end|>\n' +
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n" +
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\n<tool_response>\n{"celsius": 21}\n</tool_response><|im_end|>\n' +
        "<|im_start|>assistant\n",
    );
  });

  it("passes string tool-call arguments through verbatim", () => {
    const p = tpl.render(
      [
        { role: "user", content: "x" },
        { role: "assistant", content: "", tool_calls: [{ type: "function", function: { name: "f", arguments: '{"a": 1}' } }] },
      ],
      { addGenerationPrompt: false },
    );
    expect(p).toContain('<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call><|im_end|>\n');
  });

  it("rejects an empty conversation", () => {
    expect(() => tpl.render([])).toThrow(/at least one message/);
  });
});

describe("ChatTemplate from a checkpoint folder", () => {
  it("prefers chat_template.jinja, then tokenizer_config.json, then the bundled template", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-tpl-"));
    try {
      await writeFile(path.join(dir, "tokenizer_config.json"), JSON.stringify({ chat_template: "CFG {{ messages[0].content }}" }));
      expect((await ChatTemplate.load(dir)).render([{ role: "user", content: "a" }])).toBe("CFG a");
      await writeFile(
        path.join(dir, "chat_template.jinja"),
        "{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}{% if add_generation_prompt %}<think>\n{% endif %}",
      );
      const t = await ChatTemplate.load(dir);
      const p = t.render([{ role: "user", content: "hi" }]);
      expect(p).toBe("[user] hi<think>\n");
      expect(promptOpensThinking(p)).toBe(true); // a thinking model's template opens the block itself
      const empty = await mkdtemp(path.join(os.tmpdir(), "qwen3-tpl-"));
      expect((await ChatTemplate.load(empty)).origin).toMatch(/tokenizer_config\.json$/);
      await rm(empty, { recursive: true, force: true });
      await writeFile(path.join(dir, "chat_template.jinja"), "{% for m in messages %}");
      await expect(ChatTemplate.load(dir)).rejects.toThrow(/chat template in .*chat_template\.jinja does not parse/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
