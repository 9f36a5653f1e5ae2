"""Train / bench split of the mini world.

A scene belongs to the held-out bench set when the hash of its plan falls in bucket 0 of 10. The bench draws only
from that bucket and every training sampler rejects it, so no bench scene (same shapes, places, motions and
background) is ever trained on, whatever the instruction wording.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

from .language import CATEGORIES, Example, sample_example

BENCH_BUCKETS = 10
BENCH_SEED = 20260531
BENCH_PER_CATEGORY = 36  # 6 categories × 36 = 216 instructions, as many as the paper's VR-Bench


def split_of(plan: str) -> str:
    """'bench' or 'train' for a plan."""
    h = int(hashlib.sha1(plan.strip().lower().encode()).hexdigest()[:8], 16)
    return "bench" if h % BENCH_BUCKETS == 0 else "train"


def sample_train_example(rng: np.random.Generator, category: str) -> Example:
    """Like `sample_example`, never returning a bench scene."""
    while True:
        ex = sample_example(rng, category)
        if split_of(ex.plan) == "train":
            return ex


def bench_set(per_category: int = BENCH_PER_CATEGORY, seed: int = BENCH_SEED) -> list[tuple[Example, int]]:
    """The held-out bench: (example, generation seed) balanced over CATEGORIES, deterministic."""
    return list(_bench_set(per_category, seed))


@functools.lru_cache(maxsize=4)
def _bench_set(per_category: int, seed: int) -> tuple[tuple[Example, int], ...]:
    out = []
    for ci, cat in enumerate(CATEGORIES):
        rng = np.random.default_rng([seed, ci])
        got, seen = 0, set()
        while got < per_category:
            ex = sample_example(rng, cat)
            if split_of(ex.plan) != "bench" or ex.instruction in seen:
                continue
            seen.add(ex.instruction)
            out.append((ex, seed + 1000 * ci + got))
            got += 1
    return tuple(out)
