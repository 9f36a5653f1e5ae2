"""Scene programs of the mini world: what is in a clip and how it moves.

A scene is 1–3 shapes, each with a kind, colour, size, surface texture, a start slot on a 3×3 grid and one
motion, on a textured background. Everything a clip shows follows from the scene, so ground truth is exact:
`trajectory()` gives every shape's centre and radius per frame, `render.render()` draws it, `score` checks a
clip against it.

Pure numpy; importable without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

WIDTH = 64
HEIGHT = 64
NUM_FRAMES = 17

KINDS = ("circle", "square", "triangle", "star")
# Saturated, hue-separated colours: the scorer finds each shape by hue, so no two shapes of a scene share one.
COLOURS = {
    "red": (230, 40, 40),
    "yellow": (235, 215, 40),
    "green": (40, 190, 60),
    "cyan": (40, 200, 220),
    "blue": (50, 70, 230),
    "magenta": (210, 50, 210),
}
SIZES = {"small": 7.0, "big": 11.0}  # nominal radius in pixels at 64×64
TEXTURES = ("plain", "striped", "checked", "dotted")
# Backgrounds are unsaturated (HSV saturation < 0.3), so they never look like a shape to the scorer.
BG_COLOURS = {"gray": (128, 128, 128), "sand": (160, 145, 120), "slate": (80, 90, 105)}
BG_TEXTURES = ("striped", "checked", "dotted")

# Start slots: column 0..2 (left..right) × row 0..2 (top..bottom), centres at 16/32/48 px.
SLOT_XY = (16.0, 32.0, 48.0)
SLOT_NAMES = {
    (0, 0): "top left", (1, 0): "top", (2, 0): "top right",
    (0, 1): "left", (1, 1): "center", (2, 1): "right",
    (0, 2): "bottom left", (1, 2): "bottom", (2, 2): "bottom right",
}

DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
RELATIVE_MOTIONS = ("toward", "away")
MOTIONS = ("left", "right", "up", "down", "toward", "away", "bounce", "grow", "shrink", "still")

TRAVEL = 20.0       # px a shape travels over the clip (left/right/up/down/away, at most for toward)
BOUNCE_DEPTH = 16.0  # px a dropped shape falls before it bounces back
GROW = 1.6           # radius factor at the end of "grow"
SHRINK = 0.55        # radius factor at the end of "shrink"
MIN_TRAVEL = 8.0     # a relative motion shorter than this is not offered (the scorer could not see it)
EXTENT = {"circle": 1.0, "square": 1.2, "triangle": 1.35, "star": 1.45}  # outer radius / nominal radius


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    size: str
    texture: str
    slot: tuple[int, int]
    motion: str = "still"
    target: int | None = None  # index of the other shape for "toward" / "away"

    @property
    def radius(self) -> float:
        return SIZES[self.size]

    @property
    def start(self) -> tuple[float, float]:
        return SLOT_XY[self.slot[0]], SLOT_XY[self.slot[1]]


@dataclass(frozen=True)
class Scene:
    shapes: tuple[Shape, ...]
    bg_colour: str = "gray"
    bg_texture: str = "checked"
    num_frames: int = NUM_FRAMES
    width: int = WIDTH
    height: int = HEIGHT
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def with_motions(self, motions: list[tuple[str, int | None]]) -> "Scene":
        shapes = tuple(replace(s, motion=m, target=t) for s, (m, t) in zip(self.shapes, motions))
        return replace(self, shapes=shapes)


def _end_point(scene: Scene, i: int) -> tuple[np.ndarray, float]:
    """End centre of shape i and the distance it travels (before clamping to the frame)."""
    s = scene.shapes[i]
    p0 = np.array(s.start)
    if s.motion in DIRECTIONS:
        return p0 + TRAVEL * np.array(DIRECTIONS[s.motion]), TRAVEL
    if s.motion in RELATIVE_MOTIONS:
        other = scene.shapes[s.target]
        v = np.array(other.start) - p0
        d = float(np.linalg.norm(v))
        u = v / max(d, 1e-6)
        if s.motion == "toward":
            m = min(TRAVEL, d - (EXTENT[s.kind] * s.radius + EXTENT[other.kind] * other.radius) - 2.0)
            return p0 + m * u, m
        return p0 - TRAVEL * u, TRAVEL
    return p0, 0.0


def _clamp(p: np.ndarray, r: float, scene: Scene) -> np.ndarray:
    return np.array([np.clip(p[0], r, scene.width - r), np.clip(p[1], r, scene.height - r)])


def trajectory(scene: Scene) -> np.ndarray:
    """Per-frame centre and radius of every shape: float array [F, n, 3] of (x, y, r) in pixels."""
    f = scene.num_frames
    t = np.linspace(0.0, 1.0, f)
    out = np.zeros((f, len(scene.shapes), 3))
    for i, s in enumerate(scene.shapes):
        p0 = np.array(s.start)
        r = np.full(f, s.radius)
        if s.motion in DIRECTIONS or s.motion in RELATIVE_MOTIONS:
            p1 = _clamp(_end_point(scene, i)[0], s.radius, scene)
            xy = p0[None] + t[:, None] * (p1 - p0)[None]
        elif s.motion == "bounce":
            xy = np.repeat(p0[None], f, 0)
            xy[:, 1] += BOUNCE_DEPTH * np.sin(np.pi * t)
        else:
            xy = np.repeat(p0[None], f, 0)
            if s.motion == "grow":
                r = s.radius * (1.0 + (GROW - 1.0) * t)
            elif s.motion == "shrink":
                r = s.radius * (1.0 + (SHRINK - 1.0) * t)
        out[:, i, 0:2] = xy
        out[:, i, 2] = r
    return out


def collides(scene: Scene, margin: float = 1.0) -> bool:
    """Whether two shapes' outer circles come closer than `margin` px in any frame (they would occlude)."""
    traj = trajectory(scene)
    ext = np.array([EXTENT[s.kind] for s in scene.shapes])
    n = len(scene.shapes)
    for i in range(n):
        for j in range(i + 1, n):
            d = np.linalg.norm(traj[:, i, :2] - traj[:, j, :2], axis=1)
            if np.any(d < ext[i] * traj[:, i, 2] + ext[j] * traj[:, j, 2] + margin):
                return True
    return False


def motion_feasible(scene: Scene, i: int, motion: str, target: int | None = None) -> bool:
    """Whether shape i can visibly perform `motion` from its slot (stays on screen, travels far enough)."""
    s = replace(scene.shapes[i], motion=motion, target=target)
    col, row = s.slot
    if motion == "left":
        return col >= 1
    if motion == "right":
        return col <= 1
    if motion == "up":
        return row >= 1
    if motion == "down":
        return row <= 1
    if motion == "bounce":
        return row <= 1
    if motion in RELATIVE_MOTIONS:
        if target is None or target == i:
            return False
        sc = replace(scene, shapes=tuple(s if j == i else x for j, x in enumerate(scene.shapes)))
        p1, m = _end_point(sc, i)
        p1 = _clamp(p1, s.radius, scene)
        p0 = np.array(s.start)
        q = np.array(scene.shapes[target].start)
        moved = float(np.linalg.norm(p1 - p0))
        gain = abs(float(np.linalg.norm(p1 - q) - np.linalg.norm(p0 - q)))
        return moved >= MIN_TRAVEL + 2 and gain >= MIN_TRAVEL
    return motion in ("grow", "shrink", "still")


def random_layout(rng: np.random.Generator, n: int | None = None) -> Scene:
    """A scene with 1–3 still shapes: distinct colours, non-touching slots, random looks and background."""
    if n is None:
        n = int(rng.choice([1, 2, 3], p=[0.2, 0.45, 0.35]))
    colours = rng.choice(list(COLOURS), size=n, replace=False)
    slots: list[tuple[int, int]] = []
    cells = [(c, r) for c in range(3) for r in range(3)]
    while len(slots) < n:
        slots = []
        for c in rng.permutation(len(cells)):
            cand = cells[c]
            # Slots must be two cells apart in at least one axis, so shapes start clearly separated.
            if all(max(abs(cand[0] - o[0]), abs(cand[1] - o[1])) >= 2 for o in slots):
                slots.append(cand)
            if len(slots) == n:
                break
    shapes = tuple(
        Shape(
            kind=str(rng.choice(KINDS)),
            colour=str(colours[k]),
            size=str(rng.choice(list(SIZES))),
            texture=str(rng.choice(TEXTURES)),
            slot=slots[k],
        )
        for k in range(n)
    )
    # Reading order (top to bottom, left to right) keeps descriptions canonical.
    shapes = tuple(sorted(shapes, key=lambda s: (s.slot[1], s.slot[0])))
    return Scene(shapes=shapes, bg_colour=str(rng.choice(list(BG_COLOURS))), bg_texture=str(rng.choice(BG_TEXTURES)))


def feasible_motions(scene: Scene, i: int) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    for m in MOTIONS:
        if m in RELATIVE_MOTIONS:
            out += [(m, j) for j in range(len(scene.shapes)) if j != i and motion_feasible(scene, i, m, j)]
        elif motion_feasible(scene, i, m):
            out.append((m, None))
    return out
