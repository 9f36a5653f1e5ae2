"""Training data drawn from the mini world's train split (never the bench bucket), seeded and cached on disk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from miniworld import CATEGORIES, render, sample_train_example
from miniworld.language import Example

# Explicit examples are a third of the data; the five reasoning categories share the rest.
CATEGORY_P = np.array([1 / 3] + [2 / 15] * 5)


def draw_examples(n: int, seed: int) -> list[Example]:
    rng = np.random.default_rng(seed)
    cats = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_P)
    return [sample_train_example(rng, CATEGORIES[c]) for c in cats]


def corpus(run, n: int | None = None) -> list[dict]:
    """Instruction/plan pairs (cached as JSON lines in the run folder)."""
    n = n or run.budget.corpus
    path = run.stage_dir("data") / f"corpus_{n}_{run.seed}.jsonl"
    if path.exists():
        return [json.loads(x) for x in path.read_text().splitlines()]
    rows = [{"instruction": e.instruction, "plan": e.plan, "category": e.category}
            for e in tqdm(draw_examples(n, run.seed + 101), desc="corpus", mininterval=5)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return rows


def scene_examples(run) -> list[Example]:
    """The examples (scene programs) behind `scenes(run)`, in the same order: the same seeded draw."""
    return draw_examples(run.budget.scenes, run.seed + 202)


def scenes(run) -> tuple[list[dict], np.ndarray]:
    """Rendered training clips: rows (instruction, plan, category) and uint8 clips [N, F, H, W, 3] (memory-mapped)."""
    n = run.budget.scenes
    d = run.stage_dir("data")
    meta, arr = d / f"scenes_{n}_{run.seed}.jsonl", d / f"scenes_{n}_{run.seed}.npy"
    if meta.exists() and arr.exists():
        return [json.loads(x) for x in meta.read_text().splitlines()], np.load(arr, mmap_mode="r")
    exs = scene_examples(run)
    clips = np.lib.format.open_memmap(arr.with_suffix(".tmp.npy"), mode="w+", dtype=np.uint8,
                                      shape=(n, 17, 64, 64, 3))
    for i, e in enumerate(tqdm(exs, desc="render scenes", mininterval=5)):
        clips[i] = render(e.scene)
    clips.flush()
    del clips
    Path(arr.with_suffix(".tmp.npy")).replace(arr)
    meta.write_text("\n".join(json.dumps({"instruction": e.instruction, "plan": e.plan, "category": e.category})
                              for e in exs))
    return scenes(run)


def eval_scenes(n: int, seed: int = 999) -> list:
    """Held-out scenes (bench bucket scenes are excluded from training; these come from a separate seed)."""
    from miniworld import bench_set

    bench = bench_set()
    idx = np.random.default_rng(seed).choice(len(bench), size=min(n, len(bench)), replace=False)
    return [bench[i][0].scene for i in idx]


def eval_clips(n: int, seed: int = 999) -> np.ndarray:
    """The held-out scenes of `eval_scenes`, rendered."""
    return np.stack([render(s) for s in eval_scenes(n, seed)])
