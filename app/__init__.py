"""Lumos Studio's desktop app (PySide6).

Nothing in app/ imports torch or diffusers at module level: the window paints first, and the engine's worker
thread imports them when it loads the models.
"""

from __future__ import annotations


def run(argv: list[str] | None = None) -> int:
    """Start the app and return its exit code (see app.main_window.run for the options)."""
    from .main_window import run as _run

    return _run(argv)


__all__ = ["run"]
