"""Reading the release's weight files without running any pickle code.

safetensors files are read as they are. A pickle (.pt, .pkl, .bin, .pth) is read through its converted twin
(``name.safetensors`` beside it, written by `engine.nexus.convert`) when there is one, else with
``torch.load(weights_only=True)`` only; when that cannot read it (a plain ``pickle.dump``, as the release's
``context.pkl`` and ``tokens.pkl`` are), loading stops with a ModelError that names the one command converting it.
Every file is returned flat: nested dicts and lists become dotted keys (``{"a": [t]}`` → ``{"a.0": t}``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import ModelError
from .layout import converted

CONVERT_HINT = ("convert the release's pickles once with `python main.py convert-nexus BUNDLE_DIR` (docs/"
                "nexus_release.md says what it reads and writes)")


def flatten(obj, prefix: str = "") -> dict:
    """Tensors of a nested dict/list/tuple (numpy arrays become tensors) under dotted keys; other leaves dropped."""
    import numpy as np

    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, np.ndarray):
        out[prefix] = torch.from_numpy(np.ascontiguousarray(obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}.{i}" if prefix else str(i)))
    return out


def read_safetensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def read_flat(path: Path, mmap: bool = True) -> dict:
    """The tensors of one release file, flat (see the module docstring). ModelError when it cannot be read safely."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    twin = converted(path)
    if twin.is_file():
        return read_safetensors(twin)
    if not path.is_file():
        raise ModelError(f"missing file: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except RuntimeError as exc:
        if mmap and "mmap" in str(exc):  # a legacy (non-zip) torch file: no mmap, still weights only
            return read_flat_no_mmap(path)
        raise _refused(path, exc) from None
    except Exception as exc:  # noqa: BLE001 - pickle.UnpicklingError and friends: refuse, never fall back
        raise _refused(path, exc) from None
    return flatten(data)


def read_flat_no_mmap(path: Path) -> dict:
    try:
        return flatten(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # noqa: BLE001
        raise _refused(path, exc) from None


def _refused(path: Path, exc: BaseException) -> ModelError:
    text = str(exc).strip()
    reason = text.splitlines()[0].split(". ")[0][:120] if text else type(exc).__name__
    return ModelError(f"{path} is a pickle that torch.load(weights_only=True) cannot read ({reason}); Lumos Studio "
                      f"does not unpickle it silently: {CONVERT_HINT}")


def read_wan_safetensors(folder: Path) -> dict:
    """An original-format Wan folder's transformer weights: one file, or shards listed in an index."""
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    if index.is_file():
        try:
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"cannot read {index}: {exc}") from None
        out = {}
        for name in files:
            if "/" in name or "\\" in name or name.startswith("."):
                raise ModelError(f"{index} names a file outside its folder: {name[:80]!r}")
            out.update(read_safetensors(folder / name))
        return out
    files = sorted(folder.glob("diffusion_pytorch_model*.safetensors"))
    if not files:
        raise ModelError(f"{folder} has no diffusion_pytorch_model*.safetensors")
    out = {}
    for f in files:
        out.update(read_safetensors(f))
    return out


def strip_prefix(flat: dict, prefix: str) -> dict:
    """The entries under `prefix` (``"a."``), with it removed."""
    return {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}


def strip_module(flat: dict) -> dict:
    """DDP's ``module.`` prefix removed where a key has it (as the release's loaders do)."""
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in flat.items()}
