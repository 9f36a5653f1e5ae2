"""Latent shape coverage (the generators' loss weights) matches the scene program it comes from."""

import numpy as np

from miniworld.render import shape_mask
from miniworld.scene import Scene, Shape
from training.latent_layout import SPATIAL
from training.shape_cover import latent_frame_groups, latent_shape_cover


def _scene(motion: str) -> Scene:
    return Scene(shapes=(Shape("square", "red", "big", "plain", slot=(0, 0), motion=motion),))


def test_frame_groups_follow_the_causal_vae():
    assert latent_frame_groups(17) == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]


def test_still_shape_covers_its_own_cells_only():
    cover = latent_shape_cover(_scene("still"))
    side = 64 // SPATIAL
    assert cover.shape == (5, side, side)
    # The covered area in latent cells equals the shape's pixel area (SPATIAL² px per cell), in every latent frame.
    area = shape_mask("square", 16, 16, 11.0, 64, 64).sum()
    assert np.allclose(cover.sum((1, 2)) * SPATIAL**2, area, rtol=1e-4)
    half = side // 2
    assert cover[:, :half, :half].sum() > 0.99 * cover.sum()  # top-left slot: nothing in the other quadrants
    assert np.allclose(cover[0], cover[4])


def test_moving_shape_cover_follows_the_motion():
    cover = latent_shape_cover(_scene("right"))
    cols = np.arange(64 // SPATIAL)
    centre_x = [(c.sum(0) * cols).sum() / c.sum() for c in cover]
    assert all(b > a for a, b in zip(centre_x, centre_x[1:]))  # moves right, latent frame by latent frame
