/**
 * Checkpoint layouts: how a format spells each canonical parameter. The model declares its parameters once
 * (`src/model/params.ts`: canonical Hugging Face names and shapes); a layout maps each of them to where its
 * values are stored, without a second copy of the model:
 *
 *   rename     `model.layers.0.mlp.gate.weight` is stored as `model.language_model.layers.0.mlp.gate.weight`
 *              (Qwen3.5) or `blk.0.ffn_gate_inp.weight` (GGUF);
 *   reshape    the same values under another shape (`storedShape`: GGUF's conv [C, K] for [C, 1, K]);
 *   slice      contiguous rows of a fused or stacked tensor (`storedShape` + `rowStart`: expert e of
 *              `experts.gate_up_proj` [E, 2I, H], seen as rows of width H, starts at row e 2I, its up half at
 *              e 2I + I); byte offsets follow from the stored dtype, so block-quantized rows work too;
 *   transform  stored values are f(parameter) (GGUF's norms stored as `1 + w`, `ssm_a` as `-exp(A_log)`): the
 *              loader applies the inverse elementwise and holds the parameter in F64 (these are small).
 * A parameter may have several spellings, tried in order (per-expert tensors, else a fused one).
 *
 * The planner (`planWeights` in checkpoint.ts) asks the layout for each declared parameter and finds it in a
 * `TensorStore` (the tensors of a safetensors folder, or of a GGUF file), checking shape and dtype; the loader
 * then reads each parameter's bytes straight into its final memory. Adding a format = a `TensorStore` for its
 * files + a `CheckpointLayout` for its names (+ config from its metadata, with `deltanet_projections` set):
 *
 *   const plan = { dir: file, layout, store, ...planWeights(file, config, layout, store) };
 *   const ckpt = await loadPlanned(plan, { allocator: kernels });      // checkpoint.ts; closes the store
 *   const model = Qwen3NextForCausalLM.fromCheckpoint(ckpt, kernels);
 */
import type { Qwen3NextConfig } from "../config.js";
import type { ParamDecl } from "../model/params.js";

/** Stored values are a function of the parameter (`toStored`, for writers); `toParam` undoes it (in float64). */
export interface StoredTransform {
  /** What is stored, for messages and docs: "1 + w", "-exp(w)". */
  readonly stored: string;
  readonly toParam: (stored: number) => number;
  readonly toStored: (param: number) => number;
}

/** Zero-centred norm weights stored as their effective scale 1 + w (GGUF). */
export const STORED_ONE_PLUS_W: StoredTransform = { stored: "1 + w", toParam: (s) => s - 1, toStored: (w) => 1 + w };
/** A_log stored as A = -exp(A_log) (GGUF's ssm_a). */
export const STORED_NEG_EXP: StoredTransform = { stored: "-exp(w)", toParam: (s) => Math.log(-s), toStored: (w) => -Math.exp(w) };

/** One place a parameter may be stored. */
export interface Spelling {
  /** The stored tensor's name. */
  readonly stored: string;
  /**
   * The stored tensor's shape when it is not the declared one: a reshape of the same size, or (with `rowStart`)
   * the whole fused or stacked tensor. PyTorch order (outermost first).
   */
  readonly storedShape?: readonly number[];
  /**
   * The parameter is the rows [rowStart, rowStart + its rows) of the stored tensor seen as [rows, last dim]
   * (its rows: the product of its dims but the last, which must equal the stored last dim).
   */
  readonly rowStart?: number;
  readonly transform?: StoredTransform;
  /** How to name this spelling in a "missing tensor" message ("per expert", "a fused"). */
  readonly what?: string;
}

export interface CheckpointLayout {
  /** For messages: "Qwen3-Next safetensors", "Qwen3.5 safetensors", "GGUF qwen3next". */
  readonly name: string;
  /** Where a declared parameter may be stored, in order of preference (the first one present is used). */
  spell(decl: ParamDecl, c: Qwen3NextConfig): Spelling[];
  /** A one-line note about stored tensors that no parameter uses and that a user should know about, or null. */
  unusedNote?(storedNames: readonly string[]): string | null;
}

const EXPERT = /^(.*\.mlp\.experts)\.(\d+)\.(gate|up|down)_proj\.weight$/;

/**
 * Hugging Face safetensors spellings after `rename`: the name itself, and for a routed expert also its rows of
 * the fused `mlp.experts.gate_up_proj` [E, 2I, H] (per expert I gate rows, then I up rows) or
 * `mlp.experts.down_proj` [E, H, I] that newer transformers writes.
 */
function huggingFaceSpellings(decl: ParamDecl, c: Qwen3NextConfig, rename: (name: string) => string, fusedFirst = false): Spelling[] {
  const m = EXPERT.exec(decl.name);
  if (!m) return [{ stored: rename(decl.name) }];
  const [, prefix, eStr, proj] = m;
  const e = Number(eStr);
  const E = c.num_experts;
  const I = c.moe_intermediate_size;
  const H = c.hidden_size;
  const fused: Spelling =
    proj === "down"
      ? { stored: rename(`${prefix}.down_proj`), storedShape: [E, H, I], rowStart: e * H, what: "a fused" }
      : { stored: rename(`${prefix}.gate_up_proj`), storedShape: [E, 2 * I, H], rowStart: e * 2 * I + (proj === "up" ? I : 0), what: "a fused" };
  const perExpert: Spelling = { stored: rename(decl.name), what: "per expert" };
  return fusedFirst ? [fused, perExpert] : [perExpert, fused];
}

/** Qwen3-Next as published (`Qwen3NextForCausalLM` plus vLLM's `mtp.*`): canonical names as they are. */
export const QWEN3_NEXT_SAFETENSORS: CheckpointLayout = {
  name: "Qwen3-Next safetensors",
  spell: (decl, c) => huggingFaceSpellings(decl, c, (n) => n),
};

/**
 * Qwen3.5 and Qwen3.5-MoE (`Qwen3_5ForConditionalGeneration`, `Qwen3_5MoeForConditionalGeneration`): the text
 * model under `model.language_model.*`, `lm_head` and `mtp.*` at the top, experts fused as transformers writes
 * them (per-expert tensors are accepted too). A text-model tensor stored under the plain `model.*` name (the
 * legacy, pre-wrapper spelling) is accepted as a second choice: the shipped Qwen3.5 fixture stores its DeltaNet
 * input projections that way. The vision tower (`model.visual.*`) is not a parameter of the text model: it is
 * skipped, with a note.
 */
export const QWEN3_5_SAFETENSORS: CheckpointLayout = {
  name: "Qwen3.5 safetensors",
  spell(decl, c) {
    const wrapped = huggingFaceSpellings(decl, c, (n) => (n.startsWith("model.") ? `model.language_model.${n.slice("model.".length)}` : n), true);
    if (!decl.name.startsWith("model.")) return wrapped;
    return [...wrapped, ...huggingFaceSpellings(decl, c, (n) => n, true).map((s) => ({ ...s, what: `${s.what ?? ""}${s.what ? " " : ""}legacy` }))];
  },
  unusedNote(names) {
    const visual = names.filter((n) => n.startsWith("model.visual.")).length;
    return visual > 0 ? `skipped the vision tower (${visual} tensors under model.visual.*): image and video input are not supported, text only` : null;
  },
};

/** The safetensors layout of a config's family. */
export function safetensorsLayout(c: Qwen3NextConfig): CheckpointLayout {
  return c.model_type === "qwen3_next" ? QWEN3_NEXT_SAFETENSORS : QWEN3_5_SAFETENSORS;
}
