"""The two downloads' layouts, as the release's video_generator.py names them, checked before anything loads.

Bundle (Hugging Face howellyoung1/OmniVideo11B, the release's ``model_ckpts/``)::

    wan/wanxiang1_3b/            Wan2.1-T2V-1.3B, original format: config.json, diffusion_pytorch_model*.safetensors,
                                 models_t5_umt5-xxl-enc-bf16.pth (T5), Wan2.1_VAE.pth (VAE), google/umt5-xxl/ (tokenizer)
    transformer/model.pt         the fine-tuned 1.3B (loaded over the whole model, non-strict, as the release does)
    adapter/model.pt             {"model_state_dict": DM adapter}
    vision_head/vision_head/pytorch_model.bin
    ar_model/checkpoint/llm/     VILA's language model (a transformers Llama folder, with its tokenizer)
    unconditioned_context/context.pkl
    special_tokens/tokens.pkl

Heavy (Wan-AI/Wan2.1-T2V-14B, original format, not -Diffusers): config.json + diffusion_pytorch_model*.safetensors.
A pickle may be replaced by its converted twin (same name, .safetensors), written by `engine.nexus.convert`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

WAN_1_3B = "wan/wanxiang1_3b"
T5_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
VAE_FILE = "Wan2.1_VAE.pth"
T5_TOKENIZER = "google/umt5-xxl"
TRANSFORMER = "transformer/model.pt"
ADAPTER = "adapter/model.pt"
VISION_HEAD = "vision_head/vision_head/pytorch_model.bin"
LLM = "ar_model/checkpoint/llm"
UNCOND = "unconditioned_context/context.pkl"
SPECIAL_TOKENS = "special_tokens/tokens.pkl"
PICKLES = (TRANSFORMER, ADAPTER, VISION_HEAD, UNCOND, SPECIAL_TOKENS, f"{WAN_1_3B}/{T5_FILE}",
           f"{WAN_1_3B}/{VAE_FILE}")


def converted(path: Path) -> Path:
    """Where `engine.nexus.convert` writes a pickle's safetensors twin: beside it, suffix replaced."""
    return path.with_suffix(".safetensors")


def _pickle_or_twin(root: Path, rel: str) -> str | None:
    """None when `rel` (or its converted twin) is there, else what is missing."""
    path = root / rel
    return None if path.is_file() or converted(path).is_file() else rel


def _wan_weights(folder: Path) -> list[str]:
    missing = [] if (folder / "config.json").is_file() else ["config.json"]
    if not (any(folder.glob("diffusion_pytorch_model*.safetensors"))):
        missing.append("diffusion_pytorch_model*.safetensors")
    return missing


def _llm_missing(folder: Path) -> list[str]:
    missing = [f"{LLM}/config.json"] if not (folder / "config.json").is_file() else []
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        missing.append(f"{LLM}/model*.safetensors")
    if not ((folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file()):
        missing.append(f"{LLM}/tokenizer.json")
    return missing


@dataclass(frozen=True)
class NexusLayout:
    """The two checked folders."""

    bundle: Path
    heavy: Path

    @property
    def wan_1_3b(self) -> Path:
        return self.bundle / WAN_1_3B

    @property
    def llm(self) -> Path:
        return self.bundle / LLM

    def file(self, rel: str) -> Path:
        return self.bundle / rel


def bundle_missing(bundle: Path) -> list[str]:
    """Every file of the bundle that is not there (paths relative to the bundle)."""
    missing = []
    wan = bundle / WAN_1_3B
    missing += [f"{WAN_1_3B}/{m}" for m in _wan_weights(wan)]
    for rel in PICKLES:
        if (m := _pickle_or_twin(bundle, rel)) is not None:
            missing.append(m)
    tok = wan / T5_TOKENIZER
    if not any((tok / n).is_file() for n in ("tokenizer.json", "spiece.model")):
        missing.append(f"{WAN_1_3B}/{T5_TOKENIZER}/spiece.model")
    missing += _llm_missing(bundle / LLM)
    return missing


def _resolve_bundle(bundle) -> Path:
    from ..models import resolve_path

    b = resolve_path(str(bundle))
    if (b / "model_ckpts").is_dir() and not (b / WAN_1_3B).is_dir():
        b = b / "model_ckpts"  # the release's own folder name, one level down
    return b


def looks_like_bundle(folder: str | Path | None) -> bool:
    """Whether `folder` is (or holds, as model_ckpts/) an Omni-Video bundle: its wan/wanxiang1_3b or its fine-tune
    and adapter are there. For telling the families' folders apart; `check_layout` says what is missing."""
    if not folder:
        return False
    b = Path(str(folder)).expanduser()
    return any((root / WAN_1_3B).is_dir() or ((root / TRANSFORMER).is_file() and (root / ADAPTER).is_file())
               for root in (b, b / "model_ckpts"))


def folder_problems(bundle: str | Path | None, heavy: str | Path | None) -> dict:
    """{"light": why, "heavy": why} for each folder that is not given or lacks files (every missing file named)."""
    problems = {}
    if not bundle:
        problems["light"] = "the lumos-nexus family needs the Omni-Video bundle folder (howellyoung1/OmniVideo11B)"
    if not heavy:
        problems["heavy"] = "the lumos-nexus family needs the Wan2.1-T2V-14B folder (original format)"
    if problems:
        return problems
    from ..models import resolve_path

    try:
        b = _resolve_bundle(bundle)
    except ModelError as exc:
        problems["light"] = f"the Omni-Video bundle: {exc}"
    else:
        if missing := bundle_missing(b):
            problems["light"] = f"the Omni-Video bundle {b} lacks {', '.join(missing)}"
    try:
        h = resolve_path(str(heavy))
    except ModelError as exc:
        problems["heavy"] = f"the Wan2.1-T2V-14B folder: {exc}"
    else:
        if missing := _wan_weights(h):
            hint = " (a -Diffusers folder? the release uses the original format)" \
                if (h / "model_index.json").is_file() else ""
            problems["heavy"] = f"the Wan2.1-T2V-14B folder {h} lacks {', '.join(missing)}{hint}"
    return problems


def check_layout(bundle: str | Path | None, heavy: str | Path | None) -> NexusLayout:
    """Both folders, checked: ModelError naming every missing file of either."""
    if not bundle or not heavy:
        raise ModelError("the lumos-nexus family needs two folders: --light the Omni-Video bundle "
                         "(howellyoung1/OmniVideo11B) and --heavy Wan2.1-T2V-14B (original format)")
    if problems := folder_problems(bundle, heavy):
        raise ModelError("; ".join(problems[k] for k in ("light", "heavy") if k in problems)
                         + " — see docs/nexus_release.md")
    from ..models import resolve_path

    return NexusLayout(_resolve_bundle(bundle), resolve_path(str(heavy)))
