"""Shared fixtures: tiny models in the real diffusers layout, built once per test session.

The whole run is isolated from the real user's folders, from import time on: HOME, the XDG folders, Lumos Studio's
own LUMOS_STUDIO_HOME and the Hugging Face caches point into a temp folder for the session (set in os.environ
directly, so no fixture's monkeypatch.undo() can take them back). The real settings/data folders, as computed from
the environment the run started with, are snapshotted here and compared when the session finishes: any change
fails the run.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

APP_NAME = "LumosStudio"  # app.settings.APP_NAME (not imported here: this runs before any test module)


def real_user_dirs(env=None) -> list[Path]:
    """The folders the app would use for the person running the tests: platformdirs' config and data folders
    (and LUMOS_STUDIO_HOME's, when that was set), computed from `env` (default: the current environment)."""
    import platformdirs

    env = os.environ if env is None else env
    saved = {k: os.environ.get(k) for k in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")}
    try:
        for k in saved:
            if env.get(k) is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = env[k]
        dirs = [Path(platformdirs.user_config_dir(APP_NAME, False)), Path(platformdirs.user_data_dir(APP_NAME, False))]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if env.get("LUMOS_STUDIO_HOME"):
        dirs += [Path(env["LUMOS_STUDIO_HOME"]) / "config", Path(env["LUMOS_STUDIO_HOME"]) / "data"]
    return dirs


def snapshot_dirs(dirs) -> dict:
    """{path: (size, mtime_ns)} of everything under `dirs` (a folder that is absent shows as absent)."""
    out = {}
    for d in dirs:
        if not d.exists():
            out[str(d)] = "absent"
            continue
        for base, subdirs, files in os.walk(d):
            for name in subdirs + files:
                p = os.path.join(base, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                out[p] = (st.st_size, st.st_mtime_ns)
    return out


ORIGINAL_ENV = dict(os.environ)
REAL_USER_DIRS = real_user_dirs(ORIGINAL_ENV)
REAL_SNAPSHOT = snapshot_dirs(REAL_USER_DIRS)
SESSION_HOME = Path(tempfile.mkdtemp(prefix="lumos-tests-home-"))
ISOLATED_ENV = {
    "HOME": str(SESSION_HOME / "home"),
    "LUMOS_STUDIO_HOME": str(SESSION_HOME / "lumos"),
    "XDG_CONFIG_HOME": str(SESSION_HOME / "xdg-config"),
    "XDG_DATA_HOME": str(SESSION_HOME / "xdg-data"),
    "XDG_CACHE_HOME": str(SESSION_HOME / "xdg-cache"),
    "XDG_STATE_HOME": str(SESSION_HOME / "xdg-state"),
    "HF_HOME": str(SESSION_HOME / "hf"),
    "HF_HUB_CACHE": str(SESSION_HOME / "hf" / "hub"),
}
(SESSION_HOME / "home").mkdir()
os.environ.update(ISOLATED_ENV)
os.environ.pop("TRANSFORMERS_CACHE", None)


def changed_real_dirs() -> list[str]:
    """What changed in the real user's folders since the run started (empty when nothing did)."""
    now = snapshot_dirs(REAL_USER_DIRS)
    return sorted(p for p in set(now) | set(REAL_SNAPSHOT) if now.get(p) != REAL_SNAPSHOT.get(p))


def pytest_sessionfinish(session, exitstatus):
    changed = changed_real_dirs()
    shutil.rmtree(SESSION_HOME, ignore_errors=True)
    if changed:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "the test run changed the real user's folders: " + ", ".join(changed[:20])
        if reporter is not None:
            reporter.write_line(f"ERROR: {text}", red=True, bold=True)
        else:
            print(f"ERROR: {text}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory) -> Path:
    from devtools.tiny_models import build_tiny_family

    return build_tiny_family(tmp_path_factory.mktemp("tiny-family"))


@pytest.fixture(scope="session")
def tiny_spec(tiny_family):
    from engine.api import ModelSpec

    return ModelSpec(light=str(tiny_family / "light"), heavy=str(tiny_family / "heavy"))


@pytest.fixture(scope="session")
def nexus_release_raw(tmp_path_factory) -> Path:
    """A reduced random-init copy of the authors' two downloads in the release's layout and key names
    (devtools/nexus_release_layout.py), as downloaded: its plain pickles not converted. Built once (~18 s)."""
    from devtools.nexus_release_layout import build_release

    return build_release(tmp_path_factory.mktemp("nexus-raw"))


@pytest.fixture(scope="session")
def nexus_release(nexus_release_raw, tmp_path_factory) -> Path:
    """The same release after the user ran `main.py convert-nexus` on its bundle (root/bundle, root/wan14b)."""
    import main

    root = tmp_path_factory.mktemp("nexus")
    shutil.copytree(nexus_release_raw / "bundle", root / "bundle")
    shutil.copytree(nexus_release_raw / "wan14b", root / "wan14b")
    assert main.main(["convert-nexus", str(root / "bundle")]) == 0
    return root


@pytest.fixture(scope="session")
def tiny_planner(tmp_path_factory) -> Path:
    """A tiny random-init instruct model folder (Qwen2 class, chat template) for the planner of a plain pair."""
    from devtools.tiny_models import build_tiny_planner

    return build_tiny_planner(tmp_path_factory.mktemp("planner") / "Tiny-Planner-Instruct")
