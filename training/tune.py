"""Pick the family's default CFG scales on a validation set (never the bench) and write them to lumos.json.

    python -m training.tune [--family DIR] [--n 24] [--scales 2 3 4 6]

Validation examples are freshly drawn train-split examples (seed 777, not the generators' training draw); the
score is instruction score + detail score, light and heavy separately, with the reference sampler.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine.atomic_files import atomic_write_json

from .common import FAMILY_DIR


def tune(family: Path, n: int = 24, scales=(2.0, 3.0, 4.0, 6.0), seed: int = 777, modes=("light", "heavy")) -> dict:
    from miniworld import render, score_clip

    from .data import draw_examples
    from .sample import MiniFamily

    fam = MiniFamily(family)
    exs = draw_examples(n, seed)
    refs = [render(e.scene) for e in exs]
    out = {}
    for mode in modes:
        res = {}
        for g in scales:
            clips = fam.generate([e.instruction if mode == "light" else e.plan for e in exs], mode=mode,
                                 seeds=list(range(n)), guidance=g)
            sc = [score_clip(c, e.scene, r) for c, e, r in zip(clips, exs, refs)]
            res[g] = {k: float(np.mean([s[k] for s in sc])) for k in ("instruction", "detail", "psnr")}
            print(mode, g, res[g], flush=True)
        best = max(res, key=lambda g: res[g]["instruction"] + res[g]["detail"])
        out[mode] = {"best": best, "scores": res}
    cfg_path = family / "lumos.json"
    cfg = json.loads(cfg_path.read_text())
    for mode in out:
        cfg["guidance_" + mode] = out[mode]["best"]
    atomic_write_json(cfg_path, cfg)
    log_path = family / "guidance_tuning.json"
    previous = json.loads(log_path.read_text()) if log_path.exists() else {}
    atomic_write_json(log_path, {**previous, **out})
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--family", type=Path, default=FAMILY_DIR)
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--scales", type=float, nargs="+", default=[2.0, 3.0, 4.0, 6.0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--modes", nargs="+", choices=["light", "heavy"], default=["light", "heavy"])
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    print(json.dumps(tune(a.family, a.n, tuple(a.scales), modes=tuple(a.modes)), indent=2))


if __name__ == "__main__":
    main()
