"""Load the release's system into engine.loading.LoadedModels (the hook engine/loading.py calls for this family).

What is read, from the release's own files (engine/nexus/layout.py): the 1.3B base (wan/wanxiang1_3b) with the
fine-tuned ``transformer/model.pt`` over it, the 14B, both converted to diffusers' WanTransformer3DModel; T5 and VAE
from the 1.3B folder; VILA's LLM; the vision head and the DM adapter; special tokens; the unconditional context.
``transformer/model.pt`` is applied as the release applies it: non-strictly over the whole VideoMixedConditionModel,
so its ``wan_model.*`` keys replace the 1.3B's, ``wan_2_model.*`` the 14B's, ``adapter.*`` and ``ar_vision_head.*``
the adapter's and the head's; other keys are ignored, as ``strict=False`` ignores them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..errors import ModelError
from .layout import (ADAPTER, SPECIAL_TOKENS, T5_FILE, T5_TOKENIZER, TRANSFORMER, UNCOND, VAE_FILE, VISION_HEAD,
                     NexusLayout, check_layout)
from .weights import read_flat, read_wan_safetensors, strip_module, strip_prefix

log = logging.getLogger(__name__)

DEFAULTS = {"name": "Lumos-Nexus (the authors' release)", "width": 832, "height": 480, "num_frames": 81,
            "steps": 50, "fps": 16, "guidance_light": 6.0, "guidance_heavy": 6.0, "flow_shift": 5.0,
            "max_sequence_length": 512}
T5_WINDOW = 512


def _say(progress, message, fraction):
    if progress is not None:
        progress(message, fraction)


# -- configs only (validate, estimate) ------------------------------------------------------------------------------
def read_configs(layout: NexusLayout) -> dict:
    """The converted configs of every component, from config files and tensor shapes (mmap: no weights read)."""
    import json

    from .wan_format import diffusers_transformer_config, read_wan_config, t5_config, vae_config

    try:
        llm = json.loads((layout.llm / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {layout.llm / 'config.json'}: {exc}") from None
    adapter = read_flat(layout.file(ADAPTER))
    head = read_flat(layout.file(VISION_HEAD))
    return {
        "light": diffusers_transformer_config(read_wan_config(layout.wan_1_3b)),
        "heavy": diffusers_transformer_config(read_wan_config(layout.heavy)),
        "text_encoder": t5_config(read_flat(layout.wan_1_3b / T5_FILE)),
        "vae": vae_config(read_flat(layout.wan_1_3b / VAE_FILE)),
        "llm": llm,
        "connector_params": sum(v.numel() for v in list(adapter.values()) + list(head.values())),
    }


def sources(layout: NexusLayout, configs: dict):
    """The two generators as engine.models.ResolvedSource (so check_pair and the memory estimate apply)."""
    from ..models import ResolvedSource

    light = ResolvedSource(str(layout.bundle), layout.bundle, "pipeline", layout.wan_1_3b, configs["light"],
                           configs["vae"], configs["text_encoder"])
    heavy = ResolvedSource(str(layout.heavy), layout.heavy, "transformer", layout.heavy, configs["heavy"])
    return light, heavy


def validate(spec):
    """Config-level check of a lumos-nexus spec: every file there, the small pickles readable, the pair coherent."""
    from ..models import check_pair

    layout = check_layout(spec.light, spec.heavy)
    for rel in (SPECIAL_TOKENS, UNCOND):
        read_flat(layout.file(rel))  # refused here, before anything loads, when it needs converting
    light, heavy = sources(layout, read_configs(layout))
    return check_pair(light, heavy)


def lm_dtype_for(device: torch.device, dtype: torch.dtype) -> torch.dtype:
    """VILA runs in float16 in the release; float32 where the engine runs float32 (CPU)."""
    return torch.float32 if dtype == torch.float32 else torch.float16


def estimate(spec, layout: NexusLayout, configs: dict, width, height, num_frames, device, dtype):
    from .memory import nexus_estimate

    return nexus_estimate(configs["light"], configs["heavy"], configs["text_encoder"], configs["vae"],
                          configs["llm"], configs["connector_params"], width=width, height=height,
                          num_frames=num_frames, dtype=dtype, lm_dtype=lm_dtype_for(device, dtype))


def estimate_memory(spec, width=None, height=None, num_frames=None, device=None):
    """(NexusEstimate, MemoryPlan) from configs alone, as engine.loading.estimate_memory gives for other pairs."""
    from ..loading import _memory_choice, pick_device, pick_dtype
    from ..memory_plan import resolve_plan

    layout = check_layout(spec.light, spec.heavy)
    dev = pick_device(device or spec.device)
    dtype = pick_dtype(spec.dtype, dev)
    est = estimate(spec, layout, read_configs(layout), width or DEFAULTS["width"], height or DEFAULTS["height"],
                   num_frames or DEFAULTS["num_frames"], dev, dtype)
    return est, resolve_plan(_memory_choice(spec, dev), est, dev)


# -- weights ----------------------------------------------------------------------------------------------------------
def _overlay(base: dict, finetune: dict, prefix: str) -> int:
    """Replace `base`'s entries by `finetune`'s under `prefix` (names that exist only, as strict=False loads)."""
    count = 0
    for k, v in strip_prefix(finetune, prefix).items():
        if k in base:
            if base[k].shape != v.shape:
                raise ModelError(f"{TRANSFORMER}: {prefix}{k} has shape {tuple(v.shape)}, the model {tuple(base[k].shape)}")
            base[k] = v
            count += 1
    return count


def special_tokens(layout: NexusLayout) -> dict:
    from .context import SPECIAL_TOKENS as NAMES

    flat = read_flat(layout.file(SPECIAL_TOKENS))
    missing = [n for n in NAMES if n not in flat]
    if missing:
        raise ModelError(f"{layout.file(SPECIAL_TOKENS)} lacks the special tokens {', '.join(missing)}")
    return {k: v.float() for k, v in flat.items() if k in NAMES}


def unconditional(layout: NexusLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """(T5 tokens [L, D], VILA states [1, T, H]) of the stored unconditional context, float32 as the release."""
    flat = read_flat(layout.file(UNCOND))

    def first(name):
        if f"{name}.0" in flat:
            return flat[f"{name}.0"]
        if name in flat:
            return flat[name][0]
        raise ModelError(f"{layout.file(UNCOND)} lacks {name}")

    t5 = first("text_emb").float()
    while t5.dim() > 2:
        t5 = t5[0]
    if t5.dim() < 2:
        t5 = t5.unsqueeze(0)
    states = flat.get("vlm_last_hidden_states", flat.get("vlm_last_hidden_states.0"))
    if states is None:
        raise ModelError(f"{layout.file(UNCOND)} lacks vlm_last_hidden_states")
    states = states.float()
    return t5, states if states.dim() == 3 else states.reshape(1, -1, states.shape[-1])


def load(spec, progress=None):
    """engine.loading.LoadedModels for a lumos-nexus spec (light = the bundle, heavy = Wan2.1-T2V-14B)."""
    from diffusers import WanPipeline
    from transformers import AutoTokenizer

    from ..loading import LoadedModels, _load, _memory_choice, pick_device, pick_dtype
    from ..memory_plan import apply_plan, resolve_plan
    from ..schedulers import make_scheduler
    from .adapter import DMAdapter
    from .block import NexusUnderstanding
    from .llm import load_llm
    from .vision_head import VisionHead
    from .wan_format import read_wan_config, t5_encoder, wan_transformer, wan_vae

    _say(progress, "checking the release's files", 0.02)
    layout = check_layout(spec.light, spec.heavy)
    special = special_tokens(layout)
    uncond_t5, uncond_states = unconditional(layout)
    configs = read_configs(layout)
    device = pick_device(spec.device)
    dtype = pick_dtype(spec.dtype, device)
    lm_dtype = lm_dtype_for(device, dtype)

    _say(progress, "reading the fine-tuned 1.3B", 0.05)
    finetune = strip_module(read_flat(layout.file(TRANSFORMER)))
    light_state = _load("light generator", layout.wan_1_3b, lambda: read_wan_safetensors(layout.wan_1_3b))
    applied = _overlay(light_state, finetune, "wan_model.")
    if not applied:
        log.warning("%s has no wan_model.* weights: the release would run the base 1.3B, and so do we",
                    layout.file(TRANSFORMER))
    _say(progress, "converting the light generator", 0.1)
    light = _load("light generator", layout.wan_1_3b,
                  lambda: wan_transformer(read_wan_config(layout.wan_1_3b), light_state, dtype))
    del light_state
    _say(progress, "loading the heavy generator (14B)", 0.2)
    heavy_state = _load("heavy generator", layout.heavy, lambda: read_wan_safetensors(layout.heavy))
    _overlay(heavy_state, finetune, "wan_2_model.")
    heavy = _load("heavy generator", layout.heavy,
                  lambda: wan_transformer(read_wan_config(layout.heavy), heavy_state, dtype))
    del heavy_state
    _say(progress, "loading the VAE", 0.5)
    vae = _load("VAE", layout.wan_1_3b, lambda: wan_vae(read_flat(layout.wan_1_3b / VAE_FILE)))
    _say(progress, "loading the T5 encoder", 0.55)
    text_encoder = _load("text encoder", layout.wan_1_3b,
                         lambda: t5_encoder(read_flat(layout.wan_1_3b / T5_FILE), dtype))
    tokenizer = _load("T5 tokenizer", layout.wan_1_3b / T5_TOKENIZER, lambda: AutoTokenizer.from_pretrained(
        layout.wan_1_3b / T5_TOKENIZER, local_files_only=True))
    _say(progress, "loading VILA's language model", 0.7)
    lm, lm_tokenizer = _load("understanding LM", layout.llm, lambda: load_llm(layout.llm, lm_dtype))
    _say(progress, "loading the vision head and the adapter", 0.8)

    def connector():
        head_state = read_flat(layout.file(VISION_HEAD))
        adapter_state = strip_module(strip_prefix(read_flat(layout.file(ADAPTER)), "model_state_dict."))
        if not adapter_state:
            raise ModelError(f"{layout.file(ADAPTER)} has no model_state_dict")
        _overlay(head_state, finetune, "ar_vision_head.")
        _overlay(adapter_state, finetune, "adapter.")
        return (VisionHead.from_state_dict(head_state).to(dtype).requires_grad_(False),
                DMAdapter.from_state_dict(adapter_state).to(dtype).requires_grad_(False))

    head, adapter = _load("vision head and adapter", layout.bundle, connector)
    del finetune

    loras = {}
    if spec.lora_light or spec.lora_heavy:
        from ..lora import apply_loras

        loras = {"light": apply_loras(light, spec.lora_light, "light"),
                 "heavy": apply_loras(heavy, spec.lora_heavy, "heavy")}
    scheduler_config = {"flow_shift": DEFAULTS["flow_shift"]}
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=light,
                       scheduler=make_scheduler("unipc", DEFAULTS["flow_shift"], scheduler_config))
    pipe.set_progress_bar_config(disable=True)
    est = estimate(spec, layout, configs, DEFAULTS["width"], DEFAULTS["height"], DEFAULTS["num_frames"], device,
                   dtype)
    plan = resolve_plan(_memory_choice(spec, device), est, device)
    _say(progress, f"{plan.describe()}; moving models to {device}", 0.9)
    placed = apply_plan(plan.name, light=light, heavy=heavy, vae=vae, text_encoder=text_encoder, device=device)
    offload_block = plan.name != "resident"
    if not offload_block:
        lm.to(device)
        head.to(device)
        adapter.to(device)
    block = NexusUnderstanding(lm, lm_tokenizer, head, adapter, special, uncond_t5, uncond_states, device=device,
                               dtype=dtype, lm_dtype=lm_dtype, offloaded=offload_block)
    models = LoadedModels(
        light=light, heavy=heavy, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, pipe=pipe,
        scheduler_config=scheduler_config, device=device, dtype=dtype, light_id=str(layout.bundle),
        heavy_id=str(layout.heavy), understanding=block, defaults=dict(DEFAULTS), max_sequence_length=T5_WINDOW,
        memory_plan=plan, text_encoder_offloaded=placed["text_encoder_offloaded"], loras=loras)
    _say(progress, "ready", 1.0)
    return models


