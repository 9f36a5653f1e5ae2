"""The Qt binding keeps Python's reference counts (app/qt_check.py): PySide6 6.12.0 did not, and crashed the app."""

from __future__ import annotations

import ctypes
import subprocess
import sys

from app.qt_check import CALLS, binding_problem, none_refs_lost


def test_the_installed_binding_keeps_none_alive(qapp):
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    assert none_refs_lost(lambda: label.setText("x"), 1000) < 10
    assert binding_problem() is None


def test_a_binding_that_loses_references_is_named_with_the_fix():
    decref, incref = ctypes.pythonapi.Py_DecRef, ctypes.pythonapi.Py_IncRef
    decref.argtypes = incref.argtypes = [ctypes.py_object]
    if sys.version_info >= (3, 12):  # None is immortal there: nothing can be lost, nothing to detect
        assert binding_problem(lambda: None) is None
        return
    try:
        problem = binding_problem(lambda: decref(None))
    finally:
        for _ in range(CALLS):  # give back exactly what the fake binding took
            incref(None)
    assert problem is not None and "PySide6-Essentials<6.12" in problem


def test_the_pin_keeps_the_broken_release_out():
    import tomllib
    from pathlib import Path

    deps = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]["dependencies"]
    pyside = next(d for d in deps if d.lower().startswith("pyside6"))
    assert "<6.12" in pyside.replace(" ", "")


def test_the_app_refuses_a_broken_binding_in_one_line(tmp_path):
    code = ("import sys, app.qt_check as q\n"
            "q.binding_problem = lambda call=None: 'the installed PySide6 X loses a reference to None'\n"
            "import app\n"
            "sys.exit(app.run([]))\n")
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60,
                         env={"QT_QPA_PLATFORM": "offscreen", "LUMOS_STUDIO_HOME": str(tmp_path),
                              "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "loses a reference to None" in out.stderr
