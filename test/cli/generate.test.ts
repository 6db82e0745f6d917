/** `generate`, `chat`, `tokenize` and `init` spawned as a user runs them, on a demo checkpoint in a temp cache. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ensureDemoCheckpoint } from "../../src/init/demo.js";
import { QwenTokenizer } from "../../src/tokenizer/tokenizer.js";
import { ROOT, runCli } from "../helpers/cli.js";
import { writeScriptedCheckpoint } from "../helpers/scripted_checkpoint.js";

let tmp: string;
let env: NodeJS.ProcessEnv;
const PROMPT = "Give me a short introduction to large language models.";

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "qwen3-cli-"));
  env = { QWEN3_NEXT_CACHE: path.join(tmp, "cache") };
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The message of a one-line CLI error: exactly one line on stderr, prefixed as bin.ts does. */
function oneLineError(stderr: string): string {
  const lines = stderr.trimEnd().split("\n").filter((l) => !l.startsWith("npm warn"));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^qwen3-next: /);
  return lines[0];
}

describe("qwen3-next generate", () => {
  it("builds the demo checkpoint once, says its weights are random, and is reproducible for a seed", async () => {
    const args = ["generate", "--prompt", PROMPT, "--seed", "0", "--max-tokens", "12"];
    const a = await runCli(args, { env });
    expect(a.code).toBe(0);
    expect(a.stderr).toMatch(/built-in demo checkpoint .*RANDOM/);
    expect(a.stderr).toMatch(/12 generated in .* tok\/s\); finish: length\]/);
    expect(a.stdout.length).toBeGreaterThan(1);
    expect(readdirSync(path.join(tmp, "cache"))).toEqual(["demo-v1"]); // built in place, no temp folder left
    const b = await runCli(args, { env });
    expect(b.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    const c = await runCli(["generate", "--prompt", PROMPT, "--seed", "1", "--max-tokens", "12"], { env });
    expect(c.stdout).not.toBe(a.stdout);
  });

  it("--json gives the text, its split, usage and timings; --no-stream prints the same text", async () => {
    const j = await runCli(["generate", "--prompt", PROMPT, "--seed", "0", "--max-tokens", "12", "--json", "--no-think"], { env });
    expect(j.code).toBe(0);
    const r = JSON.parse(j.stdout);
    expect(r.finish_reason).toBe("length");
    expect(r.usage).toMatchObject({ completion_tokens: 12 });
    expect(r.usage.prompt_tokens).toBeGreaterThan(10);
    expect(r.tokens).toHaveLength(12);
    expect(r.reasoning).toBeNull(); // --no-think pre-fills an empty think block
    expect(r.timings.tokens_per_second).toBeGreaterThan(0);
    const plain = await runCli(["generate", "--prompt", PROMPT, "--seed", "0", "--max-tokens", "12", "--no-think", "--no-stream"], { env });
    expect(plain.stdout).toBe(`${r.content ?? ""}\n`); // no reasoning: the answer alone, unlabelled
    const streamed = await runCli(["generate", "--prompt", PROMPT, "--seed", "0", "--max-tokens", "12", "--no-think"], { env });
    expect(streamed.stdout).toBe(plain.stdout);
  });

  it("generate defaults to q8 products (float32 sums for float weights) and trace to exact float64 sums", async () => {
    const r = JSON.parse((await runCli(["generate", "--prompt", PROMPT, "--seed", "0", "--max-tokens", "2", "--json", "-t", "1"], { env })).stdout);
    expect(r.kernels.accumulate).toBe("q8");
    const help = await runCli(["trace", "--help"], { env });
    // Help text is wrapped to the terminal: compare it with its whitespace collapsed.
    expect(help.stdout.replace(/\s+/g, " ")).toMatch(/--accumulate <p> .*\(choices: "f64", "f32", "q8", default: "f64"\)/);
    const genHelp = await runCli(["generate", "--help"], { env });
    expect(genHelp.stdout.replace(/\s+/g, " ")).toMatch(/--accumulate <p> .*\(choices: "f64", "f32", "q8", default: "q8"\)/);
  });

  it("--simd and QWEN3_NEXT_SIMD pick the WASM kernel build, which --json reports; exact sums give the same tokens on both", async () => {
    const args = ["generate", "--prompt", PROMPT, "--seed", "0", "--max-tokens", "6", "--json", "-t", "1", "--accumulate", "f64"];
    const auto = JSON.parse((await runCli(args, { env })).stdout);
    const plain = JSON.parse((await runCli([...args, "--simd", "plain"], { env })).stdout);
    const fromEnv = JSON.parse((await runCli(args, { env: { ...env, QWEN3_NEXT_SIMD: "plain" } })).stdout);
    const relaxed = JSON.parse((await runCli([...args, "--simd", "relaxed"], { env: { ...env, QWEN3_NEXT_SIMD: "plain" } })).stdout);
    // Node 20 from 20.16 on (process.getBuiltinModule sets the V8 flag) and later releases accept relaxed SIMD.
    expect(auto.kernels).toEqual({ backend: "wasm", precision: "f32", simd: "relaxed", accumulate: "f64", threads: 1 });
    expect(plain.kernels.simd).toBe("plain");
    expect(fromEnv.kernels.simd).toBe("plain");
    expect(relaxed.kernels.simd).toBe("relaxed"); // the flag wins over the environment
    for (const r of [plain, fromEnv, relaxed]) expect(r.tokens).toEqual(auto.tokens);
    const bad = await runCli([...args, "--simd", "avx"], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--simd <build>' argument 'avx' is invalid. Allowed choices are auto, plain, relaxed/);
  });

  it("--speculative mtp gives greedy's exact tokens, with draft counts in --json and the acceptance rate on stderr", async () => {
    // Exact sums: the verify step's rows are then bit-identical to single-token steps (with float32 sums, the
    // default, a multi-row product rounds differently and a near-tie may break the other way).
    const args = ["generate", "--prompt", PROMPT, "--temperature", "0", "--max-tokens", "10", "--json", "--accumulate", "f64"];
    const plain = await runCli(args, { env });
    expect(plain.code).toBe(0);
    const p = JSON.parse(plain.stdout);
    expect(p.timings).toMatchObject({ draft_tokens: 0, accepted_tokens: 0 });
    const spec = await runCli([...args, "--speculative", "mtp", "--draft-tokens", "3"], { env });
    expect(spec.code).toBe(0);
    const s = JSON.parse(spec.stdout);
    expect(s.tokens).toEqual(p.tokens);
    expect(s.timings.draft_tokens).toBeGreaterThan(0);
    expect(s.timings.accepted_tokens).toBeLessThanOrEqual(s.timings.draft_tokens);
    expect(spec.stderr).toMatch(/drafts accepted \d+\/\d+ \(\d+%\)/);
    const implied = await runCli(["generate", "--prompt", PROMPT, "--temperature", "0", "--max-tokens", "10", "--draft-tokens", "2", "--no-stream"], { env });
    expect(implied.stderr).toMatch(/drafts accepted/);
    const bad = await runCli(["generate", "--prompt", "hi", "--speculative", "eagle"], { env });
    expect(bad.code).toBe(2);
    const zero = await runCli(["generate", "--prompt", "hi", "--draft-tokens", "0"], { env });
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/--draft-tokens expects an integer >= 1, got "0"/);
  });

  it("reads the prompt from stdin and works without the chat template (--raw)", async () => {
    const a = await runCli(["generate", "--raw", "--seed", "3", "--max-tokens", "4", "--json"], { env, input: "Once upon a time" });
    expect(a.code).toBe(0);
    const r = JSON.parse(a.stdout);
    expect(r.usage.prompt_tokens).toBe(4); // "Once", " upon", " a", " time": no template around it
  });

  it("gives a one-line error for a missing folder, a corrupt config, bad flag values", async () => {
    const missing = await runCli(["generate", "--model", path.join(tmp, "nope"), "--prompt", "hi"], { env });
    expect(missing.code).toBe(1);
    expect(oneLineError(missing.stderr)).toMatch(/model folder .*nope does not exist/);

    const bad = path.join(tmp, "bad");
    await mkdir(bad);
    await writeFile(path.join(bad, "config.json"), '{"model_type": "qwen3_next", "hidden_size": ');
    const corrupt = await runCli(["generate", "--model", bad, "--prompt", "hi"], { env });
    expect(corrupt.code).toBe(1);
    expect(oneLineError(corrupt.stderr)).toMatch(/config\.json/);

    await writeFile(path.join(bad, "config.json"), JSON.stringify({ model_type: "llama" }));
    const wrongType = await runCli(["generate", "--model", bad, "--prompt", "hi"], { env });
    expect(oneLineError(wrongType.stderr)).toMatch(/model_type is "llama", expected "qwen3_next"/);

    const temp = await runCli(["generate", "--prompt", "hi", "--temperature", "-1"], { env });
    expect(temp.code).toBe(2); // a bad flag value is a usage error
    expect(oneLineError(temp.stderr)).toMatch(/--temperature is -1, expected a number >= 0/);

    const long = await runCli(["generate", "--raw"], { env, input: "word ".repeat(9000) });
    expect(long.code).toBe(1);
    expect(long.stderr).toMatch(/RANDOM/); // the demo notice, then the error
    expect(long.stderr.trimEnd().split("\n").at(-1)).toMatch(
      /^qwen3-next: the prompt is 9001 tokens, the model's context is 8192 tokens .*enable YaRN .*--rope-scaling/,
    );

    const rope = await runCli(["generate", "--prompt", "hi", "--rope-scaling", "{yarn"], { env });
    expect(rope.code).toBe(2);
    expect(oneLineError(rope.stderr)).toMatch(/--rope-scaling is not JSON/);
  });

  it("rejects an unknown flag with a usage error (exit 2)", async () => {
    const r = await runCli(["generate", "--prompt", "hi", "--bogus"], { env });
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toMatch(/unknown option '--bogus'/);
    expect(r.stdout).toBe("");
  });

  it("stops on Ctrl-C (SIGINT), keeps what was generated and exits 130", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/cli/bin.ts"), "generate", "--prompt", PROMPT, "--max-tokens", "2000", "--seed", "0"], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.stdout.once("data", () => child.kill("SIGINT")); // once: a second Ctrl-C quits at once, by design
    child.stdout.on("data", (d) => (stdout += d));
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(130);
    expect(stdout.length).toBeGreaterThan(0);
    expect(stderr).toMatch(/finish: abort\]/);
  });
});

describe("qwen3-next generate: reasoning and answer", () => {
  // A Thinking-style template: the prompt opens <think>, so the model writes only the closing </think>.
  const THINKING =
    "{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{%- endfor %}" +
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}";
  const REASONING = "Two plus two gives four";
  const ANSWER = "It is 4.";
  let dir: string;

  beforeAll(async () => {
    process.env.QWEN3_NEXT_CACHE = env.QWEN3_NEXT_CACHE;
    const demo = await ensureDemoCheckpoint();
    const tok = await QwenTokenizer.load();
    // The prompt's last token (the newline after <think>, ChatML written out by hand), then what the model says.
    const promptEnd = tok.encode("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n").at(-1)!;
    const said = [...tok.encode(REASONING), tok.encode("</think>")[0], ...tok.encode(`\n\n${ANSWER}`), tok.encode("<|im_end|>")[0]];
    dir = path.join(tmp, "thinking");
    await writeScriptedCheckpoint(demo, dir, [promptEnd, ...said]);
    await writeFile(path.join(dir, "chat_template.jinja"), THINKING);
  }, 120_000);

  const args = (...more: string[]) => ["generate", "-m", dir, "--temperature", "0", "-n", "30", ...more];
  const LABELLED = `[thinking]\n${REASONING}\n[answer]\n${ANSWER}\n`;

  it("labels the reasoning and the answer when piped, streamed or not, with the template's <think> in the prompt", async () => {
    const streamed = await runCli(args("What is 2+2?"), { env });
    expect(streamed.code).toBe(0);
    expect(streamed.stderr).toMatch(/finish: stop\]/);
    expect(streamed.stdout).toBe(LABELLED);
    const whole = await runCli(args("--no-stream", "What is 2+2?"), { env });
    expect(whole.stdout).toBe(LABELLED);
  }, 60_000);

  it("labels and dims the reasoning on a terminal", async () => {
    // A pseudo-terminal (util-linux `script`): stdout and stderr both land on it.
    const cmd = [process.execPath, "--import", "tsx", path.join(ROOT, "src/cli/bin.ts"), ...args("What is 2+2?")].map((a) => `'${a}'`).join(" ");
    const child = spawn("script", ["-qfec", cmd, "/dev/null"], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stdin.end();
    expect(await new Promise<number | null>((resolve) => child.on("close", resolve))).toBe(0);
    const text = out.replace(/\r/g, "");
    // Dimmed: the labels and the reasoning, nothing else (streamed piece by piece).
    const dimmed = [...text.matchAll(/\x1b\[2m([\s\S]*?)\x1b\[22m/g)].map((m) => m[1]).join("");
    expect(dimmed).toBe(`[thinking]\n${REASONING}\n[answer]\n`);
    const plain = text.replace(/\x1b\[[\d;]*[A-Za-z]/g, "");
    expect(plain).toContain(LABELLED);
  }, 60_000);

  it("--json carries the reasoning and the content apart; --raw prints the text as generated", async () => {
    const j = await runCli(args("--json", "What is 2+2?"), { env });
    expect(j.code).toBe(0);
    const r = JSON.parse(j.stdout);
    expect(r).toMatchObject({ text: `${REASONING}</think>\n\n${ANSWER}`, reasoning: REASONING, content: ANSWER, finish_reason: "stop" });
    // --raw: no template, so the prompt is given as the model would see it, ending with the same newline.
    const raw = await runCli(args("--raw", "-p", "<think>\n"), { env });
    expect(raw.code).toBe(0);
    expect(raw.stdout).toBe(`${REASONING}</think>\n\n${ANSWER}\n`);
  }, 60_000);
});

describe("qwen3-next tokenize", () => {
  it("prints ids for text and text for ids", async () => {
    const a = await runCli(["tokenize", "--text", "Hello world"]);
    expect(a.stdout).toBe("9707,1879\n");
    const b = await runCli(["tokenize", "--decode", "151644,9707,1879"]);
    expect(b.stdout).toBe("<|im_start|>Hello world\n");
    const c = await runCli(["tokenize", "--decode", "1,x"]);
    expect(c.code).toBe(2);
    expect(oneLineError(c.stderr)).toMatch(/"x" is not a token id/);
  });
});

describe("qwen3-next init", () => {
  it("writes a loadable random checkpoint; the same seed gives the same model", async () => {
    const out = path.join(tmp, "init-a");
    const a = await runCli(["init", "--config", "demo", "--out", out, "--seed", "4"]);
    expect(a.code).toBe(0);
    for (const f of ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) {
      expect(existsSync(path.join(out, f))).toBe(true);
    }
    const again = await runCli(["init", "--config", "demo", "--out", out]);
    expect(again.code).toBe(1);
    expect(oneLineError(again.stderr)).toMatch(/already exists/);
    const missing = await runCli(["init", "--config", path.join(tmp, "none.json"), "--out", path.join(tmp, "x")]);
    expect(oneLineError(missing.stderr)).toMatch(/cannot read .*none\.json/);
    const g = await runCli(["generate", "--model", out, "--prompt", "hi", "--seed", "0", "--max-tokens", "5"], { env });
    expect(g.code).toBe(0);
    expect(g.stderr).not.toMatch(/demo checkpoint/);
  });
});
