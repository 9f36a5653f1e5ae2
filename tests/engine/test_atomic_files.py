"""Atomic writes: the target holds the old content or the new, never a torn file, and no temp file is left."""

import json
import os

import pytest

from engine.atomic_files import atomic_write_json, atomic_write_text


def test_writes_and_replaces(tmp_path):
    path = tmp_path / "sub" / "cfg.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2, "name": "é"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 2, "name": "é"}
    assert os.listdir(path.parent) == ["cfg.json"]


def test_unencodable_value_leaves_the_old_file(tmp_path):
    path = tmp_path / "cfg.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["cfg.json"]


def test_failed_rename_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "card.md"
    atomic_write_text(path, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["card.md"]
