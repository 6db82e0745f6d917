/**
 * The browser explorer's build: the project's src/ bundled for the page, with the Node modules it imports
 * replaced by the browser counterparts in web/src/platform/ (read-only files over File/Blob/HTTP, Web Worker
 * threads). `npm run build:web` writes dist-web/, a static site: serve it with the headers in HEADERS.
 */
import { fileURLToPath } from "node:url";
import { defineConfig, type Plugin } from "vite";

const platform = (f: string): string => fileURLToPath(new URL(`./src/platform/${f}`, import.meta.url));

/** Node module -> its browser counterpart. */
const COUNTERPARTS: Record<string, string> = {
  "node:fs": platform("fs.ts"),
  "node:fs/promises": platform("fs.ts"),
  "node:path": platform("path.ts"),
  "node:os": platform("node_misc.ts"),
  "node:url": platform("node_misc.ts"),
  "node:module": platform("node_misc.ts"),
  "node:worker_threads": platform("worker_threads.ts"),
};

/** Cross-origin isolation (SharedArrayBuffer for the kernels' threads): every response of the site needs these. */
export const HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

function browserCounterparts(): Plugin {
  return {
    name: "qwen3-next-browser-counterparts",
    enforce: "pre",
    resolveId(source) {
      return COUNTERPARTS[source] ?? null;
    },
  };
}

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  plugins: [browserCounterparts()],
  worker: { format: "es", plugins: () => [browserCounterparts()] },
  build: {
    outDir: fileURLToPath(new URL("../dist-web", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    assetsInlineLimit: 0,
    // Not minified: the kernels' thread pool starts its workers from the source text of functions
    // (src/kernels/wasm/pool.ts), whose free names must survive bundling.
    minify: false,
    chunkSizeWarningLimit: 4096,
  },
  server: { headers: HEADERS },
  preview: { headers: HEADERS },
});
