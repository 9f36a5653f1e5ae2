"""Figures from the GPU tests, appended as JSON lines to $LUMOS_GPU_REPORT when that is set (for the README)."""

from __future__ import annotations

import json
import os


def report(**fields) -> None:
    path = os.environ.get("LUMOS_GPU_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(fields) + "\n")
