import type { FromWorker, ToWorker } from "./protocol.js";
const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
const send = (m: ToWorker) => worker.postMessage(m);
worker.onmessage = (e: MessageEvent<FromWorker>) => {
  console.log(JSON.stringify(e.data).slice(0, 300));
  if (e.data.type === "progress" && e.data.phase === "ready") send({ type: "load", source: { kind: "url", base: new URL("model/", location.href).href }, threads: 2 });
  if (e.data.type === "loaded") send({ type: "run", params: { prompt: "hi", maxTokens: 8, temperature: 0 } });
  if (e.data.type === "done") (window as any).done = e.data.result;
};
