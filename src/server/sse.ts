/**
 * Server-sent events as the OpenAI streaming API sends them: `data: {json}\n\n` per chunk, then
 * `data: [DONE]\n\n`. Writes go straight to the socket (Fastify's reply is hijacked); once the client
 * has gone, writes are dropped.
 */
import type { ServerResponse } from "node:http";

export class SseStream {
  constructor(private readonly res: ServerResponse) {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no", // tell proxies not to buffer the stream
    });
    res.flushHeaders();
  }

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  send(data: unknown): void {
    if (this.open) this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** Ends the stream with the `[DONE]` sentinel. */
  end(): void {
    if (!this.open) return;
    this.res.write("data: [DONE]\n\n");
    this.res.end();
  }
}
