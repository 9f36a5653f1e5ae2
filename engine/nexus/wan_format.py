"""Original-format Wan2.1 checkpoints (the ones the release loads) as the classes this engine runs.

- Transformer (WanModel: config.json + diffusion_pytorch_model*.safetensors) → diffusers' WanTransformer3DModel,
  keys renamed by diffusers' own ``convert_wan_transformer_to_diffusers`` (its single-file support).
- VAE (Wan2.1_VAE.pth) → diffusers' AutoencoderKLWan through diffusers' ``convert_wan_vae_to_diffusers``; the file
  has no config, so the published Wan VAE config is used with the width read from the weights.
- T5 (models_t5_umt5-xxl-enc-bf16.pth, Wan's own T5 encoder) → transformers' UMT5EncoderModel: diffusers has no
  conversion for it, so the key map is written here (`t5_key`); every key must map, and every model key be filled.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ..errors import ModelError

# diffusers' WanTransformer3DModel._keep_in_fp32_modules, kept in float32 as from_pretrained(torch_dtype=...) does
_FP32 = ("time_embedder", "scale_shift_table", "norm1", "norm2", "norm3")
WAN_VAE_LATENTS_MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                        0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921]
WAN_VAE_LATENTS_STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                       3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.916]


def read_wan_config(folder: Path) -> dict:
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {folder / 'config.json'}: {exc}") from None
    if not isinstance(cfg, dict) or cfg.get("_class_name", "WanModel") != "WanModel":
        raise ModelError(f"{folder / 'config.json'} is not an original-format WanModel config")
    if cfg.get("model_type", "t2v") != "t2v":
        raise ModelError(f"{folder} is a Wan {cfg.get('model_type')} model; the release uses text-to-video (t2v)")
    return cfg


def diffusers_transformer_config(wan: dict) -> dict:
    """The WanTransformer3DModel config equivalent to an original WanModel config.json."""
    dim, heads = int(wan["dim"]), int(wan["num_heads"])
    if dim % heads:
        raise ModelError(f"WanModel config: dim {dim} is not a multiple of num_heads {heads}")
    return {
        "_class_name": "WanTransformer3DModel", "patch_size": list(wan.get("patch_size", [1, 2, 2])),
        "num_attention_heads": heads, "attention_head_dim": dim // heads, "in_channels": int(wan.get("in_dim", 16)),
        "out_channels": int(wan.get("out_dim", 16)), "text_dim": int(wan.get("text_dim", 4096)),
        "freq_dim": int(wan.get("freq_dim", 256)), "ffn_dim": int(wan["ffn_dim"]),
        "num_layers": int(wan["num_layers"]), "cross_attn_norm": bool(wan.get("cross_attn_norm", True)),
        "qk_norm": "rms_norm_across_heads" if wan.get("qk_norm", True) else None,
        "eps": float(wan.get("eps", 1e-6)), "image_dim": None, "added_kv_proj_dim": None, "rope_max_seq_len": 1024,
    }


def _empty_weights():
    """Parameters on the meta device (the checkpoint's tensors are assigned), buffers real (RoPE tables...)."""
    from accelerate import init_empty_weights

    return init_empty_weights(include_buffers=False)


def _cast(state: dict, dtype) -> dict:
    out = {}
    for k, v in state.items():
        keep = any(part in _FP32 for part in k.split("."))
        out[k] = v.to(torch.float32 if keep or not v.is_floating_point() else dtype)
    return out


def _load_strict(model, state: dict, what: str) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise ModelError(f"the {what}'s weights do not fit its config: missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]}")


def wan_transformer(config: dict, original_state: dict, dtype) -> torch.nn.Module:
    """A WanTransformer3DModel from an original WanModel config and state dict (diffusers' key conversion)."""
    from diffusers import WanTransformer3DModel
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    cfg = diffusers_transformer_config(config)
    state = convert_wan_transformer_to_diffusers(dict(original_state))
    with _empty_weights():
        model = WanTransformer3DModel.from_config({k: v for k, v in cfg.items() if not k.startswith("_")})
    _load_strict(model, _cast(state, dtype), "transformer")
    return model.requires_grad_(False).eval()


def vae_config(state: dict) -> dict:
    """The published Wan2.1 VAE config (diffusers layout) with base_dim and z_dim read from the weights."""
    base = int(state["encoder.conv1.weight"].shape[0])
    z = int(state["conv2.weight"].shape[0])
    return {"_class_name": "AutoencoderKLWan", "base_dim": base, "z_dim": z, "dim_mult": [1, 2, 4, 4],
            "num_res_blocks": 2, "attn_scales": [], "temperal_downsample": [False, True, True], "dropout": 0.0,
            "latents_mean": WAN_VAE_LATENTS_MEAN[:z], "latents_std": WAN_VAE_LATENTS_STD[:z]}


def wan_vae(original_state: dict) -> torch.nn.Module:
    """AutoencoderKLWan (float32, as engine/loading.py keeps Wan's VAE) from Wan2.1_VAE.pth's state dict."""
    from diffusers import AutoencoderKLWan
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    cfg = vae_config(original_state)
    with _empty_weights():
        vae = AutoencoderKLWan.from_config({k: v for k, v in cfg.items() if not k.startswith("_")})
    state = {k: v.float() for k, v in convert_wan_vae_to_diffusers(dict(original_state)).items()}
    _load_strict(vae, state, "VAE")
    return vae.requires_grad_(False).eval()


_T5_BLOCK = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")


def t5_key(key: str) -> str | None:
    """Wan's T5 encoder key → UMT5EncoderModel's (None: not a key of the encoder)."""
    if key == "token_embedding.weight":
        return "shared.weight"
    if key == "norm.weight":
        return "encoder.final_layer_norm.weight"
    m = _BLOCK_KEY.match(key)
    if m and m.group(2) in _T5_BLOCK:
        return f"encoder.block.{m.group(1)}.{_T5_BLOCK[m.group(2)]}"
    return None


def t5_config(state: dict) -> dict:
    """UMT5 encoder config from Wan's T5 weights (umt5-xxl: 24 layers of 4096, 64 heads, ffn 10240, 32 buckets)."""
    vocab, d = state["token_embedding.weight"].shape
    layers = 1 + max(int(m.group(1)) for k in state if (m := _BLOCK_KEY.match(k)))
    buckets, heads = state["blocks.0.pos_embedding.embedding.weight"].shape
    return {"_class_name": "UMT5EncoderModel", "model_type": "umt5", "vocab_size": int(vocab), "d_model": int(d),
            "d_kv": int(state["blocks.0.attn.q.weight"].shape[0]) // int(heads),
            "d_ff": int(state["blocks.0.ffn.fc1.weight"].shape[0]), "num_layers": int(layers),
            "num_heads": int(heads), "relative_attention_num_buckets": int(buckets),
            "relative_attention_max_distance": 128, "dense_act_fn": "gelu_new", "feed_forward_proj": "gated-gelu",
            "is_gated_act": True, "layer_norm_epsilon": 1e-6, "tie_word_embeddings": False, "pad_token_id": 0,
            "eos_token_id": 1, "decoder_start_token_id": 0}


def t5_encoder(original_state: dict, dtype) -> torch.nn.Module:
    from transformers import UMT5Config, UMT5EncoderModel

    cfg = t5_config(original_state)
    state, unknown = {}, []
    for k, v in original_state.items():
        new = t5_key(k)
        if new is None:
            unknown.append(k)
        else:
            state[new] = v.to(dtype)
    if unknown:
        raise ModelError(f"the T5 checkpoint has keys this loader does not know: {unknown[:5]}")
    state["encoder.embed_tokens.weight"] = state["shared.weight"]
    with _empty_weights():  # no 23 GB of float32 first: the checkpoint's tensors are assigned
        model = UMT5EncoderModel(UMT5Config(**{k: v for k, v in cfg.items() if not k.startswith("_")}))
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise ModelError(f"the T5 checkpoint does not fill UMT5EncoderModel: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return model.requires_grad_(False).eval()
