"""Where the shapes are, on the latent grid: per-position loss weights for the generators.

Shapes cover ~10 % of a clip's pixels, the textured background the rest, so a plain flow loss spends the small
generators' capacity on background texture and leaves the shapes — what an instruction is about — as misplaced
blobs. Weighting the latent positions that shapes cover (as the VAE stage weighs shape pixels) moves that capacity
to placement and motion. Coverage is exact: it comes from the scene program, not from the pixels.
"""

from __future__ import annotations

import numpy as np

from miniworld.render import shape_mask
from miniworld.scene import Scene, trajectory

from .latent_layout import SPATIAL, TEMPORAL


def latent_frame_groups(num_frames: int) -> list[list[int]]:
    """Video frames behind each latent frame of the causal Wan VAE: [0], [1..4], [5..8], …"""
    return [[0]] + [list(range(1 + TEMPORAL * k, 1 + TEMPORAL * (k + 1))) for k in range((num_frames - 1) // TEMPORAL)]


def latent_shape_cover(scene: Scene, spatial: int = SPATIAL) -> np.ndarray:
    """Fraction of each latent cell's pixels (over its video frames) that any shape covers: float32 [F', H/SPATIAL, W/SPATIAL]."""
    traj = trajectory(scene)
    h, w = scene.height, scene.width
    cover = np.zeros((scene.num_frames, h, w), np.float32)
    for f in range(scene.num_frames):
        for i, s in enumerate(scene.shapes):
            x, y, r = traj[f, i]
            cover[f] = np.maximum(cover[f], shape_mask(s.kind, x, y, r, h, w).astype(np.float32))
    groups = latent_frame_groups(scene.num_frames)
    per_frame = np.stack([cover[g].mean(0) for g in groups])
    return per_frame.reshape(len(groups), h // spatial, spatial, w // spatial, spatial).mean((2, 4))
