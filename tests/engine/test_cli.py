"""The CLI end to end on tiny models, and its one-line errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, timeout=300):
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    return proc.returncode, proc.stdout, proc.stderr


def test_help_does_not_import_torch():
    code = ("import sys; sys.argv=['main.py','--help']; import main\n"
            "try:\n    main.main(['render','--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'heavy import'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "--handoff" in proc.stdout


def _models(tiny_family):
    return ["--light", str(tiny_family / "light"), "--heavy", str(tiny_family / "heavy")]


def test_render_then_reproduce_gives_the_same_frames(tmp_path, tiny_family):
    from engine.export import read_metadata
    from tests.engine.test_export import _read_back

    out = tmp_path / "take.mp4"
    code, _, err = cli("render", "--prompt", "a green star grows", *_models(tiny_family), "--size", "32x32",
                       "--frames", "5", "--steps", "4", "--handoff", "0.6", "--light-lead", "1", "--seed", "5",
                       "--crf", "0", "--out", str(out))
    assert code == 0, err
    meta = read_metadata(out)
    assert meta["request"]["prompt"] == "a green star grows"
    assert meta["request"]["upfb"]["light_lead"] == 1 and meta["gamma_w"] > 0
    again = tmp_path / "again.mp4"
    code, _, err = cli("reproduce", str(out), *_models(tiny_family), "--crf", "0", "--out", str(again), "--quiet")
    assert code == 0, err
    a, b = _read_back(out), _read_back(again)
    assert a.shape == (5, 32, 32, 3) and np.array_equal(a, b)


@pytest.mark.parametrize("args, message", [
    (["--size", "30x32"], "width must be a multiple of 16"),
    (["--size", "abc"], "size must look like"),
    (["--steps", "0"], "steps must be between"),
    (["--handoff", "1.5"], "handoff must be in"),
    (["--out", "/nonexistent-dir/x.mp4"], "does not exist"),
    (["--out", "x.gif"], "must end in .mp4"),
    (["--mode", "dream"], "invalid choice"),
])
def test_bad_arguments_exit_nonzero_with_one_line(tiny_family, args, message):
    code, _, err = cli("render", "--prompt", "x", *_models(tiny_family), *args)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_missing_and_mismatched_models(tmp_path, tiny_family):
    code, _, err = cli("render", "--prompt", "x", "--light", str(tmp_path / "nope"), "--heavy", str(tmp_path))
    assert code == 2 and "model folder not found" in err and "Traceback" not in err
    code, _, err = cli("render", "--prompt", "x", "--light", str(tiny_family / "heavy"),
                       "--heavy", str(tiny_family / "heavy"))
    assert code == 2 and "no VAE and text encoder" in err


def test_frames_are_rounded_with_a_warning(tmp_path, tiny_family):
    out = tmp_path / "w.mp4"
    code, _, err = cli("render", "--prompt", "x", *_models(tiny_family), "--size", "32x32", "--frames", "7",
                       "--steps", "2", "--mode", "light", "--out", str(out), "--quiet")
    assert code == 0, err
    assert "num_frames 7 is not 4k + 1; using 9" in err


def test_reproduce_a_file_without_metadata(tmp_path):
    from engine.export import export_mp4

    plain = export_mp4(np.zeros((5, 16, 16, 3), np.uint8), tmp_path / "plain.mp4")
    code, _, err = cli("reproduce", str(plain))
    assert code == 2 and "no Lumos Studio take metadata" in err


def test_default_handoff_is_the_authors_gamma_at_the_familys_shift(tmp_path):
    """Without --handoff the CLI refines where the app's amber mark is, not at the shift-5 position of γ_w = 0.3."""
    import json

    from engine.cli import build_parser, request_from_args
    from engine.handoff import OFFICIAL_GAMMA_W, gamma_w_to_handoff

    fam = tmp_path / "fam"
    (fam / "light").mkdir(parents=True)
    (fam / "lumos.json").write_text(json.dumps({"flow_shift": 2.0, "width": 64, "height": 64, "num_frames": 17,
                                                "steps": 20}))
    args = build_parser().parse_args(["render", "--prompt", "a red circle", "--light", str(fam / "light"), "--out",
                                      str(tmp_path / "o.mp4")])
    assert request_from_args(args).handoff == pytest.approx(gamma_w_to_handoff(OFFICIAL_GAMMA_W, 2.0))


def test_default_handoff_follows_shift_and_the_measured_default(tmp_path):
    """The family's measured hand-off holds at its own shift only; --shift places γ_w = 0.3 at the shift asked for."""
    import json

    from engine.cli import build_parser, request_from_args
    from engine.handoff import OFFICIAL_GAMMA_W, gamma_w_to_handoff

    fam = tmp_path / "fam"
    (fam / "light").mkdir(parents=True)
    (fam / "lumos.json").write_text(json.dumps({"flow_shift": 2.0, "handoff": 0.2}))

    def handoff(*extra):
        args = build_parser().parse_args(["render", "--prompt", "a red circle", "--light", str(fam / "light"), *extra])
        return request_from_args(args).handoff

    assert handoff() == 0.2 and handoff("--shift", "2") == 0.2
    assert handoff("--shift", "5") == pytest.approx(gamma_w_to_handoff(OFFICIAL_GAMMA_W, 5.0))
