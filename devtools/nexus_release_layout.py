"""A reduced, random-init copy of the authors' released Lumos-Nexus downloads, in their layout and key names.

`build_release(root)` writes, in seconds on CPU:
    root/bundle/   the Omni-Video bundle (model_ckpts/): wan/wanxiang1_3b (original-format Wan 1.3B stand-in, its
                   T5 .pth and VAE .pth in Wan's own key names, google/umt5-xxl tokenizer), transformer/model.pt
                   (fine-tune over the VideoMixedConditionModel namespace), adapter/model.pt, vision_head/...,
                   ar_model/checkpoint/llm (a tiny Llama with a Llama-3-style tokenizer), and the two plain pickles
                   unconditioned_context/context.pkl and special_tokens/tokens.pkl
    root/wan14b/   the original-format 14B stand-in (config.json + two safetensors shards with their index)
Widths: LLM 64, head 16 (4 queries), adapter 16 → 32 (8 queries), T5 / text 32; one encoder and one decoder layer in
the head and the adapter (the release has 4 + 4). The original key names are produced by inverting diffusers' own
conversions, and each inversion is checked to round-trip through them.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import torch

LLM_DIM, HEAD_DIM, TEXT_DIM = 64, 16, 32
HEAD_QUERIES, ADAPTER_QUERIES = 4, 8
SPECIAL = ("<ipl_st>", "<ipl_ed>", "<prp_st>", "<prp_ed>", "<img_st>", "<img_ed>")
LLAMA3_SPECIAL = ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


# -- original Wan key names from diffusers' ----------------------------------------------------------------------------
_TRANSFORMER_INVERSE = [
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"),
    ("attn2", "cross_attn"), ("attn1", "self_attn"),
    (".to_out.0.", ".o."), (".to_q.", ".q."), (".to_k.", ".k."), (".to_v.", ".v."),
    ("ffn.net.0.proj", "ffn.0"), ("ffn.net.2", "ffn.2"), (".norm2.", ".norm3."),
]


def transformer_to_original(state: dict) -> dict:
    out = {}
    for k, v in state.items():
        new = k
        if k == "scale_shift_table":
            new = "head.modulation"
        elif k.startswith("proj_out."):
            new = "head.head." + k[len("proj_out."):]
        else:
            for a, b in _TRANSFORMER_INVERSE:
                new = new.replace(a, b)
            new = re.sub(r"^(blocks\.\d+)\.scale_shift_table$", r"\1.modulation", new)
        out[new] = v
    return out


_RESNET = [("norm1.gamma", "residual.0.gamma"), ("conv1.", "residual.2."), ("norm2.gamma", "residual.3.gamma"),
           ("conv2.", "residual.6."), ("conv_shortcut.", "shortcut.")]


def vae_to_original(state: dict) -> dict:
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    out = {}
    fixed = {"encoder.conv_in": "encoder.conv1", "decoder.conv_in": "decoder.conv1", "encoder.norm_out": "encoder.head.0",
             "encoder.conv_out": "encoder.head.2", "decoder.norm_out": "decoder.head.0",
             "decoder.conv_out": "decoder.head.2", "quant_conv": "conv1", "post_quant_conv": "conv2"}
    for k, v in state.items():
        new = None
        for a, b in fixed.items():
            if k.startswith(a + "."):
                new = b + k[len(a):]
        m = re.match(r"^(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)$", k)
        if m:
            side, kind, i, rest = m.groups()
            idx = {"resnets": {"0": 0, "1": 2}, "attentions": {"0": 1}}[kind][i]
            if kind == "resnets":
                for a, b in _RESNET:
                    rest = rest.replace(a, b) if rest.startswith(a) else rest
            new = f"{side}.middle.{idx}.{rest}"
        m = re.match(r"^encoder\.down_blocks\.(\d+)\.(.+)$", k)
        if m:
            rest = m.group(2)
            for a, b in _RESNET:
                rest = b + rest[len(a):] if rest.startswith(a) else rest
            new = f"encoder.downsamples.{m.group(1)}.{rest}"
        m = re.match(r"^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$", k)
        if m:
            b_, r_, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            idx = [0, 4, 8, 12][b_] + r_
            for a, b in _RESNET:
                rest = b + rest[len(a):] if rest.startswith(a) else rest
            new = f"decoder.upsamples.{idx}.{rest}"
        m = re.match(r"^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.+)$", k)
        if m:
            new = f"decoder.upsamples.{[3, 7, 11][int(m.group(1))]}.{m.group(2)}"
        out[new if new is not None else k] = v
    return out


def t5_to_original(state: dict) -> dict:
    from engine.nexus.wan_format import _T5_BLOCK

    inverse = {v: k for k, v in _T5_BLOCK.items()}
    out = {}
    for k, v in state.items():
        if k == "shared.weight":
            out["token_embedding.weight"] = v
        elif k == "encoder.final_layer_norm.weight":
            out["norm.weight"] = v
        elif m := re.match(r"^encoder\.block\.(\d+)\.(.+)$", k):
            out[f"blocks.{m.group(1)}.{inverse[m.group(2)]}"] = v
    return out


def _check_round_trip(original: dict, converted: dict, convert, what: str) -> None:
    back = convert(dict(original))
    if set(back) != set(converted):
        raise AssertionError(f"{what}: inverse key map does not round-trip: {sorted(set(back) ^ set(converted))[:6]}")


# -- the pieces ------------------------------------------------------------------------------------------------------
def _wan_original(folder: Path, seed: int, heads: int, layers: int, ffn: int, shards: int = 1) -> dict:
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
    from safetensors.torch import save_file

    from devtools.tiny_models import make_transformer

    model = make_transformer(seed, heads=heads, layers=layers, ffn=ffn)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    original = transformer_to_original(state)
    _check_round_trip(original, state, convert_wan_transformer_to_diffusers, "transformer")
    folder.mkdir(parents=True, exist_ok=True)
    config = {"_class_name": "WanModel", "_diffusers_version": "0.30.0", "model_type": "t2v", "dim": heads * 12,
              "ffn_dim": ffn, "freq_dim": 32, "in_dim": 16, "out_dim": 16, "num_heads": heads, "num_layers": layers,
              "text_len": 512, "text_dim": TEXT_DIM, "eps": 1e-6}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    keys = sorted(original)
    if shards == 1:
        save_file(original, str(folder / "diffusion_pytorch_model.safetensors"))
    else:
        weight_map = {}
        for i in range(shards):
            name = f"diffusion_pytorch_model-{i + 1:05d}-of-{shards:05d}.safetensors"
            part = {k: original[k] for k in keys[i::shards]}
            save_file(part, str(folder / name))
            weight_map.update({k: name for k in part})
        (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(
            json.dumps({"metadata": {}, "weight_map": weight_map}))
    return original


def _t5_and_vae(folder: Path, seed: int) -> None:
    from diffusers import AutoencoderKLWan
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    from devtools.tiny_models import make_text_encoder, make_tokenizer

    t5 = make_text_encoder(seed)
    torch.save(t5_to_original(t5.state_dict()), folder / "models_t5_umt5-xxl-enc-bf16.pth")
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(base_dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                           temperal_downsample=[False, True, True]).eval()
    state = vae.state_dict()
    original = vae_to_original(state)
    _check_round_trip(original, state, convert_wan_vae_to_diffusers, "VAE")
    torch.save(original, folder / "Wan2.1_VAE.pth")
    make_tokenizer().save_pretrained(folder / "google" / "umt5-xxl")


def llama3_tokenizer():
    """A byte-level tokenizer with Llama-3's special tokens and its BOS post-processor (no merges: one token a byte)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    byte_map = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(byte_map))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(LLAMA3_SPECIAL))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
                                                       special_tokens=[("<|begin_of_text|>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>")


def _llm(folder: Path, seed: int) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = llama3_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=LLM_DIM, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(cfg).eval().save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def build_release(root: str | Path, seed: int = 0) -> Path:
    """Write the reduced release under `root` (bundle/ and wan14b/); returns root."""
    from engine.nexus.adapter import DMAdapter
    from engine.nexus.vision_head import VisionHead

    root = Path(root)
    bundle, heavy = root / "bundle", root / "wan14b"
    wan = bundle / "wan" / "wanxiang1_3b"
    light = _wan_original(wan, seed + 1, heads=2, layers=2, ffn=32)
    _wan_original(heavy, seed + 2, heads=4, layers=3, ffn=64, shards=2)
    _t5_and_vae(wan, seed)
    # the fine-tune, saved over the release's VideoMixedConditionModel namespace (and a key it ignores)
    torch.manual_seed(seed + 3)
    tuned = {f"wan_model.{k}": v + 0.01 * torch.randn_like(v) for k, v in light.items()}
    tuned["visual_context_adapter.proj.weight"] = torch.zeros(2, 2)
    (bundle / "transformer").mkdir(parents=True)
    torch.save(tuned, bundle / "transformer" / "model.pt")
    torch.manual_seed(seed + 4)
    head = VisionHead(LLM_DIM, HEAD_DIM, HEAD_QUERIES, 1, 1)
    torch.nn.init.normal_(head.decoder_query, std=0.02)
    (bundle / "vision_head" / "vision_head").mkdir(parents=True)
    torch.save(head.state_dict(), bundle / "vision_head" / "vision_head" / "pytorch_model.bin")
    adapter = DMAdapter(HEAD_DIM, TEXT_DIM, ADAPTER_QUERIES, 1, 1, ffn_dim=64)
    torch.nn.init.normal_(adapter.decoder_query, std=0.02)
    (bundle / "adapter").mkdir(parents=True)
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in adapter.state_dict().items()}, "epoch": 3,
                "step": 1000}, bundle / "adapter" / "model.pt")
    _llm(bundle / "ar_model" / "checkpoint" / "llm", seed + 5)
    g = torch.Generator().manual_seed(seed + 6)
    (bundle / "unconditioned_context").mkdir(parents=True)
    with open(bundle / "unconditioned_context" / "context.pkl", "wb") as fh:  # a plain pickle, as the release's
        pickle.dump({"text_emb_siglip2": [torch.randn(HEAD_DIM, generator=g)],
                     "text_emb": [torch.randn(7, TEXT_DIM, generator=g)],
                     "vlm_last_hidden_states": torch.randn(1, 23, LLM_DIM, generator=g)}, fh)
    (bundle / "special_tokens").mkdir(parents=True)
    with open(bundle / "special_tokens" / "tokens.pkl", "wb") as fh:
        pickle.dump({name: torch.randn(1, TEXT_DIM, generator=g) for name in SPECIAL}, fh)
    return root
