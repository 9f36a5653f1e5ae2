"""A plain pair's planner in the app (issue 22, part 2): Models ▸ Choose models offers the planner (an instruction LLM,
checked with engine.api.check_planner, its problem explained next to its field) and what the heavy generator reads;
the choice is kept in the settings; the plan panel asks the planner (cancellable), shows and sends its plan, and says
why when it fell back; the Lumos-Nexus release's panel says it reads the instruction directly; a take restored from
an MP4 made with a planner or a family offers to switch the models to them. The last test runs the real engine on a
tiny pair with a tiny random Qwen2 planner (its text is nonsense: the wiring is what is checked)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from app.settings import Settings
from app.widgets.dialogs import ModelPickerDialog
from engine.api import ModelSpec, export_take, read_take_metadata
from tests.app.conftest import check_picker as _check, draft, open_picker as _picker
from tests.app.test_model_picker import make_pair

NEXUS = "lumos-nexus"
PLANNER = "Qwen/Qwen2.5-1.5B-Instruct"
PROMPT = "the larger shape moves left"


@pytest.fixture(scope="module")
def planner_dir(tiny_planner):
    return tiny_planner


def _planned_window(make_window, planner=PLANNER, heavy_reads="instruction", **options):
    """A window whose settings name a plain pair with a planner (the fake engine loads any names)."""
    Settings(model_light="/models/wan-1.3b", model_heavy="/models/wan-14b", model_planner=planner,
             model_heavy_reads=heavy_reads).save()
    return make_window(**options)


def _banner_action(win, text):
    return win.banner.isVisible() and win.banner.action.isVisible() and win.banner.action.text().startswith(text)


# ---------------------------------------------------------------------------------------------- the picker
def test_picker_builds_the_planner_spec_and_explains_a_bad_planner_folder(qtbot, tasks, tmp_path, planner_dir):
    pair = make_pair(tmp_path / "pair")
    dlg = _picker(qtbot, tasks, pair)
    fields = dlg.planner
    assert dlg.custom.isChecked() and fields.isVisibleTo(dlg)
    assert "Qwen2.5-1.5B-Instruct" in fields.planner.toolTip() and "Hugging Face cache" in fields.planner.toolTip()
    assert fields.browse.text() == "Browse…" and not fields.heavy_reads.isEnabled()  # no planner: nothing to choose
    assert [fields.heavy_reads.itemText(i) for i in range(fields.heavy_reads.count())] == \
        ["the instruction as typed", "the plan"]
    # not for the embedded family nor the release: they have their own understanding
    dlg.embedded.setChecked(True)
    assert not fields.isVisibleTo(dlg) and dlg.spec().planner is None
    dlg.nexus_choice.setChecked(True)
    assert not fields.isVisibleTo(dlg)
    dlg.custom.setChecked(True)
    assert fields.isVisibleTo(dlg)
    # a folder that is not an instruction LLM: explained under the field, the dialog stays open
    wrong = tmp_path / "not-an-llm"
    wrong.mkdir()
    (wrong / "config.json").write_text(json.dumps({"_class_name": "WanTransformer3DModel"}))
    qtbot.keyClicks(fields.planner, str(wrong))
    dlg.show()
    dlg._accept()  # "Load these models"
    qtbot.waitUntil(lambda: dlg.valid is not None, timeout=30000)
    assert dlg.valid is False and dlg.isVisible() and dlg.result() != QDialog.DialogCode.Accepted
    assert fields.error.isVisible() and "not a causal language model" in fields.error.text()
    assert fields.planner.property("invalid") is True and not dlg.field_errors["light"].isVisible()
    # a base model without a chat template is named as such
    base = tmp_path / "base-model"
    base.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (base / name).write_bytes((planner_dir / name).read_bytes())
    fields.planner.setText(str(base))
    _check(qtbot, dlg)
    assert dlg.valid is False and "chat template" in fields.error.text()
    # a real (tiny) instruct model: usable, the heavy generator may read the plan
    fields.planner.setText(str(planner_dir))
    assert fields.heavy_reads.isEnabled()
    fields.heavy_reads.setCurrentIndex(fields.heavy_reads.findData("plan"))
    _check(qtbot, dlg)
    assert dlg.valid, dlg.result_label.text()
    assert not fields.error.isVisible() and fields.planner.property("invalid") is False
    spec = dlg.spec()
    assert spec == ModelSpec(light=pair.light, heavy=pair.heavy, planner=str(planner_dir), heavy_reads="plan")
    dlg._accept()
    assert dlg.result() == QDialog.DialogCode.Accepted
    again = _picker(qtbot, tasks, spec)  # reopened: the planner and the choice are there
    assert again.planner.planner.text() == str(planner_dir) and again.spec() == spec


def test_a_planner_is_refused_for_models_with_their_own_understanding_block(qtbot, tasks, tmp_path, planner_dir):
    from engine.api import embedded_family_available

    if not embedded_family_available():
        pytest.skip("the embedded family is not installed")
    from app.widgets.planner_fields import planner_problem
    from engine.api import DEFAULT_FAMILY

    spec = ModelSpec(light=str(DEFAULT_FAMILY / "light"), heavy=str(DEFAULT_FAMILY / "heavy"),
                     planner=str(planner_dir))
    assert "own understanding block" in planner_problem(spec)


# ---------------------------------------------------------------------------------------------- settings
def test_the_planner_choice_is_saved_restored_and_named(make_window, qtbot, monkeypatch):
    win = make_window()
    assert "planner" not in win.model_label.text()

    def choose(dlg):  # Models ▸ Choose models…: a pair with a planner whose plan the heavy generator reads too
        dlg.custom.setChecked(True)
        qtbot.keyClicks(dlg.light, "Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
        qtbot.keyClicks(dlg.heavy, "Wan-AI/Wan2.1-T2V-14B-Diffusers")
        qtbot.keyClicks(dlg.planner.planner, PLANNER)
        dlg.planner.heavy_reads.setCurrentIndex(dlg.planner.heavy_reads.findData("plan"))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ModelPickerDialog, "exec", choose)
    win.choose_models()
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    load = [h for h in win.engine.handles if h.kind == "load"][-1].payload
    assert (load.planner, load.heavy_reads, load.family) == (PLANNER, "plan", None)
    assert win.summary["planner"] == PLANNER and win.current_spec() == load
    assert win.model_label.text().endswith("· planner Qwen/Qwen2.5-1.5B-Instruct")
    assert f"Planner: {PLANNER} (the heavy generator reads the plan)" in win.model_label.toolTip()
    assert win.plan.isVisible() and "Qwen2.5-1.5B-Instruct" in win.plan.title()
    win.close()
    saved = Settings.load()[0]
    assert (saved.model_planner, saved.model_heavy_reads) == (PLANNER, "plan")
    again = make_window()  # restarted: the planner is restored and loaded
    assert again.engine.handles[0].payload.planner == PLANNER
    assert again.current_spec().heavy_reads == "plan" and "planner" in again.model_label.text()
    # a family's spec never carries the pair's planner
    again.apply_model_spec(ModelSpec(family=NEXUS, light="/b", heavy="/h"))
    assert again.settings.model_planner == "" and again.current_spec().planner is None


def test_the_planner_settings_are_validated():
    settings, problems = Settings.read({"model_planner": PLANNER, "model_heavy_reads": "both"})
    assert settings.model_planner == PLANNER and settings.model_heavy_reads == "instruction"
    assert problems and "model_heavy_reads" in problems[0]
    assert Settings.read({"model_planner": "a\x00b"})[0].model_planner == ""


# ---------------------------------------------------------------------------------------------- the plan panel
def test_write_plan_asks_the_planner_and_an_edit_is_sent_as_the_plan(make_window, qtbot):
    win = _planned_window(make_window)
    assert win.plan.isVisible() and win.plan.title() == "Plan (planner: Qwen2.5-1.5B-Instruct)"
    assert "planner" in win.plan.state.text()  # "The planner writes a plan when you draft …"
    win.engine.plan_text = "A large blue square glides to the left across a grey floor ({instruction})."
    win.prompt.set_text(PROMPT)
    win.plan.write.click()
    qtbot.waitUntil(lambda: bool(win.plan.plan()) and win.plan.write.isEnabled(), timeout=5000)
    assert win.plan.plan() == f"A large blue square glides to the left across a grey floor ({PROMPT})."
    assert win.plan.state.text() == "Written by the planner for this instruction."
    assert not win.plan.fallback.isVisible() and not win.plan.cancel.isVisible()
    plan_jobs = [h for h in win.engine.handles if h.kind == "plan"]
    assert len(plan_jobs) == 1 and plan_jobs[0].state == "done"
    # a draft with the written plan lets the planner write it again (the same text); an edit is sent as the plan
    take = draft(qtbot, win, PROMPT)
    assert win.engine.submitted[-1].plan is None and take.metadata["planner"]["source"] == "planner"
    win.plan.text.selectAll()
    qtbot.keyClicks(win.plan.text, "A big square slides left")
    assert win.plan.status == "edited"
    win.settings_panel.lock.setChecked(True)
    edited = draft(qtbot, win, PROMPT)
    assert win.engine.submitted[-1].plan == "A big square slides left" and win.engine.submitted[-1].use_plan
    assert edited.metadata["planner"] == {"id": PLANNER, "heavy_reads": "instruction", "source": "given",
                                          "fell_back": False, "reason": None}


def test_a_plan_that_fell_back_shows_the_banner_with_its_reason(make_window, qtbot):
    win = _planned_window(make_window)
    win.engine.planner_fails = "could not load the planner Qwen/Qwen2.5-1.5B-Instruct: not in the local cache"
    win.prompt.set_text(PROMPT)
    win.plan.write.click()
    qtbot.waitUntil(lambda: win.banner.isVisible() and win.plan.write.isEnabled(), timeout=5000)
    words = ("The planner could not write a plan: could not load the planner Qwen/Qwen2.5-1.5B-Instruct: not in the "
             "local cache; the light generator reads the instruction as typed.")
    assert win.banner.text.text() == words and win.banner.level == "warning"
    assert win.plan.plan() == PROMPT  # the plan is the instruction as typed
    assert win.plan.fallback.isVisible() and "not in the local cache" in win.plan.fallback.text()
    assert win.plan.state.text().startswith("The instruction as typed: the planner wrote no plan")
    win.prompt.set_text("another instruction")  # the reason belongs to the instruction it was asked for
    assert not win.plan.fallback.isVisible()
    # a draft whose plan fell back says so too, and its take records it
    win.banner.dismiss()
    take = draft(qtbot, win, PROMPT)
    assert take.metadata["planner"]["fell_back"] and "local cache" in take.metadata["planner"]["reason"]
    assert win.banner.isVisible() and win.banner.text.text() == words and win.plan.fallback.isVisible()


def test_writing_a_plan_can_be_cancelled_with_the_button_and_with_esc(make_window, qtbot):
    win = _planned_window(make_window, plan_delay=30.0)
    win.prompt.set_text(PROMPT)
    for how in ("button", "esc"):
        win.plan.write.click()
        qtbot.waitUntil(lambda: any(j.kind == "plan" and j.state == "running" for j in win.jobs.values()),
                        timeout=5000)
        assert win.plan.cancel.isVisible() and not win.plan.write.isEnabled()
        assert "Esc or Cancel stops it" in win.plan.state.text()
        assert any(row[1].startswith("Writing the plan (Qwen/Qwen2.5-1.5B-Instruct)")
                   for row in win.session.queue_rows())
        if how == "button":
            win.plan.cancel.click()
        else:
            qtbot.keyClick(win, Qt.Key.Key_Escape)
        qtbot.waitUntil(lambda: win.plan.write.isEnabled(), timeout=5000)
        assert [h.state for h in win.engine.handles if h.kind == "plan"][-1] == "cancelled"
        assert not win.plan.cancel.isVisible() and win.plan.plan() is None and not win.jobs
        assert "writes a plan when you draft" in win.plan.state.text()


def test_the_nexus_family_panel_says_it_reads_the_instruction_directly(make_window, qtbot, tmp_path):
    win = make_window()
    assert not win.plan.isVisible()  # a plain pair without a planner has no plan
    win.apply_model_spec(ModelSpec(family=NEXUS, light=str(tmp_path / "bundle"), heavy=str(tmp_path / "wan14b")))
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    assert win.summary["has_understanding"] and win.summary["planner"] is None
    assert win.plan.isVisible() and win.plan.title() == "Understanding (Lumos-Nexus release)"
    assert win.plan.direct.isVisible() and "reads the instruction directly" in win.plan.direct.text()
    assert "writes no readable plan" in win.plan.direct.text()
    for widget in (win.plan.text, win.plan.write, win.plan.use):
        assert not widget.isVisible()  # nothing to write, show or edit
    win.session.plan_state.edit(PROMPT, "a stale hand edit")  # never sent to a family that writes no plan
    take = draft(qtbot, win, PROMPT)
    assert win.engine.submitted[-1].plan is None and win.engine.submitted[-1].use_plan
    assert take.metadata["conditioning"]["family"] == NEXUS and "planner" not in take.metadata
    win.close()
    again = make_window()  # restarted on the family: the panel says so before the models load
    assert again.plan.direct.isVisible() and not again.plan.text.isVisible()


# ---------------------------------------------------------------------------------------------- restoring a take
def _export(win, qtbot, take, out):
    done = []
    win.export_take(take.id, out, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    return read_take_metadata(out)


def test_restoring_a_take_made_with_a_planner_offers_to_use_it(make_window, qtbot, tmp_path):
    win = _planned_window(make_window, heavy_reads="plan")
    win.engine.plan_text = "A blue square slides left ({instruction})"
    take = draft(qtbot, win, PROMPT)
    meta = _export(win, qtbot, take, tmp_path / "planned.mp4")
    assert meta["planner"]["id"] == PLANNER and meta["planner"]["heavy_reads"] == "plan"
    win.apply_model_spec(ModelSpec(light="/models/wan-1.3b", heavy="/models/wan-14b"))  # the planner is gone
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    assert not win.plan.isVisible()
    win.prompt.set_text("something else")
    win.reproduce_from(tmp_path / "planned.mp4")
    qtbot.waitUntil(lambda: _banner_action(win, "Use the planner"), timeout=10000)
    text = win.banner.text.text()
    assert f"made with the planner {PLANNER} (the heavy generator read the plan)" in text
    assert win.banner.action.text() == "Use the planner Qwen2.5-1.5B-Instruct"
    assert win.prompt.text() == PROMPT and win.session.plan_state.text == f"A blue square slides left ({PROMPT})"
    n = len(win.engine.submitted)
    win.banner.action.click()  # one click: the planner (and what the heavy read) load with the same pair
    load = [h for h in win.engine.handles if h.kind == "load"][-1].payload
    assert (load.light, load.heavy, load.planner, load.heavy_reads) == ("/models/wan-1.3b", "/models/wan-14b",
                                                                      PLANNER, "plan")
    assert win.settings.model_planner == PLANNER
    qtbot.waitUntil(lambda: win.summary is not None and _banner_action(win, "Render it"), timeout=5000)
    assert win.plan.isVisible() and win.plan.plan() == f"A blue square slides left ({PROMPT})"  # restored there
    takes = len(win.project.takes)
    win.banner.action.click()  # rendered with the planner, from the plan the take recorded
    qtbot.waitUntil(lambda: len(win.project.takes) == takes + 1 and win.watch_job is None, timeout=10000)
    assert len(win.engine.submitted) == n + 1
    assert win.engine.submitted[-1].plan == f"A blue square slides left ({PROMPT})"
    assert win.project.takes[-1].metadata["planner"]["id"] == PLANNER


def test_restoring_a_take_made_with_the_nexus_family_offers_to_switch(make_window, qtbot, tmp_path):
    bundle, heavy = tmp_path / "OmniVideo11B", tmp_path / "Wan2.1-T2V-14B"
    bundle.mkdir()
    heavy.mkdir()
    win = make_window(summary={"light": str(bundle), "heavy": str(heavy), "device": "cpu", "dtype": "float32",
                               "defaults": {"width": 64, "height": 64, "num_frames": 9, "steps": 6, "fps": 8}})
    win.apply_model_spec(ModelSpec(family=NEXUS, light=str(bundle), heavy=str(heavy)))
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    take = draft(qtbot, win, PROMPT)
    assert _export(win, qtbot, take, tmp_path / "nexus.mp4")["conditioning"]["family"] == NEXUS
    win.apply_model_spec(ModelSpec(light="/models/wan-1.3b", heavy="/models/wan-14b", planner=PLANNER))
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    win.reproduce_from(tmp_path / "nexus.mp4")
    qtbot.waitUntil(lambda: _banner_action(win, "Switch to the Lumos-Nexus release"), timeout=10000)
    assert "made with the Lumos-Nexus release" in win.banner.text.text()
    win.banner.action.click()
    load = [h for h in win.engine.handles if h.kind == "load"][-1].payload
    assert (load.family, load.light, load.heavy, load.planner) == (NEXUS, str(bundle), str(heavy), None)
    qtbot.waitUntil(lambda: win.summary is not None and _banner_action(win, "Render it"), timeout=5000)
    assert win.plan.direct.isVisible()
    # the release's folders are not on this machine: the picker opens on them instead of a failed load
    win.apply_model_spec(ModelSpec(light="/models/wan-1.3b", heavy="/models/wan-14b"))
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    meta = read_take_metadata(tmp_path / "nexus.mp4")
    meta["models"] = {"light": str(tmp_path / "gone" / "bundle"), "heavy": str(tmp_path / "gone" / "14b")}
    export_take(SimpleNamespace(frames=np.zeros((3, 32, 32, 3), np.uint8), fps=8, metadata=meta),
                tmp_path / "elsewhere.mp4")
    opened = []

    def picked(dlg):
        opened.append(dlg.spec())
        return QDialog.DialogCode.Rejected

    ModelPickerDialog.exec, original = picked, ModelPickerDialog.exec
    try:
        win.reproduce_from(tmp_path / "elsewhere.mp4")
        qtbot.waitUntil(lambda: _banner_action(win, "Switch to the Lumos-Nexus release"), timeout=10000)
        loads = len([h for h in win.engine.handles if h.kind == "load"])
        win.banner.action.click()
    finally:
        ModelPickerDialog.exec = original
    assert opened and opened[0].family == NEXUS and opened[0].light == str(tmp_path / "gone" / "bundle")
    assert len([h for h in win.engine.handles if h.kind == "load"]) == loads  # cancelled: nothing reloaded


def test_damaged_family_and_planner_records_never_lose_the_take(make_window, qtbot, tmp_path):
    win = make_window()
    meta = {"request": {"prompt": PROMPT, "seed": 3, "width": 64, "height": 64, "num_frames": 9, "steps": 6},
            "conditioning": {"family": "someone-elses"}, "planner": {"id": 42, "heavy_reads": "everything"}}
    out = tmp_path / "damaged.mp4"
    export_take(SimpleNamespace(frames=np.zeros((3, 32, 32, 3), np.uint8), fps=8, metadata=meta), out)
    win.reproduce_from(out)
    qtbot.waitUntil(lambda: _banner_action(win, "Render it"), timeout=10000)
    text = win.banner.text.text()
    assert "could not be read" in text and "conditioning.family" in text and "Traceback" not in text
    assert win.prompt.text() == PROMPT
    meta["planner"] = "not an object"
    export_take(SimpleNamespace(frames=np.zeros((3, 32, 32, 3), np.uint8), fps=8, metadata=meta), out)
    win.reproduce_from(out)
    qtbot.waitUntil(lambda: _banner_action(win, "Render it") and "planner: must be an object" in
                    win.banner.text.text(), timeout=10000)


# ---------------------------------------------------------------------------------------------- the real engine
@pytest.mark.slow
def test_the_real_engine_writes_a_plan_with_a_tiny_planner(qtbot, tiny_family, planner_dir):
    from app.main_window import MainWindow

    settings = Settings(model_light=str(tiny_family / "light"), model_heavy=str(tiny_family / "heavy"),
                        model_device="cpu", model_planner=str(planner_dir))
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.show()
    try:
        qtbot.waitUntil(lambda: win.summary is not None or win.banner.isVisible(), timeout=180000)
        assert win.summary is not None, win.banner.text.text()
        assert win.summary["planner"] == str(planner_dir) and win.summary["heavy_reads"] == "instruction"
        assert "planner Tiny-Planner-Instruct" in win.model_label.text().replace(str(Path(planner_dir).parent.name)
                                                                                 + "/", "")
        assert win.plan.isVisible() and "Tiny-Planner-Instruct" in win.plan.title()
        win.prompt.set_text(PROMPT)
        win.plan.write.click()
        qtbot.waitUntil(lambda: win.plan.write.isEnabled() and not win.jobs, timeout=180000)
        plan = win.plan.plan()
        assert plan and plan != PROMPT, (plan, win.banner.text.text())  # nonsense, but the planner's own
        assert not win.plan.fallback.isVisible() and win.session.plan_state.status(PROMPT) == "written"
        # a draft: the light generator read the planner's plan, and the take says so
        sp = win.settings_panel
        sp.size.setCurrentIndex(sp.size.count() - 1)  # Custom
        sp.width.setValue(32)
        sp.height.setValue(32)
        sp.frames.setValue(5)
        sp.steps.setValue(2)
        sp.lock.setChecked(True)
        take = draft(qtbot, win, PROMPT, timeout=180000)
        assert take.metadata["plan"] == plan and take.metadata["planner"]["source"] == "planner"
        assert take.metadata["planner"]["id"] == str(planner_dir) and not take.metadata["planner"]["fell_back"]
    finally:
        win.close()
