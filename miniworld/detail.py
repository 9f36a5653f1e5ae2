"""A detail score that measures correctness, not energy: each shape's texture and edges, and the background's, against
the ground truth of a known scene (explicit instructions: the scene is the plan).

The older `score.detail_score` compares high-frequency *energy* per tile, so a blurred clip that keeps some energy,
or a wrong texture with the right contrast, scores close to the truth. Here, per high-pass band (the same two bands:
fine edges, texture band):

* **Shapes.** For every shape and frame, a crop around where the scene puts it is compared with the same-sized crop
  of the clip around where the clip actually draws it: its colour's pixels near the expected place give the shift
  (at most `MAX_SHIFT` px), so a shape drawn a pixel or two off is judged on its surface, not on its placement
  (the instruction score judges placement). Only the pixels of the shape and a 2 px rim count. A shape whose colour
  is not found near its place scores 0 in that frame.
* **Background.** Pixels at least 3 px from every shape of the scene, compared in place (it does not move).
* **Per region and band** the similarity is SSIM's contrast × structure term, (2·cov + C) / (var₁ + var₂ + C),
  floored at 0 (the right pattern, at the right strength), blended with SSIM's contrast term alone
  (2·σ₁σ₂ + C) / (var₁ + var₂ + C) at weight `ENERGY_WEIGHT` (the right amount of detail, whatever its pattern),
  so that a wrong texture still ranks above no texture at all.

Score = ½ mean over shapes (each shape's frames averaged) + ½ background, in [0, 1]; the truth scores 1.
`ladder()` validates it: truth > 1.5× > 2× > 3× blur > texture swapped > texture missing, strictly, with the gap
between truth and a 1.5× blur far above the spread over scenes (bench/detail_ladder.py prints it).
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from .render import render, shape_mask
from .scene import EXTENT, Scene, trajectory
from .score import _bands, _luma, colour_masks

MAX_SHIFT = 3          # px a shape may sit off its place and still be judged on its surface
RIM = 2                # px of outline kept around each shape's own pixels
BG_MARGIN = 3          # px between a shape and the background pixels that are scored
C = (0.03 * 255) ** 2  # SSIM's C2: keeps flat regions stable
ENERGY_WEIGHT = 0.4    # share of "the right amount of detail" beside "the right pattern" (chosen on the ladder)


def _similarity(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> float:
    """Weighted SSIM-like similarity of two band crops over weights `w` (see the module docstring)."""
    total = float(w.sum())
    if total <= 0:
        return 1.0
    ma, mb = float((w * a).sum() / total), float((w * b).sum() / total)
    va = float((w * (a - ma) ** 2).sum() / total)
    vb = float((w * (b - mb) ** 2).sum() / total)
    cov = float((w * (a - ma) * (b - mb)).sum() / total)
    contrast = (2 * np.sqrt(va * vb) + C) / (va + vb + C)
    if va < 1e-6 and vb < 1e-6:
        return 1.0  # both flat: nothing to get wrong
    correlation = cov / np.sqrt(va * vb) if va > 1e-6 and vb > 1e-6 else 0.0
    return (1 - ENERGY_WEIGHT) * max(0.0, contrast * correlation) + ENERGY_WEIGHT * contrast


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k) > 0


def _shift(clip_mask: np.ndarray, ref_mask: np.ndarray, box: tuple[int, int, int, int]) -> tuple[int, int] | None:
    """Where the clip draws a shape the truth draws in `box`: the shift (≤ MAX_SHIFT px) that best overlays the
    clip's pixels of that colour on the truth's (silhouettes only, so a texture cannot pull the match), or None
    when the colour is not there."""
    x0, y0, x1, y1 = box
    ref = _crop(ref_mask, x0, y0, x1, y1)
    best, best_overlap = None, 0.0
    for dy in range(-MAX_SHIFT, MAX_SHIFT + 1):
        for dx in range(-MAX_SHIFT, MAX_SHIFT + 1):
            got = _crop(clip_mask, x0 + dx, y0 + dy, x1 + dx, y1 + dy)
            overlap = float((got & ref).sum()) / max(1.0, float((got | ref).sum()))
            if overlap > best_overlap + 1e-9 or (best is not None and overlap >= best_overlap - 1e-9
                                                 and abs(dx) + abs(dy) < abs(best[0]) + abs(best[1])):
                best, best_overlap = (dx, dy), max(overlap, best_overlap)
    return best if best_overlap >= 0.2 else None


def _crop(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """img[y0:y1, x0:x1] with edge replication outside the frame (crops near the border keep their size)."""
    h, w = img.shape
    ys = np.clip(np.arange(y0, y1), 0, h - 1)
    xs = np.clip(np.arange(x0, x1), 0, w - 1)
    return img[np.ix_(ys, xs)]


def detail_correctness(frames: np.ndarray, scene: Scene, reference: np.ndarray | None = None) -> dict:
    """{"score", "shapes", "background", "per_shape", "per_shape_found"}: the correctness of a clip's detail against
    `scene`; per_shape_found: the share of frames in which each shape was found near its place (else it scores 0)."""
    ref = render(scene) if reference is None else reference
    if frames.shape != ref.shape:
        raise ValueError(f"clip shape {frames.shape} differs from the scene's {ref.shape}")
    f, h, w, _ = frames.shape
    bands_clip, bands_ref = _bands(_luma(frames)), _bands(_luma(ref))
    masks, ref_masks = colour_masks(frames), colour_masks(ref)
    traj = trajectory(scene)
    per_shape, found, occupied = [], [], np.zeros((f, h, w), bool)
    for i, s in enumerate(scene.shapes):
        frame_scores = []
        for t in range(f):
            x, y, r = traj[t, i]
            cover = shape_mask(s.kind, x, y, r, h, w) > 0.05
            occupied[t] |= _dilate(cover, BG_MARGIN)
            half = int(np.ceil(EXTENT[s.kind] * r)) + RIM + 1
            x0, y0 = int(round(x)) - half, int(round(y)) - half
            own = ref_masks[s.colour][t] & _dilate(cover, RIM)  # this shape's pixels, not a same-coloured other's
            shift = _shift(masks[s.colour][t], own, (x0, y0, x0 + 2 * half, y0 + 2 * half))
            if shift is None:
                frame_scores.append(None)
                continue
            weight = _crop(_dilate(cover, RIM).astype(np.float32), x0, y0, x0 + 2 * half, y0 + 2 * half)
            dx, dy = shift
            bands = [_similarity(_crop(bc[t], x0 + dx, y0 + dy, x0 + dx + 2 * half, y0 + dy + 2 * half),
                                 _crop(br[t], x0, y0, x0 + 2 * half, y0 + 2 * half), weight)
                     for bc, br in zip(bands_clip, bands_ref)]
            frame_scores.append(float(np.mean(bands)))
        per_shape.append(float(np.mean([v or 0.0 for v in frame_scores])))
        found.append(1.0 - frame_scores.count(None) / f)
    bg_scores = []
    for t in range(f):
        weight = (~occupied[t]).astype(np.float32)
        bg_scores.append(float(np.mean([_similarity(bc[t], br[t], weight) for bc, br in zip(bands_clip, bands_ref)])))
    shapes = float(np.mean(per_shape)) if per_shape else 1.0
    background = float(np.mean(bg_scores))
    return {"score": 0.5 * shapes + 0.5 * background, "shapes": shapes, "background": background,
            "per_shape": per_shape, "per_shape_found": found}


# -- validation: the ladder the score must order ----------------------------------------------------------------
_SWAP = {"plain": "striped", "striped": "dotted", "dotted": "checked", "checked": "striped"}
_BG_SWAP = {"striped": "dotted", "dotted": "checked", "checked": "striped"}


def blurred(frames: np.ndarray, factor: float) -> np.ndarray:
    """The clip with detail above 1/factor of its resolution removed: area-down by `factor`, bicubic back up."""
    f, h, w, _ = frames.shape
    small = (max(1, round(w / factor)), max(1, round(h / factor)))
    out = [cv2.resize(cv2.resize(fr, small, interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_CUBIC)
           for fr in frames]
    return np.stack(out)


def texture_swapped(scene: Scene) -> Scene:
    """The scene with every surface drawn in the wrong texture: each shape's (striped as dotted, plain as striped,
    …) and the background's."""
    return replace(scene, shapes=tuple(replace(s, texture=_SWAP[s.texture]) for s in scene.shapes),
                   bg_texture=_BG_SWAP[scene.bg_texture])


def texture_missing(scene: Scene) -> np.ndarray:
    """The scene drawn with plain shapes on an untextured background of the same colour: outlines kept, every
    surface texture gone."""
    plain = render(replace(scene, shapes=tuple(replace(s, texture="plain") for s in scene.shapes)))
    textured_bg = render(replace(scene, shapes=()))
    on_bg = np.all(plain == textured_bg, axis=-1, keepdims=True)
    base = textured_bg.reshape(-1, 3).astype(np.float32).mean(0).round().astype(np.uint8)
    return np.where(on_bg, base[None, None, None], plain)


RUNGS = ("truth", "blur 1.5x", "blur 2x", "blur 3x", "texture swapped", "texture missing")


def ladder_clips(scene: Scene) -> dict[str, np.ndarray]:
    """Each rung's clip for one scene: {rung name: uint8 [F, H, W, 3]}."""
    truth = render(scene)
    return {"truth": truth, "blur 1.5x": blurred(truth, 1.5), "blur 2x": blurred(truth, 2.0),
            "blur 3x": blurred(truth, 3.0), "texture swapped": render(texture_swapped(scene)),
            "texture missing": texture_missing(scene)}


def ladder(scenes: list[Scene]) -> dict:
    """Each rung's score on every scene: {"rungs": {name: [scores]}, "ordered": bool (strict, every rung's mean
    below the one before), "gap_truth_blur15": mean paired gap, "spread_truth_blur15": its std over scenes}."""
    rungs = {name: [] for name in RUNGS}
    for sc in scenes:
        clips = ladder_clips(sc)
        truth = clips["truth"]
        for name in RUNGS:
            rungs[name].append(detail_correctness(clips[name], sc, truth)["score"])
    means = [float(np.mean(rungs[n])) for n in RUNGS]
    gaps = np.array(rungs["truth"]) - np.array(rungs["blur 1.5x"])
    return {"rungs": rungs, "means": dict(zip(RUNGS, means)),
            "ordered": all(a > b for a, b in zip(means, means[1:])),
            "gap_truth_blur15": float(gaps.mean()), "spread_truth_blur15": float(gaps.std())}
