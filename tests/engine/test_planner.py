"""The planner for plain Wan pairs (engine/planner.py) on a tiny random-init Qwen2 instruct model saved in the real
layout: its text is nonsense, so these check the wiring (the light generator reads the plan's text tokens, the heavy
the instruction's), the metadata, the fallback to the instruction as typed, cancellation, the repo-id path through
the (session-isolated) Hugging Face cache, the CLI flags, and that lumos-mini, with its own block, is unchanged."""

import json
import os
import queue
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.api import ModelError, ModelSpec, PlanReady, RenderRequest, check_planner
from engine.errors import Cancelled as CancelledError
from engine.planner import Planner
from engine.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "the larger shape moves to the left"
NEGATIVE = "blurry"
REPO_ID = "tiny-org/Tiny-Planner-Instruct"


@pytest.fixture(scope="module")
def planner_dir(tiny_planner):
    return tiny_planner


def _runtime(tiny_family, **spec):
    rt = Runtime(cache_bytes=16 << 20, preview=False)
    rt.load(ModelSpec(light=str(tiny_family / "light"), heavy=str(tiny_family / "heavy"), **spec))
    if rt.models.planner is not None:
        rt.models.planner.max_new_tokens = 8  # nonsense either way: keep it short
    return rt


@pytest.fixture(scope="module")
def planned(tiny_family, planner_dir):
    return _runtime(tiny_family, planner=str(planner_dir))


def _request(**kw):
    kw = {"prompt": PROMPT, "negative_prompt": NEGATIVE, "steps": 2, "num_frames": 5, "width": 32, "height": 32,
          "seed": 3, "guidance_light": 4.0, "guidance_heavy": 4.0, **kw}
    return RenderRequest(**kw)


def _cond(rt, req):
    return rt.conditioning(req, rt.resolve_plan(req))


# -- the folder ---------------------------------------------------------------------------------------------------
def _copy(src, dst, drop=()):
    shutil.copytree(src, dst)
    for name in drop:
        (dst / name).unlink()
    return dst


def test_check_planner_names_what_is_missing(tmp_path, planner_dir, tiny_family):
    assert check_planner(str(planner_dir)) == planner_dir
    (tmp_path / "empty").mkdir()
    no_template = _copy(planner_dir, tmp_path / "base", drop=["chat_template.jinja"])
    config = json.loads((no_template / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (no_template / "tokenizer_config.json").write_text(json.dumps(config))
    cases = [
        (tmp_path / "empty", "has no config.json"),
        (tmp_path / "nowhere", "model folder not found"),
        (tiny_family / "heavy" / "transformer", "not a causal language model"),
        (no_template, "has no chat template"),
        (_copy(planner_dir, tmp_path / "no-tok", drop=["tokenizer.json", "tokenizer_config.json"]), "no tokenizer"),
        (_copy(planner_dir, tmp_path / "no-weights", drop=["model.safetensors"]), "has no weights"),
    ]
    for folder, message in cases:
        with pytest.raises(ModelError, match=message):
            check_planner(str(folder))
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        check_planner("nobody/Not-Cached-Instruct")


# -- the wiring ---------------------------------------------------------------------------------------------------
def test_the_light_reads_the_plan_and_the_heavy_the_instruction(planned):
    rt = planned
    req = _request()
    plan = rt.resolve_plan(req)
    result = rt.models.planner.result(PROMPT)
    assert plan and plan != PROMPT and result.text == plan and not result.fell_back
    cond = rt.conditioning(req, plan)
    torch.testing.assert_close(cond.light_cond, rt._text(plan))
    torch.testing.assert_close(cond.heavy_cond, rt._text(PROMPT))
    torch.testing.assert_close(cond.light_uncond, rt._text(NEGATIVE))
    torch.testing.assert_close(cond.heavy_uncond, rt._text(NEGATIVE))
    assert not torch.allclose(rt._text(plan), rt._text(PROMPT))


def test_the_heavy_can_be_switched_to_the_plan(planned, monkeypatch):
    monkeypatch.setattr(planned.models, "heavy_reads", "plan")
    req = _request()
    plan = planned.resolve_plan(req)
    cond = planned.conditioning(req, plan)
    torch.testing.assert_close(cond.light_cond, planned._text(plan))
    torch.testing.assert_close(cond.heavy_cond, planned._text(plan))


def test_a_take_records_its_plan_and_planner(planned, planner_dir):
    rt = planned
    take = rt.render(_request(mode="light"))
    plan = rt.models.planner.result(PROMPT).text
    assert take.metadata["plan"] == plan and take.metadata["request"]["plan"] == plan
    assert take.metadata["planner"] == {"id": str(planner_dir), "heavy_reads": "instruction", "source": "planner",
                                        "fell_back": False, "reason": None}
    summary = rt.models.summary()
    assert summary["planner"] == str(planner_dir) and summary["heavy_reads"] == "instruction"


def test_a_given_plan_is_used_as_is_and_the_planner_is_not_asked(planned, monkeypatch):
    def fail(*a, **k):
        raise AssertionError("the planner was asked")

    monkeypatch.setattr(planned.models.planner, "write", fail)
    req = _request(plan="a big red circle moves to the left", mode="light")
    assert planned.resolve_plan(req) == req.plan
    torch.testing.assert_close(_cond(planned, req).light_cond, planned._text(req.plan))
    take = planned.render(req)
    assert take.metadata["plan"] == req.plan and take.metadata["planner"]["source"] == "given"
    off = _request(use_plan=False, mode="light")
    assert planned.resolve_plan(off) is None
    torch.testing.assert_close(_cond(planned, off).light_cond, planned._text(PROMPT))
    take = planned.render(off)
    assert take.metadata["plan"] is None and take.metadata["planner"]["source"] == "off"


def test_a_pair_without_a_planner_reads_the_instruction(tiny_family, planned):
    rt = _runtime(tiny_family)
    req = _request()
    assert rt.models.planner is None and rt.resolve_plan(req) is None and rt.plan(PROMPT) is None
    cond = _cond(rt, req)
    torch.testing.assert_close(cond.light_cond, rt._text(PROMPT))
    assert "planner" not in rt.render(_request(mode="light")).metadata


# -- falling back -------------------------------------------------------------------------------------------------
def test_a_broken_planner_folder_falls_back_with_its_reason(tiny_family, tmp_path):
    (tmp_path / "broken").mkdir()
    rt = _runtime(tiny_family, planner=str(tmp_path / "broken"), heavy_reads="plan")
    assert rt.models.summary()["heavy_reads"] == "plan"
    result = rt.plan_result(PROMPT)
    assert result.fell_back and result.text == PROMPT and "no config.json" in result.reason
    cond = _cond(rt, _request())
    torch.testing.assert_close(cond.light_cond, rt._text(PROMPT))
    torch.testing.assert_close(cond.heavy_cond, rt._text(PROMPT))
    meta = rt.render(_request(mode="light")).metadata
    assert meta["plan"] == PROMPT
    assert meta["planner"]["fell_back"] and meta["planner"]["source"] == "fallback"
    assert "no config.json" in meta["planner"]["reason"]


def test_an_exception_while_writing_falls_back_and_is_retried(tiny_family, planner_dir, monkeypatch):
    planner = Planner(str(planner_dir), max_new_tokens=4)
    planner.load()

    def boom(*a, **k):
        raise RuntimeError("boom")

    with monkeypatch.context() as m:
        m.setattr(planner.model, "generate", boom)
        result = planner.plan(PROMPT)
    assert result == planner.result(PROMPT)
    assert result.fell_back and result.text == PROMPT and result.reason == "RuntimeError: boom"
    again = planner.plan(PROMPT)  # a fallback is not kept: the next ask writes
    assert not again.fell_back and again.text != PROMPT
    monkeypatch.setattr(planner, "write", lambda *a, **k: "  \n ")
    assert planner.plan("a red ball").reason == "the planner wrote nothing"


def test_the_engine_reports_a_fallback_with_the_plan(tiny_family, tmp_path):
    from engine.api import Engine

    (tmp_path / "broken").mkdir()
    rt = _runtime(tiny_family, planner=str(tmp_path / "broken"))
    events = queue.Queue()
    engine = Engine(runtime=rt, on_event=events.put)
    try:
        job = engine.submit_plan(PROMPT)
        while not isinstance(event := events.get(timeout=60), PlanReady) or event.job_id != job.id:
            pass
    finally:
        engine.shutdown()
    assert event.plan == PROMPT and event.fell_back and "no config.json" in event.reason


# -- cancelling ---------------------------------------------------------------------------------------------------
class _FlagAfter:
    """A threading.Event-like flag that turns set after `n` looks."""

    def __init__(self, n):
        self.n, self.looks = n, 0

    def is_set(self):
        self.looks += 1
        return self.looks > self.n


def test_planning_can_be_cancelled_within_a_token(planner_dir):
    planner = Planner(str(planner_dir), max_new_tokens=64)
    with pytest.raises(CancelledError):
        planner.plan(PROMPT, cancel_flag=_FlagAfter(0))
    assert not planner.loaded  # cancelled before anything loaded
    flag = _FlagAfter(3)  # one look before writing, then one per token
    with pytest.raises(CancelledError):
        planner.plan(PROMPT, cancel_flag=flag)
    assert flag.looks < 10 and planner.result(PROMPT) is None  # stopped long before 64 tokens; nothing kept


def test_a_render_cancelled_while_planning(planned):
    planner = planned.models.planner
    with pytest.raises(CancelledError):
        planned.render(_request(prompt="a small blue square rolls"), cancel_flag=_FlagAfter(2))
    assert planner.result("a small blue square rolls") is None


# -- a repo id from the local cache -------------------------------------------------------------------------------
def test_a_repo_id_resolves_through_the_local_cache_only(planner_dir):
    cache = Path(os.environ["HF_HUB_CACHE"])
    assert str(cache).startswith(os.environ["HF_HOME"])  # the session's own, never the user's
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + REPO_ID.replace("/", "--"))
    shutil.copytree(planner_dir, repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    try:
        assert check_planner(REPO_ID) == repo / "snapshots" / revision
        planner = Planner(REPO_ID, max_new_tokens=4)
        result = planner.plan(PROMPT)
        assert not result.fell_back and result.planner == REPO_ID and result.text
    finally:
        shutil.rmtree(repo)
    missing = Planner(REPO_ID).plan(PROMPT)
    assert missing.fell_back and "not in the local Hugging Face cache" in missing.reason


# -- lumos-mini keeps its own block --------------------------------------------------------------------------------
def test_lumos_mini_is_unchanged_by_a_planner(planner_dir):
    from engine.api import embedded_family_available

    if not embedded_family_available():
        pytest.skip("the embedded family is not built")
    plain, asked = Runtime(cache_bytes=16 << 20, preview=False), Runtime(cache_bytes=16 << 20, preview=False)
    plain.load(ModelSpec(device="cpu"))
    asked.load(ModelSpec(device="cpu", planner=str(planner_dir), heavy_reads="plan"))
    assert asked.models.planner is None and asked.models.understanding is not None
    assert asked.models.summary()["planner"] is None
    req = RenderRequest(prompt="the larger shape moves to the left", steps=2, num_frames=5, width=32, height=32)
    plan = asked.resolve_plan(req)
    assert plan == plain.resolve_plan(req) and asked.plan_result(req.prompt).planner is None
    a, b = plain.conditioning(req, plan), asked.conditioning(req, plan)
    for field in ("light_cond", "heavy_cond"):
        torch.testing.assert_close(getattr(a, field), getattr(b, field))
    resolved = plain.resolve(req)
    frames = np.zeros((5, 32, 32, 3), np.uint8)
    meta_a, meta_b = (rt.metadata(req, plan, resolved, 8, frames, 1.0) for rt in (plain, asked))
    assert "planner" not in meta_b and meta_a.keys() == meta_b.keys()


# -- the command line ---------------------------------------------------------------------------------------------
def cli(*args):
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    return proc.returncode, proc.stderr


def test_cli_renders_with_a_planner_and_reproduces_from_the_recorded_plan(tmp_path, tiny_family, planner_dir):
    from engine.export import read_metadata
    from tests.engine.test_export import _read_back

    models = ["--light", str(tiny_family / "light"), "--heavy", str(tiny_family / "heavy")]
    out = tmp_path / "take.mp4"
    code, err = cli("render", "--prompt", PROMPT, *models, "--planner", str(planner_dir), "--heavy-reads", "plan",
                    "--size", "32x32", "--frames", "5", "--steps", "2", "--crf", "0", "--quiet", "--out", str(out))
    assert code == 0, err
    meta = read_metadata(out)
    assert meta["planner"]["id"] == str(planner_dir) and meta["planner"]["heavy_reads"] == "plan"
    assert meta["planner"]["source"] == "planner" and f"plan: {meta['plan']}" in err
    again = tmp_path / "again.mp4"
    code, err = cli("reproduce", str(out), *models, "--crf", "0", "--quiet", "--out", str(again))
    assert code == 0, err
    assert f"planner {planner_dir} (heavy reads the plan)" in err
    back = read_metadata(again)
    assert back["plan"] == meta["plan"] and back["planner"]["source"] == "given"
    assert np.array_equal(_read_back(out), _read_back(again))
    code, err = cli("reproduce", str(out), *models, "--heavy-reads", "instruction", "--quiet",
                    "--out", str(tmp_path / "other.mp4"))
    assert code == 0, err
    assert read_metadata(tmp_path / "other.mp4")["planner"]["heavy_reads"] == "instruction"


@pytest.mark.parametrize("args, message", [
    (["--planner", "{broken}"], "--planner: .*has no config.json"),
    (["--planner", "nobody/Not-Cached-Instruct"], "not in the local Hugging Face cache"),
    (["--heavy-reads", "plan"], "--heavy-reads applies to a pair with a --planner"),
    (["--heavy-reads", "both"], "invalid choice"),
])
def test_cli_planner_errors_are_one_line(tmp_path, tiny_family, args, message):
    import re

    (tmp_path / "broken").mkdir()
    args = [a.replace("{broken}", str(tmp_path / "broken")) for a in args]
    code, err = cli("render", "--prompt", PROMPT, "--light", str(tiny_family / "light"), "--heavy",
                    str(tiny_family / "heavy"), *args, "--out", str(tmp_path / "x.mp4"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_cli_refuses_a_planner_for_a_family_with_its_own_block(tmp_path, planner_dir):
    from engine.api import embedded_family_available

    if not embedded_family_available():
        pytest.skip("the embedded family is not built")
    code, err = cli("render", "--prompt", PROMPT, "--planner", str(planner_dir), "--out", str(tmp_path / "x.mp4"))
    assert code == 2 and "have their own" in err and "--understanding none" in err, err
