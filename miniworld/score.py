"""Scoring a clip against the scene it should show (opencv/numpy only).

* **Instruction score** (`instruction_score`): every shape of the resolved scene is found by its hue and tracked
  frame by frame; two weighted yes/no questions per shape — is it there, where and about as big as it should be
  (weight 1), and does it do what the plan demands, ending where it should (weight 2). Score = weighted fraction
  of questions passed, in [0, 1]; a clip rendered from the scene itself scores 1.0.
* **Detail score** (`detail_score`): how well high-frequency content (edges, textures) matches the procedural
  ground truth, on two high-pass bands, compared per 16×16 tile and frame with an SSIM-like energy similarity
  (tolerant to a few pixels of misplacement, unlike PSNR). Blurry clips and noisy clips both score low.
* **Placement score** (`placement_score`): a continuous measure of the same thing the instruction score asks with
  yes/no questions — per shape, the overlap of its colour's pixels with where the scene puts that shape, frame by
  frame, after a small blur. Early in training every yes/no answer is "no"; this still ranks recipes.
* Plain `psnr` and `ssim` (Gaussian window, on luma) against the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .render import render, shape_mask
from .scene import COLOURS, DIRECTIONS, Scene, trajectory

SAT_MIN = 0.40 * 255   # backgrounds stay below 0.3
VAL_MIN = 0.18 * 255
HUE_TOL = 11           # opencv hue units (0..179); palette hues are ≥ 23 apart
MIN_AREA = 6.0         # px; below this a shape counts as absent in a frame


def _palette_hues() -> dict[str, float]:
    out = {}
    for name, rgb in COLOURS.items():
        px = np.array([[rgb]], np.uint8)
        out[name] = float(cv2.cvtColor(px, cv2.COLOR_RGB2HSV)[0, 0, 0])
    return out


PALETTE_HUES = _palette_hues()


def colour_masks(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per palette colour, a bool mask [F, H, W] of pixels nearest to that hue (saturated, not too dark)."""
    f, h, w, _ = frames.shape
    hsv = cv2.cvtColor(np.ascontiguousarray(frames.reshape(f * h, w, 3)), cv2.COLOR_RGB2HSV).reshape(f, h, w, 3)
    hue = hsv[..., 0].astype(np.float32)
    ok = (hsv[..., 1] >= SAT_MIN) & (hsv[..., 2] >= VAL_MIN)
    names = list(PALETTE_HUES)
    d = np.stack([np.minimum(np.abs(hue - PALETTE_HUES[n]), 180 - np.abs(hue - PALETTE_HUES[n])) for n in names])
    nearest = d.argmin(0)
    close = d.min(0) <= HUE_TOL
    return {n: ok & close & (nearest == k) for k, n in enumerate(names)}


@dataclass
class Track:
    xy: np.ndarray    # [F, 2] centroid, NaN where absent
    area: np.ndarray  # [F] pixels

    def present(self, f: int) -> bool:
        return self.area[f] >= MIN_AREA

    def at(self, frames: list[int]) -> np.ndarray:
        """Mean centroid over the given frames where present (NaN if absent in all)."""
        pts = [self.xy[f] for f in frames if self.present(f)]
        return np.mean(pts, 0) if pts else np.array([np.nan, np.nan])


def track(mask: np.ndarray) -> Track:
    """Centroid and area per frame of the largest connected blob of a colour (drops stray specks)."""
    f = mask.shape[0]
    xy = np.full((f, 2), np.nan)
    area = np.zeros(f)
    for i in range(f):
        m = mask[i].astype(np.uint8)
        n, lab, stats, cent = cv2.connectedComponentsWithStats(m, connectivity=8)
        if n <= 1:
            continue
        # Keep the biggest blob plus any blob at least a third of it (a texture can split a shape in two).
        areas = stats[1:, cv2.CC_STAT_AREA].astype(float)
        keep = np.where(areas >= areas.max() / 3)[0]
        a = areas[keep].sum()
        area[i] = a
        xy[i] = (cent[1 + keep] * areas[keep, None]).sum(0) / a
    return Track(xy, area)


def _expected_area(scene: Scene, i: int, f: int, traj: np.ndarray) -> float:
    x, y, r = traj[f, i]
    return float(shape_mask(scene.shapes[i].kind, x, y, r, scene.height, scene.width).sum())


def shape_checks(frames: np.ndarray, scene: Scene, masks: dict[str, np.ndarray] | None = None) -> list[dict]:
    """Per shape: {'shape', 'present': bool, 'motion': bool, 'detail': str}. `masks`: the clip's `colour_masks`
    when the caller already has them."""
    f = frames.shape[0]
    if f != scene.num_frames:
        raise ValueError(f"clip has {f} frames, the scene {scene.num_frames}")
    traj = trajectory(scene)
    masks = colour_masks(frames) if masks is None else masks
    tracks = [track(masks[s.colour]) for s in scene.shapes]
    first, last = [0, 1], [f - 2, f - 1]
    out = []
    for i, s in enumerate(scene.shapes):
        tr = tracks[i]
        p0, p1 = tr.at(first), tr.at(last)
        a0 = np.mean([tr.area[k] for k in first])
        a1 = np.mean([tr.area[k] for k in last])
        exp0 = _expected_area(scene, i, 0, traj)
        present = bool(
            np.all(np.isfinite(p0))
            and np.linalg.norm(p0 - traj[0, i, :2]) <= 10.0
            and 0.4 * exp0 <= a0 <= 2.2 * exp0
        )
        ok, why = False, "absent"
        if np.all(np.isfinite(p0)) and np.all(np.isfinite(p1)):
            d = p1 - p0
            dist = float(np.linalg.norm(d))
            ratio = a1 / max(a0, 1.0)
            wander = np.nanmax(np.linalg.norm(tr.xy - p0[None], axis=1)) if np.any(tr.area >= MIN_AREA) else 0.0
            m = s.motion
            if m in DIRECTIONS:
                u = np.array(DIRECTIONS[m])
                along = float(d @ u)
                across = float(abs(d @ np.array([u[1], -u[0]])))
                ok = along >= 8.0 and across <= max(5.0, 0.5 * along)
                why = f"along {along:.1f} across {across:.1f}"
            elif m in ("toward", "away"):
                ot = tracks[s.target]
                q0, q1 = ot.at(first), ot.at(last)
                if np.all(np.isfinite(q0)) and np.all(np.isfinite(q1)):
                    gain = float(np.linalg.norm(p1 - q1) - np.linalg.norm(p0 - q0))
                    to_target = q0 - p0
                    cos = float(d @ to_target / (dist * np.linalg.norm(to_target) + 1e-6))
                    if m == "toward":
                        ok = gain <= -6.0 and dist >= 6.0 and cos >= 0.7
                    else:
                        ok = gain >= 6.0 and dist >= 6.0 and cos <= -0.7
                    why = f"distance change {gain:.1f} moved {dist:.1f} cos {cos:.2f}"
                else:
                    why = "target absent"
            elif m == "bounce":
                ys = tr.xy[:, 1] - p0[1]
                depth = float(np.nanmax(ys))
                ok = depth >= 8.0 and dist <= 6.0
                why = f"depth {depth:.1f} end offset {dist:.1f}"
            elif m == "grow":
                ok = ratio >= 1.6 and dist <= 6.0
                why = f"area x{ratio:.2f}"
            elif m == "shrink":
                ok = ratio <= 0.6 and dist <= 6.0
                why = f"area x{ratio:.2f}"
            else:  # still
                ok = dist <= 4.0 and wander <= 5.0 and 0.7 <= ratio <= 1.4
                why = f"moved {dist:.1f} wander {wander:.1f} area x{ratio:.2f}"
        out.append({"shape": f"{s.colour} {s.kind}", "motion_name": s.motion, "present": present,
                    "motion": bool(ok), "detail": why})
    return out


def instruction_score(frames: np.ndarray, scene: Scene, masks: dict[str, np.ndarray] | None = None) -> float:
    """Weighted fraction of the scene's yes/no questions the clip passes, in [0, 1]."""
    checks = shape_checks(frames, scene, masks)
    got = sum(1.0 * c["present"] + 2.0 * c["motion"] for c in checks)
    return got / (3.0 * len(checks))


def placement_score(frames: np.ndarray, scene: Scene, blur_px: float = 3.0,
                    masks: dict[str, np.ndarray] | None = None) -> float:
    """Mean soft IoU, over shapes and frames, of each shape's colour mask with its true mask (both blurred by
    `blur_px`, so a few pixels off still counts partly). In [0, 1]; the rendered scene itself scores near 1."""
    f = frames.shape[0]
    if f != scene.num_frames:
        raise ValueError(f"clip has {f} frames, the scene {scene.num_frames}")
    traj = trajectory(scene)
    masks = colour_masks(frames) if masks is None else masks
    out = []
    for i, s in enumerate(scene.shapes):
        for k in range(f):
            x, y, r = traj[k, i]
            truth = cv2.GaussianBlur(shape_mask(s.kind, x, y, r, scene.height, scene.width), (0, 0), blur_px)
            got = cv2.GaussianBlur(masks[s.colour][k].astype(np.float32), (0, 0), blur_px)
            union = float(np.maximum(truth, got).sum())
            out.append(float(np.minimum(truth, got).sum()) / union if union > 0 else 0.0)
    return float(np.mean(out))


def _luma(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _bands(y: np.ndarray) -> list[np.ndarray]:
    """Two high-pass bands of luma frames [F, H, W]: fine edges (< σ 1) and the texture band (σ 1..2.5)."""
    b1 = np.stack([cv2.GaussianBlur(f, (0, 0), 1.0) for f in y])
    b2 = np.stack([cv2.GaussianBlur(f, (0, 0), 2.5) for f in y])
    return [y - b1, b1 - b2]


def _tile_energy(band: np.ndarray, tile: int = 16) -> np.ndarray:
    f, h, w = band.shape
    e = np.abs(band).reshape(f, h // tile, tile, w // tile, tile).mean((2, 4))
    return e


def detail_score(frames: np.ndarray, reference: np.ndarray) -> float:
    """High-frequency match in [0, 1] between a clip and its ground truth (both uint8 [F, H, W, 3])."""
    if frames.shape != reference.shape:
        raise ValueError(f"clip shape {frames.shape} differs from reference {reference.shape}")
    scores = []
    for bg, br in zip(_bands(_luma(frames)), _bands(_luma(reference))):
        eg, er = _tile_energy(bg), _tile_energy(br)
        c = 0.5
        scores.append(float(((2 * eg * er + c) / (eg**2 + er**2 + c)).mean()))
    return float(np.mean(scores))


def psnr(frames: np.ndarray, reference: np.ndarray) -> float:
    mse = float(np.mean((frames.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim(frames: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM on luma (Gaussian window σ 1.5, the usual constants)."""
    x, y = _luma(frames).astype(np.float64), _luma(reference).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    vals = []
    for a, b in zip(x, y):
        blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5)
        mu_a, mu_b = blur(a), blur(b)
        saa = blur(a * a) - mu_a**2
        sbb = blur(b * b) - mu_b**2
        sab = blur(a * b) - mu_a * mu_b
        vals.append(((2 * mu_a * mu_b + c1) * (2 * sab + c2) / ((mu_a**2 + mu_b**2 + c1) * (saa + sbb + c2))).mean())
    return float(np.mean(vals))


def score_clip(frames: np.ndarray, scene: Scene, reference: np.ndarray | None = None) -> dict:
    """All scores of one clip against its resolved scene: instruction, placement, detail, psnr, ssim."""
    ref = render(scene) if reference is None else reference
    masks = colour_masks(frames)  # shared by both shape scores
    return {
        "instruction": instruction_score(frames, scene, masks),
        "placement": placement_score(frames, scene, masks=masks),
        "detail": detail_score(frames, ref),
        "psnr": psnr(frames, ref),
        "ssim": ssim(frames, ref),
    }
