"""A guard against Qt bindings that corrupt Python's reference counts.

PySide6 6.12.0 drops one reference to None on every call of a method that returns nothing (setText, update,
processEvents…). On Python 3.11, where None is an ordinary object (≈ 5 000 references at start), the app dies with
"Fatal Python error: none_dealloc" after a few thousand calls: within seconds of use. pyproject.toml keeps 6.12
out; this check catches an install that has it anyway, before the window opens, with a message instead of a crash.
"""

from __future__ import annotations

import sys
from typing import Callable

CALLS = 200


def none_refs_lost(call: Callable[[], None], calls: int = CALLS) -> int:
    """How many references to None `calls` calls of `call` lose (0 for a sound binding; 0 on Python 3.12+, where
    None is immortal and cannot be freed)."""
    before = sys.getrefcount(None)
    for _ in range(calls):
        call()
    return before - sys.getrefcount(None)


def binding_problem(call: Callable[[], None] | None = None) -> str | None:
    """A one-line explanation when the installed Qt binding loses references to None, else None."""
    if call is None:
        from PySide6.QtCore import QObject

        probe = QObject()
        call = lambda: probe.setObjectName("probe")  # noqa: E731 - a void method of the binding
    lost = none_refs_lost(call)
    if lost < CALLS // 2:
        return None
    import PySide6

    return (f"the installed PySide6 {PySide6.__version__} loses a reference to None on every call (a known "
            "bug of PySide6 6.12.0) and would crash the app within seconds on this Python: run "
            "pip install 'PySide6-Essentials<6.12' (or python3 bootstrap.py, which installs the pinned version)")
