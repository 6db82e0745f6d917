/**
 * Declaring parameters once. Each module file has a declaration function next to its class
 * (`gatedDeltaNetParams`, `attentionParams`, `mlpParams`, ...): it names every parameter of the module with its
 * canonical Hugging Face name and its shape from the config, and returns them as a typed tree. The same
 * declaration serves two purposes, like llama.cpp's `create_tensor(name, shape)`:
 *
 *   - listing:  `listParams(c)` runs the declarations with a recorder and returns every { name, shape }
 *               (what a checkpoint must hold: the loader's plan, parameter counts, `info`, `init`);
 *   - building: `weightParams(src)` runs them against a `WeightSource`, so that each `param(name, shape)`
 *               returns that weight, checked against the declared shape; the classes take the typed tree.
 *
 *   declaration:  const w = { norm: p.param("norm.weight", H), proj: p.at("proj").param("weight", out, H) }
 *   a module:     constructor(k: Kernels, w: ReturnType<typeof xParams<Weight>>, ...)
 *
 * Names are canonical (Qwen3-Next's `model.layers.{i}.…`, `lm_head.weight`, `mtp.…`, and Qwen3.5's split
 * DeltaNet projections `in_proj_qkv` / `in_proj_z` / `in_proj_b` / `in_proj_a`); how a checkpoint format spells
 * them (a prefix, another name, a slice of a fused tensor, a stored `1 + w`) is its layout's business
 * (`src/loading/layout.ts`), never the model's.
 */
import type { Weight } from "../kernels/types.js";
import { expectShape, type WeightSource } from "./weights.js";

/** A parameter as declared: canonical name and shape. */
export interface ParamDecl {
  readonly name: string;
  readonly shape: readonly number[];
}

/** What declarations call: `W` is `Weight` when building a model, `ParamDecl` when listing. */
export interface Params<W> {
  /** Declares the parameter `{prefix}.{name}` of this shape. */
  param(name: string, ...shape: number[]): W;
  /** The same declarer one level down: `at("mlp").param("gate.weight", …)` declares `{prefix}.mlp.gate.weight`. */
  at(name: string): Params<W>;
}

function scoped<W>(prefix: string, make: (name: string, shape: number[]) => W): Params<W> {
  const full = (name: string) => (prefix === "" ? name : `${prefix}.${name}`);
  return {
    param: (name, ...shape) => make(full(name), shape),
    at: (name) => scoped(full(name), make),
  };
}

/** Runs a declaration with a recorder: every parameter it declares, in declaration order. */
export function recordParams(declare: (p: Params<ParamDecl>) => unknown): ParamDecl[] {
  const out: ParamDecl[] = [];
  declare(
    scoped("", (name, shape) => {
      const d = { name, shape };
      out.push(d);
      return d;
    }),
  );
  return out;
}

/** Runs declarations against loaded weights: each parameter is `src.get(name)`, checked against its declared shape. */
export function weightParams(src: WeightSource): Params<Weight> {
  return scoped("", (name, shape) => expectShape(src.get(name), shape));
}
