"""A candidate family: a trained family with some of its parts replaced by a run's, built beside the target folder
and swapped in (a half-written family is never left where the engine would load it)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from .common import log


def install_parts(run, family: Path, out: Path, parts: tuple[str, ...], stages: tuple[str, ...],
                  finish: Callable[[Path], None] | None = None, sources: dict[str, str] | None = None) -> Path:
    """Copy ``family`` to ``out`` with every folder in ``parts`` (e.g. "light/transformer") taken from run/export,
    the ``stages``' done.json records added to training_metrics.json, and ``finish(folder)`` run before the swap.
    ``sources`` names a part's folder in run/export where it differs (the VAE: "light/vae" is export's "vae")."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(family, tmp)
    for sub in parts:
        shutil.rmtree(tmp / sub)
        shutil.copytree(run.export / (sources or {}).get(sub, sub), tmp / sub)
    if finish is not None:
        finish(tmp)
    mpath = tmp / "training_metrics.json"
    metrics = json.loads(mpath.read_text()) if mpath.exists() else {}
    metrics.update({s: run.done(s) for s in stages})
    mpath.write_text(json.dumps(metrics, indent=2, default=float))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log.info("family written to %s", out)
    return out
