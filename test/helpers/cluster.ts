/**
 * A loopback stand-in for a Kubernetes Service over replicas: `qwen3-next serve` processes (the demo
 * checkpoint) behind Debian's nginx, started here with a config in a temporary folder. Used by
 * test/server/scale_out.test.ts and bench/scale_out.ts.
 *
 * nginx: round robin over the replicas; a refused connection or a 503 (a draining replica) is retried on
 * the next replica (`proxy_next_upstream error timeout http_503 non_idempotent`: a 503 from a draining
 * replica means it did not start the request); unbuffered, so SSE streams pass through as they are written.
 * `X-Upstream` tells which replica answered.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./cli.js";

export interface Replica {
  proc: ChildProcess;
  url: string;
  port: number;
  exit: Promise<number | null>;
  stderr: () => string;
}

/** The nginx binary, or undefined when it is not installed. */
export function nginxBinary(): string | undefined {
  for (const p of ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]) if (existsSync(p)) return p;
  const which = spawnSync("sh", ["-c", "command -v nginx"], { encoding: "utf8" });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : undefined;
}

/** Starts `qwen3-next serve --port 0 ...args` from source; resolves once it prints its URL. */
export async function startReplica(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Replica> {
  const proc = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "src/cli/bin.ts"), "serve", "--port", "0", "--quiet", ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => proc.on("close", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on("data", (d) => {
      stdout += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(stdout);
      if (m) resolve(m[1]);
    });
    void exit.then((code) => reject(new Error(`serve exited ${code} before listening: ${stderr}`)));
  });
  return { proc, url, port: Number(new URL(url).port), exit, stderr: () => stderr };
}

export interface Nginx {
  url: string;
  stop(): Promise<void>;
}

/** A free loopback port (bound and released). */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** nginx in the foreground, balancing over `ports`; resolves once it answers. */
export async function startNginx(binary: string, ports: number[]): Promise<Nginx> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "qwen3-next-nginx-"));
  const port = await freePort();
  const conf = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream replicas {
${ports.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=30s;`).join("\n")}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 120s;
      proxy_next_upstream error timeout http_503 non_idempotent;
      proxy_next_upstream_tries 3;
      add_header X-Upstream $upstream_addr always;
    }
  }
}
`;
  const file = path.join(dir, "nginx.conf");
  await writeFile(file, conf);
  const proc = spawn(binary, ["-p", dir, "-c", file], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  const exit = new Promise<number | null>((resolve) => proc.on("close", (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (proc.exitCode !== null || i > 100) {
      proc.kill("SIGKILL");
      throw new Error(`nginx did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    stop: async () => {
      proc.kill("SIGQUIT");
      await Promise.race([exit, new Promise((r) => setTimeout(r, 5000))]);
      if (proc.exitCode === null) proc.kill("SIGKILL");
    },
  };
}

export interface LoadResult {
  /** "ok": a complete answer; "error": a clean error (HTTP status with an error body, or an SSE error event). */
  outcome: "ok" | "error" | "hung" | "broken";
  status: number;
  upstream: string;
  ms: number;
  detail?: string;
  startedAt: number;
}

/**
 * One chat completion through `url` (streamed when `stream`), with a deadline: a request that has not
 * ended by then is "hung". "broken" is an answer that is neither complete nor a clean error.
 */
export async function oneRequest(url: string, model: string, i: number, stream: boolean, deadlineMs = 60_000): Promise<LoadResult> {
  const startedAt = performance.now();
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), deadlineMs);
  const body = { model, messages: [{ role: "user", content: `Request ${i}: say something.` }], max_tokens: 12, seed: i, stream };
  const done = (r: Omit<LoadResult, "ms" | "startedAt">): LoadResult => ({ ...r, ms: performance.now() - startedAt, startedAt });
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: ac.signal,
    });
    const upstream = res.headers.get("x-upstream") ?? "";
    const text = await res.text();
    if (res.status !== 200) {
      let clean = false;
      try {
        clean = typeof (JSON.parse(text) as { error?: { message?: string } }).error?.message === "string";
      } catch {
        clean = false;
      }
      return done({ outcome: clean ? "error" : "broken", status: res.status, upstream, detail: text.slice(0, 200) });
    }
    if (!stream) {
      const j = JSON.parse(text) as { choices?: Array<{ finish_reason?: string }> };
      return done({ outcome: j.choices?.[0]?.finish_reason ? "ok" : "broken", status: 200, upstream, detail: text.slice(0, 200) });
    }
    const events = text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
    if (events.at(-1) !== "[DONE]") return done({ outcome: "broken", status: 200, upstream, detail: `stream without [DONE]: ${text.slice(-200)}` });
    const errorEvent = events.find((e) => e.startsWith('{"error"'));
    if (errorEvent) return done({ outcome: "error", status: 200, upstream, detail: errorEvent });
    const finished = events.some((e) => e !== "[DONE]" && (JSON.parse(e) as { choices: Array<{ finish_reason: string | null }> }).choices[0]?.finish_reason);
    return done({ outcome: finished ? "ok" : "broken", status: 200, upstream, detail: finished ? undefined : "no finish_reason" });
  } catch (err) {
    if (ac.signal.aborted) return done({ outcome: "hung", status: 0, upstream: "", detail: `no answer within ${deadlineMs} ms` });
    return done({ outcome: "broken", status: 0, upstream: "", detail: String(err) });
  } finally {
    clearTimeout(timer);
  }
}

/** Stops a replica if it still runs (SIGKILL after a few seconds of SIGTERM). */
export async function stopReplica(r: Replica): Promise<void> {
  if (r.proc.exitCode !== null) return;
  r.proc.kill("SIGTERM");
  const timer = setTimeout(() => r.proc.kill("SIGKILL"), 15_000);
  await r.exit;
  clearTimeout(timer);
}
