"""Where the generators lose detail: the correctness detail score (miniworld/detail.py) split by region.

    .venv/bin/python -m bench.detail_by_region [--family DIR] [--heavy-family DIR …] [--heavy-change steps=40 …]
                                               [--per-category 12] [--seeds 2] [--out FILE.json]

On the bench's explicit instructions (their scene is known exactly), for the VAE round trip of the truth (the
ceiling), the light generator and the heavy generator (also the heavy one of each ``--heavy-family``, e.g. a trial's,
and the heavy one sampled with each ``--heavy-change``: more steps, another flow shift or sampler), it prints the
mean detail of:

- shapes that move and shapes that stay (each shape's score over the frames; a frame where the shape's colour is not
  near its place scores 0, and ``found`` says in what share of frames it was near);
- the background (pixels away from every shape).

Issue 18 used it to find where the heavy generator's missing detail is: on moving shapes only (docs/handoff.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.handoff_curve import items_for  # noqa: E402
from bench.handoff_detail import truth_round_trip  # noqa: E402
from bench.vrbench import EngineGenerator, Mode  # noqa: E402
from miniworld.detail import detail_correctness  # noqa: E402
from miniworld.render import render  # noqa: E402


def by_region(clips, items, refs) -> dict:
    """{region: mean detail, "<region> found": share of frames found, "score": mean score} over the clips."""
    shape = {"moving": [], "still": []}
    found = {"moving": [], "still": []}
    background, score = [], []
    for frames, (ex, _), ref in zip(clips, items, refs):
        d = detail_correctness(frames, ex.scene, ref)
        score.append(d["score"])
        background.append(d["background"])
        for s, value, share in zip(ex.scene.shapes, d["per_shape"], d["per_shape_found"]):
            region = "still" if s.motion == "still" else "moving"
            shape[region].append(value)
            found[region].append(share)
    out = {"score": float(np.mean(score)), "background": float(np.mean(background))}
    for region in ("moving", "still"):
        out[region] = float(np.mean(shape[region])) if shape[region] else float("nan")
        out[f"{region} found"] = float(np.mean(found[region])) if found[region] else float("nan")
        out[f"{region} shapes"] = len(shape[region])
    return out


CHANGEABLE = {"steps": int, "flow_shift": float, "scheduler": str, "guidance_heavy": float}


def request_change(text: str) -> tuple[str, object]:
    """``field=value`` of --heavy-change, the value of the field's type."""
    field, _, value = text.partition("=")
    if field not in CHANGEABLE:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(CHANGEABLE)} = value, got {text!r}")
    try:
        return field, CHANGEABLE[field](value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{field} takes a {CHANGEABLE[field].__name__}, got {value!r}") from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family", default=None, help="family folder (default: the embedded lumos-mini)")
    p.add_argument("--heavy-family", action="append", default=[], metavar="DIR",
                   help="also the heavy generator of this family (a trial's); repeatable")
    p.add_argument("--heavy-change", action="append", default=[], type=request_change, metavar="FIELD=VALUE",
                   help="also the heavy generator with this request field changed (steps=40, flow_shift=4, "
                        "scheduler=euler, guidance_heavy=1); repeatable")
    p.add_argument("--per-category", type=int, default=12, help="explicit bench instructions (at most 36)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per instruction")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None, help="write the numbers as JSON")
    a = p.parse_args(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    items = [it for it in items_for(a.per_category, a.seeds) if it[0].category == "explicit"]
    refs = [render(ex.scene) for ex, _ in items]
    rows = {"VAE round trip (ceiling)": by_region(truth_round_trip(a.family, items), items, refs)}
    own = [("light", "light", {}), ("heavy", "heavy", {})]
    own += [(f"heavy, {k}={v}", "heavy", {k: v}) for k, v in a.heavy_change]
    for family, modes in [(a.family, own)] + [(f, [(f"heavy of {f}", "heavy", {})]) for f in a.heavy_family]:
        gen = EngineGenerator(family, a.threads)
        try:
            for name, mode, change in modes:
                clips = gen.generate_many([gen.request(ex.instruction, seed, Mode(mode, mode)).replace(**change)
                                           for ex, seed in items])
                rows[name] = by_region(clips, items, refs)
                print(f"  {name}: {rows[name]['score']:.3f}", file=sys.stderr, flush=True)
        finally:
            gen.close()
    print(f"detail by region on {len(items)} explicit clips")
    print("| mode | score | moving shapes (found) | still shapes (found) | background |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['score']:.3f} | {r['moving']:.3f} ({r['moving found']:.2f}) | "
              f"{r['still']:.3f} ({r['still found']:.2f}) | {r['background']:.3f} |")
    if a.out:
        a.out.write_text(json.dumps({"clips": len(items), "modes": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
