"""Icons, stylesheet and presets from resources/ (read once, cached)."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from PySide6.QtGui import QIcon

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
ICONS = RESOURCES / "icons"

FALLBACK_SIZES = [{"name": "480p landscape (Wan default)", "width": 832, "height": 480},
                  {"name": "Mini 64 x 64", "width": 64, "height": 64}]


@functools.cache
def icon(name: str) -> QIcon:
    path = ICONS / f"{name}.svg"
    if not path.exists():
        log.warning("missing icon %s", path)
        return QIcon()
    return QIcon(str(path))


def stylesheet() -> str:
    try:
        text = (RESOURCES / "style" / "dark.qss").read_text(encoding="utf-8")
    except OSError:
        log.warning("stylesheet missing; using Qt's default look")
        return ""
    return text.replace("@ICONS@", ICONS.as_posix())


@functools.cache
def presets() -> dict:
    """Size presets; invalid ones (sides not multiples of 16) are dropped with a warning."""
    try:
        data = json.loads((RESOURCES / "presets" / "sizes.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("presets unreadable (%s); using built-in ones", exc)
        data = {}
    sizes = []
    for item in data.get("sizes", []):
        try:
            w, h, name = int(item["width"]), int(item["height"]), str(item["name"])
        except (KeyError, TypeError, ValueError):
            continue
        if w % 16 or h % 16 or not (16 <= w <= 2048 and 16 <= h <= 2048):
            log.warning("size preset %s (%dx%d) is not a multiple of 16; skipped", name, w, h)
            continue
        sizes.append({"name": name, "width": w, "height": h})
    return {"sizes": sizes or FALLBACK_SIZES}
