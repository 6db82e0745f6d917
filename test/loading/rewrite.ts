/** Test helper: copies a fixture checkpoint into a temporary folder, changing its tensors, sharding or config. */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { readSafetensors, writeSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";

export interface Rewrite {
  /** Changes the list of tensors (default: unchanged). */
  tensors?: (ts: TensorToWrite[]) => TensorToWrite[];
  /** Split into this many shards with a model.safetensors.index.json (default: one model.safetensors). */
  shards?: number;
  /** Changes config.json. */
  config?: (c: Record<string, unknown>) => Record<string, unknown>;
}

export async function readTensors(file: string): Promise<TensorToWrite[]> {
  const { tensors } = await readSafetensors(file);
  return [...tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: t.data }));
}

export async function rewriteCheckpoint(src: string, dst: string, how: Rewrite = {}): Promise<void> {
  await fsp.mkdir(dst, { recursive: true });
  const config = JSON.parse(await fsp.readFile(path.join(src, "config.json"), "utf8"));
  await fsp.writeFile(path.join(dst, "config.json"), JSON.stringify(how.config ? how.config(config) : config, null, 2));
  let tensors = await readTensors(path.join(src, "model.safetensors"));
  if (how.tensors) tensors = how.tensors(tensors);
  const shards = how.shards ?? 1;
  if (shards === 1) {
    await writeSafetensors(path.join(dst, "model.safetensors"), tensors, { format: "pt" });
    return;
  }
  const per = Math.ceil(tensors.length / shards);
  const weight_map: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
    const part = tensors.slice(s * per, (s + 1) * per);
    for (const t of part) weight_map[t.name] = file;
    await writeSafetensors(path.join(dst, file), part, { format: "pt" });
  }
  await fsp.writeFile(path.join(dst, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map }, null, 2));
}

/** Bytes of a view, for exact comparisons. */
export function bytesOf(v: ArrayBufferView): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** Fuses per-expert tensors into `mlp.experts.gate_up_proj` [E, 2I, H] and `mlp.experts.down_proj` [E, H, I]. */
export function fuseExperts(ts: TensorToWrite[]): TensorToWrite[] {
  const byName = new Map(ts.map((t) => [t.name, t]));
  const expert = /^(.*\.mlp\.experts)\.(\d+)\.(gate|up|down)_proj\.weight$/;
  const prefixes = new Set(ts.map((t) => expert.exec(t.name)?.[1]).filter((p): p is string => p !== undefined));
  const out = ts.filter((t) => !expert.test(t.name));
  for (const p of prefixes) {
    let E = 0;
    while (byName.has(`${p}.${E}.gate_proj.weight`)) E++;
    const [I, H] = byName.get(`${p}.0.gate_proj.weight`)!.shape;
    const gateUp: Buffer[] = [];
    const down: Buffer[] = [];
    for (let e = 0; e < E; e++) {
      gateUp.push(bytesOf(byName.get(`${p}.${e}.gate_proj.weight`)!.data), bytesOf(byName.get(`${p}.${e}.up_proj.weight`)!.data));
      down.push(bytesOf(byName.get(`${p}.${e}.down_proj.weight`)!.data));
    }
    const dtype = byName.get(`${p}.0.gate_proj.weight`)!.dtype;
    out.push({ name: `${p}.gate_up_proj`, dtype, shape: [E, 2 * I, H], data: Buffer.concat(gateUp) });
    out.push({ name: `${p}.down_proj`, dtype, shape: [E, H, I], data: Buffer.concat(down) });
  }
  return out;
}
