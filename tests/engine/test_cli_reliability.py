"""Issue 19, engine and CLI side: bounded inputs checked before any model runs, requests checked against the loaded
models, clean exit codes (0/1/2/130) with one line and never an abort or a traceback, Ctrl+C and kill -9 leave no
partial file for long, an MP4's metadata never chooses the models, and messages that name the real cause."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from engine.errors import ExportError
from engine.export import export_mp4, partial_path, remove_stale_partials
from engine.request import (
    MAX_NEGATIVE_CHARS,
    MAX_PLAN_CHARS,
    RenderRequest,
    RequestError,
    check_request,
)

ROOT = Path(__file__).resolve().parents[2]
ABORT_SIGNS = ("terminate called", "Traceback", "core dumped")


def _models(tiny_family):
    return ["--light", str(tiny_family / "light"), "--heavy", str(tiny_family / "heavy")]


def _cli(*args, timeout=120):
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    for sign in ABORT_SIGNS:
        assert sign not in proc.stderr, proc.stderr
    return proc.returncode, proc.stderr


def _main(capsys, *args):
    """The CLI in-process, for paths that end before an Engine exists (fast)."""
    from engine.cli import main

    code = main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _error_lines(err):
    return [line for line in err.splitlines() if line.startswith("error:")]


# -- item 3: text limits, before any model ---------------------------------------------------------------------------
def test_long_texts_are_refused_at_once_with_the_rule():
    base = RenderRequest(prompt="a red circle", steps=4, num_frames=5, width=32, height=32)
    started = time.perf_counter()
    with pytest.raises(RequestError, match=f"the negative prompt has 100000 characters; at most {MAX_NEGATIVE_CHARS}"):
        check_request(base.replace(negative_prompt="x" * 100_000))
    with pytest.raises(RequestError, match=f"the plan has 100000 characters; at most {MAX_PLAN_CHARS}"):
        check_request(base.replace(plan="y" * 100_000))
    assert time.perf_counter() - started < 0.05  # was: 3 minutes, then a 519 GB allocation
    check_request(base.replace(negative_prompt="n" * MAX_NEGATIVE_CHARS, plan="p" * MAX_PLAN_CHARS))


@pytest.mark.parametrize("data, message", [
    ({"use_plan": "no"}, "use_plan must be true or false, got 'no'"),
    ({"handoff": "0.5"}, "handoff must be a number, got '0.5'"),
    ({"negative_prompt": 7}, "negative_prompt must be text"),
    ({"plan": ["a"]}, "plan must be text or None"),
    ({"upfb": 5}, "upfb must be an object"),
    ({"upfb": {"gamma_hf": "hi"}}, "upfb.gamma_hf must be a number"),
    ({"seed": True}, "seed must be a whole number"),
    ({"mode": ["upfb"]}, "mode must be one of"),
])
def test_wrong_types_from_a_file_are_clear_errors(data, message):
    """Metadata is untrusted: a wrong type is refused with its name, never counted as true or failing later."""
    with pytest.raises(RequestError, match=message.replace("(", r"\(").replace("[", r"\[")):
        check_request(RenderRequest.from_dict({"prompt": "a red circle", **data}))


# -- item 3: the loaded models' limits ---------------------------------------------------------------------------------
def test_limits_of_the_embedded_family_from_its_configs():
    """lumos-mini's position grid (5, 4, 4) through patch (1, 2, 2) and the VAE's 8× / 4×: 64×64, 17 frames."""
    from engine.runtime import model_limits

    family = ROOT / "resources" / "models" / "lumos-mini"
    if not (family / "light" / "transformer" / "config.json").is_file():
        pytest.skip("the embedded family is not installed")

    def config(path):
        return SimpleNamespace(config=SimpleNamespace(**json.loads((family / path).read_text())))

    models = SimpleNamespace(
        vae=config("light/vae/config.json"), light=config("light/transformer/config.json"), heavy=config("heavy/transformer/config.json"),
        defaults={"name": "lumos-mini"}, max_sequence_length=80)
    limits = model_limits(models)
    assert (limits.max_width, limits.max_height, limits.max_frames) == (64, 64, 17)
    with pytest.raises(RequestError, match="lumos-mini renders at most 64×64 and 17 frames; asked for 128×128"):
        check_request(RenderRequest(prompt="a red circle", width=128, height=128, num_frames=17), limits=limits)


def test_engine_submit_refuses_what_the_loaded_models_cannot_render(runtime):
    """The tiny pair's RoPE table holds 32 tokens per axis: 512 px (patch 2 × VAE 8) and 125 frames. The check is
    exact: one token more is where the transformer itself fails with an internal error."""
    import torch

    from engine.jobs import Engine

    limits = runtime.limits
    assert (limits.max_width, limits.max_height, limits.max_frames) == (512, 512, 125)
    light = runtime.models.light
    with torch.no_grad():
        text = torch.zeros(1, 4, light.config.text_dim)
        light(torch.zeros(1, 16, 1, 2, 64), timestep=torch.tensor([1]), encoder_hidden_states=text)  # 32 tokens
        with pytest.raises(RuntimeError, match="view size is not compatible|is invalid for input"):  # 33 tokens
            light(torch.zeros(1, 16, 1, 2, 66), timestep=torch.tensor([1]), encoder_hidden_states=text)

    engine = Engine(runtime=runtime)
    try:
        ok = RenderRequest(prompt="a red circle", steps=2, num_frames=5, width=512, height=16)
        assert engine.check(ok) == ok
        for bad in (ok.replace(width=528), ok.replace(num_frames=129)):
            with pytest.raises(RequestError, match="this model pair renders at most 512×512 and 125 frames; asked"):
                engine.submit(bad)
        assert engine.pending() == [] and engine.running is None  # nothing was queued
    finally:
        assert engine.shutdown(wait=True, timeout=10)


def test_texts_over_the_text_encoders_window_fail_before_any_model_reads_them(runtime, monkeypatch):
    window = runtime.models.max_sequence_length
    long_negative = " ".join(["a"] * (window + 5))  # a token per word, within the character limit
    read = []
    monkeypatch.setattr(runtime, "_text", lambda *a: read.append(a))
    monkeypatch.setattr(runtime, "plan", lambda *a: read.append(a))
    req = RenderRequest(prompt="a red circle", negative_prompt=long_negative, steps=2, num_frames=5, width=32,
                        height=32)
    with pytest.raises(RequestError, match=f"the negative prompt is {window + 6} tokens long; this model pair's text "
                                           f"encoder reads at most {window}"):
        runtime.render(req)
    assert read == []


def test_understanding_block_token_budget():
    """A causal LM reading the instruction twice, then <plan>, a plan of up to 128 tokens and </s>, inside 320
    positions: instructions up to 94 tokens (the embedded family's LM)."""
    from engine.understanding import UnderstandingBlock
    from devtools.tiny_models import make_tokenizer

    block = UnderstandingBlock.__new__(UnderstandingBlock)
    block.lm = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=320, instruction_readings=2))
    block.tokenizer = make_tokenizer()
    block._lock = threading.Lock()
    assert block.max_instruction_tokens(None) == 94
    assert block.max_instruction_tokens("red circle") == (320 - 2 - 3) // 2


# -- item 4: exit codes, no abort, Ctrl+C ------------------------------------------------------------------------------
def test_a_request_the_models_cannot_render_exits_2_after_loading_without_an_abort(tmp_path, tiny_family):
    """The worker thread exists and torch is loaded: the exit must still be clean (it was SIGABRT, exit 134)."""
    out = tmp_path / "big.mp4"
    code, err = _cli("render", "--prompt", "a red circle", *_models(tiny_family), "--size", "1024x1024",
                     "--frames", "5", "--steps", "2", "--quiet", "--out", str(out))
    assert code == 2
    assert _error_lines(err) == ["error: this model pair renders at most 512×512 and 125 frames; asked for "
                                 "1024×1024 and 5 frames"]
    assert list(tmp_path.iterdir()) == []


def test_a_failure_on_the_worker_exits_2_with_one_line(tmp_path, tiny_family):
    """The token window is checked on the worker (where the tokenizer lives): a Failed job, one line, exit 2."""
    code, err = _cli("render", "--prompt", "a red circle", "--negative", " ".join(["a"] * 600),
                     *_models(tiny_family), "--size", "32x32", "--frames", "5", "--steps", "2", "--quiet",
                     "--out", str(tmp_path / "t.mp4"))
    assert code == 2
    assert _error_lines(err) == ["error: the negative prompt is 601 tokens long; this model pair's text encoder "
                                 "reads at most 512"]
    assert list(tmp_path.iterdir()) == []


def _as_in_a_terminal():
    """Popen preexec: Ctrl+C as a terminal delivers it. A shell that starts the suite in the background (``cmd &``
    without job control) ignores SIGINT for it, children inherit that, and Python then never raises
    KeyboardInterrupt: the render and the export below would finish as if no Ctrl+C came."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_mid_render_exits_130_within_a_step_and_leaves_nothing(tmp_path, tiny_family):
    out = tmp_path / "t.mp4"
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "render", "--prompt", "a red circle",
                             *_models(tiny_family), "--size", "128x128", "--frames", "17", "--steps", "200",
                             "--out", str(out)], stderr=subprocess.PIPE, cwd=ROOT, preexec_fn=_as_in_a_terminal)
    err = bytearray()
    reader = threading.Thread(target=lambda: [err.extend(b) for b in iter(lambda: proc.stderr.read(1), b"")],
                              daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while b"bridging" not in err and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # until the steps run
    assert proc.poll() is None, err.decode()
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    code = proc.wait(timeout=30)
    stopped = time.monotonic() - sent
    reader.join(5)
    text = err.decode("utf-8", "replace")
    assert code == 130, text
    assert stopped < 10, stopped  # one step here is ~0.1 s; the rest is the worker's and interpreter's exit
    assert not any(sign in text for sign in ABORT_SIGNS), text
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_export_removes_the_partial_file(tmp_path):
    script = ("import numpy as np, sys\n"
              "from engine.export import export_mp4\n"
              "frames = np.random.default_rng(0).integers(0, 255, (400, 256, 256, 3), dtype=np.uint8)\n"
              "try:\n"
              # scale 2: four times ffmpeg's work, so a busy machine cannot finish it before the signal comes
              f"    export_mp4(frames, {str(tmp_path / 'big.mp4')!r}, crf=0, scale=2)\n"
              "except KeyboardInterrupt:\n"
              "    sys.exit(130)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.PIPE,
                            preexec_fn=_as_in_a_terminal)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".big.*.partial.mp4")) and time.monotonic() < deadline:
        time.sleep(0.05)
    partial = list(tmp_path.glob(".big.*.partial.mp4"))
    assert partial and partial[0].name.startswith(f".big.{proc.pid}-")
    time.sleep(0.3)  # ffmpeg is writing
    assert proc.poll() is None, "the export ended before the test could interrupt it"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130, proc.stderr.read().decode()
    time.sleep(0.5)
    assert list(tmp_path.iterdir()) == []


# -- item 6: kill -9 leftovers -------------------------------------------------------------------------------------
def test_kill_9_during_export_leaves_a_partial_that_the_next_export_removes(tmp_path):
    script = ("import numpy as np\n"
              "from engine.export import export_mp4\n"
              "frames = np.random.default_rng(0).integers(0, 255, (400, 256, 256, 3), dtype=np.uint8)\n"
              f"export_mp4(frames, {str(tmp_path / 'take.mp4')!r}, crf=0)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".take.*.partial.mp4")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    left = list(tmp_path.glob(".take.*.partial.mp4"))
    assert len(left) == 1 and left[0].name.startswith(f".take.{proc.pid}-")  # the leftover, named
    sizes = []
    while len(sizes) < 3 or sizes[-1] != sizes[-3]:  # the orphaned ffmpeg finishes its file on end of input
        time.sleep(0.2)
        sizes.append(left[0].stat().st_size if left[0].exists() else -1)
    export_mp4(np.zeros((5, 16, 16, 3), np.uint8), tmp_path / "next.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next.mp4"]


def test_only_stale_partials_of_our_own_pattern_are_removed(tmp_path):
    import engine.export as export

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that has just exited (not reused within this test)
    here = export._HOST
    other = "0000" if here != "0000" else "ffff"
    old = time.time() - 2 * 3600
    files = {
        f".take.{dead.pid}-{here}-0123abcd.partial.mp4": (None, False),  # its writer is dead: stale
        f".take.{os.getpid()}-{here}-0123abcd.partial.mp4": (None, True),  # ours, maybe in flight: kept
        f".take.1-{here}-0123abcd.partial.mp4": (None, True),  # pid 1 is alive: kept
        f".take.{dead.pid}-{other}-0123abcd.partial.mp4": (None, True),  # another host's, fresh: kept
        f".b.{dead.pid}-{other}-0123abcd.partial.mp4": (old, False),  # another host's, an hour untouched
        ".take.1a2b3c4d.partial.mp4": (time.time() - 120, False),  # the old naming, over a minute old
        ".fresh.1a2b3c4d.partial.mp4": (None, True),  # the old naming, fresh: may be in flight
        ".notes.partial.mp4": (old, True),  # not our pattern
        "take.mp4": (old, True),
    }
    for name, (mtime, _) in files.items():
        (tmp_path / name).write_bytes(b"x")
        if mtime is not None:
            os.utime(tmp_path / name, (mtime, mtime))
    removed = remove_stale_partials(tmp_path)
    assert sorted(p.name for p in removed) == sorted(n for n, (_, keep) in files.items() if not keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, (_, keep) in files.items() if keep)
    assert partial_path(tmp_path / "take.mp4").name.startswith(f".take.{os.getpid()}-{here}-")


# -- item 8: reproduce does not load the models a file names ----------------------------------------------------------
def _crafted(tmp_path, changes=None, **meta):
    request = {"prompt": "a red circle", "steps": 2, "num_frames": 5, "width": 32, "height": 32, "mode": "light",
               **(changes or {})}
    return export_mp4(np.zeros((5, 16, 16, 3), np.uint8), tmp_path / "crafted.mp4",
                      metadata={"request": request, **meta})


def test_reproduce_uses_the_configured_models_not_the_files(tmp_path, tiny_family):
    evil = tmp_path / "evil-model"  # a folder the file names; never loaded without --trust-models-in-file
    crafted = _crafted(tmp_path, models={"light": str(evil), "heavy": str(evil)})
    out = tmp_path / "again.mp4"
    code, err = _cli("reproduce", str(crafted), *_models(tiny_family), "--quiet", "--out", str(out))
    assert code == 0, err
    assert f"the take was made with light {evil}, heavy {evil}" in err
    assert f"rendering it with light {tiny_family / 'light'}" in err
    assert out.is_file()


def test_reproduce_trusts_the_files_models_only_when_asked(tmp_path, capsys):
    missing = tmp_path / "evil-model"
    crafted = _crafted(tmp_path, models={"light": str(missing), "heavy": str(missing)})
    code, err = _main(capsys, "reproduce", str(crafted), "--trust-models-in-file", "--out", str(tmp_path / "o.mp4"))
    assert code == 2 and "model folder not found" in err and str(missing) in err


# -- item 9 and the rest: bad input exits 2 with one line, before any rendering ------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--fps", "0"], "error: --fps must be between 1 and 240, got 0"),
    (["--crf", "60"], "error: --crf (H.264 quality) must be from 0 to 51, got 60"),
    (["--scale", "0"], "error: --scale must be from 1 to 16, got 0"),
    (["--out", "/proc/x.mp4"], "error: cannot write to /proc: No such file or directory"),
    (["--negative", "x" * 20000], "error: the negative prompt has 20000 characters; at most 2000"),
    (["--plan", "p" * 100_000], "error: the plan has 100000 characters; at most 4000"),
])
def test_render_refuses_bad_input_up_front(tmp_path, capsys, tiny_family, args, message):
    if "/proc/x.mp4" in args and not Path("/proc").is_dir():
        pytest.skip("no /proc here")
    args = ["--out", str(tmp_path / "t.mp4"), *args]
    started = time.perf_counter()
    code, err = _main(capsys, "render", "--prompt", "a red circle", *_models(tiny_family), *args)
    assert code == 2 and _error_lines(err) == [message]
    assert time.perf_counter() - started < 5  # nothing was loaded or rendered
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("request_changes, meta, message", [
    ({"negative_prompt": "n" * 8000}, {}, "the negative prompt has 8000 characters; at most 2000"),
    ({"use_plan": "no"}, {}, "use_plan must be true or false, got 'no'"),
    ({"handoff": "0.5"}, {}, "handoff must be a number"),
    ({}, {"fps": "fast"}, "the file's fps must be a whole number from 1 to 240"),
    ({}, {"fps": 0}, "the file's fps must be a whole number from 1 to 240"),
    ({}, {"models": ["x"]}, "the file's model list is malformed"),
    ({}, {"request": "x"}, "carries no render settings"),
])
def test_reproduce_refuses_crafted_metadata_with_one_line(tmp_path, capsys, request_changes, meta, message):
    crafted = _crafted(tmp_path, request_changes, **meta)
    code, err = _main(capsys, "reproduce", str(crafted), "--out", str(tmp_path / "o.mp4"))
    assert code == 2 and len(_error_lines(err)) == 1 and message in err


def test_a_write_error_is_one_line_with_the_real_reason(tmp_path):
    """A file-size limit makes the real ffmpeg fail mid-write: the message is its reason, not its banner."""
    script = ("import resource, signal, sys, numpy as np\n"
              "from engine.export import export_mp4\n"
              "from engine.errors import ExportError\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))\n"
              "frames = np.random.default_rng(0).integers(0, 255, (20, 128, 128, 3), dtype=np.uint8)\n"
              "try:\n"
              f"    export_mp4(frames, {str(tmp_path / 'x.mp4')!r}, crf=0)\n"
              "except ExportError as exc:\n"
              "    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == f"could not write {tmp_path / 'x.mp4'}: File too large", proc.stdout + proc.stderr
    assert "ffmpeg version" not in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_export_says_the_systems_reason_and_takes_long_names(tmp_path):
    if Path("/proc").is_dir():  # writable by permissions for root, yet no file can be made there
        with pytest.raises(ExportError, match=r"^could not write /proc/x.mp4: No such file or directory$"):
            export_mp4(np.zeros((5, 16, 16, 3), np.uint8), "/proc/x.mp4")
    long_name = tmp_path / ("a" * 240 + ".mp4")  # our partial name must fit beside it
    assert export_mp4(np.zeros((5, 16, 16, 3), np.uint8), long_name).is_file()
