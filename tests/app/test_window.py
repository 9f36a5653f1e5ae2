"""The window on a scripted engine: draft, streaming, slider debounce/cancel/reuse, cancel, errors, compare."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import Qt

from tests.app.conftest import draft

ROOT = Path(__file__).resolve().parents[2]


def test_app_imports_no_torch():
    code = ("import sys, app, app.main_window, app.bridge, app.project, app.fake_engine;"
            "bad=[m for m in ('torch','diffusers','transformers') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_window_paints_before_torch_is_imported(tmp_path):
    code = ("import os, sys; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
            "from PySide6.QtWidgets import QApplication\n"
            "app = QApplication([])\n"
            "from app.main_window import MainWindow\n"
            "w = MainWindow(); w.show()\n"
            "while w.first_paint is None: app.processEvents()\n"
            "print('torch at first paint:', w.torch_at_first_paint); sys.stdout.flush(); os._exit(0)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "LUMOS_STUDIO_HOME": str(tmp_path)})
    assert "torch at first paint: False" in out.stdout, out.stdout + out.stderr


def test_draft_streams_then_shows_storyboard(make_window, qtbot):
    win = make_window(step_delay=0.03)
    seen = []
    orig = win.player.show_step
    win.player.show_step = lambda images, caption: (seen.append(caption), orig(images, caption))
    take = draft(qtbot, win)
    assert take.is_draft and take.request["prompt"] == "a red ball rolls right"
    assert len(seen) == take.request["steps"]  # one preview per step
    assert seen[0].startswith("step 1/")
    assert len(win.storyboard.frames) > 1
    assert win.player.source is not None and len(win.player.source) == take.num_frames
    assert win.handoff.isEnabled()
    assert win.takes.ids() == [take.id]
    # Autosave: the take file and the project that lists it.
    qtbot.waitUntil(lambda: take.file is not None, timeout=10000)
    assert (win.project.folder / take.file).stat().st_size > 0
    pj = win.project.folder / "project.json"
    qtbot.waitUntil(lambda: pj.exists() and take.id in pj.read_text(), timeout=5000)


def test_ctrl_enter_drafts_and_history(make_window, qtbot):
    win = make_window()
    win.prompt.edit.setFocus()
    qtbot.keyClicks(win.prompt.edit, "a blue square moves up")
    qtbot.keyClick(win.prompt.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(win.project.takes) == 1, timeout=5000)
    assert win.prompt.text() == "a blue square moves up"  # Ctrl+Enter did not insert a newline
    assert win.settings.recent_prompts[0] == "a blue square moves up"
    win.prompt.set_text("")
    qtbot.keyClick(win.prompt.edit, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier)
    assert win.prompt.text() == "a blue square moves up"


def test_slider_debounces_cancels_and_reuses(make_window, qtbot):
    win = make_window()
    base = draft(qtbot, win)
    engine = win.engine
    engine.step_delay = 0.25  # a refine takes 1.5 s: time enough to move on while it runs, even on a busy CPU
    n0 = len(engine.submitted)
    # Dragging through values starts nothing until the slider rests.
    for v in (10, 20, 30, 40):
        win.handoff.slider.setValue(v)
    assert len(engine.submitted) == n0
    qtbot.waitUntil(lambda: len(engine.submitted) == n0 + 1, timeout=3000)
    assert engine.submitted[-1].handoff == 0.4
    qtbot.waitUntil(lambda: engine.running is not None, timeout=3000)
    # Moving on while it runs cancels the stale refine.
    win.handoff.slider.setValue(70)
    win.handoff._fire()  # as on release
    qtbot.waitUntil(lambda: any(not t.is_draft and t.handoff == 0.7 for t in win.project.takes), timeout=10000)
    stale = [h for h in engine.handles if h.kind == "render" and h.payload.handoff == 0.4]
    assert [h.state for h in stale] == ["cancelled"]
    assert not any(t.handoff == 0.4 for t in win.project.takes)
    refined = win.project.takes[-1]
    assert refined.base_id == base.id and win.project.current_take == refined.id
    assert 70 in win.handoff.slider.rendered
    # Back to 0 shows the draft; back to 70 shows the refine: no new jobs.
    n1 = len(engine.submitted)
    win.handoff.slider.setValue(0)
    win.handoff._fire()
    assert win.project.current_take == base.id
    win.handoff.slider.setValue(70)
    win.handoff._fire()
    assert win.project.current_take == refined.id
    qtbot.wait(500)
    assert len(engine.submitted) == n1


def test_gate_plot_and_words(make_window, qtbot):
    win = make_window()
    draft(qtbot, win)
    qtbot.waitUntil(lambda: win.handoff.describing, timeout=20000)
    win.handoff.set_value(0.5)
    assert win.handoff.plot.w and len(win.handoff.plot.w) == win.project.takes[0].request["steps"]
    assert "light generator leads" in win.handoff.words.text().lower()
    win.handoff.set_value(win.handoff.slider.official / 100)
    assert "authors' default" in win.handoff.words.text()
    qtbot.keyClick(win, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # Render ▸ Refine at the default
    official = win.handoff.slider.official / 100
    qtbot.waitUntil(lambda: any(t.handoff == official for t in win.project.takes), timeout=5000)


def test_family_measured_default_handoff_replaces_the_authors(make_window, qtbot):
    from app.fake_engine import DEFAULT_SUMMARY

    summary = {**DEFAULT_SUMMARY, "defaults": {**DEFAULT_SUMMARY["defaults"], "handoff": 0.55}}
    win = make_window(summary=summary)
    assert win.handoff.slider.official == 55
    draft(qtbot, win)
    qtbot.waitUntil(lambda: win.handoff.describing, timeout=20000)
    win.handoff.set_value(0.55)
    assert "measured default" in win.handoff.words.text()
    assert "55 %" in win.handoff.slider.toolTip()


def test_escape_cancels_and_window_stays_usable(make_window, qtbot):
    win = make_window(step_delay=0.2)
    win.prompt.set_text("a green star grows")
    win.draft_button.click()
    qtbot.waitUntil(lambda: win.player.streaming, timeout=5000)
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: "cancelled" in win.player.status.text(), timeout=5000)
    assert not win.project.takes and not win.cancel_button.isEnabled()
    win.engine.step_delay = 0.01
    draft(qtbot, win, "a green star grows")
    assert len(win.project.takes) == 1


def test_engine_error_shows_banner_and_recovers(make_window, qtbot):
    win = make_window()
    win.engine.fail_next = ("Out of memory while rendering. Try fewer frames.", "OutOfMemory")
    win.prompt.set_text("a red ball")
    win.draft_button.click()
    qtbot.waitUntil(lambda: win.banner.isVisible() and win.banner.level == "error", timeout=5000)
    assert "Out of memory" in win.banner.text.text()
    assert "failed" in win.player.status.text().lower()
    draft(qtbot, win, "a red ball")
    assert not win.banner.isVisible()


def test_invalid_settings_are_explained(make_window, qtbot):
    win = make_window()
    sp = win.settings_panel
    sp.frames.setValue(10)
    assert sp.frames.value() == 9 and "4k + 1" in sp.hint.text()
    sp.size.setCurrentIndex(sp.size.count() - 1)  # Custom
    sp.width.setValue(100)
    sp.width.editingFinished.emit()
    assert sp.width.value() == 96 and "multiple of 16" in sp.hint.text()
    sp.sigma_min.setValue(2.0)
    assert sp.sigma_max.value() >= 2.0
    # Empty and over-long instructions: a message, no job.
    win.prompt.set_text("   ")
    win.draft_button.click()
    assert win.banner.isVisible() and "instruction" in win.banner.text.text()
    win.prompt.set_text("x" * 2001)
    win.draft_button.click()
    assert "2000" in win.banner.text.text() and not win.engine.submitted
    assert "inlineError" == win.prompt.count.objectName()


def test_model_load_failure_offers_picker(make_window, qtbot):
    from app.fake_engine import FakeEngine

    orig_init = FakeEngine.__init__

    def failing(self, *a, **k):
        orig_init(self, *a, **k)
        self.load_error = ("the heavy transformer expects text width 64, the text encoder gives 32", "ModelError")

    FakeEngine.__init__ = failing
    try:
        win = make_window(wait_loaded=False)
        qtbot.waitUntil(lambda: win.banner.isVisible(), timeout=5000)
    finally:
        FakeEngine.__init__ = orig_init
    assert "text width" in win.banner.text.text() and win.banner.action.text() == "Choose models…"
    assert win.model_label.text() == "Models: not loaded"


def test_queue_view_lists_pending_jobs(make_window, qtbot):
    win = make_window(step_delay=0.1)
    win.settings_panel.lock.setChecked(True)
    for prompt in ("one ball", "two balls", "three balls"):
        win.prompt.set_text(prompt)
        win.draft_button.click()
    qtbot.waitUntil(lambda: win.queue.list.count() == 3 and "▶" in win.queue.list.item(0).text(), timeout=3000)
    win.cancel_all()
    qtbot.waitUntil(lambda: win.queue.list.item(0).text() == "Nothing queued", timeout=5000)


def test_compare_two_takes(make_window, qtbot):
    win = make_window()
    a = draft(qtbot, win, "a red ball")
    b = draft(qtbot, win, "a blue ball")
    win.takes.list.item(0).setSelected(True)
    win.takes.list.item(1).setSelected(True)
    assert win.takes.compare.isEnabled()
    win.takes.compare.click()
    assert win.stack.currentWidget() is win.compare
    assert win.compare.canvas.labels == (a.label(), b.label())
    win.compare.mode.setCurrentIndex(1)
    assert win.compare.canvas.mode == "wipe"
    win.compare.transport.seek(3)
    assert win.compare.canvas.a is win.compare.a.image(3) and win.compare.canvas.b is win.compare.b.image(3)
    qtbot.keyClick(win, Qt.Key.Key_Escape)
    assert win.stack.currentWidget() is win.player
    win.handoff.set_value(0.5, fire=True)
    qtbot.waitUntil(lambda: win.project.takes[-1].handoff == 0.5, timeout=5000)
    win.compare_with_draft(win.project.takes[-1].id)
    assert win.stack.currentWidget() is win.compare and win.compare.canvas.labels == (b.label(), "Refine 50 %")


def test_take_star_rename_delete(make_window, qtbot, monkeypatch):
    win = make_window()
    t = draft(qtbot, win)
    qtbot.waitUntil(lambda: t.file is not None, timeout=10000)
    win.toggle_star(t.id)
    win.rename_take(t.id, "keeper")
    assert t.starred and win.takes.list.item(0).text().startswith("★ keeper")
    path = win.project.folder / t.file
    from PySide6.QtWidgets import QMessageBox

    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: answers.pop(0)))
    win.takes.select(t.id)
    win.takes.delete.click()  # "No": kept
    assert win.project.takes and path.exists()
    win.takes.delete.click()  # "Yes": gone
    assert not win.project.takes and not path.exists() and not win.handoff.isEnabled()


def test_plan_panel_only_with_understanding(make_window, qtbot):
    from app.fake_engine import DEFAULT_SUMMARY

    win = make_window()
    assert not win.plan.isVisible()
    win2 = make_window(summary=dict(DEFAULT_SUMMARY, has_understanding=True))
    assert win2.plan.isVisible()
    win2.prompt.set_text("the ball that is not red moves left")
    win2.plan.write.click()
    qtbot.waitUntil(lambda: "rolls" in win2.plan.text.toPlainText(), timeout=5000)
    t = draft(qtbot, win2, "the ball that is not red moves left")
    assert t.metadata["plan"] == win2.plan.plan() == win2.engine.runtime.plan("the ball that is not red moves left")


def test_engine_that_cannot_start_is_reported(qtbot):
    from app.main_window import MainWindow

    def broken(*_a, **_k):
        raise ImportError("No module named 'engine.runtime'")

    win = MainWindow(engine_factory=broken)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.banner.isVisible(), timeout=5000)
    assert "engine could not start" in win.banner.text.text() and win.model_label.text() == "Models: engine unavailable"
    win.prompt.set_text("a red ball")
    win.draft_button.click()  # no engine: a message, not a crash
    assert "not running" in win.banner.text.text()


def test_every_control_has_a_tooltip(make_window):
    from PySide6.QtWidgets import (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit,
                                   QPlainTextEdit, QScrollBar)

    win = make_window()
    kinds = (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit)
    missing = []
    for w in [w for kind in kinds for w in win.findChildren(kind)]:
        if isinstance(w, QScrollBar) or w.objectName().startswith("qt_") or type(w).__name__ == "QLineEdit" and isinstance(w.parent(), (QAbstractSpinBox, QComboBox)):
            continue
        tip, p = w.toolTip(), w.parent()
        while not tip and p is not None and p is not win:  # a tooltip on the containing panel counts
            tip, p = p.toolTip(), p.parent()
        if not tip:
            missing.append(f"{type(w).__name__} {w.objectName()} {getattr(w, 'text', lambda: '')()}")
    assert not missing, missing


def test_dropping_an_mp4_restores_settings(make_window, qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    win = make_window()
    win.settings_panel.lock.setChecked(True)
    win.settings_panel.seed.setValue(99)
    t = draft(qtbot, win, "a dotted triangle moves left")
    out = tmp_path / "t.mp4"
    done = []
    win.export_take(t.id, out, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    win.prompt.set_text("")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(out))])
    enter = QDragEnterEvent(win.rect().center(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(win.rect().center()), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, drop)
    qtbot.waitUntil(lambda: win.prompt.text() == "a dotted triangle moves left", timeout=5000)
    assert win.settings_panel.seed.value() == 99


def test_shortcuts_dialog_lists_the_keys(make_window, qtbot):
    from app.widgets.dialogs import SHORTCUTS, ShortcutsDialog

    win = make_window()
    dlg = ShortcutsDialog(win)
    qtbot.addWidget(dlg)
    from PySide6.QtWidgets import QTableWidget

    table = dlg.findChild(QTableWidget)
    assert table.rowCount() == len(SHORTCUTS)
    keys = {table.item(r, 0).text() for r in range(table.rowCount())}
    assert {"Ctrl+Enter", "Esc", "Ctrl+E"} <= keys
    assert win.export_action.shortcut().toString() == "Ctrl+E"


def test_takes_are_reused_only_for_the_same_models(make_window, qtbot):
    win = make_window()
    win.settings_panel.lock.setChecked(True)
    draft(qtbot, win, "a red ball")
    n = len(win.engine.submitted)
    win.draft_button.click()  # same request, same models: shown at once
    assert len(win.engine.submitted) == n
    win.summary["light"] = "another-light-model"  # as after loading another pair
    win.engine.summary["light"] = "another-light-model"
    win.draft_button.click()
    assert len(win.engine.submitted) == n + 1
    qtbot.waitUntil(lambda: len(win.project.takes) == 2, timeout=5000)


def test_player_keys_and_storyboard_click(make_window, qtbot):
    win = make_window()
    t = draft(qtbot, win)
    p = win.player
    assert p.transport.playing  # a finished take plays at once
    p.view.setFocus()
    qtbot.keyClick(p.view, Qt.Key.Key_Space)
    assert not p.transport.playing
    qtbot.keyClick(p.view, Qt.Key.Key_Home)
    qtbot.keyClick(p.view, Qt.Key.Key_Right)
    qtbot.keyClick(p.view, Qt.Key.Key_Right)
    assert p.transport.index == 2
    qtbot.keyClick(p.view, Qt.Key.Key_Left)
    assert p.transport.index == 1
    qtbot.keyClick(p.view, Qt.Key.Key_End)
    assert p.transport.index == t.num_frames - 1
    strip = win.storyboard.strip
    cells = strip.cells()
    index = win.storyboard.frames[3][0]
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=cells[3].center())
    assert p.transport.index == index and not p.transport.playing


def test_time_left_follows_the_pace_of_computed_steps():
    from app.session import JobInfo, remaining_seconds
    from engine.api import StepEvent

    job = JobInfo(1, "refine", "Refine")
    # Steps 1-10 came from the draft cache in 0.1 s; then 1 s per step.
    job.live_from = (11, 1.6)
    ev = StepEvent(1, 13, 50, "bridging", 0.4, 500.0, 3.6)
    assert abs(remaining_seconds(job, ev) - 37.0) < 1e-6
    fresh = JobInfo(2, "draft", "Draft")
    assert remaining_seconds(fresh, StepEvent(2, 5, 50, "draft", 1.0, 900.0, 5.0)) == 45.0


def test_size_presets_are_valid_and_bad_ones_dropped(tmp_path, monkeypatch):
    import json

    from app import resources

    for s in resources.presets()["sizes"]:
        assert s["width"] % 16 == 0 and s["height"] % 16 == 0
    bad = tmp_path / "presets"
    bad.mkdir()
    (bad / "sizes.json").write_text(json.dumps({"sizes": [{"name": "odd", "width": 100, "height": 64},
                                                          {"name": "ok", "width": 96, "height": 64}]}))
    monkeypatch.setattr(resources, "RESOURCES", tmp_path)
    resources.presets.cache_clear()
    try:
        assert [s["name"] for s in resources.presets()["sizes"]] == ["ok"]
    finally:
        resources.presets.cache_clear()


def test_draft_pressed_while_models_load_uses_their_sizes(make_window, qtbot):
    win = make_window(wait_loaded=False, load_delay=0.3)
    win.settings_panel.set_values({"width": 832, "height": 480, "num_frames": 81, "steps": 50})
    win.prompt.set_text("an early draft")
    win.draft_button.click()
    assert not win.project.takes
    qtbot.waitUntil(lambda: len(win.project.takes) == 1, timeout=10000)
    t = win.project.takes[0]
    assert (t.width, t.height, t.num_frames, t.request["steps"]) == (64, 64, 9, 6)  # the family's defaults


def test_a_take_that_cannot_be_prepared_ends_in_a_message(make_window, qtbot, monkeypatch):
    import app.bridge as bridge_mod

    win = make_window()

    def broken(job_id, take):
        raise ValueError("frames have 4 channels")

    monkeypatch.setattr(bridge_mod, "prepare_take", broken)
    win.prompt.set_text("a red ball")
    win.draft_button.click()
    qtbot.waitUntil(lambda: win.banner.level == "error", timeout=5000)
    assert "4 channels" in win.banner.text.text() and not win.cancel_button.isEnabled()
    assert win.queue.list.item(0).text() == "Nothing queued"


def test_a_slow_gate_computation_never_holds_back_a_project_save(make_window, qtbot):
    """The gate's timesteps import diffusers' schedulers (seconds on a busy machine); saves run on their own thread."""
    import threading

    win = make_window()
    release = threading.Event()
    win.gate.run(lambda: release.wait(20))  # the gate's helper thread is busy
    try:
        win.prompt.set_text("a green star stays still")
        pj = win.project.folder / "project.json"
        win.save_project()
        qtbot.waitUntil(lambda: pj.exists() and "green star" in pj.read_text(), timeout=3000)
    finally:
        release.set()
