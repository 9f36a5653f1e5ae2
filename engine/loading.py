"""Load a checked pair into memory: two transformers, one VAE, one text encoder + tokenizer, optional understanding."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .errors import ModelError
from .memory_plan import apply_plan
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
        if device.type not in ("cpu", "cuda", "mps"):  # torch knows more ("meta", "xpu"...); we render on these
            raise ModelError(f"unsupported device {choice!r}; use auto, cpu, cuda, cuda:N or mps")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ModelError("device cuda was asked for, but no CUDA GPU is available; use auto or cpu")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelError(f"there is no {choice}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                             f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        if device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                         and torch.backends.mps.is_available()):
            raise ModelError("device mps was asked for, but it is not available here; use auto or cpu")
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
    memory_plan: object | None = None  # engine.memory_plan.MemoryPlan applied at loading
    text_encoder_offloaded: bool = False  # the text encoder lives in host memory between prompts
    loras: dict = field(default_factory=dict)  # {"light": [{"name", "sha256", "scale"}], "heavy": [...]}
    planner: object | None = None  # engine.planner.Planner for a pair without an understanding block (lazy)
    heavy_reads: str = "instruction"  # with a planner: what the heavy generator reads, "instruction" or "plan"

    @contextmanager
    def text_encoding(self):
        """The text encoder on the device for the block's duration (plans that keep it in host memory)."""
        if not self.text_encoder_offloaded:
            yield
            return
        self.text_encoder.to(self.device)
        try:
            yield
        finally:
            self.text_encoder.to("cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

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
            "family": getattr(self.understanding, "family", None),  # a released system (engine/nexus/), else None
            "defaults": dict(self.defaults),
            "max_sequence_length": self.max_sequence_length,
            "vae_scale_spatial": int(self.vae.config.scale_factor_spatial),
            "vae_scale_temporal": int(self.vae.config.scale_factor_temporal),
            "memory_plan": ({"name": self.memory_plan.name, "peak_bytes": self.memory_plan.peak_bytes,
                             "free_bytes": self.memory_plan.free_bytes, "fits": self.memory_plan.fits,
                             "line": self.memory_plan.describe()} if self.memory_plan is not None else None),
            # the LoRAs attached, as each take records them: {"light": [{"name", "sha256", "scale"}], "heavy": [...]}
            "loras": {role: list(self.loras.get(role, [])) for role in ("light", "heavy")},
            "planner": self.planner.id if self.planner is not None else None,
            "heavy_reads": self.heavy_reads if self.planner is not None else "instruction",
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
    if spec.family is not None:  # a released system with its own layout (engine/nexus/)
        from .nexus import check_family
        from .nexus.loading import load

        check_family(spec.family)
        return load(spec, progress)
    say = progress or (lambda message, fraction: None)
    if spec.light is None and spec.heavy is None and not embedded_family_available():
        raise ModelError("the embedded default models are missing (resources/models/lumos-mini); "
                         "run `python -m training.train_all` or choose a light and a heavy model")
    light_src, heavy_src = default_spec_sources(spec)
    _check_heavy_reads(spec)
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
    planner = _planner(spec, understanding, device, dtype)

    for module in (light_model, heavy_model, vae, text_encoder):
        module.requires_grad_(False).eval()
    from .schedulers import make_scheduler

    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=light_model,
                       scheduler=make_scheduler("unipc", scheduler_config.get("flow_shift", 5.0), scheduler_config))
    pipe.set_progress_bar_config(disable=True)
    loras = {}
    if spec.lora_light or spec.lora_heavy:
        from .lora import apply_loras

        say("loading LoRAs", 0.88)
        loras = {"light": apply_loras(light_model, spec.lora_light, "light"),
                 "heavy": apply_loras(heavy_model, spec.lora_heavy, "heavy")}
    plan = memory_plan_for_sources(spec, light, heavy, device, dtype, family_request_size(defaults))
    say(f"{plan.describe()}; moving models to {device}", 0.92)
    placed = apply_plan(plan.name, light=light_model, heavy=heavy_model, vae=vae, text_encoder=text_encoder,
                        device=device)
    models = LoadedModels(
        light=light_model, heavy=heavy_model, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, pipe=pipe,
        scheduler_config=scheduler_config, device=device, dtype=dtype, light_id=_display_id(light),
        heavy_id=_display_id(heavy), understanding=understanding, defaults=defaults,
        max_sequence_length=int(defaults.get("max_sequence_length", DEFAULT_MAX_SEQUENCE_LENGTH)),
        memory_plan=plan, text_encoder_offloaded=placed["text_encoder_offloaded"], loras=loras,
        planner=planner, heavy_reads=spec.heavy_reads if planner is not None else "instruction",
    )
    say("ready", 1.0)
    return models


def _planner(spec: ModelSpec, understanding, device: torch.device, dtype: torch.dtype):
    """The spec's planner (not loaded yet: it loads on first use), or None. A family with its own understanding
    block keeps it and does not use a planner."""
    from .planner import Planner

    if not spec.planner:
        return None
    if understanding is not None:
        log.warning("these models have their own understanding block; the planner %s is not used", spec.planner)
        return None
    return Planner(spec.planner, device=device, dtype=dtype)


def _check_heavy_reads(spec: ModelSpec) -> None:
    from .planner import HEAVY_READS

    if spec.heavy_reads not in HEAVY_READS:
        raise ModelError(f"heavy_reads must be one of {', '.join(HEAVY_READS)}, got {str(spec.heavy_reads)[:40]!r}")


def _load_understanding(folder: Path, device: torch.device):
    try:
        from .understanding import UnderstandingBlock
    except ImportError as exc:
        log.warning("understanding block unavailable (%s); the light generator gets text only", exc)
        return None
    return _load("understanding block", folder, lambda: UnderstandingBlock.from_pretrained(folder, device=device))


def family_request_size(defaults: dict) -> tuple[int, int, int]:
    """(width, height, frames) a pair is sized for when no request is given: its family's defaults, else Wan's."""
    def value(key, fallback):
        v = defaults.get(key)
        return int(v) if isinstance(v, int) and not isinstance(v, bool) and v > 0 else fallback

    return value("width", 832), value("height", 480), value("num_frames", 81)


def _memory_choice(spec: ModelSpec, device: torch.device) -> str:
    choice = getattr(spec, "memory", "auto") or "auto"
    if choice == "auto" and spec.offload and device.type == "cuda":
        return "low"  # --offload (before memory plans) streamed both generators' blocks
    return choice


def memory_plan_for_sources(spec: ModelSpec, light: ResolvedSource, heavy: ResolvedSource, device: torch.device,
                            dtype: torch.dtype, size: tuple[int, int, int]):
    """The MemoryPlan for two inspected sources on `device` (configs only; nothing is loaded)."""
    from .memory_plan import estimate_for_sources, resolve_plan

    width, height, frames = size
    try:
        estimate = estimate_for_sources(light, heavy, width=width, height=height, num_frames=frames, dtype=dtype)
    except ModelError:
        raise
    except Exception as exc:  # an unusual config: plan without an estimate rather than refuse to load
        log.warning("could not estimate the memory these models need (%s: %s)", type(exc).__name__, exc)
        estimate = None
    return resolve_plan(_memory_choice(spec, device), estimate, device)


def estimate_memory(spec: ModelSpec | None, width: int | None = None, height: int | None = None,
                    num_frames: int | None = None, device: str | None = None):
    """(MemoryEstimate, MemoryPlan) for `spec` and a request size (None: the family's defaults), from config files
    alone: what loading `spec` would choose on its device now. Raises ModelError for unusable sources."""
    from .memory_plan import estimate_for_sources, resolve_plan

    spec = spec or ModelSpec()
    if spec.family is not None:
        from .nexus import check_family
        from .nexus.loading import estimate_memory as family_estimate

        check_family(spec.family)
        return family_estimate(spec, width, height, num_frames, device)
    light_src, heavy_src = default_spec_sources(spec)
    light, heavy = inspect_source(light_src), inspect_source(heavy_src)
    report = check_pair(light, heavy)
    if not report.ok:
        raise ModelError(report.message())
    dev = pick_device(device or spec.device)
    dtype = pick_dtype(spec.dtype, dev)
    fw, fh, ff = family_request_size(family_defaults(family_dir_of(light)))
    estimate = estimate_for_sources(light, heavy, width=width or fw, height=height or fh, num_frames=num_frames or ff,
                                    dtype=dtype)
    return estimate, resolve_plan(_memory_choice(spec, dev), estimate, dev)
