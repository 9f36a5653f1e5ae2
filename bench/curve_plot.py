"""The (detail, reasoning) plane of bench/handoff_curve.py as a PNG (opencv only): UPFB's curve over the slider,
the hard switches at equal compute, light and heavy, and the VAE's detail ceiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np

UPFB = (200, 60, 30)
SWITCH = (30, 120, 220)
ENDS = (40, 40, 40)
LEAD = (150, 60, 170)


def plot_curve(points, ceiling: float, path: Path, size=(900, 600)) -> None:
    import cv2

    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    x0, y0, x1, y1 = 80, 50, w - 230, h - 70
    xs = [p.detail for p in points] + [ceiling]
    ys = [p.reasoning for p in points]
    dlo, dhi = min(xs) - 0.01, max(xs) + 0.01
    rlo, rhi = max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05)
    X = lambda v: int(x0 + (v - dlo) / (dhi - dlo) * (x1 - x0))  # noqa: E731
    Y = lambda v: int(y1 - (v - rlo) / (rhi - rlo) * (y1 - y0))  # noqa: E731
    font, ink = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    cv2.rectangle(img, (x0, y0), (x1, y1), ink, 1)
    for v in np.linspace(dlo, dhi, 6):
        cv2.line(img, (X(v), y1), (X(v), y1 + 4), ink, 1)
        cv2.putText(img, f"{v:.3f}", (X(v) - 18, y1 + 18), font, 0.4, ink, 1, cv2.LINE_AA)
    for v in np.linspace(rlo, rhi, 6):
        cv2.line(img, (x0 - 4, Y(v)), (x0, Y(v)), ink, 1)
        cv2.putText(img, f"{v:.2f}", (x0 - 42, Y(v) + 4), font, 0.4, ink, 1, cv2.LINE_AA)
    cv2.putText(img, "detail (correctness, explicit instructions)", (x0 + 120, h - 30), font, 0.5, ink, 1, cv2.LINE_AA)
    cv2.putText(img, "reasoning instruction score", (8, y0 - 20), font, 0.5, ink, 1, cv2.LINE_AA)
    cv2.putText(img, "hand-off: UPFB vs hard switch at equal compute", (x0 + 140, 22), font, 0.55, ink, 1, cv2.LINE_AA)
    for yy in range(y0, y1, 10):  # the ceiling: no generator in this latent space draws more detail
        cv2.line(img, (X(ceiling), yy), (X(ceiling), yy + 5), (120, 120, 120), 1)
    cv2.putText(img, "VAE ceiling", (X(ceiling) - 40, y0 - 6), font, 0.38, (90, 90, 90), 1, cv2.LINE_AA)
    by = {p.mode.name: p for p in points}
    light, heavy = by["light"], by["heavy"]

    def curve(pts, colour, label_of):
        pts = [light] + pts + [heavy]
        for a, b in zip(pts[:-1], pts[1:]):
            cv2.line(img, (X(a.detail), Y(a.reasoning)), (X(b.detail), Y(b.reasoning)), colour, 2, cv2.LINE_AA)
        for p in pts[1:-1]:
            cv2.circle(img, (X(p.detail), Y(p.reasoning)), 5, colour, -1, cv2.LINE_AA)
            cv2.putText(img, label_of(p), (X(p.detail) + 6, Y(p.reasoning) - 6), font, 0.35, colour, 1, cv2.LINE_AA)

    upfb = sorted((p for p in points if p.mode.mode == "upfb" and not p.mode.light_lead), key=lambda p: p.mode.handoff)
    led = sorted((p for p in points if p.mode.mode == "upfb" and p.mode.light_lead), key=lambda p: p.mode.handoff)
    if led:
        curve(led, LEAD, lambda p: f"s={p.mode.handoff:.1f}")
    switch = sorted((p for p in points if p.mode.mode == "switch"), key=lambda p: -p.mode.switch_step / p.mode.steps)
    curve(upfb, UPFB, lambda p: f"s={p.mode.handoff:.1f}")
    curve(switch, SWITCH, lambda p: f"{p.mode.switch_step}/{p.mode.steps}")
    for p, name in ((light, "light"), (heavy, "heavy")):
        cv2.circle(img, (X(p.detail), Y(p.reasoning)), 7, ENDS, 2, cv2.LINE_AA)
        cv2.putText(img, name, (X(p.detail) + 8, Y(p.reasoning) + 14), font, 0.45, ENDS, 1, cv2.LINE_AA)
    for p in points:
        if p.mode.mode == "heavy" and p.mode.steps:
            cv2.drawMarker(img, (X(p.detail), Y(p.reasoning)), SWITCH, cv2.MARKER_DIAMOND, 12, 2)
    legend = [("UPFB over the slider s", UPFB), ("hard switch, light steps / all (UPFB's compute)", SWITCH),
              ("heavy alone at UPFB's compute (diamond)", SWITCH)]
    if led:
        legend.append((f"UPFB with a {led[0].mode.light_lead}-step light lead", LEAD))
    for k, (text, colour) in enumerate(legend):
        yy = y0 + 12 + 22 * k
        cv2.line(img, (x1 + 10, yy), (x1 + 30, yy), colour, 2)
        cv2.putText(img, text, (x1 + 35, yy + 4), font, 0.33, ink, 1, cv2.LINE_AA)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
