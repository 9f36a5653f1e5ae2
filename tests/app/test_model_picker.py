"""The model picker checks a pair without loading weights and says why a pair cannot work."""

from __future__ import annotations

import json

from PySide6.QtWidgets import QDialog

from app.widgets.dialogs import ModelPickerDialog, check_spec
from engine.api import ModelSpec

TRANSFORMER = {"_class_name": "WanTransformer3DModel", "in_channels": 16, "out_channels": 16,
               "patch_size": [1, 2, 2], "text_dim": 32}


def _write(folder, name, config):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / name).write_bytes(b"")  # only the presence of weights is checked here


def make_pair(root, heavy_text_dim=32):
    light = root / "light"
    (light / "tokenizer").mkdir(parents=True)
    (light / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline", "transformer": ["diffusers", "x"]}))
    _write(light / "transformer", "diffusion_pytorch_model.safetensors", TRANSFORMER)
    _write(light / "vae", "diffusion_pytorch_model.safetensors", {"z_dim": 16, "base_dim": 3})
    _write(light / "text_encoder", "model.safetensors", {"d_model": 32})
    _write(root / "heavy" / "transformer", "diffusion_pytorch_model.safetensors",
           dict(TRANSFORMER, text_dim=heavy_text_dim))
    return ModelSpec(light=str(light), heavy=str(root / "heavy"))


def test_check_spec_explains_mismatch(tmp_path):
    ok, message = check_spec(make_pair(tmp_path / "good"))
    assert ok, message
    ok, message = check_spec(make_pair(tmp_path / "bad", heavy_text_dim=64))
    assert not ok and "text_dim" in message and "do not share" in message
    ok, message = check_spec(ModelSpec(light=str(tmp_path / "nowhere"), heavy=str(tmp_path / "nowhere")))
    assert not ok and "not found" in message


def test_picker_shows_result_and_refuses_bad_pair(qtbot, tmp_path):
    from app.bridge import Tasks

    tasks = Tasks()
    spec = make_pair(tmp_path / "bad", heavy_text_dim=64)
    dlg = ModelPickerDialog(spec, tasks)
    qtbot.addWidget(dlg)
    assert dlg.custom.isChecked() and dlg.light.text() == spec.light
    dlg.validate()
    qtbot.waitUntil(lambda: dlg.valid is not None, timeout=10000)
    assert dlg.valid is False and "text_dim" in dlg.result_label.text()
    dlg._accept()
    assert dlg.result() != QDialog.DialogCode.Accepted  # a bad pair is not accepted
    good = make_pair(tmp_path / "good")
    dlg.light.setText(good.light)
    dlg.heavy.setText(good.heavy)
    assert dlg.valid is None
    dlg.validate()
    qtbot.waitUntil(lambda: dlg.valid is not None, timeout=10000)
    assert dlg.valid and "share one latent space" in dlg.result_label.text()
    assert dlg.spec().light == good.light
    tasks.shutdown()


def test_applying_a_spec_reloads(make_window, qtbot, tmp_path):
    win = make_window()
    spec = make_pair(tmp_path / "good")
    win.apply_model_spec(spec)
    assert win.settings.model_light == spec.light and win.summary is None
    qtbot.waitUntil(lambda: win.summary is not None, timeout=5000)
    assert win.queue.list.item(0).text() == "Nothing queued"
