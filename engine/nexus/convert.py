"""Convert the release's plain pickles to safetensors, once, by a command the user runs knowingly.

    python main.py convert-nexus BUNDLE_DIR        (or: python -m engine.nexus.convert BUNDLE_DIR)

The loader reads pickles only with torch.load(weights_only=True) (engine/nexus/weights.py). The release's
``unconditioned_context/context.pkl`` and ``special_tokens/tokens.pkl`` are plain ``pickle.dump``s that it cannot
read. This command reads them with a *restricted* unpickler that resolves only what tensors and arrays are made of
(torch's tensor rebuild functions, whose storages are read back with torch.load(weights_only=True); numpy's array
reconstruction; OrderedDict) and refuses any other global, so a tampered file stops here rather than runs code. Every
other pickle of the bundle that torch.load(weights_only=True) reads is left as it is. Each result is written flat (dotted keys) as
``NAME.safetensors`` beside the original, which stays; the loader then prefers the safetensors.
"""

from __future__ import annotations

import io
import pickle
import sys
from pathlib import Path

import torch

from ..errors import ModelError
from .layout import PICKLES, converted

_ALLOWED = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "Size"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


def _storage_from_bytes(data: bytes):
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals tensors and arrays are built from; anything else is an UnpicklingError."""

    def find_class(self, module, name):
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _storage_from_bytes
        if (module, name) in _ALLOWED:
            import importlib

            return getattr(importlib.import_module(module), name)
        raise pickle.UnpicklingError(f"refused: the file asks for {module}.{name}, which is not part of a tensor")


def read_restricted(path: Path):
    with open(path, "rb") as fh:
        return RestrictedUnpickler(fh).load()


def convert_file(path: Path) -> Path:
    """Write `path`'s tensors as ``converted(path)``; returns that path."""
    from safetensors.torch import save_file

    from .weights import flatten

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not a torch file: a plain pickle, read with the restricted unpickler
        try:
            data = read_restricted(path)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"cannot convert {path}: {exc}") from None
    flat = {k: v.detach().contiguous().clone() for k, v in flatten(data).items()}
    if not flat:
        raise ModelError(f"{path} holds no tensors")
    out = converted(path)
    tmp = out.with_name(out.name + ".partial")
    save_file(flat, str(tmp), metadata={"converted_from": path.name})
    tmp.replace(out)
    return out


def _weights_only_reads(path: Path) -> bool:
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return True
    except Exception:  # noqa: BLE001 - a plain pickle (or a legacy file): convert it
        return False


def convert_bundle(bundle: str | Path, say=print) -> list[Path]:
    """Convert every pickle of the bundle that torch.load(weights_only=True) cannot read and that has no
    safetensors twin yet; returns what was written."""
    bundle = Path(bundle).expanduser()
    if (bundle / "model_ckpts").is_dir() and not (bundle / "wan").is_dir():
        bundle = bundle / "model_ckpts"
    if not bundle.is_dir():
        raise ModelError(f"bundle folder not found: {bundle}")
    written = []
    for rel in PICKLES:
        path = bundle / rel
        if not path.is_file():
            continue
        if converted(path).is_file():
            say(f"{rel}: already converted")
            continue
        if _weights_only_reads(path):
            say(f"{rel}: readable as it is (torch.load weights_only)")
            continue
        say(f"{rel}: converting ...")
        written.append(convert_file(path))
    if not written:
        say("nothing to convert")
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python main.py convert-nexus BUNDLE_DIR   (the Omni-Video bundle, model_ckpts/)",
              file=sys.stderr)
        return 2
    try:
        for path in convert_bundle(argv[0]):
            print(f"wrote {path}")
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
