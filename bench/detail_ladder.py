"""Validate the correctness detail score (miniworld/detail.py) on the ladder, beside the old energy score.

    .venv/bin/python bench/detail_ladder.py [--scenes 36]

On the mini VR-Bench's explicit instructions (their scenes are known exactly): the ground truth, the truth blurred
1.5× / 2× / 3× (area-down, bicubic-up), every texture swapped (striped drawn as dotted, …) and every texture missing.
Prints each rung's mean ± std over the scenes for both scores, whether each score orders the rungs strictly, and
the paired truth − 1.5× gap against its spread over scenes. ~1.3 s a scene on one CPU core.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    import numpy as np

    from miniworld.detail import RUNGS, ladder, ladder_clips
    from miniworld.score import detail_score
    from miniworld.split import bench_set

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=36, help="explicit bench instructions to use (at most 36)")
    a = p.parse_args(argv)
    scenes = [e.scene for e, _ in bench_set() if e.category == "explicit"][: a.scenes]
    started = time.perf_counter()
    new = ladder(scenes)
    old = {n: [] for n in RUNGS}
    for sc in scenes:
        clips = ladder_clips(sc)
        for n in RUNGS:
            old[n].append(detail_score(clips[n], clips["truth"]))
    print(f"detail ladder on {len(scenes)} explicit bench scenes ({time.perf_counter() - started:.0f} s)")
    print(f"{'rung':16s} | correctness (new)  | energy (old)")
    for n in RUNGS:
        print(f"{n:16s} | {np.mean(new['rungs'][n]):.3f} ± {np.std(new['rungs'][n]):.3f}      | "
              f"{np.mean(old[n]):.3f} ± {np.std(old[n]):.3f}")
    old_means = [float(np.mean(old[n])) for n in RUNGS]
    print(f"strictly ordered: new {new['ordered']}, old {all(x > y for x, y in zip(old_means, old_means[1:]))}")
    print(f"truth − blur 1.5x: new {new['gap_truth_blur15']:.3f} (spread over scenes {new['spread_truth_blur15']:.4f},"
          f" {new['gap_truth_blur15'] / max(new['spread_truth_blur15'], 1e-9):.0f}×); old "
          f"{np.mean(np.array(old['truth']) - np.array(old['blur 1.5x'])):.3f}")
    return 0 if new["ordered"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
