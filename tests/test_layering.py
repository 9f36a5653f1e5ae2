"""Architecture rules: engine/ never imports Qt; app/ and the CLI reach the engine only through engine.api; the
shipped packages (engine/, app/) never import the development ones (miniworld/, devtools/, training/, bench/, tests/);
the UPFB defaults are written in one place."""

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


def _relative_imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            yield "." * node.level + (node.module or "")


def test_cli_uses_only_the_public_engine_api():
    for cli in (ROOT / "engine" / "cli.py", ROOT / "engine" / "cli_args.py"):  # running, and its arguments
        absolute = [name for name in _imports(cli) if name.split(".")[0] == "engine" and name != "engine.api"]
        relative = [name for name in _relative_imports(cli) if name not in (".api", ".cli_args")]
        assert absolute == [] and relative == [], cli


def test_shipped_packages_never_import_development_packages():
    dev = {"miniworld", "devtools", "training", "bench", "tests", "scripts"}
    offenders = [(str(p.relative_to(ROOT)), name) for top in ("engine", "app") for p in (ROOT / top).rglob("*.py")
                 for name in _imports(p) if name.split(".")[0] in dev]
    assert offenders == []


def test_upfb_defaults_are_written_only_in_upfbparams():
    """gamma_hf / sigma_min / sigma_max get a number only in engine.request.UPFBParams: every other default (the
    sampler's, the fusion's, the CLI's, the bench's) is read from it."""
    names = {"gamma_hf", "sigma_min", "sigma_max", "--gamma-hf", "--sigma-min", "--sigma-max"}

    def literal(node):
        return isinstance(node, ast.Constant) and isinstance(node.value, (int, float))

    offenders = []
    for top in ("engine", "app", "bench", "devtools"):
        for path in (ROOT / top).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            where = str(path.relative_to(ROOT))
            for node in ast.walk(tree):
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    pairs = [(node.target.id, node.value)]
                elif isinstance(node, ast.arguments):
                    args = node.posonlyargs + node.args
                    pairs = list(zip([a.arg for a in args[len(args) - len(node.defaults):]], node.defaults))
                    pairs += [(a.arg, d) for a, d in zip(node.kwonlyargs, node.kw_defaults) if d is not None]
                elif isinstance(node, ast.Call):
                    flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                    pairs = [(k.arg, k.value) for k in node.keywords if k.arg in names]
                    pairs += [(f, k.value) for f in flags for k in node.keywords if k.arg == "default"]
                else:
                    continue
                for name, value in pairs:
                    if name in names and literal(value) and not (where == "engine/request.py"
                                                                  and isinstance(node, ast.AnnAssign)):
                        offenders.append((where, node.lineno, name))
    assert offenders == []
