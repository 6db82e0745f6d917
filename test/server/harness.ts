/**
 * Test harness: a real server (the demo checkpoint, random weights) on a random loopback port, and the
 * official `openai` client pointed at it. The demo checkpoint is cached in a temporary folder, never in
 * the user's home.
 */
import { mkdtemp, readdir, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { ensureDemoCheckpoint } from "../../src/init/demo.js";
import { openSession } from "../../src/cli/generation_session.js";
import { ChatTemplate } from "../../src/tokenizer/chat_template.js";
import { startServer, type RunningServer, type ServeOptions, type ServedSession } from "../../src/server/start.js";

export const TEST_CACHE = path.join(os.tmpdir(), "qwen3-next-ts-test-cache");
process.env.QWEN3_NEXT_CACHE = TEST_CACHE;

export interface TestServer {
  server: RunningServer;
  url: string;
  client: OpenAI;
  model: string;
  health(): Promise<Record<string, unknown>>;
}

/** The demo checkpoint (or `model`), loaded as `qwen3-next serve` loads it (WASM kernels unless told). */
export async function loadSession(model?: string, backend: "ts" | "wasm" = "wasm"): Promise<ServedSession> {
  return openSession({ model, backend, precision: "f32", accumulate: "f64" });
}

export async function startTestServer(opts: ServeOptions & { model?: string; session?: ServedSession } = {}): Promise<TestServer> {
  const session = opts.session ?? (await loadSession(opts.model));
  const server = await startServer(session, { port: 0, ...opts });
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: opts.apiKey ?? "none", maxRetries: 0, timeout: 120_000 });
  return {
    server,
    url: server.url,
    client,
    model: server.modelName,
    health: async () => (await (await fetch(`${server.url}/health`)).json()) as Record<string, unknown>,
  };
}

/** Polls /health (up to 5 s) until no sequence is active and `cancelled` has passed `cancelledBefore`. */
export async function settledHealth(t: TestServer, cancelledBefore: number): Promise<Record<string, unknown>> {
  let h = await t.health();
  for (let i = 0; i < 100 && (h.active !== 0 || h.cancelled === cancelledBefore); i++) {
    await new Promise((r) => setTimeout(r, 50));
    h = await t.health();
  }
  return h;
}

/**
 * The demo checkpoint with a thinking model's chat template: the generation prompt opens `<think>\n`
 * (as Qwen3-Next-80B-A3B-Thinking's does) unless enable_thinking is false. Files are symlinks to the demo's.
 */
export async function thinkingCheckpoint(): Promise<string> {
  const demo = await ensureDemoCheckpoint();
  const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-next-thinking-"));
  for (const f of await readdir(demo)) await symlink(path.join(demo, f), path.join(dir, f));
  const source = (await ChatTemplate.load()).source;
  const end = "{%- endif %}\n{%- endif %}";
  if (!source.endsWith(end)) throw new Error("the bundled chat template changed; update thinkingCheckpoint()");
  const thinking = `${source.slice(0, -end.length)}{%- else %}\n        {{- '<think>\\n' }}\n    ${end}`;
  await writeFile(path.join(dir, "chat_template.jinja"), thinking);
  return dir;
}

/** Concatenated text of a streamed chat completion, with its last finish_reason and usage. */
export async function collectChat(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  let content = "";
  let reasoning = "";
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  let role: string | undefined;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    const delta = choice.delta as { content?: string | null; reasoning_content?: string; role?: string };
    role ??= delta.role;
    content += delta.content ?? "";
    reasoning += delta.reasoning_content ?? "";
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  return { content, reasoning, finish, usage, role };
}
