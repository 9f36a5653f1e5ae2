"""The GPU memory plan in the app (issue 21): chosen in the model picker, shown in the status bar, offered in one
click after an out-of-memory, kept in the settings."""

from __future__ import annotations

from engine.api import Failed
from tests.app.conftest import draft


def test_out_of_memory_offers_the_next_plan_in_one_click(make_window, qtbot):
    win = make_window()
    t = draft(qtbot, win)
    prompt, settings = win.prompt.text(), win.settings_panel.values()
    loads = [h for h in win.engine.handles if h.kind == "load"]
    win._on_failed(Failed(job_id=999, message="Out of GPU memory in the heavy generator", error_type="OutOfMemory",
                          suggested_memory="balanced"))
    assert win.banner.action.text() == "Reload with the balanced memory plan"
    win.banner.action.click()
    assert win.settings.model_memory == "balanced" and win.current_spec().memory == "balanced"
    qtbot.waitUntil(lambda: len([h for h in win.engine.handles if h.kind == "load"]) == len(loads) + 1,
                    timeout=20000)
    assert [h for h in win.engine.handles if h.kind == "load"][-1].payload.memory == "balanced"
    # nothing of the user's work is lost: the instruction, the settings and the take stay
    assert win.prompt.text() == prompt and win.settings_panel.values() == settings
    assert win.project.take(t.id) is not None


def test_model_picker_sets_the_memory_plan(make_window, qtbot):
    from app.widgets.dialogs import ModelPickerDialog

    win = make_window()
    dlg = ModelPickerDialog(win.current_spec(), win.tasks, win)
    qtbot.addWidget(dlg)
    assert dlg.memory.currentData() == "auto"
    dlg.memory.setCurrentIndex(dlg.memory.findData("low"))
    assert dlg.spec().memory == "low"


def test_status_bar_names_the_plan(make_window, qtbot):
    from app.fake_engine import DEFAULT_SUMMARY

    line = "memory plan: balanced (est. peak 16.8 GB of 23.4 GB free)"
    win = make_window(summary=dict(DEFAULT_SUMMARY, memory_plan={"name": "balanced", "line": line}))
    assert "memory: balanced" in win.device_label.text() and line in win.device_label.toolTip()


def test_memory_plan_setting_is_validated(tmp_path):
    from app.settings import Settings

    assert Settings.from_dict({"model_memory": "low"}).model_memory == "low"
    assert Settings.from_dict({"model_memory": "everything"}).model_memory == "auto"
