"""pytest-qt setup for the app's tests: offscreen Qt, user folders in tmp, a scripted engine by default."""

from __future__ import annotations

import os
from functools import partial

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def user_dirs(tmp_path, monkeypatch):
    """Settings and projects go to tmp: never the real user's platformdirs folders."""
    home = tmp_path / "home"
    monkeypatch.setenv("LUMOS_STUDIO_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return home


@pytest.fixture
def make_window(qtbot):
    """make_window(**fake_engine_options) -> a shown MainWindow on a FakeEngine, models loaded."""
    from app.fake_engine import FakeEngine
    from app.main_window import MainWindow

    made = []

    def make(wait_loaded: bool = True, project_path=None, **options):
        options.setdefault("step_delay", 0.01)
        options.setdefault("load_delay", 0.01)
        win = MainWindow(engine_factory=partial(FakeEngine, **options), project_path=project_path)
        qtbot.addWidget(win)
        win.show()
        # Shortcuts (Esc, Space, arrows) go to the active window; under a real X server without a window
        # manager nothing activates it for us.
        win.activateWindow()
        qtbot.waitUntil(win.isActiveWindow, timeout=3000)
        made.append(win)
        if wait_loaded:
            qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
        return win

    yield make
    for win in made:
        if win.isVisible():
            win.close()


def draft(qtbot, win, prompt="a red ball rolls right", timeout=10000):
    """Type `prompt`, press Draft, wait for the take; returns the TakeRecord."""
    n = len(win.project.takes)
    win.prompt.set_text(prompt)
    win.draft_button.click()
    qtbot.waitUntil(lambda: len(win.project.takes) == n + 1 and win.watch_job is None, timeout=timeout)
    return win.project.takes[-1]


@pytest.fixture
def tasks():
    """The helper thread a model picker checks folders on (the window's own, for a dialog made without a window)."""
    from app.bridge import Tasks

    t = Tasks()
    yield t
    t.shutdown()


def open_picker(qtbot, tasks, spec=None):
    """Models ▸ Choose models for `spec` (default: the embedded family), not yet shown."""
    from app.widgets.dialogs import ModelPickerDialog
    from engine.api import ModelSpec

    dlg = ModelPickerDialog(spec or ModelSpec(), tasks)
    qtbot.addWidget(dlg)
    return dlg


def check_picker(qtbot, dlg):
    """Run the picker's check and wait for its verdict (dlg.valid)."""
    dlg.valid = None
    dlg.validate()
    qtbot.waitUntil(lambda: dlg.valid is not None, timeout=30000)
