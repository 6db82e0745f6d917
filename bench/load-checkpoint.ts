/**
 * Checkpoint loading: throughput and peak resident memory relative to the weights' size.
 *
 *   node --import tsx bench/load-checkpoint.ts [--layers 4] [--experts 64] [--shards 3] [--keep DIR]
 *
 * Writes a random BF16 checkpoint with the real Qwen3-Next-80B layer sizes (hidden 2048, vocab 151936, experts of
 * width 512; `--layers` layers, `--experts` experts) into a temporary folder, then loads it in a fresh child
 * process (so the measurement holds the load alone) and prints the time, GB/s and the child's peak RSS over the
 * weights' bytes. The file is in the page cache after writing, so this measures the loader, not the disk.
 */
import { execFileSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { promises as fsp } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../src/config.js";
import { writeSafetensors, type TensorToWrite } from "../src/io/safetensors.js";
import { numel } from "../src/shape.js";
import { loadCheckpoint } from "../src/loading/checkpoint.js";
import { expectedTensors } from "../src/loading/expected.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

if (process.argv[2] === "--child") {
  // Child: load and report.
  const dir = process.argv[3];
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const ckpt = await loadCheckpoint(dir);
  const seconds = (performance.now() - t0) / 1000;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ bytes: ckpt.totalBytes, seconds, rssBefore, peakRss, tensors: ckpt.names().length }));
} else if (process.argv[2] === "--child-raw") {
  // Baseline in its own process: the same files read front to back into fresh 64 MiB buffers, i.e. the
  // cost of reading into new memory (page faults included) without any safetensors logic.
  const dir = process.argv[3];
  const keep: Uint8Array[] = [];
  const t0 = performance.now();
  let bytes = 0;
  for (const f of (await fsp.readdir(dir)).filter((f) => f.endsWith(".safetensors"))) {
    const fh = await fsp.open(path.join(dir, f), "r");
    for (;;) {
      const buf = new Uint8Array(64 * 2 ** 20);
      const n = (await fh.read(buf, 0, buf.length, null)).bytesRead;
      if (n === 0) break;
      bytes += n;
      keep.push(buf);
    }
    await fh.close();
  }
  process.stdout.write(JSON.stringify({ bytes, seconds: (performance.now() - t0) / 1000, buffers: keep.length }));
} else {
  const layers = Number(arg("layers", "4"));
  const experts = Number(arg("experts", "64"));
  const shards = Number(arg("shards", "3"));
  const config = {
    model_type: "qwen3_next",
    num_hidden_layers: layers,
    num_experts: experts,
    max_position_embeddings: 262144,
    rope_theta: 1e7,
  };
  const cfg = parseConfig(config);
  const dir = arg("keep", "") || (await fsp.mkdtemp(path.join(os.tmpdir(), "load-bench-")));
  await fsp.mkdir(dir, { recursive: true });
  await fsp.writeFile(path.join(dir, "config.json"), JSON.stringify(config));
  // One random pool shared by every tensor keeps the writer's own memory small.
  const tensors = expectedTensors(cfg);
  const largest = Math.max(...tensors.map((t) => numel(t.shape)));
  const pool = randomFillSync(new Uint16Array(largest));
  const all: TensorToWrite[] = tensors.map((t) => ({ name: t.name, dtype: "BF16", shape: [...t.shape], data: pool.subarray(0, numel(t.shape)) }));
  const per = Math.ceil(all.length / shards);
  const weight_map: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${s + 1}-of-${shards}.safetensors`;
    const part = all.slice(s * per, (s + 1) * per);
    for (const t of part) weight_map[t.name] = file;
    await writeSafetensors(path.join(dir, file), part);
  }
  await fsp.writeFile(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map }));
  const self = fileURLToPath(import.meta.url);
  const out = JSON.parse(execFileSync(process.execPath, ["--import", "tsx", self, "--child", dir], { encoding: "utf8" }));
  const gib = out.bytes / 2 ** 30;
  console.log(
    `loaded ${out.tensors} tensors, ${gib.toFixed(2)} GiB BF16 in ${out.seconds.toFixed(2)} s = ${(out.bytes / 1e9 / out.seconds).toFixed(2)} GB/s; ` +
      `peak RSS ${(out.peakRss / 2 ** 30).toFixed(2)} GiB = ${(out.peakRss / out.bytes).toFixed(3)}x the weights ` +
      `(${((out.peakRss - out.rssBefore) / out.bytes).toFixed(3)}x above the process's ${(out.rssBefore / 2 ** 20).toFixed(0)} MiB start)`,
  );
  const raw = JSON.parse(execFileSync(process.execPath, ["--import", "tsx", self, "--child-raw", dir], { encoding: "utf8" }));
  console.log(`baseline: plain sequential reads of the same files into fresh 64 MiB buffers: ${(raw.bytes / 1e9 / raw.seconds).toFixed(2)} GB/s`);
  if (!arg("keep", "")) await fsp.rm(dir, { recursive: true, force: true });
}
