"""Lumos Studio's desktop app (PySide6).

Nothing in app/ imports torch or diffusers at module level: the window paints first, and the engine's worker
thread imports them when it loads the models.
"""

from __future__ import annotations


def run(argv: list[str] | None = None) -> int:
    """Start the app and return its exit code (see app.main_window.run for the options). A Qt binding that would
    crash the app (app/qt_check.py) is refused with one line, exit status 2."""
    import sys

    from .qt_check import binding_problem

    problem = binding_problem()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from .main_window import run as _run

    return _run(argv)


__all__ = ["run"]
