"""Side by side, for a few explicit bench instructions: the ground truth, the light draft, UPFB at the family's default
hand-off, and the heavy generator, each clip's middle frame enlarged (nearest neighbour, so no pixel is invented),
with a detail crop around the first shape. Writes docs/handoff_side_by_side.png.

    .venv/bin/python scripts/handoff_side_by_side.py [--family DIR] [--n 4] [--out docs/handoff_side_by_side.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCALE = 4   # whole frame: 64 px → 256 px
ZOOM = 8
CROP = 32  # detail crop: 32 px → 256 px


def label(img: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = np.full((img.shape[0] + 22, img.shape[1], 3), 255, np.uint8)
    out[22:] = img
    cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def crop_around(frame: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    h, w = frame.shape[:2]
    x = int(np.clip(round(centre[0] - CROP / 2), 0, w - CROP))
    y = int(np.clip(round(centre[1] - CROP / 2), 0, h - CROP))
    return frame[y: y + CROP, x: x + CROP]


def main(argv=None) -> int:
    import cv2
    import torch

    torch.set_num_threads(1)
    from bench.vrbench import EngineGenerator, Mode, bench_items
    from miniworld import render
    from miniworld.detail import detail_correctness
    from miniworld.scene import trajectory

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family", default=None)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "handoff_side_by_side.png")
    a = p.parse_args(argv)
    gen = EngineGenerator(a.family, 1)
    try:
        from engine.handoff import default_handoff

        s, _ = default_handoff(gen.defaults)
        modes = [Mode("light (draft)", "light"), Mode(f"UPFB s={s:.2f}", "upfb", handoff=s), Mode("heavy", "heavy")]
        items = [it for it in bench_items(None) if it[0].category == "explicit"][: a.n]
        clips = {m.name: gen.generate_many([gen.request(ex.instruction, seed, m) for ex, seed in items])
                 for m in modes}
    finally:
        gen.close()
    rows = []
    for k, (ex, _) in enumerate(items):
        truth = render(ex.scene)
        mid = len(truth) // 2
        centre = trajectory(ex.scene)[mid, 0, :2]  # the first shape's (x, y) in the middle frame
        tiles = []
        for name, clip in [("ground truth", truth)] + [(m.name, clips[m.name][k]) for m in modes]:
            score = detail_correctness(clip, ex.scene, truth)["score"]
            frame = cv2.resize(clip[mid], None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
            zoom = cv2.resize(crop_around(clip[mid], centre), None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST)
            tile = np.concatenate([frame, np.full((256, 4, 3), 255, np.uint8), zoom[:256]], axis=1)
            tiles.append(label(tile, f"{name}: detail {score:.2f}"))
            tiles.append(np.full((tiles[-1].shape[0], 10, 3), 255, np.uint8))
        rows.append(np.concatenate(tiles[:-1], axis=1))
        rows.append(np.full((10, rows[-1].shape[1], 3), 255, np.uint8))
    img = np.concatenate(rows[:-1], axis=0)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(a.out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    print(f"wrote {a.out} ({img.shape[1]}×{img.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
