/**
 * `qwen3-next explore` as a user runs it (without a browser: --no-open): it serves the built page and the
 * checkpoint on 127.0.0.1, every response cross-origin isolated, the checkpoint's files listed in
 * model/manifest.json and readable by byte range; bad input is one line and a non-zero exit.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDemoCheckpoint } from "../../src/init/demo.js";
import { SITE_DIR } from "../../src/explore/site.js";
import { buildPage } from "../../web/build.js";
import { ROOT, runCli } from "../helpers/cli.js";

const ISOLATED = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
};

describe("qwen3-next explore", () => {
  let child: ChildProcess;
  let url: string;
  let demo: string;

  beforeAll(async () => {
    demo = await ensureDemoCheckpoint();
    await buildPage(SITE_DIR);
    child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/cli/bin.ts"), "explore", "--no-open", "--port", "0"], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
        const m = /Explorer at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on("exit", (code) => reject(new Error(`explore exited with ${code} before printing its URL`)));
    });
  });
  afterAll(() => {
    child?.kill("SIGTERM");
  });

  it("serves the page cross-origin isolated, on 127.0.0.1", async () => {
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    for (const [k, v] of Object.entries(ISOLATED)) expect(res.headers.get(k), k).toBe(v);
    expect(await res.text()).toContain("Qwen3-Next explorer");
    const missing = await fetch(new URL("no/such/file.js", url));
    expect(missing.status).toBe(404);
    expect(missing.headers.get("cross-origin-embedder-policy")).toBe("require-corp");
  });

  it("lists the demo checkpoint's files and serves byte ranges of them", async () => {
    const manifest = (await (await fetch(new URL("model/manifest.json", url))).json()) as { name: string; files: Array<{ path: string; size: number }> };
    expect(manifest.name).toBe("qwen3-next-demo-v1");
    const names = manifest.files.map((f) => f.path).sort();
    expect(names).toEqual(["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
    for (const f of manifest.files) expect(f.size, f.path).toBe((await stat(path.join(demo, f.path))).size);
    const whole = await readFile(path.join(demo, "model.safetensors"));
    const res = await fetch(new URL("model/model.safetensors", url), { headers: { Range: "bytes=3-17" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes 3-17/${whole.length}`);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(whole.subarray(3, 18));
    const tail = await fetch(new URL("model/model.safetensors", url), { headers: { Range: "bytes=-5" } });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(whole.subarray(whole.length - 5));
    const past = await fetch(new URL("model/model.safetensors", url), { headers: { Range: `bytes=${whole.length}-` } });
    expect(past.status).toBe(416);
    // Only the listed files: nothing else of the folder tree is reachable.
    expect((await fetch(new URL("model/..%2Fdemo-v1%2Fconfig.json", url))).status).toBe(404);
    expect((await fetch(new URL("..%2F..%2Fpackage.json", url))).status).toBe(404);
  });

  it("refuses a missing --model and a bad --port with one line", async () => {
    const missing = await runCli(["explore", "--no-open", "--model", "/no/such/checkpoint"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe("qwen3-next: --model /no/such/checkpoint does not exist; expected a checkpoint folder or a .gguf file");
    const port = await runCli(["explore", "--no-open", "--port", "70000"]);
    expect(port.code).toBe(2);
    expect(port.stderr.trim()).toMatch(/--port expects an integer from 0 to 65535, got "70000"$/);
  });
});
