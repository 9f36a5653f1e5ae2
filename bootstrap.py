#!/usr/bin/env python3
"""Set up what is missing, then start the app or run the tests. Needs only Python 3.11+.

    python3 bootstrap.py app      # create .venv if needed, install dependencies, start Lumos Studio
    python3 bootstrap.py test     # same, plus test tools and Qt's system libraries, then run the whole suite

Both are idempotent: a stamp in .venv records what was installed, so a second run starts at once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
# The CPU build of this torch release installs from local disk on our CI; GPU users may preinstall any 2.x build.
TORCH_PIN = "torch==2.13.0"
# Qt's offscreen/xcb platform plugins need these on Debian/Ubuntu (docs/design.md §7).
QT_DEBIAN_PACKAGES = [
    "fonts-dejavu-core", "fontconfig", "libegl1", "libgl1", "libfontconfig1", "libglib2.0-0", "libx11-xcb1",
    "libxcb-cursor0", "libxcb-icccm4", "libxcb-image0", "libxcb-keysyms1", "libxcb-randr0", "libxcb-render-util0",
    "libxcb-shape0", "libxcb-xfixes0", "libxcb-xkb1", "libxkbcommon-x11-0", "libxkbcommon0", "libdbus-1-3",
]


def say(msg: str) -> None:
    print(f"[bootstrap] {msg}", flush=True)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, **kw)


def requirements(with_tests: bool) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [r for r in project["dependencies"] if not r.replace(" ", "").startswith("torch")]
    if with_tests:
        reqs += project["optional-dependencies"]["test"]
    return reqs


def ensure_python_packages(with_tests: bool) -> None:
    if sys.version_info < (3, 11):
        sys.exit("Lumos Studio needs Python 3.11 or newer")
    if not venv_python().exists():
        say(f"creating {VENV}")
        run([sys.executable, "-m", "venv", str(VENV)])
    reqs = requirements(with_tests)
    stamp = VENV / ".lumos-stamp"

    def digest(with_test_tools: bool) -> str:
        return hashlib.sha256("\n".join([TORCH_PIN, *requirements(with_test_tools)]).encode()).hexdigest()

    want = digest(with_tests)
    # an environment set up for the tests has everything the app needs as well
    satisfied = {want, digest(True)}
    if stamp.exists() and stamp.read_text().strip() in satisfied:
        return
    py = str(venv_python())
    have_torch = subprocess.run([py, "-c", "import torch"], capture_output=True).returncode == 0
    if not have_torch:
        say(f"installing {TORCH_PIN}")
        run([py, "-m", "pip", "install", "-q", "--no-cache-dir", TORCH_PIN])
    say("installing dependencies")
    # no wheel cache: on a fresh machine it would only double what the environment takes on disk
    run([py, "-m", "pip", "install", "-q", "--no-cache-dir", *reqs])
    stamp.write_text(want)


def missing_debian_packages() -> list[str]:
    if not shutil.which("dpkg-query"):
        return []
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\n", *QT_DEBIAN_PACKAGES],
                         capture_output=True, text=True).stdout
    installed = {line.split()[0] for line in out.splitlines() if line.endswith("install ok installed")}
    return [p for p in QT_DEBIAN_PACKAGES if p not in installed]


def ensure_qt_system_libraries() -> None:
    missing = missing_debian_packages()
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing Qt system libraries: " + " ".join(missing))
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env,
            stdout=subprocess.DEVNULL)
        run(["apt-get", "clean"], env=env)  # the downloaded .deb files are not needed once installed
    else:
        say("Qt needs these system packages; install them with:\n    sudo apt-get install -y " + " ".join(missing))


# What the suite holds in the temp folder at its peak, with room to spare (measured on a fresh clone: 1.9 GB while
# the real-width model test runs, 0.7 GB during the training tests, 6 MB once it has passed).
TEST_TEMP_NEEDED_MB = 2500


def warn_if_temp_is_nearly_full() -> None:
    """Tests that fail with 'No space left on device' say nothing of why: say it before they start."""
    import tempfile

    free_mb = shutil.disk_usage(tempfile.gettempdir()).free // 2**20
    if free_mb < TEST_TEMP_NEEDED_MB:
        say(f"only {free_mb} MB free in {tempfile.gettempdir()}; the suite needs about {TEST_TEMP_NEEDED_MB} MB "
            "there: free some space (or point TMPDIR at a larger disk), or tests will fail for want of it")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("app", "test"):
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_python_packages(with_tests=command == "test")
    py = str(venv_python())
    if command == "app":
        return subprocess.call([py, str(ROOT / "main.py"), *rest], cwd=ROOT)
    ensure_qt_system_libraries()
    warn_if_temp_is_nearly_full()
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.call([py, "-m", "pytest", "-q", *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
