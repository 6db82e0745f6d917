/**
 * Builds the explorer. `tsx web/build.ts` (npm run build:web): the page plus the demo checkpoint under model/,
 * a static site in dist-web/ that any static host can serve with the headers of src/explore/site.ts
 * (ISOLATION_HEADERS). `--page-only`: the page alone (what `qwen3-next explore` serves, with its own model/).
 * `--out DIR` writes elsewhere.
 */
import { copyFile, mkdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";
import { DEMO_NAME, ensureDemoCheckpoint } from "../src/init/demo.js";
import { checkpointFiles, SITE_DIR, type Manifest } from "../src/explore/site.js";

const CONFIG = fileURLToPath(new URL("./vite.config.ts", import.meta.url));

/** The page (HTML, scripts, WASM kernels) into `outDir`, emptied first. */
export async function buildPage(outDir: string = SITE_DIR): Promise<void> {
  await build({ configFile: CONFIG, logLevel: "warn", build: { outDir, emptyOutDir: true } });
}

/** The page and a checkpoint folder (default: the demo) under `outDir`/model/, with its manifest. */
export async function buildSite(outDir: string = SITE_DIR, model?: string): Promise<void> {
  await buildPage(outDir);
  const dir = model ?? (await ensureDemoCheckpoint());
  const { name, files } = await checkpointFiles(dir);
  const modelDir = path.join(outDir, "model");
  await mkdir(modelDir, { recursive: true });
  const manifest: Manifest = { name: model ? name : `qwen3-next-${DEMO_NAME}`, files: [] };
  for (const [rel, abs] of files) {
    await copyFile(abs, path.join(modelDir, rel));
    manifest.files.push({ path: rel, size: (await stat(abs)).size });
  }
  await writeFile(path.join(modelDir, "manifest.json"), JSON.stringify(manifest));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--out");
  const out = at >= 0 ? path.resolve(args[at + 1]) : SITE_DIR;
  const pageOnly = args.includes("--page-only");
  (pageOnly ? buildPage(out) : buildSite(out)).then(
    () => process.stderr.write(`explorer ${pageOnly ? "page" : "site"} written to ${out}\n`),
    (err: unknown) => {
      process.stderr.write(`build:web: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
