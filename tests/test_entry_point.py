"""main.py: the app's start without a display is one clear line (not Qt's SIGABRT), and --version answers."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_main(*args, env_drop=("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
    env = {k: v for k, v in os.environ.items() if k not in env_drop}
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_no_display_is_one_line_and_exit_2():
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is for Linux (X11 / Wayland)")
    out = run_main()
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "no display" in out.stderr
    assert "Traceback" not in out.stderr


def test_version():
    out = run_main("--version")
    assert out.returncode == 0 and out.stdout.startswith("Lumos Studio ")
