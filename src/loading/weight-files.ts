/**
 * The safetensors files of a checkpoint folder, single or sharded, seen as one name -> tensor map.
 *
 *   single:  DIR/model.safetensors
 *   sharded: DIR/model.safetensors.index.json = { "metadata": {...}, "weight_map": { "<tensor>": "<shard file>" } }
 * Only headers are read here; tensor data is read later, one tensor at a time. Seen by the planner as a
 * `TensorStore` (plan.ts).
 */
import { promises as fsp } from "node:fs";
import path from "node:path";
import { SafetensorsError, SafetensorsFile } from "../io/safetensors.js";
import type { FloatDType } from "../kernels/types.js";
import type { StoredTensor, TensorStore } from "./plan.js";

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";

/** The dtypes a safetensors parameter may have. */
const WEIGHT_DTYPES: readonly FloatDType[] = ["BF16", "F16", "F32", "F64"];

/** Opens the weights of a checkpoint folder (headers only). Throws one line naming the folder or the file. */
export async function openWeightFiles(dir: string): Promise<TensorStore> {
  const indexPath = path.join(dir, INDEX_FILE);
  const singlePath = path.join(dir, SINGLE_FILE);
  if (await exists(indexPath)) return openSharded(dir, indexPath);
  if (await exists(singlePath)) return fromFiles([await SafetensorsFile.open(singlePath)], new Map());
  throw new SafetensorsError(`${dir}: no ${SINGLE_FILE} or ${INDEX_FILE} (expected a Hugging Face checkpoint folder)`);
}

async function openSharded(dir: string, indexPath: string): Promise<TensorStore> {
  let index: unknown;
  try {
    index = JSON.parse(await fsp.readFile(indexPath, "utf8"));
  } catch (e) {
    throw new SafetensorsError(`${indexPath}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw new SafetensorsError(`${indexPath}: expected an object with a "weight_map" of tensor name -> shard file`);
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== "string" || shard === "" || path.isAbsolute(shard) || shard.split(/[\\/]/).includes("..")) {
      throw new SafetensorsError(`${indexPath}: weight_map["${name}"] is ${JSON.stringify(shard)}, expected a file name in ${dir}`);
    }
    weightMap.set(name, shard);
  }
  const shards = [...new Set(weightMap.values())];
  const files: SafetensorsFile[] = [];
  try {
    for (const shard of shards) {
      const p = path.join(dir, shard);
      if (!(await exists(p))) throw new SafetensorsError(`${indexPath}: names shard "${shard}", which is not in ${dir}`);
      files.push(await SafetensorsFile.open(p));
    }
    const byShard = new Map(shards.map((s, i) => [s, files[i]]));
    for (const [name, shard] of weightMap) {
      const f = byShard.get(shard)!;
      if (!f.has(name)) throw new SafetensorsError(`${indexPath}: maps tensor "${name}" to ${shard}, which has no such tensor`);
    }
    return fromFiles(files, new Map([...weightMap].map(([n, s]) => [n, byShard.get(s)!])));
  } catch (e) {
    await Promise.all(files.map((f) => f.close()));
    throw e;
  }
}

/** Every tensor of every file is addressable; the index decides where a name lives if two files hold it. */
function fromFiles(files: SafetensorsFile[], mapped: Map<string, SafetensorsFile>): TensorStore {
  const where = new Map<string, SafetensorsFile>();
  for (const f of files) for (const n of f.names()) if (!where.has(n)) where.set(n, f);
  for (const [n, f] of mapped) where.set(n, f);
  return {
    files: files.map((f) => f.file),
    weightDTypes: WEIGHT_DTYPES,
    get(name): StoredTensor | undefined {
      const file = where.get(name);
      if (!file) return undefined;
      const info = file.info(name);
      return {
        file: info.file,
        dtype: info.dtype,
        shape: info.shape,
        byteLength: info.byteLength,
        fileIndex: files.indexOf(file),
        fileOffset: info.fileOffset,
        readInto: (dest, byteOffset, onBytes) => file.readInto(name, dest, byteOffset, onBytes),
      };
    },
    names: () => [...where.keys()],
    close: async () => {
      await Promise.all(files.map((f) => f.close()));
    },
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}
