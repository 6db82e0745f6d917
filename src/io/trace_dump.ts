/**
 * Writing a traced run for other runtimes to compare against: a safetensors dump whose tensor names are the
 * reference fixtures' (see reference/README.md), in computation order, with `n_prefill` / `n_decode` and
 * `precision` as metadata.
 */
import { byComputationOrder } from "./compare-dumps.js";
import { writeSafetensors, type TensorToWrite } from "./safetensors.js";

/** A traced tensor: values as float64 (exact for float32 and for integer ids). */
export interface DumpTensor {
  name: string;
  kind: "float" | "int";
  shape: number[];
  data: Float64Array;
}

/** A traced run: its tensors and how its tokens were fed (one prefill call, then one call per decoded token). */
export interface TraceDump {
  tensors: readonly DumpTensor[];
  nPrefill: number;
  nDecode: number;
}

/** The traced tensors as safetensors entries in computation order: integers as I64, floats as F64 or F32 by precision. */
export function traceTensors(tensors: readonly DumpTensor[], precision: "f32" | "f64"): TensorToWrite[] {
  return [...tensors]
    .sort((a, b) => byComputationOrder(a.name, b.name))
    .map((t) => {
      if (t.kind === "int") return { name: t.name, dtype: "I64", shape: t.shape, data: BigInt64Array.from(t.data, (x) => BigInt(x)) };
      return precision === "f64"
        ? { name: t.name, dtype: "F64", shape: t.shape, data: t.data }
        : { name: t.name, dtype: "F32", shape: t.shape, data: Float32Array.from(t.data) };
    });
}

/** Writes a traced run atomically. */
export async function writeTraceDump(file: string, run: TraceDump, precision: "f32" | "f64"): Promise<void> {
  await writeSafetensors(file, traceTensors(run.tensors, precision), {
    n_prefill: String(run.nPrefill),
    n_decode: String(run.nDecode),
    precision,
  });
}
