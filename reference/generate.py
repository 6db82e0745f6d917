#!/usr/bin/env python3
"""Regenerate Qwen3-Next reference fixtures with PyTorch and Hugging Face `transformers`.

Not run in CI (it needs torch and transformers >= 5, which this project does not depend on). It is here so
that anyone can produce fixtures comparable to the ones in `reference/`, for any configuration, from the
published implementation itself, and check them with `qwen3-next trace` + `qwen3-next compare`.

Everything is computed in float64 on the CPU from weights that are exactly representable in bfloat16, so the
expected values carry no rounding of their own:
  * the main model is `transformers.Qwen3NextForCausalLM` (eager attention; without the `fla` kernels the
    gated DeltaNet runs `torch_chunk_gated_delta_rule` for prefill and `torch_recurrent_gated_delta_rule`
    for decode);
  * the modeling code's float32 upcasts (norms, softmaxes, RoPE frequencies, the delta-rule fallbacks) are
    widened to float64 by re-executing the published module source with those casts replaced (`in_float64`);
  * the multi-token-prediction head, which `transformers` does not implement, follows vLLM's `Qwen3NextMTP`
    built from `transformers` modules: u = mtp.fc([pre_fc_norm_embedding(embed(x[t+1])) |
    pre_fc_norm_hidden(h[t])]), one full-attention decoder layer `mtp.layers.0`, `mtp.norm`, shared lm_head.

Usage
  # a new random checkpoint + expected outputs for one of the cases in cases.json (or any config JSON)
  python reference/generate.py --case tiny-moe-mtp --out /tmp/fixture
  python reference/generate.py --config my_config.json --seed 5 --tokens 40 --n-prefill 33 --out /tmp/fx
  # expected outputs for an existing checkpoint folder (e.g. to re-derive reference/tiny-moe-mtp)
  python reference/generate.py --checkpoint reference/tiny-moe-mtp --input-ids-from \
      reference/tiny-moe-mtp/expected.safetensors --out /tmp/check --compare reference/tiny-moe-mtp/expected.safetensors
Then, in this project:
  npx qwen3-next trace --model /tmp/fixture --tokens-file /tmp/fixture/input_ids.txt --out /tmp/ours.safetensors --precision f64
  npx qwen3-next compare /tmp/fixture/expected.safetensors /tmp/ours.safetensors --atol 1e-9
"""
import argparse
import copy
import json
import math
import os
import sys

import importlib
import inspect
import re

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import Qwen3NextConfig


def in_float64(module_name):
    """Re-executes a transformers module with every float32 upcast turned into float64.

    The published modeling code computes norms, softmaxes, RoPE frequencies and the torch delta-rule
    fallbacks in float32 whatever the model's dtype; an oracle must not, so those casts are widened here.
    Nothing else in the code changes."""
    mod = importlib.import_module(module_name)
    src = inspect.getsource(mod)
    src, n1 = re.subn(r"torch\.float32\b", "torch.float64", src)
    src, n2 = re.subn(r"torch\.float\b", "torch.float64", src)
    src, n3 = re.subn(r"\.float\(\)", ".double()", src)
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)
    print(f"{module_name}: {n1 + n2 + n3} float32 casts widened to float64", file=sys.stderr)
    return mod


in_float64("transformers.modeling_rope_utils")
for _name in ("transformers.integrations.moe",):
    try:
        in_float64(_name)
    except (ImportError, OSError):
        pass
qn = in_float64("transformers.models.qwen3_next.modeling_qwen3_next")
Qwen3NextForCausalLM = qn.Qwen3NextForCausalLM
for _fn in ("causal_conv1d_fn", "causal_conv1d_update"):
    _mod = getattr(getattr(qn, _fn, None), "__module__", None)
    if _mod and _mod != qn.__name__ and _mod.startswith("transformers"):
        in_float64(_mod)
        qn = in_float64("transformers.models.qwen3_next.modeling_qwen3_next")
Qwen3NextForCausalLM = qn.Qwen3NextForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))


def random_weights(model, cfg, seed):
    """Random bf16-representable weights with O(1) activations (HF's 0.02 init makes everything vanish)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                v = torch.log(torch.empty(p.shape, dtype=torch.float64).uniform_(1, 16, generator=g))
            elif name.endswith("dt_bias"):
                v = torch.empty(p.shape, dtype=torch.float64).uniform_(-1, 1, generator=g)
            elif name.endswith("linear_attn.norm.weight"):
                v = 1 + 0.1 * torch.randn(p.shape, dtype=torch.float64, generator=g)
            elif p.ndim == 1:  # zero-centred norms: weight near 0 means gain near 1
                v = 0.1 * torch.randn(p.shape, dtype=torch.float64, generator=g)
            elif "conv1d" in name:
                v = torch.randn(p.shape, dtype=torch.float64, generator=g) / math.sqrt(p.shape[-1])
            else:  # [out, in] or fused [E, out, in]: unit-variance outputs
                v = torch.randn(p.shape, dtype=torch.float64, generator=g) / math.sqrt(p.shape[-1])
            p.copy_(v.to(torch.bfloat16).to(p.dtype))


def mtp_weights(cfg, seed):
    """Random MTP weights under vLLM's published names (mtp.*), bf16-representable."""
    mtp_cfg = mtp_layer_config(cfg)
    layer = qn.Qwen3NextDecoderLayer(mtp_cfg, 0).to(torch.float64)
    holder = torch.nn.Module()
    holder.layer = layer
    random_weights(holder, cfg, seed + 1)
    g = torch.Generator().manual_seed(seed + 2)
    H = cfg.hidden_size
    w = {f"mtp.layers.0.{k}": v for k, v in per_expert_state_dict(layer.state_dict()).items()}
    w["mtp.fc.weight"] = torch.randn(H, 2 * H, dtype=torch.float64, generator=g) / math.sqrt(2 * H)
    for n in ["pre_fc_norm_embedding", "pre_fc_norm_hidden", "norm"]:
        w[f"mtp.{n}.weight"] = 0.1 * torch.randn(H, dtype=torch.float64, generator=g)
    return {k: v.to(torch.bfloat16).to(torch.float64) for k, v in w.items()}


def mtp_layer_config(cfg):
    """The MTP decoder layer is a full-attention layer whose MLP kind follows the layer-0 rule."""
    c = copy.deepcopy(cfg)
    c.num_hidden_layers = 1
    c.layer_types = ["full_attention"]
    c._attn_implementation = "eager"
    c._experts_implementation = "eager"
    return c


def per_expert_state_dict(sd):
    """Fused transformers-v5 expert tensors -> the published one-tensor-per-expert names."""
    out = {}
    for k, v in sd.items():
        if k.endswith("mlp.experts.gate_up_proj"):
            base = k[: -len("gate_up_proj")]
            inter = v.shape[1] // 2
            for e in range(v.shape[0]):
                out[f"{base}{e}.gate_proj.weight"] = v[e, :inter].contiguous()
                out[f"{base}{e}.up_proj.weight"] = v[e, inter:].contiguous()
        elif k.endswith("mlp.experts.down_proj"):
            base = k[: -len("down_proj")]
            for e in range(v.shape[0]):
                out[f"{base}{e}.down_proj.weight"] = v[e].contiguous()
        else:
            out[k] = v
    return out


def load_mtp_from(path_dir):
    """The mtp.* tensors of a checkpoint folder (transformers itself ignores them)."""
    tensors = {}
    for f in sorted(os.listdir(path_dir)):
        if f.endswith(".safetensors") and f != "expected.safetensors":
            with safe_open(os.path.join(path_dir, f), "pt") as fh:
                for k in fh.keys():
                    if k.startswith("mtp."):
                        tensors[k] = fh.get_tensor(k).to(torch.float64)
    return tensors


class MTPHead(torch.nn.Module):
    """vLLM's Qwen3NextMTP for one layer, from transformers modules."""

    def __init__(self, cfg, tensors):
        super().__init__()
        H = cfg.hidden_size
        self.fc = torch.nn.Linear(2 * H, H, bias=False, dtype=torch.float64)
        self.pre_fc_norm_embedding = qn.Qwen3NextRMSNorm(H, eps=cfg.rms_norm_eps)
        self.pre_fc_norm_hidden = qn.Qwen3NextRMSNorm(H, eps=cfg.rms_norm_eps)
        self.norm = qn.Qwen3NextRMSNorm(H, eps=cfg.rms_norm_eps)
        self.layer = qn.Qwen3NextDecoderLayer(mtp_layer_config(cfg), 0)
        self.to(torch.float64)
        sd = {k[len("mtp.") :]: v for k, v in tensors.items()}
        layer_sd = {k[len("layers.0.") :]: v for k, v in sd.items() if k.startswith("layers.0.")}
        fused = fuse_experts(layer_sd, self.layer)
        self.layer.load_state_dict(fused, strict=True)
        for n in ["fc", "pre_fc_norm_embedding", "pre_fc_norm_hidden", "norm"]:
            getattr(self, n).weight.data.copy_(sd[f"{n}.weight"])

    def forward(self, model, input_ids, final_hidden):
        """MTP logits at positions 0..T-2: input (final_hidden[t], input_ids[t+1])."""
        T = input_ids.shape[-1]
        emb = model.model.embed_tokens(input_ids[:, 1:])
        u = self.fc(torch.cat([self.pre_fc_norm_embedding(emb), self.pre_fc_norm_hidden(final_hidden[:, :-1])], -1))
        positions = torch.arange(T - 1)[None]
        cos, sin = model.model.rotary_emb(u, positions)
        mask = torch.full((T - 1, T - 1), float("-inf"), dtype=torch.float64).triu(1)[None, None]
        h = self.layer(u, position_embeddings=(cos, sin), attention_mask=mask, position_ids=positions)
        if isinstance(h, tuple):
            h = h[0]
        return model.lm_head(self.norm(h))


def fuse_experts(sd, module):
    """Published per-expert names -> whatever layout `module` holds (fused in transformers v5)."""
    want = module.state_dict()
    out = {}
    for k in want:
        if k.endswith("mlp.experts.gate_up_proj"):
            base = k[: -len("gate_up_proj")]
            E = want[k].shape[0]
            out[k] = torch.stack(
                [torch.cat([sd[f"{base}{e}.gate_proj.weight"], sd[f"{base}{e}.up_proj.weight"]], 0) for e in range(E)]
            )
        elif k.endswith("mlp.experts.down_proj"):
            base = k[: -len("down_proj")]
            out[k] = torch.stack([sd[f"{base}{e}.down_proj.weight"] for e in range(want[k].shape[0])])
        else:
            out[k] = sd[k]
    return out


def run(model, cfg, input_ids, n_prefill, mtp):
    T = input_ids.shape[-1]
    captured = {}
    hooks = []
    for i, layer in enumerate(model.model.layers):
        hooks.append(layer.register_forward_hook(lambda m, a, kw, o, i=i: captured.__setitem__(f"hidden.{i}", o[0] if isinstance(o, tuple) else o), with_kwargs=True))
        if isinstance(layer.mlp, qn.Qwen3NextSparseMoeBlock):
            def on_router(m, a, o, i=i):
                captured[f"router.{i}.weights"] = o[1].detach().clone()
                captured[f"router.{i}.experts"] = o[2].detach().clone()
            hooks.append(layer.mlp.gate.register_forward_hook(on_router))
    with torch.no_grad():
        out = model(input_ids, use_cache=True)
    for h in hooks:
        h.remove()
    final_hidden = model.model.norm(captured[f"hidden.{cfg.num_hidden_layers - 1}"])
    result = {"input_ids": input_ids[0].to(torch.int64), "logits": out.logits[0], "final_hidden": final_hidden[0]}
    for k, v in captured.items():
        result[k] = v[0] if k.startswith("hidden.") else v
    if mtp is not None:
        with torch.no_grad():
            result["mtp_logits"] = mtp(model, input_ids, final_hidden)[0]

    # Prefill n_prefill tokens, then decode the rest one at a time with the caches.
    with torch.no_grad():
        step = model(input_ids[:, :n_prefill], use_cache=True)
        rows = [step.logits[0]]
        past = step.past_key_values
        for t in range(n_prefill, T):
            step = model(input_ids[:, t : t + 1], past_key_values=past, use_cache=True)
            past = step.past_key_values
            rows.append(step.logits[0])
    decoded = torch.cat(rows, 0)
    gap = (decoded - result["logits"]).abs().max().item()
    print(f"prefill {n_prefill} + decode {T - n_prefill} vs full forward: max |diff| = {gap:.3e}")
    if gap > 1e-10:
        sys.exit(f"prefill-then-decode disagrees with the full forward ({gap:.3e})")
    return {k: v.contiguous() for k, v in result.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--case", help="a model case name from reference/cases.json")
    src.add_argument("--config", help="a Qwen3-Next config.json for a new random checkpoint")
    src.add_argument("--checkpoint", help="an existing checkpoint folder (config.json + *.safetensors)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--n-prefill", type=int, default=None)
    ap.add_argument("--input-ids-from", help="take input_ids (and n_prefill) from this expected.safetensors")
    ap.add_argument("--compare", help="print max |diff| per tensor against this expected.safetensors")
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    os.makedirs(args.out, exist_ok=True)

    seed, n_tok, n_prefill = args.seed, args.tokens, args.n_prefill
    if args.case:
        case = next(c for c in json.load(open(os.path.join(HERE, "cases.json")))["models"] if c["name"] == args.case)
        raw, seed = case["config"], case["seed"]
        n_tok, n_prefill = case["n_prefill"] + case["n_decode"], case["n_prefill"]
    elif args.config:
        raw = json.load(open(args.config))
    else:
        raw = json.load(open(os.path.join(args.checkpoint, "config.json")))
    cfg = Qwen3NextConfig(**raw)
    # Eager attention and the eager expert loop: the fused backends do not run in float64.
    cfg._attn_implementation = "eager"
    cfg._experts_implementation = "eager"
    mtp_layers = int(raw.get("mtp_num_hidden_layers", 0) or 0)

    if args.checkpoint:
        model = Qwen3NextForCausalLM.from_pretrained(
            args.checkpoint, dtype=torch.float64, attn_implementation="eager", experts_implementation="eager"
        )
        mtp_tensors = load_mtp_from(args.checkpoint) if mtp_layers else None
    else:
        model = Qwen3NextForCausalLM(cfg).to(torch.float64)
        random_weights(model, cfg, seed)
        mtp_tensors = mtp_weights(cfg, seed) if mtp_layers else None
        weights = per_expert_state_dict(model.state_dict())
        if cfg.tie_word_embeddings:
            weights.pop("lm_head.weight", None)
        if mtp_tensors:
            weights.update(mtp_tensors)
        save_file({k: v.to(torch.bfloat16).contiguous() for k, v in weights.items()},
                  os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(args.out, "config.json"), "w") as f:
            json.dump(raw, f, indent=2)
    model.set_experts_implementation("eager")
    model.eval()
    mtp = MTPHead(cfg, mtp_tensors) if mtp_tensors else None

    if args.input_ids_from:
        with safe_open(args.input_ids_from, "pt") as f:
            input_ids = f.get_tensor("input_ids")[None]
            meta = f.metadata() or {}
        n_prefill = int(meta.get("n_prefill", input_ids.shape[-1] - 1))
    else:
        g = torch.Generator().manual_seed(seed + 100)
        input_ids = torch.randint(0, cfg.vocab_size, (1, n_tok), generator=g)
    T = input_ids.shape[-1]
    if n_prefill is None:
        n_prefill = max(1, T - 4)

    result = run(model, cfg, input_ids, n_prefill, mtp)
    save_file(result, os.path.join(args.out, "expected.safetensors"),
              metadata={"n_prefill": str(n_prefill), "n_decode": str(T - n_prefill),
                        "generator": f"reference/generate.py, transformers {__import__('transformers').__version__}"})
    with open(os.path.join(args.out, "input_ids.txt"), "w") as f:
        f.write(",".join(str(int(x)) for x in input_ids[0]) + "\n")
    print(f"wrote {args.out}/expected.safetensors ({len(result)} tensors, T={T}, n_prefill={n_prefill})")

    if args.compare:
        worst = 0.0
        ref = load_file(args.compare)
        for k in sorted(ref):
            if k not in result:
                print(f"  {k}: missing here")
                continue
            a, b = ref[k], result[k]
            if a.dtype == torch.int64:
                d = int((a != b).sum())
                print(f"  {k}: {d} ids differ")
                worst = max(worst, float(d))
            else:
                d = (a.to(torch.float64) - b.to(torch.float64)).abs().max().item()
                print(f"  {k}: max |diff| = {d:.3e}")
                worst = max(worst, d)
        print(f"worst: {worst:.3e}")


if __name__ == "__main__":
    main()
