"""Architecture rules: engine/ never imports Qt; app/ reaches the engine only through engine.api."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_engine_never_imports_qt():
    offenders = [(str(p.relative_to(ROOT)), name) for p in (ROOT / "engine").rglob("*.py")
                 for name in _imports(p) if name.split(".")[0] in {"PySide6", "PyQt5", "PyQt6", "shiboken6"}]
    assert offenders == []


def test_app_uses_only_the_public_engine_api():
    offenders = [(str(p.relative_to(ROOT)), name) for p in (ROOT / "app").rglob("*.py")
                 for name in _imports(p) if name.split(".")[0] == "engine" and name != "engine.api"]
    assert offenders == []


def test_engine_api_import_is_light():
    import subprocess
    import sys

    code = ("import sys, engine.api; e = engine.api.Engine(); e.shutdown(); "
            "print('torch' in sys.modules, 'diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT).stdout.split()
    assert out == ["False", "False"]
