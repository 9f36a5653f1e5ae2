"""Find, check and load a light + heavy generator pair that share one latent space.

Sources: a diffusers Wan pipeline folder (model_index.json), a bare transformer folder (config.json of a
WanTransformer3DModel, or a folder holding transformer/), or a Hugging Face repo id resolved from the local
cache only. The VAE, text encoder and tokenizer are loaded once, from the first pipeline folder of the pair.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelError
from .vae_widths import decoder_base_dim

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEFAULT_FAMILY = RESOURCES / "models" / "lumos-mini"
FAMILY_FILE = "lumos.json"
TRANSFORMER_CLASS = "WanTransformer3DModel"
# Wan's transformer, or Wan's with an absolute position embedding (engine/positional_transformer.py, the mini family).
TRANSFORMER_CLASSES = (TRANSFORMER_CLASS, "PositionalWanTransformer3DModel")
# Config keys that must agree for two generators to work on the same latents and text tokens.
SHARED_TRANSFORMER_KEYS = ("in_channels", "out_channels", "patch_size", "text_dim")
SHARED_VAE_KEYS = ("z_dim", "latents_mean", "latents_std", "scale_factor_spatial", "scale_factor_temporal",
                   "base_dim", "dim_mult", "num_res_blocks", "temperal_downsample")


@dataclass(frozen=True)
class ModelSpec:
    """Which models to load. None for light/heavy means the embedded default family.

    understanding: a folder with lm/ and connector/, "none" to disable, or None for the family's own block.
    device: "auto" (cuda -> mps -> cpu) or a torch device string. dtype: "auto" (bf16 on GPU, fp32 on CPU),
    "float32", "bfloat16" or "float16". offload: model CPU offload (GPU memory below both generators); with
    memory "auto" on a CUDA device it asks for the "low" plan. memory: "auto" (the first plan that fits the card's
    free memory, resident off CUDA), "resident", "balanced" or "low" (engine/memory_plan.py).
    family: None for a light + heavy pair as above; "lumos-nexus" for the authors' released system (light: the
    Omni-Video bundle folder, heavy: the original-format Wan2.1-T2V-14B folder; engine/nexus/).
    planner: an instruction LLM (folder or cached repo id) that writes the plan for a pair without an understanding
    block (engine/planner.py); heavy_reads: what the heavy generator of such a pair reads, "instruction" or "plan".
    """

    light: str | None = None
    heavy: str | None = None
    understanding: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    offload: bool = False
    memory: str = "auto"
    # LoRAs per generator: ((path, scale), ...), attached in order with their strengths (engine/lora.py)
    lora_light: tuple = ()
    lora_heavy: tuple = ()
    family: str | None = None
    planner: str | None = None
    heavy_reads: str = "instruction"

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("light", "heavy", "understanding", "device", "dtype", "offload",
                                             "memory")}
        if self.lora_light or self.lora_heavy:
            out["lora_light"] = [list(x) for x in self.lora_light]
            out["lora_heavy"] = [list(x) for x in self.lora_heavy]
        if self.family:
            out["family"] = self.family
        if self.planner:
            out["planner"], out["heavy_reads"] = self.planner, self.heavy_reads
        return out


@dataclass
class ResolvedSource:
    """A model source turned into a local folder, with what it contains."""

    source: str  # what the user gave
    path: Path
    kind: str  # "pipeline" or "transformer"
    transformer_dir: Path
    transformer_config: dict
    vae_config: dict | None = None
    text_encoder_config: dict | None = None

    @property
    def model_id(self) -> str:
        return self.source


@dataclass
class PairReport:
    """What `check_pair` found: ok, or the mismatches, named."""

    light: ResolvedSource
    heavy: ResolvedSource
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        if self.ok:
            return "The two generators share one latent space."
        return "These generators do not share a latent space: " + "; ".join(self.problems)


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ModelError(f"missing file: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} is not a JSON object")
    return data


# What a usable model's config can hold: a value outside these (a crafted or damaged config.json) would have the
# loader or the memory estimate build billions of layers or tensors before anything could fail. Wan2.1/2.2 14B sits
# far inside them (40 layers, 40 heads of 128, ffn 13824; UMT5-XXL 24 layers of 4096, vocabulary 256384).
MAX_PARAMETERS = 200e9
_TRANSFORMER_BOUNDS = {"num_layers": (1, 1000), "num_attention_heads": (1, 1024), "attention_head_dim": (1, 4096),
                       "ffn_dim": (1, 1 << 20), "in_channels": (1, 4096), "out_channels": (1, 4096),
                       "text_dim": (1, 1 << 16), "freq_dim": (1, 1 << 16), "rope_max_seq_len": (1, 1 << 16),
                       "patch_size": (1, 64), "position_grid": (1, 4096), "image_dim": (1, 1 << 16),
                       "added_kv_proj_dim": (1, 1 << 16), "pos_embed_seq_len": (1, 1 << 16)}
_TEXT_ENCODER_BOUNDS = {"d_model": (1, 1 << 16), "d_ff": (1, 1 << 20), "d_kv": (1, 4096), "num_heads": (1, 1024),
                        "num_layers": (1, 1000), "vocab_size": (1, 1 << 21), "relative_attention_num_buckets":
                        (1, 1 << 16), "relative_attention_max_distance": (1, 1 << 20)}
_VAE_BOUNDS = {"base_dim": (1, 4096), "decoder_base_dim": (1, 4096), "z_dim": (1, 1024), "dim_mult": (1, 64),
               "num_res_blocks": (1, 64), "in_channels": (1, 64), "out_channels": (1, 64),
               "scale_factor_spatial": (1, 64), "scale_factor_temporal": (1, 64), "patch_size": (1, 64)}
_MAX_LIST = 16  # patch_size, dim_mult, position_grid: a handful of numbers


def _check_numbers(config: dict, bounds: dict, path: Path) -> None:
    """ModelError unless every bounded key of `config` holds a whole number (or a short list of them) in range."""
    for key, (lo, hi) in bounds.items():
        value = config.get(key)
        if value is None:
            continue
        items = value if isinstance(value, list) and 0 < len(value) <= _MAX_LIST else [value]
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int) or not lo <= item <= hi:
                raise ModelError(f"{path}: {key} is {_short(value)}; a usable model has whole numbers from {lo} to "
                                 f"{hi} there (is the file damaged?)")


def _check_size(config: dict, path: Path, parameters: float) -> None:
    if parameters > MAX_PARAMETERS:
        raise ModelError(f"{path} describes a model of about {parameters / 1e9:.0f} billion parameters; "
                         f"at most {MAX_PARAMETERS / 1e9:.0f} billion can be loaded (is the file damaged?)")


def _check_transformer_config(config: dict, path: Path) -> None:
    _check_numbers(config, _TRANSFORMER_BOUNDS, path)
    dim = config.get("num_attention_heads", 1) * config.get("attention_head_dim", 1)
    per_layer = 8 * dim * dim + 2 * dim * config.get("ffn_dim", 1)
    grid = config.get("position_grid")
    positions = math.prod(grid) if isinstance(grid, list) else 0  # an absolute position table of this many rows
    _check_size(config, path, config.get("num_layers", 1) * per_layer + dim * config.get("text_dim", 1)
                + positions * dim)


def _check_vae_layout(config: dict, path: Path) -> None:
    """The scale factors the pipeline sizes latents by must be the ones the VAE's layers make (else every clip comes
    out with the wrong frame count or size, silently), and the latent statistics must have one entry a channel.
    Defaults are diffusers' (Wan2.1's VAE)."""
    mult = config.get("dim_mult", [1, 2, 4, 4])
    down = config.get("temperal_downsample", [False, True, True])
    if not isinstance(mult, list) or not isinstance(down, list) or not all(isinstance(d, bool) for d in down):
        raise ModelError(f"{path}: dim_mult and temperal_downsample must be lists (of numbers, of true/false)")
    if len(down) != len(mult) - 1:
        raise ModelError(f"{path}: temperal_downsample has {len(down)} entries; with {len(mult)} dim_mult stages "
                         f"the VAE downsamples {len(mult) - 1} times (is the file damaged?)")
    made = {"scale_factor_temporal": 2 ** sum(down),
            "scale_factor_spatial": 2 ** (len(mult) - 1) * (config.get("patch_size") or 1)}
    for key, default in (("scale_factor_temporal", 4), ("scale_factor_spatial", 8)):
        said = config.get(key, default)
        if said != made[key]:
            raise ModelError(f"{path}: {key} is {said}, but its layers scale by {made[key]} (temperal_downsample "
                             f"{down}, dim_mult {mult}, patch_size {config.get('patch_size')}): clips would come out "
                             "the wrong length or size (is the file damaged?)")
    z = config.get("z_dim", 16)
    for key in ("latents_mean", "latents_std"):
        stats = config.get(key)
        if stats is None:
            continue
        if (not isinstance(stats, list) or len(stats) != z
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in stats)):
            raise ModelError(f"{path}: {key} must be {z} finite numbers, one per latent channel (z_dim {z}); "
                             f"it is {_short(stats)}")
    if any(v <= 0 for v in config.get("latents_std") or []):
        raise ModelError(f"{path}: latents_std must be positive (latents are divided by it)")


def _check_vae_config(config: dict, path: Path) -> None:
    _check_numbers(config, _VAE_BOUNDS, path)
    mult = config.get("dim_mult") if isinstance(config.get("dim_mult"), list) else [4]
    base = config.get("base_dim", 96)
    # 3x3x3 convolutions, encoder and decoder (a decoder may be wider than the encoder: decoder_base_dim)
    widths = (base * max(mult), decoder_base_dim(config) * max(mult))
    _check_size(config, path, 27 * sum(w * w for w in widths) * len(mult) * (config.get("num_res_blocks", 2) + 1))
    _check_vae_layout(config, path)


def _check_text_encoder_config(config: dict, path: Path) -> None:
    _check_numbers(config, _TEXT_ENCODER_BOUNDS, path)
    d, inner = config.get("d_model", 1), config.get("num_heads", 1) * config.get("d_kv", 1)
    per_layer = 4 * d * inner + 3 * d * config.get("d_ff", 1)
    _check_size(config, path, config.get("num_layers", 1) * per_layer + config.get("vocab_size", 1) * d)


def _looks_like_repo_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~")) and "\\" not in text


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (HF_HUB_CACHE, else HF_HOME/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(os.path.expanduser(home)) / "hub"


def resolve_path(source: str) -> Path:
    """A local folder for `source`: an existing path, or a repo id found in the local Hugging Face cache."""
    if not source or not str(source).strip():
        raise ModelError("no model given: choose a folder or a Hugging Face repo id")
    path = Path(os.path.expanduser(str(source)))
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{path} is a file; choose the model's folder")
        return path
    if _looks_like_repo_id(str(source)):
        from huggingface_hub import snapshot_download

        cache = hf_cache_dir()
        try:
            return Path(snapshot_download(str(source), local_files_only=True, cache_dir=cache))
        except Exception:
            raise ModelError(
                f"'{source}' is not in the local Hugging Face cache ({cache}). "
                f"Download it on a connected machine (`hf download {source}`) or choose its folder."
            ) from None
    if path.is_symlink():
        raise ModelError(f"{path} is a link to nothing (a broken link, or a loop of links); choose the model's folder")
    raise ModelError(f"model folder not found: {path}")


def _check_weights(folder: Path, what: str) -> None:
    if any(folder.glob("*.safetensors")) or any(folder.glob("*.safetensors.index.json")):
        return
    if any(folder.glob("*.bin")) or any(folder.glob("*.pt")) or any(folder.glob("*.ckpt")):
        raise ModelError(f"{what} in {folder} has only pickle weights (.bin/.pt); Lumos Studio loads safetensors only")
    raise ModelError(f"{what} in {folder} has no weights (*.safetensors)")


def inspect_source(source: str) -> ResolvedSource:
    """Resolve `source` and read its configs (no weights are loaded)."""
    path = resolve_path(source)
    if (path / "model_index.json").is_file():
        index = _read_json(path / "model_index.json")
        if "transformer" not in index or not (path / "transformer").is_dir():
            raise ModelError(f"{path} is a pipeline folder without a transformer/ (model_index.json: "
                             f"{index.get('_class_name', '?')})")
        tdir = path / "transformer"
        kind = "pipeline"
    elif (path / "config.json").is_file():
        tdir, kind = path, "transformer"
    elif (path / "transformer" / "config.json").is_file():
        tdir, kind = path / "transformer", "transformer"
    else:
        raise ModelError(f"{path} is not a diffusers Wan model: expected model_index.json, config.json or transformer/")
    tconf = _read_json(tdir / "config.json")
    if tconf.get("_class_name") not in TRANSFORMER_CLASSES:
        raise ModelError(f"{tdir} holds a {_short(tconf.get('_class_name', 'unknown model'))}, not a "
                         f"{TRANSFORMER_CLASS}")
    _check_transformer_config(tconf, tdir / "config.json")
    _check_weights(tdir, "the transformer")
    resolved = ResolvedSource(str(source), path, kind, tdir, tconf)
    if kind == "pipeline":
        for sub in ("vae", "text_encoder", "tokenizer"):
            if not (path / sub).is_dir():
                raise ModelError(f"pipeline folder {path} has no {sub}/")
        resolved.vae_config = _read_json(path / "vae" / "config.json")
        _check_vae_config(resolved.vae_config, path / "vae" / "config.json")
        resolved.text_encoder_config = _read_json(path / "text_encoder" / "config.json")
        _check_text_encoder_config(resolved.text_encoder_config, path / "text_encoder" / "config.json")
        _check_weights(path / "vae", "the VAE")
        _check_weights(path / "text_encoder", "the text encoder")
    return resolved


def check_pair(light: ResolvedSource, heavy: ResolvedSource) -> PairReport:
    """Name every way in which the two generators could not share latents and text tokens."""
    report = PairReport(light, heavy)
    if light.kind != "pipeline" and heavy.kind != "pipeline":
        report.problems.append("neither model is a pipeline folder, so there is no VAE and text encoder to share")
    for key in SHARED_TRANSFORMER_KEYS:
        a, b = light.transformer_config.get(key), heavy.transformer_config.get(key)
        if a != b:
            report.problems.append(f"transformer {key} differs (light {a}, heavy {b})")
    if light.vae_config is not None and heavy.vae_config is not None:
        for key in SHARED_VAE_KEYS:
            a, b = light.vae_config.get(key), heavy.vae_config.get(key)
            if a != b:
                report.problems.append(f"VAE {key} differs (light {_short(a)}, heavy {_short(b)})")
    if light.text_encoder_config is not None and heavy.text_encoder_config is not None:
        a, b = light.text_encoder_config.get("d_model"), heavy.text_encoder_config.get("d_model")
        if a != b:
            report.problems.append(f"text encoder width differs (light {a}, heavy {b})")
    shared = light if light.kind == "pipeline" else heavy
    if shared.vae_config is not None:
        z = shared.vae_config.get("z_dim")
        for name, src in (("light", light), ("heavy", heavy)):
            if src.transformer_config.get("in_channels") != z:
                report.problems.append(
                    f"{name} transformer takes {src.transformer_config.get('in_channels')} latent channels, the VAE makes {z}")
    if shared.text_encoder_config is not None:
        d = shared.text_encoder_config.get("d_model")
        for name, src in (("light", light), ("heavy", heavy)):
            if src.transformer_config.get("text_dim") != d:
                report.problems.append(
                    f"{name} transformer expects text width {src.transformer_config.get('text_dim')}, the text encoder gives {d}")
    return report


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def family_dir_of(light: ResolvedSource) -> Path | None:
    """The family folder (holding lumos.json) that a light pipeline belongs to, if any."""
    for candidate in (light.path, light.path.parent):
        if (candidate / FAMILY_FILE).is_file():
            return candidate
    return None


# lumos.json's settings, checked when read: the CLI, the loader and the runtime use them as they are
_FAMILY_NUMBERS = {"width": (int, 16, 2048), "height": (int, 16, 2048), "num_frames": (int, 1, 241),
                   "steps": (int, 1, 200), "fps": (int, 1, 240), "max_sequence_length": (int, 1, 4096),
                   "guidance_light": (float, 0.0, 50.0), "guidance_heavy": (float, 0.0, 50.0),
                   "flow_shift": (float, 0.01, 100.0), "handoff": (float, 0.0, 1.0)}
_FAMILY_TEXTS = ("name", "light_text")


def family_defaults(family: Path | None) -> dict:
    """The family's lumos.json settings; ModelError naming the file and the key when one is of the wrong kind."""
    if family is None:
        return {}
    path = family / FAMILY_FILE
    data = _read_json(path)
    for key, (kind, lo, hi) in _FAMILY_NUMBERS.items():
        value = data.get(key)
        if value is None:
            continue
        number = isinstance(value, int) if kind is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not number or not (lo <= value <= hi):  # NaN fails the range too
            whole = "a whole number" if kind is int else "a number"
            raise ModelError(f"{path}: {key} must be {whole} from {lo} to {hi}, got {_short(repr(value))} "
                             f"(is the file damaged?)")
    for key in _FAMILY_TEXTS:
        if key in data and not (isinstance(data[key], str) and len(data[key]) <= 200):
            raise ModelError(f"{path}: {key} must be a short text, got {_short(repr(data[key]))}")
    return data


def default_spec_sources(spec: ModelSpec) -> tuple[str, str]:
    """The light and heavy sources a spec names, falling back to the embedded family."""
    light = spec.light or str(DEFAULT_FAMILY / "light")
    heavy = spec.heavy or str(DEFAULT_FAMILY / "heavy")
    return light, heavy


def expected_defaults(spec: ModelSpec) -> dict:
    """Before loading anything (no torch, no weights): the family defaults a spec will load with and whether it has
    an understanding block, so a window can show the right settings from its first paint. {} when unknown."""
    if spec.family:
        from .nexus.loading import DEFAULTS

        return {"defaults": dict(DEFAULTS), "has_understanding": True}
    light, _heavy = default_spec_sources(spec)
    try:
        source = inspect_source(light)
    except ModelError:
        return {}
    family = family_dir_of(source)
    try:
        defaults = family_defaults(family)
    except ModelError:
        return {}
    understanding = spec.understanding != "none" and (
        Path(spec.understanding).is_dir() if spec.understanding
        else family is not None and (family / "understanding").is_dir())
    return {"defaults": defaults, "has_understanding": understanding,
            "has_planner": bool(spec.planner) and not understanding}


def embedded_family_available() -> bool:
    return (DEFAULT_FAMILY / "light" / "model_index.json").is_file() and (DEFAULT_FAMILY / "heavy").is_dir()


def validate_spec(spec: ModelSpec) -> PairReport:
    """Config-only check of a spec (fast, no weights): raises ModelError for unusable sources."""
    if spec.family is not None:  # a released system with its own layout (engine/nexus/)
        from .nexus import check_family
        from .nexus.loading import validate

        check_family(spec.family)
        return validate(spec)
    light, heavy = default_spec_sources(spec)
    if spec.light is None and spec.heavy is None and not embedded_family_available():
        raise ModelError("the embedded default models are missing from resources/models/lumos-mini; "
                         "reinstall, or run `python -m training.train_all`, or choose models in Settings")
    return check_pair(inspect_source(light), inspect_source(heavy))
