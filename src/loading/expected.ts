/**
 * The parameter tensors a Qwen3-Next config implies: published names and shapes, in checkpoint order.
 *
 * Names follow the released checkpoints (`transformers` Qwen3NextForCausalLM plus vLLM's `mtp.*` head):
 *   model.embed_tokens.weight                          [V, H]
 *   model.layers.{i}.input_layernorm.weight            [H]     (zero-centred: scale is 1 + w)
 *   model.layers.{i}.post_attention_layernorm.weight   [H]
 *   gated DeltaNet layers, model.layers.{i}.linear_attn.*:
 *     in_proj_qkvz.weight [2*nk*dk + 2*nv*dv, H]   in_proj_ba.weight [2*nv, H]
 *     conv1d.weight [2*nk*dk + nv*dv, 1, K]        dt_bias [nv]   A_log [nv]
 *     norm.weight [dv]                             out_proj.weight [H, nv*dv]
 *   gated attention layers, model.layers.{i}.self_attn.*:
 *     q_proj.weight [2*heads*hd, H] (query and gate)   k_proj.weight, v_proj.weight [kv*hd, H]
 *     o_proj.weight [H, heads*hd]   q_norm.weight, k_norm.weight [hd]   (+ .bias of each proj if attention_bias)
 *   MoE layers, model.layers.{i}.mlp.*:
 *     gate.weight [E, H]   experts.{e}.{gate,up}_proj.weight [I, H]   experts.{e}.down_proj.weight [H, I]
 *     shared_expert.{gate,up}_proj.weight [S, H]   shared_expert.down_proj.weight [H, S]
 *     shared_expert_gate.weight [1, H]           (no shared expert when shared_expert_intermediate_size is 0)
 *   dense layers: mlp.{gate,up}_proj.weight [F, H], mlp.down_proj.weight [H, F]   (F = intermediate_size)
 *   model.norm.weight [H];  lm_head.weight [V, H] unless tie_word_embeddings
 *   MTP (mtp_num_hidden_layers > 0): mtp.fc.weight [H, 2H], mtp.pre_fc_norm_embedding.weight [H],
 *     mtp.pre_fc_norm_hidden.weight [H], mtp.layers.{j}.* (a full-attention decoder layer whose MLP kind
 *     follows the main-model rule for index j, as vLLM builds it), mtp.norm.weight [H].
 */
import { isMoeLayer, type Qwen3NextConfig } from "../config.js";

export interface ExpectedTensor {
  readonly name: string;
  readonly shape: readonly number[];
}

/** Every parameter tensor the config needs, with its shape. */
export function expectedTensors(c: Qwen3NextConfig): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  const add = (name: string, ...shape: number[]) => out.push({ name, shape });
  const H = c.hidden_size;
  add("model.embed_tokens.weight", c.vocab_size, H);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, H);
    add(`${p}.post_attention_layernorm.weight`, H);
    if (c.layer_types[i] === "linear_attention") addDeltaNet(c, `${p}.linear_attn`, add);
    else addAttention(c, `${p}.self_attn`, add);
    addMlp(c, `${p}.mlp`, isMoeLayer(c, i), add);
  }
  add("model.norm.weight", H);
  if (!c.tie_word_embeddings) add("lm_head.weight", c.vocab_size, H);
  if (c.mtp_num_hidden_layers > 0) {
    add("mtp.fc.weight", H, 2 * H);
    add("mtp.pre_fc_norm_embedding.weight", H);
    add("mtp.pre_fc_norm_hidden.weight", H);
    for (let j = 0; j < c.mtp_num_hidden_layers; j++) {
      const p = `mtp.layers.${j}`;
      add(`${p}.input_layernorm.weight`, H);
      add(`${p}.post_attention_layernorm.weight`, H);
      addAttention(c, `${p}.self_attn`, add);
      addMlp(c, `${p}.mlp`, isMoeLayer(c, j), add);
    }
    add("mtp.norm.weight", H);
  }
  return out;
}

type Add = (name: string, ...shape: number[]) => void;

function addDeltaNet(c: Qwen3NextConfig, p: string, add: Add): void {
  const nk = c.linear_num_key_heads;
  const nv = c.linear_num_value_heads;
  const dk = c.linear_key_head_dim;
  const dv = c.linear_value_head_dim;
  const H = c.hidden_size;
  add(`${p}.in_proj_qkvz.weight`, 2 * nk * dk + 2 * nv * dv, H);
  add(`${p}.in_proj_ba.weight`, 2 * nv, H);
  add(`${p}.conv1d.weight`, 2 * nk * dk + nv * dv, 1, c.linear_conv_kernel_dim);
  add(`${p}.dt_bias`, nv);
  add(`${p}.A_log`, nv);
  add(`${p}.norm.weight`, dv);
  add(`${p}.out_proj.weight`, H, nv * dv);
}

function addAttention(c: Qwen3NextConfig, p: string, add: Add): void {
  const H = c.hidden_size;
  const hd = c.head_dim;
  const q = 2 * c.num_attention_heads * hd;
  const kv = c.num_key_value_heads * hd;
  add(`${p}.q_proj.weight`, q, H);
  add(`${p}.k_proj.weight`, kv, H);
  add(`${p}.v_proj.weight`, kv, H);
  add(`${p}.o_proj.weight`, H, c.num_attention_heads * hd);
  if (c.attention_bias) {
    add(`${p}.q_proj.bias`, q);
    add(`${p}.k_proj.bias`, kv);
    add(`${p}.v_proj.bias`, kv);
    add(`${p}.o_proj.bias`, H);
  }
  add(`${p}.q_norm.weight`, hd);
  add(`${p}.k_norm.weight`, hd);
}

function addMlp(c: Qwen3NextConfig, p: string, moe: boolean, add: Add): void {
  const H = c.hidden_size;
  if (!moe) {
    add(`${p}.gate_proj.weight`, c.intermediate_size, H);
    add(`${p}.up_proj.weight`, c.intermediate_size, H);
    add(`${p}.down_proj.weight`, H, c.intermediate_size);
    return;
  }
  const I = c.moe_intermediate_size;
  add(`${p}.gate.weight`, c.num_experts, H);
  for (let e = 0; e < c.num_experts; e++) {
    add(`${p}.experts.${e}.gate_proj.weight`, I, H);
    add(`${p}.experts.${e}.up_proj.weight`, I, H);
    add(`${p}.experts.${e}.down_proj.weight`, H, I);
  }
  const S = c.shared_expert_intermediate_size;
  if (S > 0) {
    add(`${p}.shared_expert.gate_proj.weight`, S, H);
    add(`${p}.shared_expert.up_proj.weight`, S, H);
    add(`${p}.shared_expert.down_proj.weight`, H, S);
    add(`${p}.shared_expert_gate.weight`, 1, H);
  }
}
