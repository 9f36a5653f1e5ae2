"""The authors' released Lumos-Nexus system in the app (issue 22): Models ▸ Choose models offers it with its two
folders, explains a wrong or incomplete folder next to its field (every missing file named, the dialog stays open),
shows the memory estimate and the license note, builds ModelSpec(family="lumos-nexus", ...), keeps the choice in the
settings across a restart, names the family in the status bar, and says the negative prompt is not used while that
family is loaded."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtWidgets import QDialog

from app.settings import Settings
from app.widgets.dialogs import ModelPickerDialog
from engine.api import ModelSpec, family_info
from tests.app.conftest import check_picker as _check, open_picker as _picker

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor", "ignore:Detected pickle protocol")
NEXUS = "lumos-nexus"


@pytest.fixture(scope="module")
def release(nexus_release):
    return nexus_release


def test_the_family_choice_builds_its_spec_with_two_folders(qtbot, tasks, tmp_path):
    dlg = _picker(qtbot, tasks, ModelSpec(light="/pairs/light", heavy="/pairs/heavy"))
    assert dlg.nexus_choice.text() == ("Lumos-Nexus release (authors' bundle + Wan2.1-T2V-14B original format)")
    assert not dlg.nexus.isVisibleTo(dlg) and dlg.custom.isChecked()
    dlg.nexus_choice.setChecked(True)
    assert dlg.nexus.isVisibleTo(dlg) and not dlg.light.isVisibleTo(dlg)  # the pair's fields make way
    assert "OmniVideo11B" in dlg.nexus.bundle.toolTip() and "original format" in dlg.nexus.heavy.toolTip()
    note = dlg.nexus.note.text()
    assert "research only" in note and "non-commercially" in note and "CC-BY-NC-SA" in note
    qtbot.keyClicks(dlg.nexus.bundle, str(tmp_path / "OmniVideo11B"))
    qtbot.keyClicks(dlg.nexus.heavy, str(tmp_path / "Wan2.1-T2V-14B"))
    dlg.memory.setCurrentIndex(dlg.memory.findData("balanced"))
    spec = dlg.spec()
    assert spec == ModelSpec(family=NEXUS, light=str(tmp_path / "OmniVideo11B"),
                             heavy=str(tmp_path / "Wan2.1-T2V-14B"), memory="balanced")
    assert dlg.light.text() == "/pairs/light"  # the pair typed before is kept for when it is chosen again
    dlg.custom.setChecked(True)
    assert dlg.spec() == ModelSpec(light="/pairs/light", heavy="/pairs/heavy", memory="balanced")
    # reopened on a family spec: the family is chosen, its folders filled in
    again = _picker(qtbot, tasks, spec)
    assert again.nexus_choice.isChecked() and again.nexus.bundle.text() == spec.light and again.light.text() == ""
    assert again.spec() == spec


def test_an_incomplete_bundle_is_explained_next_to_its_field(qtbot, tasks, release, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(release / "bundle", bundle)
    (bundle / "adapter" / "model.pt").unlink()
    (bundle / "ar_model" / "checkpoint" / "llm" / "config.json").unlink()
    dlg = _picker(qtbot, tasks, ModelSpec(family=NEXUS, light=str(bundle), heavy=str(tmp_path / "nowhere")))
    dlg.show()
    dlg._accept()  # "Load these models"
    qtbot.waitUntil(lambda: dlg.valid is not None, timeout=30000)
    assert dlg.valid is False and dlg.result() != QDialog.DialogCode.Accepted and dlg.isVisible()  # it stays open
    bundle_error, heavy_error = dlg.nexus.errors["light"], dlg.nexus.errors["heavy"]
    assert bundle_error.isVisible() and "adapter/model.pt" in bundle_error.text()
    assert "ar_model/checkpoint/llm/config.json" in bundle_error.text()
    assert "wan/" not in bundle_error.text()  # only what is missing is named
    assert heavy_error.isVisible() and "nowhere" in heavy_error.text() and "not found" in heavy_error.text()
    assert dlg.nexus.bundle.property("invalid") is True and not dlg.field_errors["light"].isVisible()
    # a -Diffusers 14B folder is refused with that hint
    diffusers = tmp_path / "Wan2.1-T2V-14B-Diffusers"
    diffusers.mkdir()
    (diffusers / "model_index.json").write_text("{}")
    dlg.nexus.bundle.setText(str(release / "bundle"))
    dlg.nexus.heavy.setText(str(diffusers))
    _check(qtbot, dlg)
    assert dlg.valid is False and not bundle_error.isVisible()
    assert "original format" in heavy_error.text() and "-Diffusers" in heavy_error.text()
    assert dlg.result() != QDialog.DialogCode.Accepted


def test_unconverted_pickles_name_the_command(qtbot, tasks, tmp_path):
    from devtools.nexus_release_layout import build_release  # the plain pickles as downloaded

    raw = build_release(tmp_path / "raw")
    dlg = _picker(qtbot, tasks, ModelSpec(family=NEXUS, light=str(raw / "bundle"), heavy=str(raw / "wan14b")))
    _check(qtbot, dlg)
    assert dlg.valid is False and "convert-nexus" in dlg.nexus.errors["light"].text()


def test_a_complete_release_is_accepted_with_its_memory_estimate(qtbot, tasks, release):
    spec = ModelSpec(family=NEXUS, light=str(release / "bundle"), heavy=str(release / "wan14b"), device="cpu")
    dlg = _picker(qtbot, tasks, spec)
    _check(qtbot, dlg)
    assert dlg.valid, dlg.result_label.text()
    assert "Lumos-Nexus release" in dlg.result_label.text() and "complete" in dlg.result_label.text()
    assert not dlg.nexus.errors["light"].isVisible() and not dlg.nexus.errors["heavy"].isVisible()
    qtbot.waitUntil(lambda: "memory plan:" in dlg.memory_label.text(), timeout=30000)
    assert "est. peak" in dlg.memory_label.text() and "weights" in dlg.memory_label.text()
    dlg._accept()
    assert dlg.result() == QDialog.DialogCode.Accepted and dlg.spec() == spec


def test_the_choice_is_saved_restored_and_named_and_the_negative_box_says_it_is_unused(make_window, qtbot,
                                                                                          tmp_path, monkeypatch):
    bundle, heavy = str(tmp_path / "OmniVideo11B"), str(tmp_path / "Wan2.1-T2V-14B")
    win = make_window()
    negative = win.prompt.negative
    assert negative.isEnabled() and "Lumos-Nexus" not in win.model_label.text()
    plain_tip = negative.toolTip()

    def choose(dlg):  # Models ▸ Choose models…: the release, its two folders
        dlg.nexus_choice.setChecked(True)
        qtbot.keyClicks(dlg.nexus.bundle, bundle)
        qtbot.keyClicks(dlg.nexus.heavy, heavy)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ModelPickerDialog, "exec", choose)
    win.choose_models()
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    load = [h for h in win.engine.handles if h.kind == "load"][-1].payload
    assert (load.family, load.light, load.heavy) == (NEXUS, bundle, heavy)
    assert win.settings.model_family == NEXUS and win.current_spec() == load
    assert win.model_label.text().startswith("Models: Lumos-Nexus release · ")
    assert family_info(NEXUS)["title"] in win.model_label.toolTip()
    assert not negative.isEnabled() and "stored unconditional context" in negative.toolTip()
    assert "not used" in negative.placeholderText().lower()
    win.prompt.set_negative("blurry")  # text restored from a project stays, and stays visible
    assert win.prompt.negative_text() == "blurry"
    win.close()
    saved = Settings.load()[0]
    assert (saved.model_family, saved.model_light, saved.model_heavy) == (NEXUS, bundle, heavy)
    again = make_window()  # restarted: the family is restored and loaded, the box says so again
    assert again.current_spec().family == NEXUS and again.engine.handles[0].payload.family == NEXUS
    assert not again.prompt.negative.isEnabled() and "Lumos-Nexus release" in again.model_label.text()
    # back to a plain pair: the negative prompt is used again
    again.apply_model_spec(ModelSpec())
    qtbot.waitUntil(lambda: again.summary is not None, timeout=5000)
    assert again.settings.model_family == "" and again.current_spec().family is None
    assert again.prompt.negative.isEnabled() and again.prompt.negative.toolTip() == plain_tip
    assert "Lumos-Nexus" not in again.model_label.text()


def test_the_family_setting_is_validated():
    assert Settings.from_dict({"model_family": NEXUS}).model_family == NEXUS
    settings, problems = Settings.read({"model_family": "someone-elses"})
    assert settings.model_family == "" and problems and "model_family" in problems[0]
    s = Settings(model_light="a", model_heavy="b")
    pair_key = s.model_key()
    s.model_family = NEXUS
    assert s.model_key() != pair_key  # the release's defaults are applied once for it, not taken for the pair's


def test_a_long_list_of_missing_files_is_shown_in_full(qtbot, tasks, tmp_path):
    """An empty folder lacks a dozen files: the message wraps over several lines and the dialog grows to show them
    all (it had kept its height and cut the list after one line)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    dlg = _picker(qtbot, tasks, ModelSpec(family=NEXUS, light=str(empty), heavy=str(empty)))
    dlg.show()
    _check(qtbot, dlg)
    label = dlg.nexus.errors["light"]
    assert label.isVisible() and label.text().count(",") >= 5
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()), timeout=3000)
    assert label.height() > 2 * label.fontMetrics().height()  # several lines, not one
