/**
 * CLI conventions, run as a user runs the command: --version, llama-cli's short flags, a bare prompt, -f FILE,
 * the seed and load time in the stats, "output capped", exit codes (2 usage, 1 runtime), `serve` checking its
 * port before loading, `init` sizing, refusing and cleaning up, unknown config keys, an unwritable cache.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statfsSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ROOT, runCli } from "../helpers/cli.js";

let tmp: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "qwen3-conv-"));
  env = { QWEN3_NEXT_CACHE: path.join(tmp, "cache") };
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const lastLine = (s: string) => s.trimEnd().split("\n").at(-1)!;

describe("generate's conventions", () => {
  it("--version prints the package version", async () => {
    const r = await runCli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).version);
  });

  it("takes a bare prompt, -p, -f FILE and stdin alike; short flags -n -t; prints the seed and load time", async () => {
    const file = path.join(tmp, "prompt.txt");
    await writeFile(file, "Tell me a story.\n");
    const base = ["generate", "--seed", "7", "-n", "4", "-t", "1", "--json"];
    const bare = await runCli([...base, "Tell", "me", "a", "story."], { env });
    expect(bare.code).toBe(0);
    const p = await runCli([...base, "-p", "Tell me a story."], { env });
    const f = await runCli([...base, "-f", file], { env });
    const stdin = await runCli(base, { env, input: "Tell me a story." });
    const tokens = (r: { stdout: string }) => JSON.parse(r.stdout).tokens as number[];
    expect(tokens(bare)).toHaveLength(4);
    for (const r of [p, f, stdin]) expect(tokens(r)).toEqual(tokens(bare));
    expect(lastLine(bare.stderr)).toMatch(/^\[seed 7; loaded in \d+\.\d\ds; \d+ prompt tokens/);
    // Without --seed one is drawn and printed; passing it back repeats the text.
    const drawn = await runCli(["generate", "-n", "4", "--json", "hello"], { env });
    const seed = /\[seed (\d+);/.exec(drawn.stderr)![1];
    const again = await runCli(["generate", "-n", "4", "--json", "--seed", seed, "hello"], { env });
    expect(tokens(again)).toEqual(tokens(drawn));
  }, 90_000);

  it("-m names the checkpoint; -c caps the context and says the output was capped", async () => {
    const r = await runCli(["generate", "-m", path.join(tmp, "cache", "demo-v1"), "-c", "20", "-n", "100", "--seed", "1", "--no-think", "hi"], { env });
    expect(r.code).toBe(0);
    expect(lastLine(r.stderr)).toMatch(/finish: length; output capped: the context \(20 tokens\) is full\]$/);
  }, 60_000);

  it("exit code 2 for usage errors, 1 for runtime errors", async () => {
    const two = [
      [["generate", "-p", "a", "b"], /a prompt argument and --prompt both give the prompt; pass one/],
      [["generate"], /no prompt: pass it as an argument, -p TEXT, -f FILE, or pipe it on stdin/],
      [["generate", "-n", "0", "hi"], /--max-tokens expects an integer >= 1/],
      [["generate", "--top-p", "2", "hi"], /--top-p/],
      [["trace", "-m", "x", "--out", "y"], /no tokens given/],
      [["tokenize"], /give exactly one of --text TEXT or --decode IDS/],
      [["serve", "--port", "70000"], /--port 70000 is out of range/],
    ] as const;
    for (const [args, message] of two) {
      const r = await runCli([...args], { env });
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(message);
    }
    const one = await runCli(["generate", "-m", path.join(tmp, "nope"), "hi"], { env });
    expect(one.code).toBe(1);
    expect(one.stderr).toMatch(/model folder .*nope does not exist/);
    const file = await runCli(["generate", "-f", path.join(tmp, "nope.txt")], { env });
    expect(file.code).toBe(1);
    expect(file.stderr).toMatch(/^qwen3-next: cannot read the prompt file .*nope\.txt \(ENOENT\)\n$/);
  }, 90_000);
});

describe("serve", () => {
  it("refuses a port in use before loading anything", async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const r = await runCli(["serve", "--host", "127.0.0.1", "--port", String(port)], { env: { QWEN3_NEXT_CACHE: path.join(tmp, "serve-cache") } });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`qwen3-next: port ${port} on 127.0.0.1 is in use by another process; pick another with --port\n`);
      expect(existsSync(path.join(tmp, "serve-cache"))).toBe(false); // not even the demo checkpoint was made
    } finally {
      busy.close();
    }
  });
});

describe("init", () => {
  it("says how much it writes; refuses a checkpoint the disk cannot hold", async () => {
    const small = await runCli(["init", "--config", "demo", "--out", path.join(tmp, "small")]);
    expect(small.code).toBe(0);
    const said = /^writing ([\d.]+) MiB to .*small \([\d.]+ [KMGT]iB free\)\n$/.exec(small.stderr);
    expect(said).not.toBeNull();
    // What was written: within 1% of what was announced (headers and the small JSON files aside).
    const written = readdirSync(path.join(tmp, "small")).reduce((n, f) => n + statSync(path.join(tmp, "small", f)).size, 0) / 1024 ** 2;
    expect(Math.abs(Number(said![1]) - written) / written).toBeLessThan(0.01);

    const published = path.join(ROOT, "test/fixtures/published/Qwen3-Next-80B-A3B-Instruct.config.json");
    const need = 2 * 81.3e9; // 81.3B parameters in BF16 (the model card's count; 80B + the MTP layer)
    const fs = statfsSync(tmp);
    if (fs.bavail * fs.bsize >= need) return; // this disk could hold it: nothing to refuse
    const out = path.join(tmp, "big");
    const r = await runCli(["init", "--config", published, "--out", out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^qwen3-next: .*big needs 1[45]\d\.\d GiB, but the disk holding .* has [\d.]+ [KMGT]iB free\n$/);
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it("removes its temporary folder on Ctrl-C and exits 130", async () => {
    const config = path.join(tmp, "medium.json");
    await writeFile(
      config,
      JSON.stringify({
        model_type: "qwen3_next", vocab_size: 151936, hidden_size: 512, intermediate_size: 1024, num_hidden_layers: 8,
        num_attention_heads: 4, num_key_value_heads: 2, head_dim: 64, linear_key_head_dim: 64, linear_value_head_dim: 64,
        linear_num_key_heads: 2, linear_num_value_heads: 4, num_experts: 32, num_experts_per_tok: 2, moe_intermediate_size: 256,
        shared_expert_intermediate_size: 256, max_position_embeddings: 4096,
      }),
    );
    const out = path.join(tmp, "interrupted");
    const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/cli/bin.ts"), "init", "--config", config, "--out", out], { cwd: ROOT });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
      if (/^writing /.test(stderr)) setTimeout(() => child.kill("SIGINT"), 300);
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted; nothing was written to .*interrupted\n$/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp).filter((n) => n.startsWith("interrupted"))).toEqual([]); // no .tmp-* folder left
  }, 60_000);
});

describe("config and cache", () => {
  it("warns about an unknown config.json key by name, with the key it probably meant", async () => {
    const file = path.join(tmp, "typo.json");
    const published = JSON.parse(readFileSync(path.join(ROOT, "test/fixtures/published/Qwen3-Next-80B-A3B-Instruct.config.json"), "utf8"));
    const { num_hidden_layers: _n, ...rest } = published;
    await writeFile(file, JSON.stringify({ ...rest, num_hiden_layers: 12 }));
    const r = await runCli(["info", "--config", file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`warning: ${file}: unknown key num_hiden_layers, ignored (did you mean num_hidden_layers?; num_hidden_layers takes its default, 48)\n`);
    const clean = await runCli(["info", "--config", path.join(ROOT, "test/fixtures/published/Qwen3-Next-80B-A3B-Instruct.config.json")]);
    expect(clean.stderr).toBe("");
  });

  it("an unwritable QWEN3_NEXT_CACHE is one line", async () => {
    for (const cache of ["/proc/qwen3-next-test", "/etc/hostname/cache"]) {
      const r = await runCli(["generate", "hi"], { env: { QWEN3_NEXT_CACHE: cache } });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^qwen3-next: \\$QWEN3_NEXT_CACHE \\(${cache.replace(/\//g, "\\/")}\\) is not a writable folder \\(E[A-Z]+\\); set QWEN3_NEXT_CACHE to one`));
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    }
  });
});
