/**
 * How a llama.cpp `qwen3next` GGUF file spells each canonical parameter (see `layout.ts`), as llama.cpp's
 * converter writes it (`convert_hf_to_gguf.py`, Qwen3NextModel) and its loader reads it (`llama-model.cpp`):
 *
 *   model.embed_tokens / lm_head / model.norm      token_embd / output (absent when tied) / output_norm (1 + w)
 *   layer i (blk.i.*):
 *     input_layernorm / post_attention_layernorm   attn_norm / post_attention_norm                      (1 + w)
 *     linear_attn.in_proj_qkv + in_proj_z          attn_qkv [all q; all k; all v] (conv channel order) + attn_gate
 *     linear_attn.in_proj_qkvz                     ssm_in (older files: grouped per key head [q k v z])
 *     linear_attn.in_proj_ba                       ssm_ba (grouped per key head [b a])
 *     linear_attn.conv1d [C, 1, K]                 ssm_conv1d [C, K]
 *     linear_attn.A_log / dt_bias / norm / out_proj   ssm_a (-exp(A_log)) / ssm_dt.bias / ssm_norm (plain w) / ssm_out
 *     self_attn.{q,k,v,o}_proj (.bias)             attn_q / attn_k / attn_v / attn_output
 *     self_attn.q_norm / k_norm                    attn_q_norm / attn_k_norm                             (1 + w)
 *     mlp.gate                                     ffn_gate_inp (the router)
 *     mlp.experts.{e}.{gate,up,down}_proj          rows of ffn_{gate,up,down}_exps [E, out, in], or of a fused
 *                                                  ffn_gate_up_exps [E, 2I, H] (per expert I gate rows, then I up rows)
 *     mlp.shared_expert.*, shared_expert_gate      ffn_{gate,up,down}_shexp, ffn_gate_inp_shexp ([H] for [1, H])
 *     dense mlp.{gate,up,down}_proj                ffn_gate / ffn_up / ffn_down
 *   MTP (qwen3next.nextn_predict_layers = n): blocks num_hidden_layers .. + n - 1 hold mtp.layers.{j} under the
 *     same names, plus nextn.eh_proj (mtp.fc), nextn.enorm / nextn.hnorm (pre_fc_norm_embedding / _hidden) and
 *     nextn.shared_head_norm (mtp.norm), all norms stored as 1 + w, as llama.cpp writes GLM-4.5's MTP blocks.
 * Norm weights are F32 in every file llama.cpp writes; their transform is undone in float64 (exact: the
 * oracle behind reference/gguf maps back the same way, and the model adds the 1 back).
 */
import type { Qwen3NextConfig } from "../config.js";
import type { ParamDecl } from "../model/params.js";
import { STORED_NEG_EXP, STORED_ONE_PLUS_W, type CheckpointLayout, type Spelling } from "./layout.js";

const LAYER = /^(model|mtp)\.layers\.(\d+)\.(.+)$/;
const EXPERT = /^mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight$/;

/** Direct renames inside a block: canonical suffix -> GGUF suffix (and a stored transform). */
const BLOCK: Record<string, Spelling> = {
  "input_layernorm.weight": { stored: "attn_norm.weight", transform: STORED_ONE_PLUS_W },
  "post_attention_layernorm.weight": { stored: "post_attention_norm.weight", transform: STORED_ONE_PLUS_W },
  "linear_attn.in_proj_qkv.weight": { stored: "attn_qkv.weight" },
  "linear_attn.in_proj_z.weight": { stored: "attn_gate.weight" },
  "linear_attn.in_proj_qkvz.weight": { stored: "ssm_in.weight" },
  "linear_attn.in_proj_ba.weight": { stored: "ssm_ba.weight" },
  "linear_attn.A_log": { stored: "ssm_a", transform: STORED_NEG_EXP },
  "linear_attn.dt_bias": { stored: "ssm_dt.bias" },
  "linear_attn.norm.weight": { stored: "ssm_norm.weight" },
  "linear_attn.out_proj.weight": { stored: "ssm_out.weight" },
  "self_attn.q_proj.weight": { stored: "attn_q.weight" },
  "self_attn.k_proj.weight": { stored: "attn_k.weight" },
  "self_attn.v_proj.weight": { stored: "attn_v.weight" },
  "self_attn.o_proj.weight": { stored: "attn_output.weight" },
  "self_attn.q_proj.bias": { stored: "attn_q.bias" },
  "self_attn.k_proj.bias": { stored: "attn_k.bias" },
  "self_attn.v_proj.bias": { stored: "attn_v.bias" },
  "self_attn.o_proj.bias": { stored: "attn_output.bias" },
  "self_attn.q_norm.weight": { stored: "attn_q_norm.weight", transform: STORED_ONE_PLUS_W },
  "self_attn.k_norm.weight": { stored: "attn_k_norm.weight", transform: STORED_ONE_PLUS_W },
  "mlp.gate.weight": { stored: "ffn_gate_inp.weight" },
  "mlp.shared_expert.gate_proj.weight": { stored: "ffn_gate_shexp.weight" },
  "mlp.shared_expert.up_proj.weight": { stored: "ffn_up_shexp.weight" },
  "mlp.shared_expert.down_proj.weight": { stored: "ffn_down_shexp.weight" },
  "mlp.gate_proj.weight": { stored: "ffn_gate.weight" },
  "mlp.up_proj.weight": { stored: "ffn_up.weight" },
  "mlp.down_proj.weight": { stored: "ffn_down.weight" },
};

/** Top-level renames (MTP ones are under the first MTP block, `blk.{num_hidden_layers}`). */
function topLevel(name: string, c: Qwen3NextConfig): Spelling | undefined {
  const mtp = `blk.${c.num_hidden_layers}.nextn`;
  switch (name) {
    case "model.embed_tokens.weight":
      return { stored: "token_embd.weight" };
    case "lm_head.weight":
      return { stored: "output.weight" };
    case "model.norm.weight":
      return { stored: "output_norm.weight", transform: STORED_ONE_PLUS_W };
    case "mtp.fc.weight":
      return { stored: `${mtp}.eh_proj.weight` };
    case "mtp.pre_fc_norm_embedding.weight":
      return { stored: `${mtp}.enorm.weight`, transform: STORED_ONE_PLUS_W };
    case "mtp.pre_fc_norm_hidden.weight":
      return { stored: `${mtp}.hnorm.weight`, transform: STORED_ONE_PLUS_W };
    case "mtp.norm.weight":
      return { stored: `blk.${c.num_hidden_layers + c.mtp_num_hidden_layers - 1}.nextn.shared_head_norm.weight`, transform: STORED_ONE_PLUS_W };
    default:
      return undefined;
  }
}

function blockSpellings(blk: string, rest: string, decl: ParamDecl, c: Qwen3NextConfig): Spelling[] {
  const direct = BLOCK[rest];
  if (direct) return [{ ...direct, stored: `${blk}.${direct.stored}` }];
  const E = c.num_experts;
  const I = c.moe_intermediate_size;
  const H = c.hidden_size;
  switch (rest) {
    case "linear_attn.conv1d.weight":
      return [{ stored: `${blk}.ssm_conv1d.weight`, storedShape: [decl.shape[0], decl.shape[2]] }];
    case "mlp.shared_expert_gate.weight":
      return [{ stored: `${blk}.ffn_gate_inp_shexp.weight`, storedShape: [H] }];
  }
  const m = EXPERT.exec(rest);
  if (m) {
    const e = Number(m[1]);
    const proj = m[2];
    if (proj === "down") return [{ stored: `${blk}.ffn_down_exps.weight`, storedShape: [E, H, I], rowStart: e * H, what: "stacked" }];
    return [
      { stored: `${blk}.ffn_${proj}_exps.weight`, storedShape: [E, I, H], rowStart: e * I, what: "stacked" },
      { stored: `${blk}.ffn_gate_up_exps.weight`, storedShape: [E, 2 * I, H], rowStart: e * 2 * I + (proj === "up" ? I : 0), what: "a fused" },
    ];
  }
  return [{ stored: `${blk}.${rest}` }];
}

export const GGUF_QWEN3NEXT: CheckpointLayout = {
  name: "GGUF qwen3next",
  spell(decl, c) {
    const top = topLevel(decl.name, c);
    if (top) return [top];
    const m = LAYER.exec(decl.name);
    if (!m) return [{ stored: decl.name }];
    const [, where, i, rest] = m;
    const block = where === "model" ? Number(i) : c.num_hidden_layers + Number(i);
    return blockSpellings(`blk.${block}`, rest, decl, c);
  },
};
