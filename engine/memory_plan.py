"""How much device memory a pair needs, before loading anything, and which of three plans fits the card.

Weights: every component is built from its config on the meta device (no memory, no weights read) and its parameters
are counted × their dtype's size; the generators keep diffusers' `_keep_in_fp32_modules` in float32 (what
`from_pretrained(torch_dtype=bf16)` does), Wan's VAE is float32 (engine/loading.py).

Activations, from the request (docs/design.md §5 states the derivations and what was measured):
- generator tokens = latent frames × (H / 8 / 2) × (W / 8 / 2) for Wan's 8× VAE and patch (1, 2, 2); 832×480×81 is
  21 × 30 × 52 = 32,760 tokens. One block's working set per token is the larger of its attention stage
  (≈ 16·D bytes at bf16) and its FFN stage (≈ 2·D + 4·ffn_dim), measured on CPU from live tensor bytes
  (devtools/measure_memory.py); attention is the fused kernel (no tokens² matrix). CFG runs its two passes one after
  the other, so it does not double this.
- VAE decode (the usual peak on Wan): AutoencoderKLWan decodes one latent frame at a time (4 output frames) with a
  causal cache, so its working set grows with H×W, not with F: per pixel of a chunk it holds a few full-resolution
  tensors of `base_dim × dim_mult[0]` channels × 4 frames in float32 — VAE_LIVE_TENSORS of them (measured on CPU by
  counting the bytes of live tensor storages, devtools/measure_memory.py: 17.9 KB per pixel at 64² and 128² for
  the real config, base_dim 96, i.e. 11.7 × (96 ch × 4 frames × 4 B), 4.5 KB per pixel-frame; flat in F). The
  decoded video itself is
  F × H × W × 3 float32, held up to three times (the per-chunk concatenation and the clamp). VAE tiling (256 px tiles)
  caps the working set at one tile's pixels.

Plans, most preferred first:
- resident: everything on the device.
- balanced: the text encoder lives in host memory and runs on the device only while a new prompt is encoded (the
  embeddings are cached, engine/runtime.py); the heavy generator is group-offloaded block by block (diffusers'
  `enable_group_offload`, with CUDA streams); the light generator and the VAE stay resident.
- low: both generators group-offloaded, the text encoder as in balanced, and VAE tiling.
"""

from __future__ import annotations

import gc
import logging
import math
from dataclasses import dataclass, field

from .errors import LumosError, ModelError
from .vae_widths import decoder_base_dim

log = logging.getLogger(__name__)

PLANS = ("resident", "balanced", "low")
MEMORY_CHOICES = ("auto",) + PLANS
GB = 1e9
SAFETY_FRACTION = 0.10  # the estimated peak × 1.10 + SAFETY_BYTES must fit the free memory
SAFETY_BYTES = 512 << 20  # CUDA caching-allocator fragmentation, cuBLAS/cuDNN workspaces
TEXT_TOKENS = 512  # WanPipeline's padded prompt length
VAE_CHUNK_FRAMES = 4  # output frames per decoded latent frame (the temporal factor)
VAE_LIVE_TENSORS = 12  # full-resolution chunk tensors alive at once in a decoder stage (measured, see above)
VAE_OUTPUT_COPIES = 3  # the decoded video: the growing concatenation, its next copy, the clamp
VAE_TILE = 256  # diffusers' AutoencoderKLWan tile_sample_min_height/width
OFFLOAD_GROUPS_ON_DEVICE = 2  # block-level group offload with a stream: the running block and the prefetched one


def _dtype_size(dtype) -> int:
    import torch

    return torch.tensor([], dtype=dtype).element_size()


@dataclass(frozen=True)
class ComponentSize:
    """One model's weights: parameters, bytes on the device, and (generators) its largest block's bytes."""

    params: int
    bytes: int
    block_bytes: int = 0  # the largest transformer block (what group offload holds per group)
    outside_blocks_bytes: int = 0  # embeddings, output head: kept with the running group

    @property
    def offloaded_bytes(self) -> int:
        """What a block-level group-offloaded model holds on the device at once."""
        if not self.block_bytes:
            return self.bytes
        return min(self.bytes, OFFLOAD_GROUPS_ON_DEVICE * self.block_bytes + self.outside_blocks_bytes)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per component and per activation for one pair and one request size; `peak(plan)` per plan."""

    light: ComponentSize
    heavy: ComponentSize
    text_encoder: ComponentSize
    vae: ComponentSize
    tokens: int  # generator tokens per pass
    width: int
    height: int
    num_frames: int
    activations: dict = field(default_factory=dict)  # light, heavy, text_encoder, vae_decode, vae_decode_tiled

    def phases(self, plan: str) -> dict:
        """Bytes on the device in each phase of a render under `plan` (encode the prompt, denoise, decode)."""
        a = self.activations
        generators_act = max(a["light"], a["heavy"])
        latents = a["latents"]
        if plan == "resident":
            base = self.light.bytes + self.heavy.bytes + self.vae.bytes + self.text_encoder.bytes
            return {"encode": base + a["text_encoder"], "denoise": base + generators_act + latents,
                    "decode": base + a["vae_decode"]}
        if plan == "balanced":
            base = self.light.bytes + self.heavy.offloaded_bytes + self.vae.bytes
            return {"encode": base + self.text_encoder.bytes + a["text_encoder"],
                    "denoise": base + generators_act + latents, "decode": base + a["vae_decode"]}
        if plan == "low":
            base = self.light.offloaded_bytes + self.heavy.offloaded_bytes + self.vae.bytes
            return {"encode": base + self.text_encoder.bytes + a["text_encoder"],
                    "denoise": base + generators_act + latents, "decode": base + a["vae_decode_tiled"]}
        raise LumosError(f"unknown memory plan {plan!r}; use one of {', '.join(MEMORY_CHOICES)}")

    def peak(self, plan: str) -> int:
        return max(self.phases(plan).values())

    @property
    def weights_bytes(self) -> int:
        return self.light.bytes + self.heavy.bytes + self.text_encoder.bytes + self.vae.bytes

    def to_dict(self) -> dict:
        return {
            "request": {"width": self.width, "height": self.height, "num_frames": self.num_frames},
            "tokens": self.tokens,
            "params": {k: getattr(self, k).params for k in ("light", "heavy", "text_encoder", "vae")},
            "weights_bytes": {k: getattr(self, k).bytes for k in ("light", "heavy", "text_encoder", "vae")},
            "activation_bytes": dict(self.activations),
            "peak_bytes": {p: self.peak(p) for p in PLANS},
        }


@dataclass(frozen=True)
class MemoryPlan:
    """The plan chosen (or asked for), its estimated peak, and the free memory it was chosen against."""

    name: str
    peak_bytes: int | None
    free_bytes: int | None  # None: not a CUDA device (CPU, MPS): no budget to check
    device: str = "cpu"
    fits: bool = True
    message: str = ""  # when nothing fits: what is needed

    def describe(self) -> str:
        """One line for the CLI and the status bar."""
        if self.free_bytes is None:
            where = "CPU" if self.device.startswith("cpu") else self.device
            head = f"memory plan: {self.name} ({where}: the models stay in system memory"
            return head + (f", est. peak {fmt_gb(self.peak_bytes)})" if self.peak_bytes else ")")
        peak = f"est. peak {fmt_gb(self.peak_bytes)}" if self.peak_bytes is not None else "peak not estimated"
        line = f"memory plan: {self.name} ({peak} of {fmt_gb(self.free_bytes)} free)"
        return line + (f"; {self.message}" if self.message else "")

    def to_dict(self) -> dict:
        return {"name": self.name, "peak_bytes": self.peak_bytes, "free_bytes": self.free_bytes,
                "device": self.device, "fits": self.fits, "message": self.message}


def fmt_gb(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / GB:.1f} GB" if n >= 0.1 * GB else f"{max(1, round(n / 1e6))} MB"


def fits(peak: int, free: int) -> bool:
    return peak * (1 + SAFETY_FRACTION) + SAFETY_BYTES <= free


def needed_bytes(peak: int) -> int:
    return int(peak * (1 + SAFETY_FRACTION) + SAFETY_BYTES)


def next_plan(name: str | None) -> str | None:
    """The plan after `name` in order of memory use (None after "low")."""
    if name not in PLANS:
        return PLANS[1]
    i = PLANS.index(name)
    return PLANS[i + 1] if i + 1 < len(PLANS) else None


def choose_plan(estimate: MemoryEstimate, free_bytes: int | None, device: str = "cuda") -> MemoryPlan:
    """The first plan whose peak fits `free_bytes` with the safety margin; else "low", saying what it needs."""
    if free_bytes is None:
        return MemoryPlan("resident", estimate.peak("resident"), None, device)
    for name in PLANS:
        peak = estimate.peak(name)
        if fits(peak, free_bytes):
            return MemoryPlan(name, peak, free_bytes, device)
    peak = estimate.peak("low")
    return MemoryPlan("low", peak, free_bytes, device, fits=False, message=(
        f"even the low plan needs about {fmt_gb(needed_bytes(peak))} and {fmt_gb(free_bytes)} is free: "
        f"render fewer frames or a smaller size ({estimate.width}x{estimate.height}x{estimate.num_frames} asked)"))


def plan_named(name: str, estimate: MemoryEstimate | None, free_bytes: int | None, device: str) -> MemoryPlan:
    """A plan the user asked for by name (its peak, and a warning when it will not fit)."""
    if name not in PLANS:
        raise LumosError(f"unknown memory plan {name!r}; use one of {', '.join(MEMORY_CHOICES)}")
    peak = estimate.peak(name) if estimate is not None else None
    ok = free_bytes is None or peak is None or fits(peak, free_bytes)
    message = "" if ok else f"needs about {fmt_gb(needed_bytes(peak))}; it may run out of memory"
    return MemoryPlan(name, peak, free_bytes, device, fits=ok, message=message)


# -- weights from configs -----------------------------------------------------------------------------------------
def _clean(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def transformer_size(config: dict, dtype) -> ComponentSize:
    """A Wan transformer built from `config` on the meta device: parameters, bytes, one block's bytes."""
    import torch

    from .positional_transformer import PositionalWanTransformer3DModel
    from diffusers import WanTransformer3DModel

    cls = PositionalWanTransformer3DModel if config.get("_class_name") == "PositionalWanTransformer3DModel" \
        else WanTransformer3DModel
    with torch.device("meta"):
        model = cls.from_config(_clean(config))
    keep = tuple(getattr(model, "_keep_in_fp32_modules", None) or ())
    size, fp32 = _dtype_size(dtype), 4

    def nbytes(name: str, p) -> int:
        return p.numel() * (fp32 if any(k in name.split(".") for k in keep) else size)

    total = params = 0
    per_block: dict[str, int] = {}
    for name, p in model.named_parameters():
        b = nbytes(name, p)
        total += b
        params += p.numel()
        if name.startswith("blocks."):
            block = name.split(".")[1]
            per_block[block] = per_block.get(block, 0) + b
    biggest = max(per_block.values(), default=0)
    return ComponentSize(params, total, biggest, total - sum(per_block.values()))


def text_encoder_size(config: dict, dtype) -> ComponentSize:
    """A UMT5 encoder from its config on the meta device. Not accelerate's init_empty_weights: it unties the input
    embedding from `shared` (transformers 5), which would count the 1 G-parameter vocabulary twice."""
    import torch
    from transformers import UMT5Config, UMT5EncoderModel

    cfg = UMT5Config(**_clean(config))
    with torch.device("meta"):
        model = UMT5EncoderModel(cfg)
    params = sum(p.numel() for p in model.parameters())  # parameters() yields the tied embedding once
    return ComponentSize(params, params * _dtype_size(dtype))


def vae_size(config: dict) -> ComponentSize:
    """Wan's VAE from its config on the meta device, float32 (how engine/loading.py loads it)."""
    import torch
    from diffusers import AutoencoderKLWan

    with torch.device("meta"):
        model = AutoencoderKLWan.from_config(_clean(config))
    params = sum(p.numel() for p in model.parameters())
    return ComponentSize(params, params * 4)


# -- activations from the request ---------------------------------------------------------------------------------
def transformer_activation_bytes(config: dict, tokens: int, text_tokens: int, dtype) -> int:
    """One generator pass's working memory: its largest block stage, per token, plus the text context."""
    dim = int(config["num_attention_heads"]) * int(config["attention_head_dim"])
    ffn = int(config["ffn_dim"])
    s = _dtype_size(dtype)  # 2 for bf16
    # measured (devtools/measure_memory.py transformer): 16·D bytes per token at bf16 in the attention stage (hidden,
    # modulated input, q, k, v after RMS norm and RoPE, output) and 4.1·ffn_dim in the FFN stage (up-projection and
    # GELU side by side); 1 + 2 ffn/D here keeps a D of margin over the FFN measurement
    attention = 8 * dim * s
    feed_forward = dim * s + 2 * ffn * s
    rope = tokens * int(config["attention_head_dim"]) * 2 * 4  # cos and sin, fp32
    context = text_tokens * (int(config.get("text_dim", 4096)) + 2 * dim) * s
    return tokens * max(attention, feed_forward) + rope + context


def text_encoder_activation_bytes(config: dict, dtype, text_tokens: int = TEXT_TOKENS) -> int:
    d, ff, heads = int(config["d_model"]), int(config["d_ff"]), int(config["num_heads"])
    s = _dtype_size(dtype)
    # hidden states and the gated FFN's two up-projections, the explicit attention scores (fp32) with the position bias
    return text_tokens * (6 * d + 3 * ff) * s + 2 * heads * text_tokens * text_tokens * 4


def vae_decode_bytes(config: dict, width: int, height: int, num_frames: int, tiled: bool = False) -> int:
    """Working memory of AutoencoderKLWan.decode at F×H×W (float32)."""
    channels = decoder_base_dim(config) * int((config.get("dim_mult") or [1])[0])
    chunk_pixels = (min(height, VAE_TILE) * min(width, VAE_TILE)) if tiled else height * width
    working = VAE_LIVE_TENSORS * channels * VAE_CHUNK_FRAMES * 4 * chunk_pixels
    output = VAE_OUTPUT_COPIES * num_frames * height * width * 3 * 4
    return working + output


def latent_shape(vae_config: dict, tconfig: dict, width: int, height: int, num_frames: int) -> tuple[int, int, int]:
    spatial = int(vae_config.get("scale_factor_spatial", 8))
    temporal = int(vae_config.get("scale_factor_temporal", 4))
    return (num_frames - 1) // temporal + 1, height // spatial, width // spatial


def estimate(light_config: dict, heavy_config: dict, text_encoder_config: dict, vae_config: dict, *,
             width: int, height: int, num_frames: int, dtype=None, text_tokens: int = TEXT_TOKENS) -> MemoryEstimate:
    """Everything a render of F×H×W needs on the device, from the four configs alone (nothing is loaded)."""
    import torch

    dtype = dtype or torch.bfloat16
    f, h, w = latent_shape(vae_config, light_config, width, height, num_frames)
    patch = [int(p) for p in light_config.get("patch_size", (1, 2, 2))]
    tokens = math.ceil(f / patch[0]) * (h // patch[1]) * (w // patch[2])
    light = transformer_size(light_config, dtype)
    heavy = transformer_size(heavy_config, dtype)
    te = text_encoder_size(text_encoder_config, dtype)
    vae = vae_size(vae_config)
    latent_bytes = int(light_config.get("in_channels", 16)) * f * h * w * 4
    activations = {
        "light": transformer_activation_bytes(light_config, tokens, text_tokens, dtype),
        "heavy": transformer_activation_bytes(heavy_config, tokens, text_tokens, dtype),
        "text_encoder": text_encoder_activation_bytes(text_encoder_config, dtype, text_tokens),
        "vae_decode": vae_decode_bytes(vae_config, width, height, num_frames),
        "vae_decode_tiled": vae_decode_bytes(vae_config, width, height, num_frames, tiled=True),
        "latents": 8 * latent_bytes,  # noise, the two velocities, their fusion, the scheduler's history
    }
    return MemoryEstimate(light, heavy, te, vae, tokens, width, height, num_frames, activations)


def estimate_for_sources(light, heavy, *, width: int, height: int, num_frames: int, dtype=None) -> MemoryEstimate:
    """`estimate` for two checked ResolvedSources (engine.models.inspect_source): config files only."""
    shared = light if light.kind == "pipeline" else heavy
    if shared.vae_config is None or shared.text_encoder_config is None:
        raise ModelError("neither model is a pipeline folder: no VAE and text encoder to size")
    return estimate(light.transformer_config, heavy.transformer_config, shared.text_encoder_config,
                    shared.vae_config, width=width, height=height, num_frames=num_frames, dtype=dtype)


# -- the device ---------------------------------------------------------------------------------------------------
def free_bytes(device) -> int | None:
    """Free memory on a CUDA device (torch.cuda.mem_get_info); None for CPU and MPS."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def resolve_plan(choice: str, estimate_: MemoryEstimate | None, device) -> MemoryPlan:
    """`choice` (auto or a plan name) for `device`: auto is resident off CUDA, else `choose_plan`."""
    import torch

    device = torch.device(device)
    choice = choice or "auto"
    if choice not in MEMORY_CHOICES:
        raise LumosError(f"unknown memory plan {choice!r}; use one of {', '.join(MEMORY_CHOICES)}")
    free = free_bytes(device)
    if choice == "auto":
        if free is None or estimate_ is None:
            return MemoryPlan("resident", estimate_.peak("resident") if estimate_ else None, free, str(device))
        return choose_plan(estimate_, free, str(device))
    return plan_named(choice, estimate_, free, str(device))


# -- applying a plan ----------------------------------------------------------------------------------------------
def group_offload(model, device) -> None:
    """diffusers' block-level group offload: each block is moved to `device` as it runs, the rest stays in host
    memory (pinned, prefetched on a CUDA stream where there is one)."""
    import torch

    device = torch.device(device)
    model.enable_group_offload(onload_device=device, offload_device=torch.device("cpu"), offload_type="block_level",
                               num_blocks_per_group=1, use_stream=device.type == "cuda")


def apply_plan(name: str, *, light, heavy, vae, text_encoder, device) -> dict:
    """Place the four models for plan `name`. Returns what the runtime needs to know: {"text_encoder_offloaded"}."""
    import torch

    device = torch.device(device)
    if name not in PLANS:
        raise LumosError(f"unknown memory plan {name!r}; use one of {', '.join(PLANS)}")
    if name == "resident":
        for module in (light, heavy, vae, text_encoder):
            module.to(device)
        return {"text_encoder_offloaded": False}
    vae.to(device)
    text_encoder.to("cpu")  # runs on the device only while a new prompt is encoded (LoadedModels.text_encoding)
    group_offload(heavy, device)
    if name == "balanced":
        light.to(device)
    else:
        group_offload(light, device)
        vae.enable_tiling()
    return {"text_encoder_offloaded": True}


# -- out of memory ------------------------------------------------------------------------------------------------
def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, (oom, MemoryError)) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def free_device_memory() -> None:
    """Drop every unreferenced tensor and hand the CUDA cache back."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        try:
            torch.cuda.reset_peak_memory_stats()
        except Exception:  # noqa: BLE001 - statistics only
            pass
