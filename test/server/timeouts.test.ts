/**
 * Slow clients cannot hold a connection: a stalled or trickled body, or headers that never end, are cut off
 * with 408 once the request timeout passes (here 1 s), while the server keeps serving everyone else.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./harness.js";
import { parseResponse } from "./raw_http.js";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ defaultMaxTokens: 2, timeouts: { request: 1000, headers: 1000 } });
});
afterAll(async () => {
  await t?.server.close(1000);
});

/**
 * Opens a connection, writes `first`, then `drip` one byte every 100 ms for at most `forMs`; resolves with
 * what the server answered and how many drip bytes it took before the server closed the connection.
 */
function slowClient(first: string, drip: string, forMs: number): Promise<{ status: number; dripped: number; closedByServer: boolean }> {
  const { port } = new URL(t.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), "127.0.0.1");
    const chunks: Buffer[] = [];
    let dripped = 0;
    let closedByServer = true;
    socket.on("data", (d) => chunks.push(d));
    socket.on("error", () => {}); // a reset after the server's 408 is expected
    socket.on("connect", () => socket.write(first));
    const timer = setInterval(() => {
      if (dripped * 100 >= forMs) {
        closedByServer = false;
        clearInterval(timer);
        socket.destroy();
        return;
      }
      if (!socket.destroyed && socket.writable) socket.write(drip[dripped++ % drip.length]);
    }, 100);
    socket.on("close", () => {
      clearInterval(timer);
      resolve({ status: parseResponse(Buffer.concat(chunks).toString("utf8")).status, dripped, closedByServer });
    });
    setTimeout(() => reject(new Error("socket never closed")), forMs + 10_000);
  });
}

describe("server: timeouts", () => {
  it("cuts off a trickled body with 408 long before the client would have finished", async () => {
    const body = JSON.stringify({ model: t.model, prompt: "x", max_tokens: 1 });
    const head = `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n`;
    // At 10 bytes a second the 100 kB body would take hours; the client gives up after 30 s.
    const r = await slowClient(head, body, 30_000);
    expect(r.closedByServer).toBe(true);
    expect(r.status).toBe(408);
    expect(r.dripped).toBeLessThan(300);
  });

  it("cuts off headers that never end", async () => {
    const r = await slowClient("GET /health HTTP/1.1\r\nhost: x\r\n", "x-slow: 1\r\n", 30_000);
    expect(r.closedByServer).toBe(true);
    expect(r.status).toBe(408);
  });

  it("cuts off a body that stalls", async () => {
    const { port } = new URL(t.url);
    const socket = net.connect(Number(port), "127.0.0.1");
    socket.on("error", () => {});
    socket.write(`POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 50\r\n\r\n{"model":`);
    const answer = await new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on("data", (d) => chunks.push(d));
      socket.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
    });
    expect(parseResponse(answer).status).toBe(408);
  });

  it("keeps serving well-formed requests meanwhile", async () => {
    const r = await t.client.completions.create({ model: t.model, prompt: "Hi", max_tokens: 2 });
    expect(r.choices[0].text.length).toBeGreaterThanOrEqual(0);
    expect((await t.health()).status).toBe("ok");
  });
});
