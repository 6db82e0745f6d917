/** The TypeScript reference kernels, in float32 (Float32Array activations) or float64. */
import type { HostKernels, Precision, Vec, Weight, WeightDType } from "../types.js";
import { hostMoeExperts } from "../host_moe.js";
import { hostTensors } from "../host_tensors.js";
import { attention } from "./attention.js";
import { causalConv1d } from "./conv.js";
import { deltaRuleChunked, deltaRuleRecurrent } from "./delta_rule.js";
import { addBias, addScalar, axpy, axpyRows, gates, sigmoidMul, sigmoidOf, siluMul, softmax } from "./elementwise.js";
import { concatColumns, copy, fill, gatherRows, scatterAxpyRows, splitBa, splitColumns, splitQkvz, tileHeads } from "./layout.js";
import { embedding, linear } from "./linear.js";
import { gatedRmsNorm, l2Normalize, rmsNorm } from "./norms.js";
import { rope, ropeTables } from "./rope.js";
import { router } from "./router.js";
import { allocHostWeight, newVec, RowScratch, widenWeight } from "../host_weights.js";

export function createTsKernels(precision: Precision = "f32"): HostKernels {
  const scratch = new RowScratch(); // one widened weight row
  const k: HostKernels = {
    backend: "ts",
    precision,
    vec: (n: number): Vec => newVec(precision, n),
    ...hostTensors,
    free: () => {},
    allocWeight: (name: string, dtype: WeightDType, shape: readonly number[]): Weight => allocHostWeight(name, dtype, shape),
    toVec: (w: Weight): Vec => widenWeight(w, precision),
    linear: (w, x, T, y) => linear(w, x, T, y, scratch),
    embedding: (w, id, out) => embedding(w, id, out, scratch),
    rmsNorm,
    gatedRmsNorm,
    l2Normalize,
    siluMul,
    sigmoidMul,
    axpy,
    softmax,
    rope,
    attention,
    causalConv1d,
    deltaRuleRecurrent,
    deltaRuleChunked,
    router,
    splitQkvz,
    splitBa,
    splitColumns,
    concatColumns,
    tileHeads,
    gates,
    sigmoid: sigmoidOf,
    addBias,
    addScalar,
    axpyRows,
    gatherRows,
    scatterAxpyRows,
    fill,
    copy,
    ropeTables,
    moeExperts: (a) => moe(a),
  };
  const moe = hostMoeExperts(k);
  return k;
}
