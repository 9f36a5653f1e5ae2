"""Does the hand-off pay in detail? The correctness detail score (miniworld/detail.py) of every generator mode on the
mini VR-Bench's explicit instructions, paired over the same instructions and seeds.

    .venv/bin/python -m bench.handoff_detail [--family DIR] [--per-category N] [--seeds 3] [--out FILE.json]

Prints, on the new score and on the old energy score:
- the ceiling: the ground truth after the family's VAE (encode, decode);
- light, heavy, hard switches and UPFB at several hand-off values (bench.vrbench.modes), each with its mean;
- heavy − light with a paired bootstrap 95 % interval (2000 resamples of the instructions);
- the seed-to-seed spread: the light generator's score over `--seeds` seeds per instruction (mean per-instruction
  standard deviation), the yardstick a difference must clear.
Explicit instructions only: there the scene is known exactly, so detail can be judged against it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.vrbench import EngineGenerator, Mode, bench_items, modes  # noqa: E402
from miniworld.detail import detail_correctness  # noqa: E402
from miniworld.render import render  # noqa: E402
from miniworld.score import detail_score  # noqa: E402


def paired_interval(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a − b and its paired bootstrap 95 % interval (the pairs resampled together)."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def scores(clips, items) -> tuple[np.ndarray, np.ndarray]:
    """(new correctness scores, old energy scores), one per clip."""
    new, old = [], []
    for frames, (ex, _) in zip(clips, items):
        ref = render(ex.scene)
        new.append(detail_correctness(frames, ex.scene, ref)["score"])
        old.append(detail_score(frames, ref))
    return np.array(new), np.array(old)


def truth_round_trip(family: str | None, items) -> np.ndarray:
    """The items' ground-truth clips after the family's VAE (encode, decode): the detail ceiling of its latents."""
    from diffusers import AutoencoderKLWan

    from engine.models import DEFAULT_FAMILY
    from training.stage_vae import round_trip

    vae = AutoencoderKLWan.from_pretrained(Path(family or DEFAULT_FAMILY) / "light" / "vae").eval()
    return round_trip(vae, np.stack([render(ex.scene) for ex, _ in items]))


def vae_ceiling(family: str | None, items) -> tuple[np.ndarray, np.ndarray]:
    return scores(truth_round_trip(family, items), items)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--family", default=None, help="family folder (default: the embedded lumos-mini)")
    p.add_argument("--per-category", type=int, default=None, help="explicit instructions to use (default all 36)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per instruction for the light generator's spread")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None, help="write the numbers as JSON")
    a = p.parse_args(argv)
    items = [it for it in bench_items(None) if it[0].category == "explicit"][: a.per_category or None]
    started = time.time()
    if a.threads:
        import torch

        # before the VAE round trip here: an OpenMP team of more threads than free cores waits a time slice
        # (~6 ms) per op on a busy machine, 40x slower than one thread (measured)
        torch.set_num_threads(a.threads)
    ceiling_new, ceiling_old = vae_ceiling(a.family, items)
    print(f"  VAE round trip: {ceiling_new.mean():.3f} ({time.time() - started:.0f} s)", file=sys.stderr, flush=True)
    gen = EngineGenerator(a.family, a.threads)
    steps = int(gen.defaults.get("steps", 20))
    wanted = [m for m in modes(steps) if "lead" not in m.name and "official" not in m.name]
    rows, per_mode = {}, {}
    try:
        for m in wanted:
            clips = gen.generate_many([gen.request(ex.instruction, seed, m) for ex, seed in items])
            per_mode[m.name] = scores(clips, items)
            print(f"  {m.name}: {per_mode[m.name][0].mean():.3f} ({time.time() - started:.0f} s)", file=sys.stderr,
                  flush=True)
        light = Mode("light", "light")
        spread_runs = [per_mode["light"][0]]
        for k in range(1, a.seeds):
            clips = gen.generate_many([gen.request(ex.instruction, seed + 1000 * k, light) for ex, seed in items])
            spread_runs.append(scores(clips, items)[0])
    finally:
        gen.close()
    spread = float(np.mean(np.std(np.stack(spread_runs), axis=0)))
    print(f"hand-off detail on {len(items)} explicit bench instructions ({time.time() - started:.0f} s)")
    print(f"{'mode':24s} | correctness (new) | energy (old)")
    print(f"{'VAE round trip (ceiling)':24s} | {ceiling_new.mean():.3f}             | {ceiling_old.mean():.3f}")
    for name, (new, old) in per_mode.items():
        rows[name] = {"detail_correctness": float(new.mean()), "detail_energy": float(old.mean())}
        print(f"{name:24s} | {new.mean():.3f}             | {old.mean():.3f}")
    gap = paired_interval(per_mode["heavy"][0], per_mode["light"][0])
    gap_old = paired_interval(per_mode["heavy"][1], per_mode["light"][1])
    print(f"heavy − light: new {gap[0]:+.3f} [{gap[1]:+.3f}, {gap[2]:+.3f}], old {gap_old[0]:+.3f} "
          f"[{gap_old[1]:+.3f}, {gap_old[2]:+.3f}] (paired bootstrap 95 %)")
    print(f"light's seed-to-seed spread over {a.seeds} seeds (new score): {spread:.4f}")
    if a.out:
        a.out.write_text(json.dumps({"instructions": len(items), "ceiling": {"detail_correctness": float(
            ceiling_new.mean()), "detail_energy": float(ceiling_old.mean())}, "modes": rows,
            "heavy_minus_light": {"new": gap, "old": gap_old}, "light_seed_spread": spread}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
