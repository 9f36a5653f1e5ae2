"""Rendering of mini-world scenes to uint8 clips [F, H, W, 3].

Shape outlines are drawn 4× supersampled and area-averaged (smooth edges a small VAE can carry); surface
textures are sampled in the shape's own coordinates so they travel with it. Texture periods are 10 px on shapes
and 16 px on backgrounds (≥ 8 px, so an 8× VAE can keep them).
"""

from __future__ import annotations

import cv2
import numpy as np

from .scene import BG_COLOURS, COLOURS, Scene, trajectory

SS = 4                 # supersampling factor for outlines
SHAPE_PERIOD = 10      # px
BG_PERIOD = 16         # px
DARK = 0.55            # value factor of the dark half of a shape texture (hue and saturation unchanged)
BG_CONTRAST = 22.0     # ± grey levels of background textures


def background(scene: Scene) -> np.ndarray:
    """Static textured background, float32 [H, W, 3] in 0..255."""
    h, w = scene.height, scene.width
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    p = BG_PERIOD
    if scene.bg_texture == "striped":
        pat = np.where((x // (p / 2)) % 2 == 0, 1.0, -1.0)
    elif scene.bg_texture == "checked":
        pat = np.where(((x // (p / 2)) + (y // (p / 2))) % 2 == 0, 1.0, -1.0)
    elif scene.bg_texture == "dotted":
        dx = (x % p) - p / 2
        dy = (y % p) - p / 2
        pat = np.where(dx * dx + dy * dy <= 3.5**2, 1.0, -1.0) * 1.0
    else:
        pat = np.zeros_like(x)
    base = np.array(BG_COLOURS[scene.bg_colour], np.float32)
    return np.clip(base[None, None] + BG_CONTRAST * pat[..., None], 0, 255).astype(np.float32)


def _polygon(kind: str, cx: float, cy: float, r: float) -> np.ndarray | None:
    if kind == "square":
        a = 0.85 * r
        return np.array([[cx - a, cy - a], [cx + a, cy - a], [cx + a, cy + a], [cx - a, cy + a]])
    if kind == "triangle":
        big = 1.35 * r
        ang = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([cx + big * np.cos(ang), cy + 0.15 * r + big * np.sin(ang)], 1)
    if kind == "star":
        outer, inner = 1.45 * r, 0.6 * r
        ang = -np.pi / 2 + np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, outer, inner)
        return np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
    return None


def shape_mask(kind: str, cx: float, cy: float, r: float, h: int, w: int) -> np.ndarray:
    """Anti-aliased coverage in [0, 1], float32 [H, W]."""
    big = np.zeros((h * SS, w * SS), np.uint8)
    shift = 4  # cv2 fixed-point sub-pixel bits
    scale = SS * (1 << shift)
    if kind == "circle":
        cv2.circle(big, (int(round(cx * scale)), int(round(cy * scale))), int(round(r * scale)), 255, -1,
                   cv2.LINE_8, shift)
    else:
        poly = _polygon(kind, cx, cy, r)
        pts = np.round(poly * scale).astype(np.int32)[None]
        cv2.fillPoly(big, pts, 255, cv2.LINE_8, shift)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def texture_factor(texture: str, cx: float, cy: float, h: int, w: int) -> np.ndarray:
    """Brightness factor (1 or DARK) of a surface texture in the shape's own coordinates, float32 [H, W]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    u = x - cx + 100 * SHAPE_PERIOD  # keep positive for the modulo
    v = y - cy + 100 * SHAPE_PERIOD
    half = SHAPE_PERIOD / 2
    if texture == "striped":
        on = (v // half) % 2 == 0
    elif texture == "checked":
        on = ((u // half) + (v // half)) % 2 == 0
    elif texture == "dotted":
        du = (u % SHAPE_PERIOD) - half
        dv = (v % SHAPE_PERIOD) - half
        on = du * du + dv * dv > 2.6**2
    else:
        on = np.ones_like(x, bool)
    return np.where(on, 1.0, DARK).astype(np.float32)


def render(scene: Scene) -> np.ndarray:
    """Draw a scene: C-contiguous uint8 [F, H, W, 3] RGB."""
    h, w = scene.height, scene.width
    bg = background(scene)
    traj = trajectory(scene)
    frames = np.empty((scene.num_frames, h, w, 3), np.uint8)
    for f in range(scene.num_frames):
        img = bg.copy()
        for i, s in enumerate(scene.shapes):
            cx, cy, r = traj[f, i]
            m = shape_mask(s.kind, cx, cy, r, h, w)[..., None]
            col = np.array(COLOURS[s.colour], np.float32)[None, None] * texture_factor(s.texture, cx, cy, h, w)[..., None]
            img = img * (1 - m) + col * m
        frames[f] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return frames
