"""Load a checked pair into memory: two transformers, one VAE, one text encoder + tokenizer, optional understanding."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .errors import ModelError
from .models import (
    DEFAULT_FAMILY,
    ModelSpec,
    ResolvedSource,
    check_pair,
    default_spec_sources,
    embedded_family_available,
    family_defaults,
    family_dir_of,
    inspect_source,
)

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
DEFAULT_MAX_SEQUENCE_LENGTH = 512  # what WanPipeline.__call__ uses; the padded length changes cross-attention


def pick_device(choice: str = "auto") -> torch.device:
    if choice and choice != "auto":
        try:
            device = torch.device(choice)
        except RuntimeError:
            raise ModelError(f"unknown device {choice!r}; use auto, cpu, cuda, cuda:N or mps") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ModelError("device cuda was asked for, but no CUDA GPU is available; use auto or cpu")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(choice: str, device: torch.device) -> torch.dtype:
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if choice and choice != "auto":
        if choice not in table:
            raise ModelError(f"unknown dtype {choice!r}; use auto, float32, bfloat16 or float16")
        return table[choice]
    # bf16 is 10-40x slower than fp32 on CPUs without AMX (docs/design.md §7)
    return torch.bfloat16 if device.type == "cuda" else torch.float32


@dataclass
class LoadedModels:
    light: torch.nn.Module
    heavy: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    pipe: object  # a WanPipeline over the shared parts; we use its prompt encoding and video post-processing
    scheduler_config: dict
    device: torch.device
    dtype: torch.dtype
    light_id: str
    heavy_id: str
    understanding: object | None = None
    defaults: dict = field(default_factory=dict)
    max_sequence_length: int = DEFAULT_MAX_SEQUENCE_LENGTH

    def summary(self) -> dict:
        def params(m):
            return sum(p.numel() for p in m.parameters())

        return {
            "light": self.light_id,
            "heavy": self.heavy_id,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "light_params": params(self.light),
            "heavy_params": params(self.heavy),
            "has_understanding": self.understanding is not None,
            "defaults": dict(self.defaults),
            "max_sequence_length": self.max_sequence_length,
            "vae_scale_spatial": int(self.vae.config.scale_factor_spatial),
            "vae_scale_temporal": int(self.vae.config.scale_factor_temporal),
        }


def _load(what: str, folder: Path, fn):
    try:
        return fn()
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"could not load the {what} from {folder}: {type(exc).__name__}: {exc}") from None


def _display_id(source: ResolvedSource) -> str:
    try:
        rel = source.path.resolve().relative_to(DEFAULT_FAMILY.resolve())
        return f"lumos-mini/{rel}"
    except ValueError:
        return source.source


def load_models(spec: ModelSpec | None, progress: Progress | None = None) -> LoadedModels:
    """Resolve, check and load `spec` (None: the embedded family). Raises ModelError with a clear message."""
    from diffusers import AutoencoderKLWan, WanPipeline
    from transformers import AutoTokenizer, UMT5EncoderModel

    from .positional_transformer import load_transformer

    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    # our own progress reporting replaces the libraries' per-file bars
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    spec = spec or ModelSpec()
    say = progress or (lambda message, fraction: None)
    if spec.light is None and spec.heavy is None and not embedded_family_available():
        raise ModelError("the embedded default models are missing (resources/models/lumos-mini); "
                         "run `python -m training.train_all` or choose a light and a heavy model")
    light_src, heavy_src = default_spec_sources(spec)
    say("checking models", 0.02)
    light, heavy = inspect_source(light_src), inspect_source(heavy_src)
    report = check_pair(light, heavy)
    if not report.ok:
        raise ModelError(report.message())
    shared = light if light.kind == "pipeline" else heavy
    device = pick_device(spec.device)
    dtype = pick_dtype(spec.dtype, device)

    say("loading the light generator", 0.1)
    light_model = _load("light generator", light.transformer_dir, lambda: load_transformer(
        light.transformer_dir, torch_dtype=dtype, use_safetensors=True))
    say("loading the heavy generator", 0.35)
    heavy_model = _load("heavy generator", heavy.transformer_dir, lambda: load_transformer(
        heavy.transformer_dir, torch_dtype=dtype, use_safetensors=True))
    say("loading the VAE", 0.6)
    # Wan keeps its VAE in float32: decoding in bf16 costs visible banding for little memory
    vae = _load("VAE", shared.path / "vae", lambda: AutoencoderKLWan.from_pretrained(
        shared.path / "vae", torch_dtype=torch.float32, use_safetensors=True))
    say("loading the text encoder", 0.75)
    text_encoder = _load("text encoder", shared.path / "text_encoder", lambda: UMT5EncoderModel.from_pretrained(
        shared.path / "text_encoder", torch_dtype=dtype, use_safetensors=True))
    tokenizer = _load("tokenizer", shared.path / "tokenizer", lambda: AutoTokenizer.from_pretrained(
        shared.path / "tokenizer"))
    scheduler_config = {}
    if (shared.path / "scheduler" / "scheduler_config.json").is_file():
        from .models import _read_json

        scheduler_config = _read_json(shared.path / "scheduler" / "scheduler_config.json")

    family = family_dir_of(light)
    defaults = family_defaults(family)
    understanding = None
    if spec.understanding != "none":
        folder = Path(spec.understanding) if spec.understanding else (family / "understanding" if family else None)
        if folder is not None and folder.is_dir():
            say("loading the understanding block", 0.85)
            understanding = _load_understanding(folder, device)
        elif spec.understanding:
            raise ModelError(f"understanding block folder not found: {spec.understanding}")

    for module in (light_model, heavy_model, vae, text_encoder):
        module.requires_grad_(False).eval()
    from .schedulers import make_scheduler

    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=light_model,
                       scheduler=make_scheduler("unipc", scheduler_config.get("flow_shift", 5.0), scheduler_config))
    pipe.set_progress_bar_config(disable=True)
    say("moving models to " + str(device), 0.92)
    _place(light_model, heavy_model, vae, text_encoder, device, spec.offload)
    models = LoadedModels(
        light=light_model, heavy=heavy_model, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, pipe=pipe,
        scheduler_config=scheduler_config, device=device, dtype=dtype, light_id=_display_id(light),
        heavy_id=_display_id(heavy), understanding=understanding, defaults=defaults,
        max_sequence_length=int(defaults.get("max_sequence_length", DEFAULT_MAX_SEQUENCE_LENGTH)),
    )
    say("ready", 1.0)
    return models


def _load_understanding(folder: Path, device: torch.device):
    try:
        from .understanding import UnderstandingBlock
    except ImportError as exc:
        log.warning("understanding block unavailable (%s); the light generator gets text only", exc)
        return None
    return _load("understanding block", folder, lambda: UnderstandingBlock.from_pretrained(folder, device=device))


def _place(light, heavy, vae, text_encoder, device: torch.device, offload: bool) -> None:
    if device.type == "cpu":
        return
    if offload and device.type == "cuda":
        # Group offload streams each generator's blocks to the GPU as they run (a 14B pair does not fit 24 GB).
        for model in (light, heavy):
            model.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"),
                                       offload_type="block_level", num_blocks_per_group=1, use_stream=True)
        vae.to(device)
        text_encoder.to(device)
        return
    for module in (light, heavy, vae, text_encoder):
        module.to(device)
