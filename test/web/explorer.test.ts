/**
 * The browser explorer in Debian's Chromium (playwright-core; `apt-get install chromium`), on the page as built
 * and served by `qwen3-next explore`'s server with the demo checkpoint:
 *   - the page is cross-origin isolated and the kernels run on worker threads;
 *   - it generates exactly the greedy tokens the CLI generates for the same prompt;
 *   - every view draws (no blank canvas), the keyboard moves a cursor that names the cell, no console errors;
 *   - a checkpoint folder picked from disk (File objects, nothing uploaded) loads and gives the same tokens;
 *   - a corrupt checkpoint picked from disk gives a clear message;
 *   - GGUF (reference/gguf/ fixtures, llama.cpp's quantized files): `qwen3-next explore --model FILE.gguf` serves one
 *     and a .gguf picked from disk loads, each generating exactly `qwen3-next generate --model FILE.gguf`'s
 *     greedy tokens; a corrupt .gguf picked from disk gives one line naming the file.
 * Screenshots of each view go to test-artifacts/explorer/. Without Chromium the suite is skipped (and says so),
 * except under CI=true, where that is a failure.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDemoCheckpoint } from "../../src/init/demo.js";
import { startSite, type SiteServer } from "../../src/explore/site.js";
import { buildPage } from "../../web/build.js";
import { ROOT, runCli } from "../helpers/cli.js";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--headless"];
const ARTIFACTS = path.join(ROOT, "test-artifacts", "explorer");
const PROMPT = "Give me a short introduction to large language models.";
const MAX_TOKENS = 20;
const VIEWS = ["routing", "deltanet", "attention", "lens", "mtp", "timings"];
/** llama.cpp-quantized Qwen3-Next files (reference/gguf/README.md): Q8_0, and Q4_K_M's mix of K-quants. */
const GGUF_Q8_0 = path.join(ROOT, "reference/gguf/gguf-q8_0/model.gguf");
const GGUF_Q4_K_M = path.join(ROOT, "reference/gguf/gguf-q4_k_m/model.gguf");
const GGUF_TOKENS = 8;

/** What the tests read in the page (this file compiles without the DOM lib). */
interface PageGlobals {
  crossOriginIsolated: boolean;
  qwen3next: { lastRun: { tokens: number[] } | null; error: string | null; info: { threads: number; name: string } | null };
  document: {
    activeElement: { closest(s: string): { querySelector(s: string): { textContent: string | null } | null } | null } | null;
    getElementById(id: string): { textContent: string | null } | null;
  };
}
interface CanvasLike {
  width: number;
  height: number;
  getContext(kind: "2d"): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}

/**
 * The explorer runs the library's exact sums (`accumulate` f64, the default of `loadModel`), while `generate`
 * defaults to the fastest documented arithmetic (q8 / float32 sums): the CLI is asked for the same exact sums.
 */
const EXACT = ["--accumulate", "f64"];

/** The CLI's greedy tokens for PROMPT on a .gguf file (`generate --model FILE.gguf --json`). */
async function cliTokens(model: string, maxTokens: number): Promise<number[]> {
  const cli = await runCli(["generate", "--model", model, ...EXACT, "--prompt", PROMPT, "--temperature", "0", "--max-tokens", String(maxTokens), "--json"]);
  expect(cli.code, cli.stderr).toBe(0);
  const tokens = (JSON.parse(cli.stdout) as { tokens: number[] }).tokens;
  expect(tokens.length).toBe(maxTokens);
  return tokens;
}

/** `qwen3-next explore --no-open --port 0 ...args` as a user runs it; resolves with the child and its URL. */
function startExplore(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/cli/bin.ts"), "explore", "--no-open", "--port", "0", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /Explorer at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.on("exit", (code) => reject(new Error(`explore exited with ${code} before printing its URL: ${err.trim()}`)));
  });
}

/** Waits until the page has loaded a model or shown an error. */
async function waitLoaded(p: Page): Promise<void> {
  await p.waitForFunction(() => {
    const a = (globalThis as unknown as PageGlobals).qwen3next;
    return a.info !== null || a.error !== null;
  }, null, { timeout: 60_000 });
}

/** Waits until the page has finished a run or shown an error. */
async function waitRun(p: Page, timeout = 60_000): Promise<void> {
  await p.waitForFunction(() => {
    const a = (globalThis as unknown as PageGlobals).qwen3next;
    return a.lastRun !== null || a.error !== null;
  }, null, { timeout });
}

/** Waits until the page's model worker is up (before picking files). */
async function waitStarted(p: Page): Promise<void> {
  await p.waitForFunction(() => (globalThis as unknown as PageGlobals).document.getElementById("status")!.textContent !== "starting…");
}

/** One view's tab opened: its canvases (size, distinct colours up to 8), error and note lines; screenshot saved. */
async function drawnView(p: Page, view: string, shot: string) {
  await p.click(`#tab-${view}`);
  const panel = `#view-${view}`;
  const canvases = await p.$$eval(`${panel} canvas`, (cs) =>
    cs.map((c) => {
      const canvas = c as unknown as CanvasLike;
      const px = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
      const colours = new Set<number>();
      for (let i = 0; i < px.length && colours.size < 8; i += 4) colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
      return { w: canvas.width, h: canvas.height, colours: colours.size };
    }),
  );
  const errors = await p.$$eval(`${panel} p.error`, (ps) => ps.map((e) => e.textContent));
  const notes = await p.$$eval(`${panel} p.note`, (ps) => ps.map((e) => e.textContent));
  await p.screenshot({ path: path.join(ARTIFACTS, shot), fullPage: true });
  return { canvases, errors, notes };
}

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI !== "true") {
  process.stderr.write(`test/web/explorer.test.ts: skipped, ${CHROMIUM} is missing (apt-get install chromium); under CI=true this fails\n`);
}

describe.skipIf(!haveChromium && process.env.CI !== "true")("the browser explorer", () => {
  let tmp: string;
  let demo: string;
  let site: SiteServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  /** The CLI's greedy tokens for PROMPT (greedy decoding: a shorter run is a prefix). */
  let expectedTokens: number[] = [];

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium (apt-get install chromium)`);
    tmp = await mkdtemp(path.join(os.tmpdir(), "qwen3-explorer-"));
    demo = await ensureDemoCheckpoint();
    await buildPage(path.join(tmp, "site"));
    site = await startSite({ siteDir: path.join(tmp, "site"), model: demo, port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    await mkdir(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await site?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("runs the demo model on threads in an isolated page and generates the CLI's greedy tokens", async () => {
    const cli = await runCli(["generate", ...EXACT, "--prompt", PROMPT, "--temperature", "0", "--max-tokens", String(MAX_TOKENS), "--json"]);
    expect(cli.code, cli.stderr).toBe(0);
    const expected = (JSON.parse(cli.stdout) as { tokens: number[] }).tokens;
    expect(expected.length).toBeGreaterThan(0);
    expectedTokens = expected;

    const q = new URLSearchParams({ prompt: PROMPT, temperature: "0", max_tokens: String(MAX_TOKENS), seed: "0", threads: "2", autorun: "1" });
    await page.goto(`${site.url}?${q}`);
    await waitRun(page, 90_000);
    const state = await page.evaluate(() => {
      const w = globalThis as unknown as PageGlobals;
      const a = w.qwen3next;
      return { isolated: w.crossOriginIsolated, error: a.error, tokens: a.lastRun?.tokens, threads: a.info?.threads };
    });
    expect(state.error).toBeNull();
    expect(state.isolated).toBe(true);
    expect(state.threads).toBe(2);
    expect(state.tokens).toEqual(expected);
  });

  it("draws every view, names cells from the keyboard, and logs no console errors", async () => {
    for (const view of VIEWS) {
      const v = await drawnView(page, view, `${view}.png`);
      expect(v.canvases.length, view).toBeGreaterThan(0);
      for (const c of v.canvases) expect(c.colours, `${view}: a blank canvas (${c.w}x${c.h})`).toBeGreaterThan(2);
      expect(v.errors, view).toEqual([]);
      // The data the views need is in the trace: no "this trace has no ..." notes.
      expect(v.notes, view).toEqual([]);
    }
    await page.click("#tab-routing");
    // The third heatmap of the routing view is layer 0's tokens x experts.
    await page.focus("#view-routing canvas[tabindex] >> nth=2");
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("ArrowDown");
    const readout = await page.evaluate(
      () => (globalThis as unknown as PageGlobals).document.activeElement!.closest("figure")!.querySelector(".readout")!.textContent,
    );
    expect(readout).toMatch(/^layer 0, expert 1, pos 1 "user" \(prompt\): /);
    await page.keyboard.press("ArrowRight");
    await page.keyboard.press("ArrowRight");
    expect(await page.getAttribute("#tab-deltanet", "aria-selected")).toBe("false");
    await page.focus("#tab-routing");
    await page.keyboard.press("ArrowRight");
    expect(await page.getAttribute("#tab-deltanet", "aria-selected")).toBe("true");
    expect(problems).toEqual([]);
  });

  it("loads a checkpoint folder picked from disk and generates the same tokens", async () => {
    const p = await browser.newPage();
    const errors: string[] = [];
    p.on("pageerror", (e) => errors.push(e.message));
    p.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await p.goto(`${site.url}?${new URLSearchParams({ prompt: PROMPT, temperature: "0", max_tokens: "6", threads: "2" })}`);
    await waitStarted(p);
    await p.setInputFiles("#pick-folder", demo);
    await waitLoaded(p);
    await p.click("#run");
    await waitRun(p);
    const run = await p.evaluate(() => (globalThis as unknown as PageGlobals).qwen3next);
    expect(run.error).toBeNull();
    expect(run.lastRun!.tokens).toEqual(expectedTokens.slice(0, 6));
    expect(errors).toEqual([]);
    await p.close();
  });

  it("says clearly what is wrong with a corrupt checkpoint picked from disk", async () => {
    const bad = path.join(tmp, "corrupt-checkpoint");
    await mkdir(bad);
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) await copyFile(path.join(demo, f), path.join(bad, f));
    // An 8-byte header length far beyond the file: not a safetensors file.
    await writeFile(path.join(bad, "model.safetensors"), Buffer.concat([Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0]), Buffer.alloc(64, 7)]));
    const p = await browser.newPage();
    const errors: string[] = [];
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(site.url);
    await waitStarted(p);
    await p.setInputFiles("#pick-folder", bad);
    await p.waitForFunction(() => (globalThis as unknown as PageGlobals).qwen3next.error !== null, null, { timeout: 30_000 });
    const status = await p.textContent("#status");
    expect(status).toMatch(/^Error: corrupt-checkpoint\/model\.safetensors: header length \d+ exceeds the file size 72/);
    await p.screenshot({ path: path.join(ARTIFACTS, "corrupt-checkpoint.png") });
    expect(errors).toEqual([]);
    await p.close();
  });

  it("serves a .gguf with `explore --model FILE.gguf` and generates the CLI's greedy tokens", async () => {
    const expected = await cliTokens(GGUF_Q8_0, GGUF_TOKENS);
    const { child, url } = await startExplore(["--model", GGUF_Q8_0, "--site", path.join(tmp, "site")]);
    const p = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    p.on("pageerror", (e) => errors.push(e.message));
    p.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    try {
      const q = new URLSearchParams({ prompt: PROMPT, temperature: "0", max_tokens: String(GGUF_TOKENS), threads: "2", autorun: "1" });
      await p.goto(`${url}?${q}`);
      await waitRun(p, 90_000);
      const a = await p.evaluate(() => (globalThis as unknown as PageGlobals).qwen3next);
      expect(a.error).toBeNull();
      expect(a.info!.name).toBe("model.gguf");
      expect(a.info!.threads).toBe(2);
      expect(a.lastRun!.tokens).toEqual(expected);
      await p.screenshot({ path: path.join(ARTIFACTS, "gguf-served.png"), fullPage: true });
      // The views read the same trace for quantized weights (the logit lens multiplies by the quantized lm_head).
      for (const view of VIEWS) {
        const v = await drawnView(p, view, `gguf-${view}.png`);
        expect(v.errors, view).toEqual([]);
        if (view === "mtp") {
          // reference/gguf/*/config.json: mtp_num_hidden_layers 0.
          expect(v.notes).toEqual(["This checkpoint has no MTP head."]);
          continue;
        }
        expect(v.notes, view).toEqual([]);
        expect(v.canvases.length, view).toBeGreaterThan(0);
        for (const c of v.canvases) expect(c.colours, `${view}: a blank canvas (${c.w}x${c.h})`).toBeGreaterThan(2);
      }
      expect(errors).toEqual([]);
    } finally {
      await p.close();
      child.kill("SIGTERM");
    }
  });

  it("loads a .gguf picked from disk and generates the CLI's greedy tokens", async () => {
    const expected = await cliTokens(GGUF_Q4_K_M, GGUF_TOKENS);
    // Under a name of its own: the page must name the file it was given.
    const picked = path.join(tmp, "qwen3-next-q4_k_m.gguf");
    await copyFile(GGUF_Q4_K_M, picked);
    const p = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    p.on("pageerror", (e) => errors.push(e.message));
    p.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    await p.goto(`${site.url}?${new URLSearchParams({ prompt: PROMPT, temperature: "0", max_tokens: String(GGUF_TOKENS), threads: "2" })}`);
    await waitStarted(p);
    await p.setInputFiles("#pick-file", picked);
    await waitLoaded(p);
    expect(await p.evaluate(() => (globalThis as unknown as PageGlobals).qwen3next.error)).toBeNull();
    await p.click("#run");
    await waitRun(p);
    const a = await p.evaluate(() => (globalThis as unknown as PageGlobals).qwen3next);
    expect(a.error).toBeNull();
    expect(a.info!.name).toBe("qwen3-next-q4_k_m.gguf");
    expect(a.lastRun!.tokens).toEqual(expected);
    await p.screenshot({ path: path.join(ARTIFACTS, "gguf-picked.png"), fullPage: true });
    expect(errors).toEqual([]);
    await p.close();
  });

  it("says in one line naming the file what is wrong with a corrupt .gguf picked from disk", async () => {
    const whole = await readFile(GGUF_Q8_0);
    // Cut off inside the metadata (a partial download), and one that is not GGUF at all.
    const truncated = path.join(tmp, "truncated.gguf");
    await writeFile(truncated, whole.subarray(0, 200));
    const notGguf = path.join(tmp, "not-a-model.gguf");
    await writeFile(notGguf, Buffer.concat([Buffer.from("PK\x03\x04", "latin1"), whole.subarray(4, 4096)]));
    const p = await browser.newPage();
    const errors: string[] = [];
    p.on("pageerror", (e) => errors.push(e.message));
    await p.goto(site.url);
    await waitStarted(p);
    const cases: Array<[string, RegExp, string]> = [
      [truncated, /^Error: truncated\.gguf: .*, but the file ends at 200 \(truncated\?\)$/, "gguf-truncated.png"],
      [notGguf, /^Error: not-a-model\.gguf: not a GGUF file \(starts with "PK\?\?", expected "GGUF"\)$/, "gguf-not-gguf.png"],
    ];
    for (const [file, message, shot] of cases) {
      await p.evaluate(() => ((globalThis as unknown as PageGlobals).qwen3next.error = null));
      await p.setInputFiles("#pick-file", file);
      await p.waitForFunction(() => (globalThis as unknown as PageGlobals).qwen3next.error !== null, null, { timeout: 30_000 });
      const status = (await p.textContent("#status"))!;
      expect(status).toMatch(message);
      expect(status).not.toContain("\n");
      await p.screenshot({ path: path.join(ARTIFACTS, shot) });
    }
    expect(errors).toEqual([]);
    await p.close();
  });
});
