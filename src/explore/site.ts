/**
 * The explorer's HTTP side: the built page (dist-web/, made by `npm run build:web`) and one checkpoint, on
 * 127.0.0.1, every response cross-origin isolated (COOP same-origin + COEP require-corp: the page's WASM
 * threads need SharedArrayBuffer). The checkpoint is offered under `model/`: `model/manifest.json` lists its
 * files (`{ name, files: [{ path, size }] }`), each served with HTTP Range support so the page streams tensors.
 * Nothing is written; only the listed files are served.
 */
import { createReadStream, existsSync, promises as fsp } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The headers that make a page cross-origin isolated (a static host of dist-web/ must send them too). */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** Where `npm run build:web` writes the site (the package root's dist-web/, from src/ or dist/). */
export const SITE_DIR = fileURLToPath(new URL("../../dist-web/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".jinja": "text/plain; charset=utf-8",
};

export interface ManifestFile {
  path: string;
  size: number;
}
export interface Manifest {
  name: string;
  files: ManifestFile[];
}

/**
 * The files of a checkpoint: a folder's regular files (config, weights, tokenizer), or one weights file
 * (a .gguf) on its own; each as a path relative to `model/` and the file it is read from.
 */
export async function checkpointFiles(model: string): Promise<{ name: string; files: Map<string, string> }> {
  const st = await fsp.stat(model).catch(() => null);
  if (!st) throw new Error(`--model ${model} does not exist; expected a checkpoint folder or a .gguf file`);
  const files = new Map<string, string>();
  if (st.isFile()) {
    files.set(path.basename(model), path.resolve(model));
    return { name: path.basename(model), files };
  }
  if (!st.isDirectory()) throw new Error(`--model ${model} is neither a folder nor a file`);
  for (const e of await fsp.readdir(model, { withFileTypes: true })) {
    if (e.isFile() && !e.name.startsWith(".")) files.set(e.name, path.resolve(model, e.name));
  }
  if (!files.has("config.json") && ![...files.keys()].some((f) => f.endsWith(".gguf"))) {
    throw new Error(`--model ${model} has no config.json; expected a Hugging Face checkpoint folder or a .gguf file`);
  }
  return { name: path.basename(path.resolve(model)), files };
}

export interface SiteServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `siteDir` and the checkpoint `model` (see checkpointFiles) on host:port (0: any free port). */
export async function startSite(opts: { siteDir?: string; model: string; name?: string; host?: string; port: number }): Promise<SiteServer> {
  const siteDir = path.resolve(opts.siteDir ?? SITE_DIR);
  if (!existsSync(path.join(siteDir, "index.html"))) {
    throw new Error(`the explorer page is not built (${siteDir}index.html is missing); run \`npm run build:web\``);
  }
  const ckpt = await checkpointFiles(opts.model);
  const sizes = new Map<string, number>();
  for (const [rel, abs] of ckpt.files) sizes.set(rel, (await fsp.stat(abs)).size);
  const manifest: Manifest = {
    name: opts.name ?? ckpt.name,
    files: [...sizes].map(([p, size]) => ({ path: p, size })),
  };

  const server = http.createServer((req, res) => {
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    res.setHeader("Cache-Control", "no-cache");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD" }).end();
      return;
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
    } catch {
      res.writeHead(400).end("bad URL");
      return;
    }
    if (pathname === "/model/manifest.json") {
      res.writeHead(200, { "Content-Type": TYPES[".json"] }).end(JSON.stringify(manifest));
      return;
    }
    if (pathname.startsWith("/model/")) {
      const abs = ckpt.files.get(pathname.slice("/model/".length));
      if (!abs) notFound(res);
      else sendFile(req, res, abs);
      return;
    }
    const rel = pathname === "/" ? "index.html" : pathname.slice(1);
    const abs = path.resolve(siteDir, rel);
    if (!abs.startsWith(siteDir + path.sep) || !existsSync(abs)) {
      notFound(res);
      return;
    }
    sendFile(req, res, abs);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(new Error(e.code === "EADDRINUSE" ? `port ${opts.port} is in use; pass --port N (0: any free port)` : e.message)),
    );
    server.listen(opts.port, opts.host ?? "127.0.0.1", () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function notFound(res: http.ServerResponse): void {
  res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("not found");
}

/** A file, whole or the one byte range asked for (`Range: bytes=a-b`, `a-`, `-n`). */
function sendFile(req: http.IncomingMessage, res: http.ServerResponse, abs: string): void {
  fsp.stat(abs).then(
    (st) => {
      const type = TYPES[path.extname(abs)] ?? "application/octet-stream";
      const size = st.size;
      const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "");
      let start = 0;
      let end = size - 1;
      let status = 200;
      if (m && (m[1] !== "" || m[2] !== "")) {
        if (m[1] === "") start = Math.max(0, size - Number(m[2]));
        else {
          start = Number(m[1]);
          if (m[2] !== "") end = Math.min(size - 1, Number(m[2]));
        }
        if (start > end || start >= size) {
          res.writeHead(416, { "Content-Range": `bytes */${size}` }).end();
          return;
        }
        status = 206;
        res.setHeader("Content-Range", `bytes ${start}-${end}/${size}`);
      }
      res.writeHead(status, { "Content-Type": type, "Content-Length": end - start + 1, "Accept-Ranges": "bytes" });
      if (req.method === "HEAD" || size === 0) res.end();
      else createReadStream(abs, { start, end }).pipe(res);
    },
    () => notFound(res),
  );
}
