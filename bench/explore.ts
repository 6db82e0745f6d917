/**
 * The browser explorer's speed on the demo model in headless Chromium (Debian's, via playwright-core), next to
 * the CLI's on the same prompt, greedy, same number of tokens:
 *   - page load to first token: navigation start -> first generated token in the page (the page loads its
 *     scripts and WASM, starts the kernels' threads, streams the checkpoint over HTTP, prefills) versus
 *     `qwen3-next generate` spawned -> first byte of its output (Node starts, loads from disk, prefills);
 *   - decode tokens/s: as `generate` reports it, in the page untraced (trace=0, the model run as the CLI runs
 *     it) and traced (the views' data: every layer's tensors, the logit lens), and in the CLI.
 * Median of --runs runs each. Writes bench/explore-results.json.
 *
 *   node --import tsx bench/explore.ts [--runs 3] [--tokens 32] [--threads N]
 */
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { ensureDemoCheckpoint } from "../src/init/demo.js";
import { startSite } from "../src/explore/site.js";
import { buildPage } from "../web/build.js";
import { machineFacts } from "./machine.js";

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} expects an integer >= 1`);
  return v;
};
const runs = arg("runs", 3);
const tokens = arg("tokens", 32);
const threads = arg("threads", os.availableParallelism());
const CHROMIUM = "/usr/bin/chromium";
if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install chromium)`);
const PROMPT = "Give me a short introduction to large language models.";
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function cliRun(): Promise<{ firstTokenMs: number; tokensPerS: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join(ROOT, "src/cli/bin.ts"), "generate", "--prompt", PROMPT, "--temperature", "0", "--max-tokens", String(tokens), "--threads", String(threads)],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let first = -1;
    let stderr = "";
    child.stdout.on("data", () => {
      if (first < 0) first = performance.now() - t0;
    });
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const m = /generated in [\d.]+s \(([\d.]+) tok\/s\)/.exec(stderr);
      if (code !== 0 || !m) reject(new Error(`generate failed (${code}): ${stderr}`));
      else resolve({ firstTokenMs: first, tokensPerS: Number(m[1]) });
    });
  });
}

const loadBefore = os.loadavg()[0];
const demo = await ensureDemoCheckpoint();
const tmp = await mkdtemp(path.join(os.tmpdir(), "qwen3-explore-bench-"));
await buildPage(tmp);
const site = await startSite({ siteDir: tmp, model: demo, port: 0 });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--headless"],
  headless: true,
});
const chromiumVersion = browser.version();
interface PageRun {
  pageToFirstTokenMs: number;
  tokensPerSecond: number;
  loadMs: number;
  tokens: number[];
}
async function pageRun(trace: boolean): Promise<PageRun> {
  const page = await browser.newPage();
  const q = new URLSearchParams({ prompt: PROMPT, temperature: "0", max_tokens: String(tokens), threads: String(threads), autorun: "1", trace: trace ? "1" : "0" });
  await page.goto(`${site.url}?${q}`);
  await page.waitForFunction(() => {
    const a = (globalThis as unknown as { qwen3next: { lastRun: unknown; error: unknown } }).qwen3next;
    return a.lastRun !== null || a.error !== null;
  }, null, { timeout: 300_000 });
  const r = await page.evaluate(() => {
    const a = (globalThis as unknown as { qwen3next: { lastRun: PageRun | null; error: string | null } }).qwen3next;
    if (a.error !== null) throw new Error(a.error);
    return a.lastRun!;
  });
  await page.close();
  return r;
}

const page: PageRun[] = [];
const traced: PageRun[] = [];
const cli: Array<{ firstTokenMs: number; tokensPerS: number }> = [];
try {
  for (let i = 0; i < runs; i++) {
    page.push(await pageRun(false));
    traced.push(await pageRun(true));
    cli.push(await cliRun());
  }
} finally {
  await browser.close();
  await site.close();
  await rm(tmp, { recursive: true, force: true });
}
if (page.some((r) => r.tokens.length !== tokens)) throw new Error("the page stopped before --tokens tokens");
const results = {
  machine: machineFacts(),
  /** 1-minute load average before and after: this machine's other work competes for the same cores. */
  loadAverage: [loadBefore, os.loadavg()[0]],
  chromium: chromiumVersion,
  model: "demo checkpoint (demo-v1: 4 layers, hidden 64, 8 experts top-2, vocabulary 151,936; 20 MB BF16)",
  prompt: PROMPT,
  tokens,
  threads,
  runs,
  page: {
    loadToFirstTokenMs: median(page.map((r) => r.pageToFirstTokenMs)),
    weightsLoadMs: median(page.map((r) => r.loadMs)),
    decodeTokensPerS: median(page.map((r) => r.tokensPerSecond)),
  },
  pageTraced: {
    loadToFirstTokenMs: median(traced.map((r) => r.pageToFirstTokenMs)),
    decodeTokensPerS: median(traced.map((r) => r.tokensPerSecond)),
  },
  cli: {
    startToFirstTokenMs: median(cli.map((r) => r.firstTokenMs)),
    decodeTokensPerS: median(cli.map((r) => r.tokensPerS)),
  },
};
writeFileSync(path.join(ROOT, "bench/explore-results.json"), JSON.stringify(results, null, 2) + "\n");
const f = (x: number) => x.toFixed(0);
console.log(`demo model, ${tokens} tokens, ${threads} threads, median of ${runs}:`);
console.log(`| | load to first token | decode tok/s |`);
console.log(`|---|---|---|`);
console.log(`| page (headless Chromium ${results.chromium}) | ${f(results.page.loadToFirstTokenMs)} ms | ${results.page.decodeTokensPerS.toFixed(1)} |`);
console.log(`| page, traced (the views' data) | ${f(results.pageTraced.loadToFirstTokenMs)} ms | ${results.pageTraced.decodeTokensPerS.toFixed(1)} |`);
console.log(`| CLI (\`generate\`, Node ${process.versions.node}) | ${f(results.cli.startToFirstTokenMs)} ms | ${results.cli.decodeTokensPerS.toFixed(1)} |`);
