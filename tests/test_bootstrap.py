"""bootstrap.py, the README's two commands: what it says before the suite runs."""

import importlib.util
import shutil
from collections import namedtuple
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_bootstrap():
    spec = importlib.util.spec_from_file_location("bootstrap_under_test", ROOT / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Usage = namedtuple("Usage", "total used free")


def test_a_nearly_full_temp_folder_is_named_before_the_tests_fail_for_it(monkeypatch, capsys):
    bootstrap = load_bootstrap()
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10 * 2**30, 10 * 2**30 - 120 * 2**20, 120 * 2**20))
    bootstrap.warn_if_temp_is_nearly_full()
    out = capsys.readouterr().out
    assert "only 120 MB free" in out and "TMPDIR" in out


def test_enough_room_says_nothing(monkeypatch, capsys):
    bootstrap = load_bootstrap()
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(100 * 2**30, 0, 50 * 2**30))
    bootstrap.warn_if_temp_is_nearly_full()
    assert capsys.readouterr().out == ""


_PASSED_TEST_FOLDER = []


def test_a_passing_test_writes_to_its_temp_folder(tmp_path):
    (tmp_path / "clip.bin").write_bytes(b"x" * 4096)
    _PASSED_TEST_FOLDER.append(tmp_path)


def test_the_suite_removed_the_passed_tests_temp_folder():
    """pyproject's retention settings: a passed test's tmp_path goes as it finishes, so the suite's disk footprint
    stays that of its session fixtures (a CI run failed once for want of space in /tmp). Runs after the test above."""
    assert _PASSED_TEST_FOLDER, "the test above did not run first"
    assert not _PASSED_TEST_FOLDER[0].exists()
