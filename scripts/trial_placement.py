"""Rank short generator training trials by placement before spending an hour on a full run.

    python scripts/trial_placement.py RUN [RUN ...] [--n 32] [--mode light|heavy] [--reasoning] [--family DIR]

RUN is a training run folder (training/runs/<name>) whose export/ holds a trained generator; whatever it lacks
(text encoder, VAE, LM, the other generator) comes from --family (default: the shipped lumos-mini). A family
folder may also be given as RUN. Each is asked for the same n fresh train-split examples (seed 777), with their
true plans, and scored with `placement_score` (continuous; see miniworld/score.py) and the instruction score.
--reasoning asks only reasoning instructions (the first n of the same draw), where the light generator has nothing
but the connector to learn the plan from.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from miniworld import instruction_score, placement_score  # noqa: E402
from miniworld.score import colour_masks  # noqa: E402
from training.data import draw_examples  # noqa: E402

# family part → where a run's export keeps it
PARTS = {"light/transformer": "light/transformer", "heavy/transformer": "heavy/transformer",
         "light/text_encoder": "text_encoder", "light/tokenizer": "tokenizer", "light/vae": "vae",
         "understanding/lm": "understanding/lm", "understanding/connector": "understanding/connector"}


def family_view(run: Path, family: Path, into: Path) -> Path:
    """A family folder of symlinks: the run's exported parts where it has them, the family's otherwise."""
    if (run / "lumos.json").exists():
        return run
    for part, exported in PARTS.items():
        src = run / "export" / exported
        dst = into / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to((src if src.exists() else family / part).resolve())
    for extra in ("lumos.json", "light/scheduler", "light/model_index.json"):
        (into / extra).symlink_to((family / extra).resolve())
    return into


def trial_examples(n: int, reasoning: bool = False):
    """The same n train-split examples every time (seed 777); reasoning: the first n reasoning ones of that draw."""
    if not reasoning:
        return draw_examples(n, 777)
    return [e for e in draw_examples(8 * n, 777) if e.category != "explicit"][:n]


def evaluate(folder: Path, mode: str, n: int, reasoning: bool = False) -> dict:
    from training.sample import MiniFamily

    fam = MiniFamily(folder)
    exs = trial_examples(n, reasoning)
    clips = []
    for i in range(0, n, 8):
        chunk = exs[i: i + 8]
        texts = [e.instruction if mode == "light" else e.plan for e in chunk]
        clips.append(fam.generate(texts, mode=mode, seeds=list(range(i, i + len(chunk))),
                                  plans=[e.plan for e in chunk] if mode == "light" else None))
    scores = []
    for c, e in zip(np.concatenate(clips), exs):
        masks = colour_masks(c)  # shared by both shape scores, as in score_clip
        scores.append((placement_score(c, e.scene, masks=masks), instruction_score(c, e.scene, masks)))
    placement, instruction = np.mean(scores, 0)
    return {"placement": float(placement), "instruction": float(instruction)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--mode", choices=["light", "heavy"], default="light")
    p.add_argument("--reasoning", action="store_true", help="reasoning instructions only")
    p.add_argument("--family", type=Path, default=REPO / "resources" / "models" / "lumos-mini")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    for run in a.runs:
        tmp = Path(tempfile.mkdtemp(prefix="trial_"))
        try:
            res = evaluate(family_view(run, a.family, tmp), a.mode, a.n, a.reasoning)
        finally:
            shutil.rmtree(tmp)
        print(json.dumps({"run": str(run), "mode": a.mode, "n": a.n, "reasoning": a.reasoning, **{k: round(v, 4) for k, v in res.items()}}),
              flush=True)


if __name__ == "__main__":
    main()
