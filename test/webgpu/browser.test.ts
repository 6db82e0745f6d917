/**
 * The WebGPU backend in a browser: the same source (bundled by Vite, the `webgpu` npm package left out) on
 * Chromium's `navigator.gpu` (headless, SwiftShader when there is no GPU), running test/webgpu/browser_entry.ts:
 * matrix products (BF16, Q4_K) against the TypeScript kernels and a small random model's logits (prefill, then
 * decode) against the float64 TypeScript model. Without Chromium the test is skipped (and says so), except
 * under CI=true, where that is a failure.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { build } from "vite";
import { describe, expect, it } from "vitest";
import { TOL } from "../helpers/reference.js";

/** Debian's Chromium, as the explorer's tests use it. */
const CHROMIUM = "/usr/bin/chromium";
const ENTRY = fileURLToPath(new URL("./browser_entry.ts", import.meta.url));
const ARGS = ["--no-sandbox", "--headless", "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-webgpu-adapter=swiftshader"];
const have = existsSync(CHROMIUM);
if (!have && process.env.CI === "true") throw new Error(`${CHROMIUM} is missing (CI installs Debian's chromium: see .ci/run)`);

describe.skipIf(!have)(`the WebGPU backend in Chromium${have ? "" : ` (skipped: no ${CHROMIUM})`}`, () => {
  it("runs the same kernels and model on navigator.gpu, matching the TypeScript backend", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "webgpu-browser-"));
    const server = http.createServer(async (req, res) => {
      if (req.url === "/") {
        res.setHeader("content-type", "text/html");
        res.end('<!doctype html><script type="module" src="/entry.js"></script>');
        return;
      }
      try {
        const body = await readFile(path.join(dir, path.basename(req.url ?? "")));
        res.setHeader("content-type", "text/javascript");
        res.end(body);
      } catch {
        res.statusCode = 404;
        res.end();
      }
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    try {
      await build({
        configFile: false,
        logLevel: "warn",
        build: {
          outDir: dir,
          emptyOutDir: true,
          target: "es2022",
          minify: false,
          lib: { entry: ENTRY, formats: ["es"], fileName: () => "entry.js" },
          rollupOptions: { external: ["webgpu"] },
        },
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const { port } = server.address() as { port: number };
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      // WebGPU validation and out-of-memory errors surface as console warnings.
      page.on("console", (m) => {
        if (m.type() === "warning" && /WebGPU|Invalid|vk/.test(m.text())) errors.push(m.text());
      });
      await page.goto(`http://localhost:${port}/`);
      await page.waitForFunction(() => "runWebGpuChecks" in globalThis, undefined, { timeout: 30_000 });
      const r = (await page.evaluate(() => (globalThis as unknown as { runWebGpuChecks(): Promise<Record<string, number | string>> }).runWebGpuChecks())) as Record<string, number | string>;
      expect(errors).toEqual([]);
      expect(String(r.adapter).length).toBeGreaterThan(0);
      // Matrix products within half an ulp of the float64 result, as on the Node adapter.
      expect(r["linear BF16"], JSON.stringify(r)).toBeLessThanOrEqual(2 ** -24);
      expect(r["linear Q4_K"], JSON.stringify(r)).toBeLessThanOrEqual(2 ** -24);
      expect(r["model logits"], JSON.stringify(r)).toBeLessThanOrEqual(TOL.f32);
    } finally {
      await browser.close();
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
