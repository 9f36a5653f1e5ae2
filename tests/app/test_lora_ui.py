"""LoRAs in the app: a list per generator in the model picker (with strengths, bad files explained there), kept in
the settings, named in the status bar, part of a take's models, and found again (or located) when a take is restored
from an MP4."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtWidgets import QDialog, QFileDialog

from app.settings import Settings
from app.widgets.dialogs import ModelPickerDialog
from engine.api import ModelSpec, export_take, read_take_metadata
from tests.app.conftest import draft
from tests.app.test_model_picker import make_pair


def make_lora(path, seed: int = 0):
    """A small valid safetensors file (the fake engine only reads its name and sha256)."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    save_file({"blocks.0.attn1.to_q.lora_A.weight": rng.standard_normal((2, 8)).astype(np.float32),
               "blocks.0.attn1.to_q.lora_B.weight": rng.standard_normal((8, 2)).astype(np.float32)}, str(path))
    return path


def file_dialog(monkeypatch, answer, calls=None):
    """QFileDialog.getOpenFileName answers `answer` (a path, or a function of the call's title); calls are kept."""
    def fake(parent, title, folder="", filters="", *rest, **kw):
        if calls is not None:
            calls.append((title, filters))
        path = answer(title) if callable(answer) else answer
        return (str(path) if path else "", "")

    monkeypatch.setattr(QFileDialog, "getOpenFileName", fake)


@pytest.fixture
def tasks():
    from app.bridge import Tasks

    t = Tasks()
    yield t
    t.shutdown()


# ---------------------------------------------------------------------------------------------- the picker
def test_picker_lists_loras_with_strengths_into_the_spec(qtbot, tmp_path, monkeypatch, tasks):
    a, b = make_lora(tmp_path / "a.safetensors", 1), make_lora(tmp_path / "b.safetensors", 2)
    dlg = ModelPickerDialog(ModelSpec(lora_light=((str(a), 0.75),)), tasks)
    qtbot.addWidget(dlg)
    light, heavy = dlg.loras["light"], dlg.loras["heavy"]
    assert light.entries() == ((str(a), 0.75),) and heavy.entries() == ()
    assert light.table.item(0, 0).text() == "a.safetensors" and light.table.item(0, 0).toolTip() == str(a)
    for w in (light.add_button, light.remove_button, light.table, light.table.cellWidget(0, 1)):
        assert w.toolTip()
    # Add… opens a file dialog for .safetensors files; the new entry starts at strength 1
    calls = []
    file_dialog(monkeypatch, b, calls)
    heavy.add_button.click()
    assert calls and "*.safetensors" in calls[0][1] and "heavy" in calls[0][0]
    spin = heavy.table.cellWidget(0, 1)
    assert heavy.entries() == ((str(b), 1.0),)
    assert (spin.minimum(), spin.maximum(), spin.singleStep(), spin.value()) == (-4.0, 4.0, 0.05, 1.0)
    spin.setValue(-0.5)
    light.add_file(str(b))
    assert dlg.spec().lora_heavy == ((str(b), -0.5),) and dlg.spec().lora_light == ((str(a), 0.75), (str(b), 1.0))
    # Remove takes the selected entry out; the embedded family keeps its LoRAs too
    light.table.selectRow(0)
    light.remove_button.click()
    assert dlg.embedded.isChecked() and dlg.spec().lora_light == ((str(b), 1.0),)
    dlg.custom.setChecked(True)
    assert dlg.spec().lora_light == ((str(b), 1.0),) and dlg.spec().lora_heavy == ((str(b), -0.5),)


def test_picker_explains_a_bad_lora_next_to_its_list_and_stays_open(qtbot, tmp_path, monkeypatch, tasks):
    pair = make_pair(tmp_path / "pair")
    gone = make_lora(tmp_path / "gone.safetensors")
    dlg = ModelPickerDialog(replace(pair, lora_heavy=((str(gone), 1.0),)), tasks)
    qtbot.addWidget(dlg)
    dlg.show()
    heavy, light = dlg.loras["heavy"], dlg.loras["light"]
    # a file that is not .safetensors, or not a safetensors file inside, is refused when added, and said why
    pickle = tmp_path / "old.ckpt"
    pickle.write_bytes(b"\x80\x04not safe")
    file_dialog(monkeypatch, pickle)
    light.add_button.click()
    assert light.entries() == () and light.error.isVisible() and "only .safetensors" in light.error.text()
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"hello, this is text")
    assert not light.add_file(str(fake)) and "not a safetensors file" in light.error.text()
    # a listed file that went away since it was chosen: Load says so under its list, and does not close
    gone.unlink()
    dlg.load_button.click()
    qtbot.waitUntil(heavy.error.isVisible, timeout=10000)
    assert "not found" in heavy.error.text() and "gone.safetensors" in heavy.error.text()
    assert heavy.table.property("invalid") and dlg.isVisible() and dlg.result() != QDialog.DialogCode.Accepted
    assert not dlg.field_errors["light"].isVisible() and "red" in dlg.result_label.text()
    # removing it clears the mark, and the choice loads
    heavy.table.selectRow(0)
    heavy.remove_button.click()
    assert not heavy.error.isVisible() and not heavy.table.property("invalid")
    make_lora(tmp_path / "good.safetensors")
    assert light.add_file(str(tmp_path / "good.safetensors"), 0.5) and not light.error.isVisible()
    dlg.load_button.click()
    qtbot.waitUntil(lambda: dlg.result() == QDialog.DialogCode.Accepted, timeout=10000)
    assert dlg.spec().lora_light == ((str(tmp_path / "good.safetensors"), 0.5),) and dlg.spec().lora_heavy == ()


# ---------------------------------------------------------------------------------------------- settings
def test_settings_keep_the_lora_lists_and_drop_damaged_entries(user_dirs, tmp_path):
    s = Settings(model_lora_light=[["/loras/a.safetensors", 0.8], ["/loras/b.safetensors", 1.0]],
                 model_lora_heavy=[["/loras/c.safetensors", -1.5]])
    s.save()
    loaded, problem = Settings.load()
    assert problem is None and loaded == s
    path = Settings.path()
    data = json.loads(path.read_text())
    data["model_lora_light"] = [["/loras/a.safetensors", 0.8], ["/loras/b.safetensors", "strong"], 7,
                                ["", 1.0], ["/loras/d.safetensors", 1e9]]
    data["model_lora_heavy"] = "c.safetensors"
    path.write_text(json.dumps(data))
    loaded, problem = Settings.load()
    assert loaded.model_lora_light == [["/loras/a.safetensors", 0.8]] and loaded.model_lora_heavy == []
    assert "model_lora_light[1]" in problem and "could not be used" in problem
    problems = Settings.read(data)[1]  # every bad entry is named
    assert [p.split(":")[0] for p in problems] == ["model_lora_light[1][1]", "model_lora_light[2]",
                                                   "model_lora_light[3][0]", "model_lora_light[4][1]",
                                                   "model_lora_heavy"]
    assert loaded.model_light == s.model_light and loaded.export_crf == s.export_crf  # the rest is kept


def test_chosen_loras_load_show_in_the_status_bar_and_survive_a_restart(make_window, qtbot, tmp_path, monkeypatch):
    a, b, c = (make_lora(tmp_path / f"{n}.safetensors", i) for i, n in enumerate("abc"))
    win = make_window()
    assert win.model_label.text() == "Models: fake-light + fake-heavy"

    def choose(dlg):  # Models ▸ Choose models…, two LoRAs on the light generator and one on the heavy
        dlg.loras["light"].add_file(str(a))
        dlg.loras["light"].add_file(str(b))
        dlg.loras["light"].table.cellWidget(0, 1).setValue(0.8)
        dlg.loras["heavy"].add_file(str(c))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(ModelPickerDialog, "exec", choose)
    win.choose_models()
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    load = [h for h in win.engine.handles if h.kind == "load"][-1].payload
    assert load.lora_light == ((str(a), 0.8), (str(b), 1.0)) and load.lora_heavy == ((str(c), 1.0),)
    assert win.model_label.text() == "Models: fake-light (+2 LoRAs) + fake-heavy (+1 LoRA)"
    assert "a.safetensors × 0.8" in win.model_label.toolTip() and "c.safetensors × 1" in win.model_label.toolTip()
    assert win.settings.model_lora_light == [[str(a), 0.8], [str(b), 1.0]]
    win.close()
    again = make_window()  # the settings file brings them back
    assert again.current_spec().lora_light == ((str(a), 0.8), (str(b), 1.0))
    assert again.current_spec().lora_heavy == ((str(c), 1.0),)
    assert "(+2 LoRAs)" in again.model_label.text()
    assert again.engine.handles[0].payload.lora_light == ((str(a), 0.8), (str(b), 1.0))


def test_a_lora_is_part_of_a_take_s_models(make_window, qtbot, tmp_path):
    win = make_window()
    win.settings_panel.lock.setChecked(True)
    plain = draft(qtbot, win, "a blue cube spins")
    win.apply_model_spec(replace(win.current_spec(), lora_light=((str(make_lora(tmp_path / "s.safetensors")), 1.0),)))
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    with_lora = draft(qtbot, win, "a blue cube spins")  # the same request: rendered again, not the plain take
    assert with_lora.id != plain.id and with_lora.metadata["loras"]["light"][0]["name"] == "s.safetensors"


def test_a_failed_lora_load_is_explained(make_window, qtbot, tmp_path):
    win = make_window()
    win.apply_model_spec(replace(win.current_spec(), lora_heavy=((str(tmp_path / "nowhere.safetensors"), 1.0),)))
    qtbot.waitUntil(lambda: win.banner.isVisible() and win.banner.level == "error", timeout=5000)
    assert "nowhere.safetensors" in win.banner.text.text() and win.banner.action.text() == "Choose models…"
    assert win.model_label.text() == "Models: not loaded"


# ---------------------------------------------------------------------------------------------- restoring a take
def _take_with_lora(make_window, qtbot, tmp_path, prompt="a lantern swings", plain_first=False, **options):
    """A window that rendered `prompt` with style.safetensors (strength 0.8) on the light generator and exported it
    to exports/take.mp4, then dropped its LoRAs. (window, take, MP4, LoRA file)"""
    lora = make_lora(tmp_path / "loras" / "style.safetensors", 5)
    win = make_window(**options)
    win.settings_panel.lock.setChecked(True)
    if plain_first:  # the same request without the LoRA, first in the project: another take
        draft(qtbot, win, prompt)
    win.apply_model_spec(replace(win.current_spec(), lora_light=((str(lora), 0.8),)))
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    win.settings_panel.lock.setChecked(True)
    t = draft(qtbot, win, prompt)
    out = tmp_path / "exports" / "take.mp4"
    out.parent.mkdir()
    done = []
    win.export_take(t.id, out, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    assert read_take_metadata(out)["loras"]["light"][0]["scale"] == 0.8
    win.apply_model_spec(replace(win.current_spec(), lora_light=()))
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    win.prompt.set_text("something else")
    return win, t, out, lora


def _banner_action(win, text):
    return win.banner.isVisible() and win.banner.action.isVisible() and win.banner.action.text().startswith(text)


def test_restored_take_loads_the_lora_found_next_to_its_mp4(make_window, qtbot, tmp_path):
    win, t, out, lora = _take_with_lora(make_window, qtbot, tmp_path, plain_first=True, load_delay=0.4)
    plain = win.project.takes[0]
    assert plain.id != t.id and plain.request == t.request
    beside = shutil.copy(lora, out.parent / lora.name)
    lora.unlink()  # only the copy next to the MP4 is left
    win.prompt.set_text("something else")
    win.reproduce_from(out)
    qtbot.waitUntil(lambda: _banner_action(win, "Render it"), timeout=10000)
    assert win.prompt.text() == "a lantern swings" and "style.safetensors × 0.8" in win.banner.text.text()
    assert win.current_spec().lora_light == ((str(beside), 0.8),) and win.settings.model_lora_light
    n = len(win.engine.submitted)
    assert win.summary is None  # its LoRA is loading
    win.banner.action.click()  # it waits for the models, then shows the take made with the LoRA, not the plain one
    qtbot.waitUntil(lambda: win.summary is not None and win.project.current_take == t.id, timeout=5000)
    assert len(win.engine.submitted) == n and "(+1 LoRA)" in win.model_label.text()


def test_restored_take_with_a_missing_lora_names_it_and_offers_to_locate_it(make_window, qtbot, tmp_path,
                                                                            monkeypatch):
    win, t, out, lora = _take_with_lora(make_window, qtbot, tmp_path)
    moved = tmp_path / "elsewhere" / "renamed.safetensors"
    moved.parent.mkdir()
    shutil.move(lora, moved)
    impostor = make_lora(tmp_path / "other" / "style.safetensors", 99)  # same name, other weights
    loads = len([h for h in win.engine.handles if h.kind == "load"])
    file_dialog(monkeypatch, lambda title: out if "Open take" in title else impostor)
    win.open_take_dialog()
    qtbot.waitUntil(lambda: _banner_action(win, "Locate style.safetensors"), timeout=10000)
    text = win.banner.text.text()
    assert "light LoRA “style.safetensors”" in text and "Traceback" not in text and win.banner.level == "warning"
    # the take's other settings are restored all the same
    assert win.prompt.text() == "a lantern swings" and win.settings_panel.seed.value() == t.seed
    win.banner.action.click()  # the impostor: same name, other sha256
    qtbot.waitUntil(lambda: _banner_action(win, "Locate") and "is not the light LoRA" in win.banner.text.text(),
                    timeout=10000)
    file_dialog(monkeypatch, "")  # cancelled: still named, still offered
    win.banner.action.click()
    qtbot.waitUntil(lambda: _banner_action(win, "Locate style.safetensors"), timeout=10000)
    file_dialog(monkeypatch, moved)  # the right file under another name
    win.banner.action.click()
    qtbot.waitUntil(lambda: _banner_action(win, "Render it"), timeout=10000)
    assert win.current_spec().lora_light == ((str(moved), 0.8),)
    assert len([h for h in win.engine.handles if h.kind == "load"]) == loads + 1
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    n = len(win.engine.submitted)
    win.banner.action.click()
    assert len(win.engine.submitted) == n and win.project.current_take == t.id  # the same take, from the file


def test_damaged_lora_records_never_lose_the_take(make_window, qtbot, tmp_path):
    win = make_window()
    t = draft(qtbot, win, "a kite over the sea")
    good_digest = "0" * 64
    meta = dict(t.metadata, loras={"light": [{"name": "../../../etc/passwd.safetensors", "sha256": good_digest,
                                              "scale": 1.0}],
                                   "heavy": [{"name": 5, "sha256": "nope"}, "junk"]})
    out = tmp_path / "odd.mp4"
    export_take(SimpleNamespace(frames=np.zeros((3, 32, 32, 3), np.uint8), fps=8, metadata=meta), out)
    win.prompt.set_text("something else")
    win.reproduce_from(out)
    qtbot.waitUntil(lambda: _banner_action(win, "Locate"), timeout=10000)
    text = win.banner.text.text()
    assert win.prompt.text() == "a kite over the sea" and "passwd" in text and "not next to the MP4" in text
    assert "--lora" not in text and "Traceback" not in text
    assert win.current_spec().lora_light == () and win.current_spec().lora_heavy == ()  # nothing loaded from it
    # records that cannot be read at all are named when the rest is restored
    meta["loras"]["light"] = []
    export_take(SimpleNamespace(frames=np.zeros((3, 32, 32, 3), np.uint8), fps=8, metadata=meta), out)
    win.reproduce_from(out)
    qtbot.waitUntil(lambda: _banner_action(win, "Render it"), timeout=10000)
    assert "could not be read" in win.banner.text.text() and "loras.heavy[0]" in win.banner.text.text()


def test_restoring_a_take_made_without_loras_says_the_loaded_ones_differ(make_window, qtbot, tmp_path):
    win = make_window()
    win.settings_panel.lock.setChecked(True)
    t = draft(qtbot, win, "rain on a window")
    out = tmp_path / "plain.mp4"
    done = []
    win.export_take(t.id, out, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    win.apply_model_spec(replace(win.current_spec(), lora_heavy=((str(make_lora(tmp_path / "x.safetensors")), 1.0),)))
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    win.reproduce_from(out)
    qtbot.waitUntil(lambda: _banner_action(win, "Render it"), timeout=10000)
    assert "made without" in win.banner.text.text() and win.current_spec().lora_heavy  # kept, and said


def test_a_failing_lora_lookup_is_a_message_not_a_traceback(make_window, qtbot, tmp_path, monkeypatch):
    import app.window_models as window_models

    win, t, out, lora = _take_with_lora(make_window, qtbot, tmp_path)

    def broken(*args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(window_models, "find_recorded_lora", broken)
    win.reproduce_from(out)
    qtbot.waitUntil(lambda: win.banner.isVisible() and "could not be looked up" in win.banner.text.text(),
                    timeout=10000)
    assert "disk on fire" in win.banner.text.text() and win.banner.level == "warning"
    assert win.prompt.text() == "a lantern swings" and win.current_spec().lora_light == ()
