/**
 * The browser's `node:worker_threads`, as the WASM kernels' thread pool (src/kernels/wasm/pool.ts) uses it:
 * `new Worker(source, { eval: true, workerData })` becomes a Web Worker made from that source, with a
 * `require("node:worker_threads")` inside it that returns the worker data and a parent port. The workers
 * share the kernels' WebAssembly memories (SharedArrayBuffer: the page must be cross-origin isolated).
 *
 * One thing Node has and a Web Worker cannot: receiving a message synchronously (`receiveMessageOnPort`), which
 * the pool uses to hand its busy-waiting workers a WASM memory opened after they started. In the page every
 * memory must exist before the pool starts, which holds for any model that fits one 4 GiB memory; a larger one
 * is refused with a clear message when its second memory would be shared.
 */
type Listener = (value: unknown) => void;

export class Worker {
  private readonly w: globalThis.Worker;
  private readonly listeners: Array<{ event: string; fn: Listener }> = [];

  constructor(source: string, opts: { eval?: boolean; workerData?: Record<string, unknown> }) {
    if (!opts.eval) throw new Error("the browser's worker_threads runs source code only (eval: true)");
    // The MessagePort in workerData is a stand-in (see MessageChannel below): it does not cross.
    const { port: _port, ...workerData } = opts.workerData ?? {};
    const body =
      `self.onmessage = (e) => { self.onmessage = null;\n` +
      `const __wt = { workerData: e.data, parentPort: { postMessage: (m) => self.postMessage(m) }, receiveMessageOnPort: () => undefined };\n` +
      `const require = () => __wt;\n${source}\n};`;
    const url = URL.createObjectURL(new Blob([body], { type: "text/javascript" }));
    this.w = new globalThis.Worker(url);
    URL.revokeObjectURL(url);
    this.w.onmessage = (e) => this.emit("message", e.data);
    this.w.onerror = (e) => this.emit("error", new Error(e.message || "kernel worker failed to start"));
    this.w.postMessage(workerData);
  }

  private emit(event: string, value: unknown): void {
    for (const l of this.listeners.splice(0)) {
      if (l.event === event) l.fn(value);
      else this.listeners.push(l);
    }
  }

  once(event: string, fn: Listener): this {
    this.listeners.push({ event, fn });
    return this;
  }

  unref(): void {}

  async terminate(): Promise<number> {
    this.w.terminate();
    return 0;
  }
}

class PortStandIn {
  postMessage(): void {
    throw new Error("this model needs more than one 4 GiB WASM memory, which the browser explorer cannot share with its threads");
  }
  unref(): void {}
  close(): void {}
}

export class MessageChannel {
  readonly port1 = new PortStandIn();
  readonly port2 = new PortStandIn();
}

export type MessagePort = PortStandIn;
export default { Worker, MessageChannel };
