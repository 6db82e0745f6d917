/**
 * Tool calls in an assistant answer, read as vLLM's tool parsers read them (after reasoning was split off).
 *
 * Hermes (Qwen3-Next, vLLM `--tool-call-parser hermes`):
 *   <tool_call> {"name": N, "arguments": A} </tool_call>   (the last one may be unterminated)
 *   Every call must be a JSON object with a string "name" and an "arguments" key (any JSON value; sent on as
 *   its JSON text). If any call fails, no call is returned: the content is the whole answer, raw, and the
 *   error is reported. Otherwise the content is the text before the first <tool_call> (text between or after
 *   calls is dropped), null when empty.
 *
 * Qwen3-Coder XML (Qwen3-Coder-Next, vLLM `--tool-call-parser qwen3_coder`), used when the answer contains
 * `<function=`:
 *   <tool_call> <function=NAME> <parameter=P> value </parameter> ... </function> </tool_call>
 *   Closing tags may be missing (a parameter ends at the next <parameter=, at </function> or at the end). One
 *   leading and one trailing newline of a value are dropped; "null" is null; other values are strings unless
 *   the tool's JSON schema (when `tools` are given) types the parameter as integer, number, boolean, object or
 *   array. The content is the text before the first <tool_call> (or <function= when there is none).
 */
import type { ToolSpec } from "../tokenizer/chat_template.js";

export interface ToolCall {
  name: string;
  /** The arguments as JSON text (OpenAI's `function.arguments`). */
  arguments: string;
}

export interface ToolCallParse {
  /** The answer's content once tool calls are taken out (null when nothing is left). */
  content: string | null;
  toolCalls: ToolCall[];
  /** Why tool-call markup fell back to raw content. */
  errors: string[];
}

export const TOOL_OPEN = "<tool_call>";
export const TOOL_CLOSE = "</tool_call>";
export const FUNCTION_OPEN = "<function=";
const FUNCTION_CLOSE = "</function>";
const PARAMETER_OPEN = "<parameter=";
const PARAMETER_CLOSE = "</parameter>";

/** Splits tool calls out of `answer` (untrimmed text after the reasoning) with the parser its markup needs. */
export function parseToolCalls(answer: string, tools?: readonly ToolSpec[]): ToolCallParse {
  if (answer.includes(FUNCTION_OPEN)) return parseXmlToolCalls(answer, tools);
  if (answer.includes(TOOL_OPEN)) return parseHermesToolCalls(answer);
  return { content: answer, toolCalls: [], errors: [] };
}

/** The bodies between `open` and `close` tags, the last possibly running to the end. */
function tagBodies(text: string, open: string, close: string): string[] {
  const bodies: string[] = [];
  for (let at = text.indexOf(open); at >= 0; ) {
    const start = at + open.length;
    const end = text.indexOf(close, start);
    if (end < 0) {
      bodies.push(text.slice(start));
      break;
    }
    bodies.push(text.slice(start, end));
    at = text.indexOf(open, end + close.length);
  }
  return bodies;
}

function shown(body: string): string {
  const t = body.trim();
  return t.length > 80 ? `${t.slice(0, 77)}...` : t;
}

function beforeFirst(text: string, ...tags: string[]): string | null {
  for (const tag of tags) {
    const at = text.indexOf(tag);
    if (at >= 0) return text.slice(0, at).length > 0 ? text.slice(0, at) : null;
  }
  return text.length > 0 ? text : null;
}

function fallback(answer: string, error: string): ToolCallParse {
  return { content: answer, toolCalls: [], errors: [error] };
}

export function parseHermesToolCalls(answer: string): ToolCallParse {
  const calls: ToolCall[] = [];
  const bodies = tagBodies(answer, TOOL_OPEN, TOOL_CLOSE);
  for (const [i, body] of bodies.entries()) {
    const n = i + 1;
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (err) {
      return fallback(answer, `tool call ${n} is not valid JSON (${(err as Error).message}): ${shown(body)}`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return fallback(answer, `tool call ${n} is not a JSON object: ${shown(body)}`);
    }
    const call = value as Record<string, unknown>;
    if (typeof call.name !== "string") return fallback(answer, `tool call ${n} has no "name" string: ${shown(body)}`);
    if (!("arguments" in call)) return fallback(answer, `tool call ${n} ("${call.name}") has no "arguments": ${shown(body)}`);
    calls.push({ name: call.name, arguments: JSON.stringify(call.arguments) });
  }
  return { content: beforeFirst(answer, TOOL_OPEN), toolCalls: calls, errors: [] };
}

export function parseXmlToolCalls(answer: string, tools?: readonly ToolSpec[]): ToolCallParse {
  let blocks = tagBodies(answer, TOOL_OPEN, TOOL_CLOSE);
  if (blocks.length === 0) blocks = [answer];
  const functions = blocks.flatMap((b) => tagBodies(b, FUNCTION_OPEN, FUNCTION_CLOSE));
  if (functions.length === 0) return { content: answer, toolCalls: [], errors: [] };
  const calls: ToolCall[] = [];
  for (const [i, fn] of functions.entries()) {
    const gt = fn.indexOf(">");
    if (gt < 0) return fallback(answer, `tool call ${i + 1} has no ">" after <function=NAME: ${shown(fn)}`);
    const name = fn.slice(0, gt);
    const schema = parameterSchemas(name, tools);
    const args: string[] = [];
    const seen = new Map<string, number>();
    for (const raw of parameters(fn.slice(gt + 1))) {
      const pgt = raw.indexOf(">");
      if (pgt < 0) return fallback(answer, `tool call ${i + 1} ("${name}") has a <parameter= without ">": ${shown(raw)}`);
      const key = raw.slice(0, pgt);
      let v = raw.slice(pgt + 1);
      if (v.startsWith("\n")) v = v.slice(1);
      if (v.endsWith("\n")) v = v.slice(0, -1);
      const entry = `${JSON.stringify(key)}:${JSON.stringify(convertParameter(v, schema?.[key]))}`;
      // A repeated parameter keeps its first place and its last value (a Python dict's assignment).
      const at = seen.get(key);
      if (at === undefined) {
        seen.set(key, args.length);
        args.push(entry);
      } else args[at] = entry;
    }
    calls.push({ name, arguments: `{${args.join(",")}}` });
  }
  return { content: beforeFirst(answer, TOOL_OPEN, FUNCTION_OPEN), toolCalls: calls, errors: [] };
}

/** `<parameter=` bodies; each ends at </parameter>, the next <parameter=, </function> or the end. */
function parameters(text: string): string[] {
  const out: string[] = [];
  for (let at = text.indexOf(PARAMETER_OPEN); at >= 0; ) {
    const start = at + PARAMETER_OPEN.length;
    const ends = [PARAMETER_CLOSE, PARAMETER_OPEN, FUNCTION_CLOSE].map((t) => text.indexOf(t, start)).filter((e) => e >= 0);
    const end = ends.length > 0 ? Math.min(...ends) : text.length;
    out.push(text.slice(start, end));
    at = text.indexOf(PARAMETER_OPEN, text.startsWith(PARAMETER_CLOSE, end) ? end + PARAMETER_CLOSE.length : end);
  }
  return out;
}

function parameterSchemas(name: string, tools?: readonly ToolSpec[]): Record<string, unknown> | undefined {
  const params = tools?.find((t) => t.type === "function" && t.function.name === name)?.function.parameters as Record<string, unknown> | undefined;
  if (params === undefined || typeof params !== "object") return undefined;
  return (typeof params.properties === "object" && params.properties !== null ? params.properties : params) as Record<string, unknown>;
}

/** A parameter's text as the JSON value its schema type asks for (the text itself when it does not fit). */
function convertParameter(v: string, schema: unknown): unknown {
  if (v.toLowerCase() === "null") return null;
  const type = typeof schema === "object" && schema !== null && "type" in schema ? String((schema as { type: unknown }).type).trim().toLowerCase() : "string";
  if (["string", "str", "text", "varchar", "char", "enum"].includes(type)) return v;
  if (/^(int|uint|long|short|unsigned)/.test(type)) return /^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : v;
  if (/^(num|float)/.test(type)) {
    const x = Number(v);
    return v.trim() !== "" && Number.isFinite(x) ? x : v;
  }
  if (["boolean", "bool", "binary"].includes(type)) return v.toLowerCase() === "true";
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}
