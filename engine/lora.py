"""LoRAs on the light and heavy generators: several per generator, each with a strength.

Files are safetensors only (a pickled .bin/.pt can run code when read). Both diffusers' key format
(`transformer.blocks.0.attn1.to_q.lora_A.weight`, or without the `transformer.` prefix) and the original-Wan format
(`diffusion_model.blocks.0.self_attn.q.lora_A.weight`, the usual community format, converted by diffusers' own
Wan LoRA loader) are read. Every key is checked against the generator before anything is attached, so a LoRA made for
another model is refused with the keys that do not fit named.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import ModelError

SUFFIX = ".safetensors"
MAX_SCALE = 100.0
_SHOWN = 5  # keys named in a refusal


def parse_lora_arg(text: str) -> tuple[str, float | None]:
    """`PATH[:SCALE]` -> (path, scale or None). The scale is split off only when what follows the last ':' is a
    number, so Windows drive letters and paths holding ':' still work. ValueError for a bad scale."""
    path, scale = text, None
    if ":" in text:
        head, tail = text.rsplit(":", 1)
        try:
            value = float(tail)
        except ValueError:
            value = None
        if value is not None and head:
            path, scale = head, value
    if not path.strip():
        raise ValueError(f"no LoRA file in {text!r}")
    if scale is not None and not (abs(scale) <= MAX_SCALE):  # also refuses nan
        raise ValueError(f"a LoRA strength must be from -{MAX_SCALE:g} to {MAX_SCALE:g}, got {scale!r}")
    return path, scale


def check_lora_file(path: str | os.PathLike) -> Path:
    """The LoRA file as a Path; ModelError unless it is an existing .safetensors file."""
    p = Path(os.path.expanduser(str(path)))
    if p.suffix.lower() != SUFFIX:
        raise ModelError(f"LoRA {p.name}: only .safetensors LoRAs are loaded (a {p.suffix or 'suffix-less'} file "
                         f"can run code when read); convert it to safetensors first")
    if not p.is_file():
        raise ModelError(f"LoRA file not found: {p}")
    return p


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read(path: Path) -> tuple[dict, str]:
    """(state dict in diffusers' format without the `transformer.` prefix, sha256 of the file)."""
    from safetensors.torch import load as load_bytes

    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        state = load_bytes(data)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file
        raise ModelError(f"LoRA {path.name} is not a readable safetensors file: {exc}") from None
    if not state:
        raise ModelError(f"LoRA {path.name} holds no tensors")
    try:
        from diffusers.loaders.lora_pipeline import WanLoraLoaderMixin

        state = WanLoraLoaderMixin.lora_state_dict(state)  # converts the original-Wan and musubi formats
    except Exception as exc:  # noqa: BLE001 - the converter raises ValueError on keys it does not know
        keys = ", ".join(sorted(state)[:_SHOWN])
        raise ModelError(f"LoRA {path.name} is not a Wan LoRA this app can read ({type(exc).__name__}; "
                         f"keys such as {keys})") from None
    return {(k[len("transformer."):] if k.startswith("transformer.") else k): v for k, v in state.items()}, digest


def _mismatches(model, state: dict) -> list[str]:
    """The keys of `state` that do not fit `model`, each with why."""
    import torch

    modules = dict(model.named_modules())
    bad = []
    ranks: dict[str, int] = {}
    for key, tensor in sorted(state.items()):
        if ".lora_A." in key or ".lora_B." in key:
            name, part = key.rsplit(".lora_", 1)
            module = getattr(modules.get(name), "base_layer", modules.get(name))  # a layer holding a LoRA already
            if not isinstance(module, torch.nn.Linear):
                bad.append(f"{key} (no such layer)")
                continue
            if part == "A.weight":
                if tensor.ndim != 2 or tensor.shape[1] != module.in_features:
                    bad.append(f"{key} (shape {tuple(tensor.shape)}, the layer takes {module.in_features})")
                    continue
                rank = tensor.shape[0]
            elif part == "B.weight":
                if tensor.ndim != 2 or tensor.shape[0] != module.out_features:
                    bad.append(f"{key} (shape {tuple(tensor.shape)}, the layer gives {module.out_features})")
                    continue
                rank = tensor.shape[1]
            elif part == "B.bias":
                if tuple(tensor.shape) != (module.out_features,):
                    bad.append(f"{key} (shape {tuple(tensor.shape)}, the layer gives {module.out_features})")
                continue
            else:
                bad.append(f"{key} (unknown LoRA part)")
                continue
            if ranks.setdefault(name, rank) != rank:
                bad.append(f"{key} (rank {rank}, its pair has rank {ranks[name]})")
        elif not key.endswith(".alpha"):
            bad.append(f"{key} (not a LoRA key)")
    return bad


def apply_loras(model, loras, role: str) -> list[dict]:
    """Attach `loras` ((path, scale) pairs) to `model`, the `role` ("light" or "heavy") generator, with their
    strengths. Returns what the take's metadata records: [{"name", "sha256", "scale"}]. ModelError for a missing,
    non-safetensors or unreadable file, or one whose keys do not fit the generator (those keys named)."""
    if not loras:
        return []
    records, names, weights = [], [], []
    for index, (path, scale) in enumerate(loras):
        scale = 1.0 if scale is None else float(scale)
        p = check_lora_file(path)
        state, digest = _read(p)
        bad = _mismatches(model, state)
        if bad:
            more = f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
            raise ModelError(f"LoRA {p.name} does not fit the {role} generator: " + "; ".join(bad[:_SHOWN]) + more)
        adapter = f"{role}_{index}"
        try:
            model.load_lora_adapter(state, adapter_name=adapter, prefix=None)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"could not load LoRA {p.name} on the {role} generator: {type(exc).__name__}: "
                             f"{exc}") from None
        names.append(adapter)
        weights.append(scale)
        records.append({"name": p.name, "sha256": digest, "scale": scale})
    model.set_adapters(names, weights=weights)
    return records


def find_recorded_lora(record: dict, role: str, given: list[str], take_file: str | os.PathLike) -> Path:
    """The local file for a LoRA a take recorded ({"name", "sha256", ...}): among `given` (the user's paths for this
    role), the one with the recorded file name, else that name next to the take's MP4. The name comes from an
    untrusted file, so it is used only as a plain file name in the MP4's own folder, and the file must have the
    recorded sha256. ModelError (one line) when it is missing or differs."""
    name, digest = record.get("name"), record.get("sha256")
    if not isinstance(name, str) or not isinstance(digest, str) or len(name) > 255 or len(digest) != 64:
        raise ModelError(f"the take's {role} LoRA record is malformed: {str(record)[:80]!r}")
    candidates = [Path(os.path.expanduser(g)) for g in given if Path(g).name == name]
    if not candidates and name == Path(name).name and name not in ("", ".", "..") and "\\" not in name \
            and name.lower().endswith(SUFFIX):
        candidates = [Path(take_file).resolve().parent / name]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        flag = f"--lora-{role}"
        raise ModelError(f"the take used the {role} LoRA {name[:80]!r} (sha256 {digest[:12]}…), which is not next "
                         f"to the MP4 and not given: pass {flag} PATH")
    if found.suffix.lower() != SUFFIX:
        raise ModelError(f"LoRA {found.name}: only .safetensors LoRAs are loaded")
    actual = sha256_of(found)
    if actual != digest:
        raise ModelError(f"{found} is not the {role} LoRA the take used (sha256 {actual[:12]}…, the take's "
                         f"{digest[:12]}…)")
    return found
