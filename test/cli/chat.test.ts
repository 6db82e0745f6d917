/**
 * `qwen3-next chat` driven as a user drives it: lines piped on stdin, and a pseudo-terminal (util-linux
 * `script`) for the banner, Ctrl-D and Ctrl-C. Prefill counts are checked against the ChatML text of the new
 * message, tokenized here (the Qwen3 format written out by hand, not rendered by the code under test).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ensureDemoCheckpoint } from "../../src/init/demo.js";
import { QwenTokenizer } from "../../src/tokenizer/tokenizer.js";
import { ROOT, runCli } from "../helpers/cli.js";

let tmp: string;
let env: NodeJS.ProcessEnv;
let demo: string;
let tok: QwenTokenizer;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "qwen3-chat-"));
  env = { QWEN3_NEXT_CACHE: path.join(tmp, "cache") };
  process.env.QWEN3_NEXT_CACHE = env.QWEN3_NEXT_CACHE;
  demo = await ensureDemoCheckpoint();
  tok = await QwenTokenizer.load();
}, 60_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface TurnStats {
  turn: number;
  prefilled: number;
  reused: number;
  generated: number;
}

function turns(stderr: string): TurnStats[] {
  return [...stderr.matchAll(/\[turn (\d+): (\d+) new tokens prefilled, (\d+) reused.*?; (\d+) generated/g)].map((m) => ({
    turn: Number(m[1]),
    prefilled: Number(m[2]),
    reused: Number(m[3]),
    generated: Number(m[4]),
  }));
}

/** Tokens of a user turn after an answer: the answer's end, the user message, the assistant's opening. */
const nextTurnTokens = (message: string) => tok.encode(`<|im_end|>\n<|im_start|>user\n${message}<|im_end|>\n<|im_start|>assistant\n`).length;

/** The demo checkpoint with another chat template. */
async function withTemplate(name: string, template: string): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir);
  for (const f of ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) {
    await copyFile(path.join(demo, f), path.join(dir, f));
  }
  await writeFile(path.join(dir, "chat_template.jinja"), template);
  return dir;
}
const CHATML = "{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}";

describe("qwen3-next chat (piped)", () => {
  it("keeps the model state: each turn prefills only the new message; multi-line input; /help; unknown commands are not sent", async () => {
    const input = ["hello", "/help", "/foo bar", "line one\\", "line two", '"""', "third", "message", '"""', "/exit", "never sent", ""].join("\n");
    const r = await runCli(["chat", "--seed", "2", "-n", "5"], { env, input });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("/think   toggle thinking");
    expect(r.stdout).toContain("(unknown command /foo; /help lists the commands");
    const t = turns(r.stderr);
    expect(t.map((x) => x.turn)).toEqual([1, 2, 3]); // /help, /foo and the text after /exit are not turns
    expect(t[0]).toMatchObject({ reused: 0, prefilled: tok.encode("<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n").length });
    expect(t[1].prefilled).toBe(nextTurnTokens("line one\nline two"));
    expect(t[2].prefilled).toBe(nextTurnTokens("third\nmessage"));
    // What the state holds grows by what was prefilled and generated (the last sampled token is never fed).
    for (const i of [1, 2]) expect(t[i].reused).toBe(t[i - 1].reused + t[i - 1].prefilled + t[i - 1].generated - 1);
    expect(r.stderr).toMatch(/seed 2; finish: length\]/);
  }, 60_000);

  it("/reset starts over on a fresh state", async () => {
    const r = await runCli(["chat", "--seed", "2", "-n", "3"], { env, input: "hello\nagain\n/reset\nhello\n" });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("(history cleared)");
    const t = turns(r.stderr);
    expect(t.map((x) => x.reused)).toEqual([0, t[0].prefilled + 2, 0]);
    expect(t[2].prefilled).toBe(t[0].prefilled);
  }, 60_000);

  it("says once that a template without a thinking switch ignores --think and /think", async () => {
    const dir = await withTemplate("instruct", `${CHATML}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}`);
    const r = await runCli(["chat", "-m", dir, "--think", "--seed", "1", "-n", "2"], { env, input: "/think\nhi\n/think\n" });
    expect(r.code).toBe(0);
    const notices = r.stdout.match(/changes nothing: this chat template has no thinking switch \(the model does not think\)/g) ?? [];
    expect(notices).toHaveLength(1);
    expect(r.stdout).toMatch(/^\(--think changes nothing/);
    const g = await runCli(["generate", "-m", dir, "--no-think", "-n", "2", "hi"], { env });
    expect(g.code).toBe(0);
    expect(g.stderr).toContain("note: --no-think changes nothing: this chat template has no thinking switch");
  }, 60_000);

  it("labels the reasoning when the template opens <think>, also when piped", async () => {
    const dir = await withTemplate("thinking", `${CHATML}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}`);
    const r = await runCli(["chat", "-m", dir, "--seed", "1", "-n", "6"], { env, input: "hi\n" });
    expect(r.code).toBe(0);
    // Random weights never close the reasoning: the whole answer is reasoning, labelled as such.
    expect(r.stdout.startsWith("[thinking]\n")).toBe(true);
  }, 60_000);
});

/** Runs the CLI on a pseudo-terminal; `keys` are typed, each once the output so far matches its pattern. */
function runInPty(args: string[], keys: Array<[RegExp, string]>): Promise<{ code: number | null; out: string }> {
  const cmd = [process.execPath, "--import", "tsx", path.join(ROOT, "src/cli/bin.ts"), ...args].map((a) => `'${a}'`).join(" ");
  const child = spawn("script", ["-qfec", cmd, "/dev/null"], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let next = 0;
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  child.stdout.on("data", (d) => {
    out += d;
    while (next < keys.length && keys[next][0].test(out)) {
      child.stdin.write(keys[next][1]);
      out += "\u0000"; // a mark, so a pattern waits for output after the previous key
      next++;
    }
  });
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out: out.replace(/\u0000/g, "") });
    });
  });
}

/** The "> " prompt as readline draws it (with cursor moves), at the end of the output. */
const PROMPT = /> (\x1b\[\d+G)?$/;

describe("qwen3-next chat (terminal)", () => {
  it("shows the thinking mode in the banner; Ctrl-D at the prompt exits cleanly with a newline", async () => {
    const r = await runInPty(["chat", "--seed", "1", "-n", "3"], [
      [PROMPT, "hello\r"],
      [new RegExp(`\u0000[\\s\\S]*\\[turn 1:[\\s\\S]*${PROMPT.source}`), "\u0004"],
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Chatting with .*demo-v1 \(loaded in [\d.]+s\); thinking on \(\/think toggles\)/);
    expect(r.out).toMatch(/> (\x1b\[\d+G)?\r?\n$/); // the prompt, then a newline: the shell starts on a fresh line
    expect(r.out).not.toMatch(/Error|at .*\.ts:\d+/);
  }, 70_000);

  it("Ctrl-C at the prompt exits cleanly too", async () => {
    const r = await runInPty(["chat", "--seed", "1", "-n", "3"], [[PROMPT, "\u0003"]]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/> (\x1b\[\d+G)?\r?\n$/);
  }, 70_000);
});
