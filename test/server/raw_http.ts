/**
 * HTTP/1.1 over a raw socket, so that the request target reaches the server exactly as written (fetch and
 * undici normalise paths: no percent-decoding, dot segments or absolute-form targets would survive them).
 */
import net from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends `head` (request line + headers, without the blank line) and `body`; resolves when the server closes. */
export function rawRequest(url: string, head: string, body = "", timeoutMs = 30_000): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer to ${head.split("\r\n")[0]} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("data", (d) => chunks.push(d));
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(parseResponse(Buffer.concat(chunks).toString("utf8")));
    });
    const length = body.length > 0 ? `\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}` : "";
    // Written, not ended: a client that half-closes its socket is taken by Node's server as gone (the request is
    // aborted); with `connection: close` the server closes once it has answered.
    socket.write(`${head}\r\nconnection: close${length}\r\n\r\n${body}`);
  });
}

export function parseResponse(raw: string): RawResponse {
  const split = raw.indexOf("\r\n\r\n");
  const head = split >= 0 ? raw.slice(0, split) : raw;
  const [statusLine, ...lines] = head.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: m ? Number(m[1]) : 0, headers, body: split >= 0 ? raw.slice(split + 4) : "" };
}
