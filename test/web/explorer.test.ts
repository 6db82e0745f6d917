/**
 * The browser explorer in Debian's Chromium (playwright-core; `apt-get install chromium`), on the page as built
 * and served by `qwen3-next explore`'s server with the demo checkpoint:
 *   - the page is cross-origin isolated and the kernels run on worker threads;
 *   - it generates exactly the greedy tokens the CLI generates for the same prompt;
 *   - every view draws (no blank canvas), the keyboard moves a cursor that names the cell, no console errors;
 *   - a checkpoint folder picked from disk (File objects, nothing uploaded) loads and gives the same tokens;
 *   - a corrupt checkpoint picked from disk gives a clear message.
 * Screenshots of each view go to test-artifacts/explorer/. Without Chromium the suite is skipped (and says so),
 * except under CI=true, where that is a failure.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
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

/** What the tests read in the page (this file compiles without the DOM lib). */
interface PageGlobals {
  crossOriginIsolated: boolean;
  qwen3next: { lastRun: { tokens: number[] } | null; error: string | null; info: { threads: number } | null };
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
    const cli = await runCli(["generate", "--prompt", PROMPT, "--temperature", "0", "--max-tokens", String(MAX_TOKENS), "--json"]);
    expect(cli.code, cli.stderr).toBe(0);
    const expected = (JSON.parse(cli.stdout) as { tokens: number[] }).tokens;
    expect(expected.length).toBeGreaterThan(0);
    expectedTokens = expected;

    const q = new URLSearchParams({ prompt: PROMPT, temperature: "0", max_tokens: String(MAX_TOKENS), seed: "0", threads: "2", autorun: "1" });
    await page.goto(`${site.url}?${q}`);
    await page.waitForFunction(() => {
      const a = (globalThis as unknown as PageGlobals).qwen3next;
      return a.lastRun !== null || a.error !== null;
    }, null, { timeout: 90_000 });
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
      await page.click(`#tab-${view}`);
      const panel = `#view-${view}`;
      const canvases = await page.$$eval(`${panel} canvas`, (cs) =>
        cs.map((c) => {
          const canvas = c as unknown as CanvasLike;
          const px = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
          const colours = new Set<number>();
          for (let i = 0; i < px.length && colours.size < 8; i += 4) colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
          return { w: canvas.width, h: canvas.height, colours: colours.size };
        }),
      );
      expect(canvases.length, view).toBeGreaterThan(0);
      for (const c of canvases) expect(c.colours, `${view}: a blank canvas (${c.w}x${c.h})`).toBeGreaterThan(2);
      expect(await page.$$eval(`${panel} p.error`, (ps) => ps.map((p) => p.textContent)), view).toEqual([]);
      // The data the views need is in the trace: no "this trace has no ..." notes.
      expect(await page.$$eval(`${panel} p.note`, (ps) => ps.map((p) => p.textContent)), view).toEqual([]);
      await page.screenshot({ path: path.join(ARTIFACTS, `${view}.png`), fullPage: true });
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
    await p.waitForFunction(() => (globalThis as unknown as PageGlobals).document.getElementById("status")!.textContent !== "starting…");
    await p.setInputFiles("#pick-folder", demo);
    await p.waitForFunction(() => {
      const a = (globalThis as unknown as PageGlobals).qwen3next;
      return a.info !== null || a.error !== null;
    }, null, { timeout: 60_000 });
    await p.click("#run");
    await p.waitForFunction(() => {
      const a = (globalThis as unknown as PageGlobals).qwen3next;
      return a.lastRun !== null || a.error !== null;
    }, null, { timeout: 60_000 });
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
    await p.waitForFunction(() => (globalThis as unknown as PageGlobals).document.getElementById("status")!.textContent !== "starting…");
    await p.setInputFiles("#pick-folder", bad);
    await p.waitForFunction(() => (globalThis as unknown as PageGlobals).qwen3next.error !== null, null, { timeout: 30_000 });
    const status = await p.textContent("#status");
    expect(status).toMatch(/^Error: corrupt-checkpoint\/model\.safetensors: header length \d+ exceeds the file size 72/);
    await p.screenshot({ path: path.join(ARTIFACTS, "corrupt-checkpoint.png") });
    expect(errors).toEqual([]);
    await p.close();
  });
});
