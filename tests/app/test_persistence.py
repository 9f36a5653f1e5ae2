"""Nothing lost: settings, recent prompts and takes survive a restart; interrupted saves keep the last good file;
corrupt or foreign files get a message and are left untouched; export and drop-to-reproduce round trip."""

from __future__ import annotations

import json
import os

import pytest

from app.project import PROJECT_FILE, Project, Settings, TakeRecord, atomic_write_json
from engine.api import ProjectError, RenderRequest, read_take_metadata
from tests.app.conftest import draft


def test_restart_restores_everything(make_window, qtbot):
    win = make_window()
    win.settings_panel.steps.setValue(5)
    t = draft(qtbot, win, "a yellow circle bounces")
    qtbot.waitUntil(lambda: t.file is not None, timeout=10000)
    win.prompt.set_text("next idea")
    win.resize(1100, 760)
    size = (win.width(), win.height())
    win.close()
    win2 = make_window()
    assert win2.prompt.text() == "next idea"
    assert win2.settings_panel.steps.value() == 5
    assert win2.settings.recent_prompts[0] == "a yellow circle bounces"
    assert win2.prompt.recent.count() == 1
    assert [x.id for x in win2.project.takes] == [t.id]
    assert win2.takes.ids() == [t.id]
    # The offscreen screen is narrower than the window's minimum width, so Qt clamps x/width: check height.
    assert win2.settings.geometry and win2.height() == size[1]
    # The take's frames come back from its file.
    qtbot.waitUntil(lambda: win2.player.source is not None, timeout=10000)
    assert len(win2.player.source) == t.num_frames
    assert win2.handoff.isEnabled()  # the draft is still the base for refines


def test_interrupted_save_keeps_last_good_state(tmp_path, monkeypatch):
    p = Project(folder=tmp_path / "proj", prompt="good")
    p.save()
    good = p.file.read_bytes()
    p.prompt = "half written"

    def killed(*_a, **_k):
        raise OSError(5, "killed mid-save")

    with monkeypatch.context() as m:  # not monkeypatch.undo(): that would also undo the user-folder isolation
        m.setattr(os, "replace", killed)
        with pytest.raises(ProjectError):
            p.save()
    assert p.file.read_bytes() == good
    assert not [f for f in p.folder.iterdir() if f.name.endswith(".tmp")]  # no litter
    assert Project.load(p.folder).prompt == "good"


def test_torn_temp_file_is_ignored(tmp_path):
    """A kill -9 between writing the temp file and renaming it leaves a stray temp; the project is intact."""
    p = Project(folder=tmp_path / "proj", prompt="good")
    p.save()
    (p.folder / ".project.json.abc.tmp").write_text('{"format": "lumos-studio-pro')
    assert Project.load(p.folder).prompt == "good"


def test_window_reopens_after_interrupted_autosave(make_window, qtbot, monkeypatch):
    win = make_window()
    t = draft(qtbot, win, "a red ball")
    qtbot.waitUntil(lambda: t.file is not None, timeout=10000)
    folder = win.project.folder
    qtbot.waitUntil(lambda: (folder / PROJECT_FILE).exists() and t.id in (folder / PROJECT_FILE).read_text(),
                    timeout=5000)
    good = (folder / PROJECT_FILE).read_bytes()
    with monkeypatch.context() as m:  # not monkeypatch.undo(): that would also undo the user-folder isolation
        m.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        win.prompt.set_text("unsaved change")
        assert not win.save_project(sync=True)
        assert win.banner.isVisible() and "could not save" in win.banner.text.text()
    assert (folder / PROJECT_FILE).read_bytes() == good
    win.bridge.shutdown()  # as if killed: no closeEvent save
    win2 = make_window(project_path=folder)
    assert [x.id for x in win2.project.takes] == [t.id] and win2.prompt.text() == "a red ball"


@pytest.mark.parametrize("content,needle", [
    (b"{not json", "damaged"),
    (b'{"format": "someone-else", "version": 1}', "not a Lumos Studio project"),
    (b'{"format": "lumos-studio-project", "version": 99}', "newer Lumos Studio"),
    (b"[1, 2]", "not a Lumos Studio project"),
])
def test_bad_project_file_is_reported_and_untouched(make_window, tmp_path, content, needle):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / PROJECT_FILE).write_bytes(content)
    with pytest.raises(ProjectError, match=needle):
        Project.load(folder)
    win = make_window(project_path=folder)
    assert win.banner.isVisible() and needle in win.banner.text.text()
    assert win.project.folder != folder
    win.save_project(sync=True)
    assert (folder / PROJECT_FILE).read_bytes() == content
    assert not win.open_project(folder)
    assert (folder / PROJECT_FILE).read_bytes() == content


def test_settings_bad_values_fall_back(user_dirs):
    path = Settings.path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": "lumos-studio-settings", "version": 1, "debounce_ms": -3,
                                "recent_prompts": ["ok", 5], "export_crf": "high", "last_export_dir": "/x"}))
    original = path.read_bytes()
    s, problem = Settings.load()
    assert s.debounce_ms == 350 and s.export_crf == 18 and s.recent_prompts == ["ok"] and s.last_export_dir == "/x"
    # Each bad value is reported once, and the file as it was is kept aside before the next save rewrites it.
    assert all(name in problem for name in ("debounce_ms", "export_crf", "recent_prompts[1]"))
    kept = [f for f in path.parent.iterdir() if f.name.startswith("settings.json.damaged-")]
    assert len(kept) == 1 and kept[0].read_bytes() == original and kept[0].name in problem
    s.save()
    assert Settings.load() == (s, None)
    path.write_text("{broken")
    s, problem = Settings.load()
    assert s == Settings() and "could not be read" in problem


def test_project_round_trip_and_unknown_take_fields(tmp_path):
    p = Project(folder=tmp_path / "p", prompt="x", settings={"steps": 4})
    p.add_take(TakeRecord(id="t1", request=RenderRequest("x").to_dict(), name="n", starred=True))
    data = p.to_dict()
    data["takes"].append({"id": "broken"})  # no request: skipped, not fatal
    data["takes"][0]["future_field"] = 1
    atomic_write_json(p.file, data)
    q = Project.load(p.folder)
    assert [t.id for t in q.takes] == ["t1"] and q.takes[0].starred and q.settings == {"steps": 4}


def test_save_as_copies_takes_and_continues_there(make_window, qtbot, tmp_path):
    win = make_window()
    t = draft(qtbot, win)
    qtbot.waitUntil(lambda: t.file is not None, timeout=10000)
    target = tmp_path / "elsewhere"
    assert win.save_as(target)
    assert (target / PROJECT_FILE).exists() and (target / t.file).exists()
    assert win.project.folder == target
    draft(qtbot, win, "another one")
    qtbot.waitUntil(lambda: len(Project.load(target).takes) == 2, timeout=10000)


def test_export_and_drop_to_reproduce(make_window, qtbot, tmp_path):
    win = make_window()
    win.settings_panel.lock.setChecked(True)
    win.settings_panel.seed.setValue(1234)
    t = draft(qtbot, win, "a checked square shrinks")
    out = tmp_path / "exports" / "take.mp4"
    out.parent.mkdir()
    done = []
    win.export_take(t.id, out, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    assert out.stat().st_size > 0 and win.settings.last_export_dir == str(out.parent)
    meta = read_take_metadata(out)
    assert RenderRequest.from_dict(meta["request"]) == RenderRequest.from_dict(t.request)
    # Drop it on a fresh window: the instruction and seed come back.
    win.prompt.set_text("something else")
    win.settings_panel.seed.setValue(1)
    win.reproduce_from(out)
    qtbot.waitUntil(lambda: win.prompt.text() == "a checked square shrinks", timeout=5000)
    assert win.settings_panel.seed.value() == 1234 and win.settings_panel.lock.isChecked()
    assert win.banner.action.text() == "Render it"
    n = len(win.engine.submitted)
    win.banner.action.click()  # the same request: the take already exists, so no new job
    assert len(win.engine.submitted) == n and win.project.current_take == t.id


def test_drop_of_foreign_mp4_is_explained(make_window, qtbot, tmp_path):
    win = make_window()
    bogus = tmp_path / "holiday.mp4"
    bogus.write_bytes(b"not a video")
    win.reproduce_from(bogus)
    qtbot.waitUntil(lambda: win.banner.isVisible(), timeout=5000)
    assert "holiday.mp4" in win.banner.text.text() and win.banner.level == "error"


KILL_SCRIPT = r"""
import os, signal, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from functools import partial
from PySide6.QtWidgets import QApplication
from app.fake_engine import FakeEngine
from app.main_window import MainWindow
app = QApplication([])
win = MainWindow(engine_factory=partial(FakeEngine, step_delay=0.01, load_delay=0.01))
win.show()
def pump(pred, timeout=20):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            sys.exit(3)
        app.processEvents(); time.sleep(0.005)
pump(lambda: win.summary is not None)
win.prompt.set_text("survives a kill")
win.draft_button.click()
pump(lambda: win.project.takes and win.project.takes[0].file)
pj = win.project.file
pump(lambda: pj.exists() and win.project.takes[0].id in pj.read_text())
win.engine.step_delay = 0.5
win.prompt.set_text("killed while rendering this one")
win.draft_button.click()
pump(lambda: win.player.streaming)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_9_mid_render_reopens_with_finished_takes(make_window, qtbot, user_dirs):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT], cwd=root, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "LUMOS_STUDIO_HOME": str(user_dirs)})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    win = make_window()
    assert [t.request["prompt"] for t in win.project.takes] == ["survives a kill"]
    qtbot.waitUntil(lambda: win.player.source is not None, timeout=10000)
    assert not [f for f in win.project.folder.rglob("*") if f.name.endswith((".tmp", ".partial.mp4"))]


def test_export_options_and_export_after_restart(make_window, qtbot, tmp_path):
    from app.media import read_mp4_frames
    from app.widgets.dialogs import ExportDialog, default_scale

    win = make_window()
    t = draft(qtbot, win)
    qtbot.waitUntil(lambda: t.file is not None, timeout=10000)
    dlg = ExportDialog(str(tmp_path / "x.mp4"), t.fps, t.width, t.height, 18, win)
    qtbot.addWidget(dlg)
    assert dlg.options() == {"path": str(tmp_path / "x.mp4"), "fps": t.fps, "crf": 18,
                             "scale": default_scale(t.width, t.height)}
    assert default_scale(64, 64) == 4 and default_scale(832, 480) == 1
    win.frames.clear()  # as after a restart: frames come from the project's file
    out = tmp_path / "big.mp4"
    done = []
    win.export_take(t.id, out, on_done=done.append, fps=12, crf=23, scale=2)
    qtbot.waitUntil(lambda: bool(done) or win.banner.level == "error", timeout=10000)
    assert done, win.banner.text.text()
    frames = read_mp4_frames(out)
    assert frames.shape == (t.num_frames, 2 * t.height, 2 * t.width, 3)
    assert read_take_metadata(out)["request"]["prompt"] == t.request["prompt"]


def test_queue_survives_closing_the_app(make_window, qtbot):
    win = make_window(step_delay=0.3)
    win.settings_panel.lock.setChecked(True)
    for prompt in ("first queued idea", "second queued idea"):
        win.prompt.set_text(prompt)
        win.draft_button.click()
    assert len(win.project.queue) == 2
    win.close()
    win2 = make_window()
    assert len(win2.project.queue) == 2
    assert win2.banner.isVisible() and "2 renders" in win2.banner.text.text()
    win2.engine.step_delay = 0.01
    win2.banner.action.click()
    qtbot.waitUntil(lambda: len(win2.project.takes) == 2, timeout=10000)
    assert sorted(t.request["prompt"] for t in win2.project.takes) == ["first queued idea", "second queued idea"]
    qtbot.waitUntil(lambda: not win2.project.queue, timeout=5000)


def test_menu_actions_through_patched_dialogs(make_window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QDialog, QFileDialog

    from app.widgets import dialogs

    win = make_window()
    t = draft(qtbot, win, "first project take")
    qtbot.waitUntil(lambda: t.file is not None, timeout=10000)
    first = win.project.folder
    # File ▸ Save project as…
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path / "copy"))
    win.save_as_dialog()
    assert win.project.folder == tmp_path / "copy"
    # File ▸ New project: empty, in a fresh folder; the previous one stays on disk.
    win.new_project()
    assert not win.project.takes and win.project.folder not in (first, tmp_path / "copy")
    assert not win.handoff.isEnabled() and win.takes.ids() == []
    # File ▸ Open project…
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "copy" / "project.json"), ""))
    qtbot.waitUntil(lambda: (tmp_path / "copy" / "project.json").exists(), timeout=5000)
    win.open_project_dialog()
    assert win.project.folder == tmp_path / "copy" and [x.id for x in win.project.takes] == [t.id]
    # File ▸ Export take… (the dialog accepted with its defaults, into tmp)
    out = tmp_path / "menu-export.mp4"
    monkeypatch.setattr(dialogs.ExportDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    monkeypatch.setattr(dialogs.ExportDialog, "options",
                        lambda self: {"path": str(out), "fps": 8, "crf": 23, "scale": 1})
    win.export_dialog()
    qtbot.waitUntil(lambda: out.exists(), timeout=10000)
    assert win.settings.export_crf == 23
    # Models ▸ Choose models… accepted: a reload starts.
    monkeypatch.setattr(dialogs.ModelPickerDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    win.choose_models()
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    # Help
    win.show_about()
    assert "Lumos Studio" in win.banner.text.text()


def test_save_as_while_a_take_file_is_being_written(make_window, qtbot, tmp_path):
    win = make_window()
    # Hold the helper thread so the take's file is written only after the project moved.
    import threading

    gate = threading.Event()
    win.tasks.run(gate.wait)
    t = draft(qtbot, win, "a take written late")
    assert t.file is None
    target = tmp_path / "moved"
    win.project.save_as(target)  # what save_as does, without waiting for the helper thread
    win.project = type(win.project).load(target)
    gate.set()
    qtbot.waitUntil(lambda: win.project.take(t.id).file is not None, timeout=10000)
    assert (target / win.project.take(t.id).file).exists()


def test_take_file_finished_after_opening_another_project(make_window, qtbot, tmp_path):
    import threading

    other = Project(folder=tmp_path / "other", name="other")
    other.save()
    win = make_window()
    first = win.project.folder
    gate = threading.Event()
    win.tasks.run(gate.wait)
    t = draft(qtbot, win, "finished before the switch")
    assert win.open_project(other.folder)
    gate.set()
    qtbot.waitUntil(lambda: t.id in (first / PROJECT_FILE).read_text() if (first / PROJECT_FILE).exists() else False,
                    timeout=10000)
    qtbot.waitUntil(lambda: Project.load(first).take(t.id).file is not None, timeout=10000)
    assert (first / Project.load(first).take(t.id).file).exists()
    assert not win.project.takes  # the open project is untouched


def test_render_finishing_after_switching_project_goes_to_its_own_project(make_window, qtbot, tmp_path):
    other = Project(folder=tmp_path / "other", name="other")
    other.save()
    win = make_window(step_delay=0.2)
    first = win.project.folder
    win.prompt.set_text("made in the first project")
    win.draft_button.click()
    qtbot.waitUntil(lambda: win.player.streaming, timeout=5000)
    assert win.open_project(other.folder)
    qtbot.waitUntil(lambda: (first / PROJECT_FILE).exists() and any(
        t.file for t in Project.load(first).takes), timeout=20000)
    assert [t.request["prompt"] for t in Project.load(first).takes] == ["made in the first project"]
    assert not win.project.takes and win.takes.ids() == []


def test_recent_projects_menu(make_window, qtbot, tmp_path):
    win = make_window()
    first = win.project.folder
    win.save_project(sync=True)
    win.new_project()
    win._fill_recent_menu()
    actions = [a for a in win.recent_menu.actions() if a.data()]
    assert [a.data() for a in actions] == [str(first)]
    actions[0].trigger()
    assert win.project.folder == first
    assert win.settings.recent_projects[0] == str(first)
