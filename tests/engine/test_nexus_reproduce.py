"""`main.py reproduce` of a take made with the Lumos-Nexus release family (issue 22): the family recorded in the take's
metadata is restored (with --trust-models-in-file, or with --light/--heavy given), and a take of one family is not
rendered with another family's folders (one line, exit 2). On the reduced random-init release
(devtools/nexus_release_layout.py), built once for the module; one take rendered, one reproduced."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor", "ignore:Detected pickle protocol")
NEXUS = "lumos-nexus"
EMBEDDED = "resources/models/lumos-mini"


@pytest.fixture(scope="module")
def release(nexus_release):
    return nexus_release


def _folders(release) -> list[str]:
    return ["--light", str(release / "bundle"), "--heavy", str(release / "wan14b")]


@pytest.fixture(scope="module")
def take(release):
    out = release / "take.mp4"
    assert main(["render", "--family", NEXUS, *_folders(release), "--prompt", "a red ball rolls left", "--size",
                 "32x32", "--frames", "5", "--steps", "2", "--seed", "3", "--device", "cpu", "--quiet",
                 "--out", str(out)]) == 0
    return out


def _meta(path):
    from engine.api import read_take_metadata

    return read_take_metadata(path)


def _with_metadata(path, meta):
    from engine.export import export_mp4

    return export_mp4(np.zeros((5, 32, 32, 3), np.uint8), path, fps=16, metadata=meta)


def _prepared(argv):
    from engine.cli import _prepare
    from engine.cli_args import build_parser

    return _prepare(build_parser().parse_args(argv))


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_the_take_records_its_family(take):
    assert _meta(take)["conditioning"]["family"] == NEXUS


def test_reproduce_trusting_the_file_restores_the_family(take, capsys):
    out = take.with_name("again.mp4")
    assert main(["reproduce", str(take), "--trust-models-in-file", "--device", "cpu", "--quiet",
                 "--out", str(out)]) == 0
    assert "family lumos-nexus" in capsys.readouterr().err  # the take was made with ... (family lumos-nexus)
    meta, original = _meta(out), _meta(take)
    assert meta["conditioning"]["family"] == NEXUS and meta["request"] == original["request"]
    assert meta["models"] == original["models"]


def test_reproduce_with_the_folders_given_restores_the_family(take, release):
    _request, spec, _out, made_with = _prepared(["reproduce", str(take), *_folders(release), "--device", "cpu"])
    assert (spec.family, spec.light, spec.heavy) == (NEXUS, str(release / "bundle"), str(release / "wan14b"))
    assert "family lumos-nexus" in made_with
    # the release's own name for the bundle's parent folder is accepted too
    parent = release / "download"
    parent.mkdir(exist_ok=True)
    if not (parent / "model_ckpts").exists():
        (parent / "model_ckpts").symlink_to(release / "bundle", target_is_directory=True)
    _r, spec, _o, _m = _prepared(["reproduce", str(take), "--light", str(parent), "--heavy", str(release / "wan14b")])
    assert spec.family == NEXUS


def test_a_release_take_without_its_folders_is_refused(take, capsys):
    assert main(["reproduce", str(take), "--device", "cpu", "--quiet"]) == 2  # the embedded family's folders
    line = _one_error_line(capsys)
    assert "Lumos-Nexus release (lumos-nexus)" in line and "--trust-models-in-file" in line and "--light" in line


def test_a_release_take_with_a_plain_pair_is_refused(take, capsys):
    assert main(["reproduce", str(take), "--light", f"{EMBEDDED}/light", "--heavy", f"{EMBEDDED}/heavy",
                 "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "lumos-nexus" in line and "is not an Omni-Video bundle" in line
    assert main(["reproduce", str(take), "--light", "/nowhere/bundle", "--heavy", "/nowhere/14b", "--quiet"]) == 2
    assert "does not exist" in _one_error_line(capsys)


def test_a_plain_take_with_the_release_s_folders_is_refused(take, release, capsys):
    meta = _meta(take)
    plain = {k: v for k, v in meta.items() if k != "conditioning"}
    plain["models"] = {"light": "lumos-mini/light", "heavy": "lumos-mini/heavy", "understanding": True}
    path = _with_metadata(release / "plain.mp4", plain)
    assert main(["reproduce", str(path), *_folders(release), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "light + heavy pair" in line and "Omni-Video bundle" in line and "lumos-nexus" in line
    _r, spec, _o, _m = _prepared(["reproduce", str(path)])  # with its own (embedded) models: no family
    assert spec.family is None


@pytest.mark.parametrize("record", [{"family": "someone-elses"}, {"family": 7}, "lumos-nexus"])
def test_a_malformed_family_record_is_refused(take, release, capsys, record):
    path = _with_metadata(release / "odd.mp4", dict(_meta(take), conditioning=record))
    assert main(["reproduce", str(path), *_folders(release), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "family" in line or "conditioning" in line
