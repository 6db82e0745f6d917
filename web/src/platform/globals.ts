/** Globals Node has and a Web Worker lacks, used by the project's code: setImmediate (generate yields with it). */
const g = globalThis as unknown as { setImmediate?: (f: () => void) => void };
if (!g.setImmediate) {
  const channel = new MessageChannel();
  const queue: Array<() => void> = [];
  channel.port1.onmessage = () => queue.shift()?.();
  g.setImmediate = (f) => {
    queue.push(f);
    channel.port2.postMessage(0);
  };
}
export {};
