"""A family with "light_text": "plan" gives the light generator the plan's text tokens; heavy keeps the prompt's."""

import json

import pytest
import torch

from engine.api import ModelSpec, RenderRequest
from engine.runtime import Runtime
from engine.understanding import Connector
from devtools.tiny_models import TEXT_DIM, build_tiny_family

PROMPT = "the larger shape moves to the left"
PLAN = "a big red circle moves to the left. a small blue square stays still."


def _family(root, light_text):
    from training.stage_lm import make_lm
    from training.stage_text import build_tokenizer

    build_tiny_family(root)
    cfg = {"name": "tiny"} | ({"light_text": light_text} if light_text else {})
    (root / "lumos.json").write_text(json.dumps(cfg))
    tok = build_tokenizer([PROMPT, PLAN])
    lm = make_lm(len(tok))
    tok.save_pretrained(root / "understanding" / "lm")
    lm.save_pretrained(root / "understanding" / "lm", safe_serialization=True)
    torch.manual_seed(0)  # both families get the same weights: only lumos.json differs
    Connector(lm.config.hidden_size, TEXT_DIM, num_queries=3).save_pretrained(root / "understanding" / "connector")
    rt = Runtime(cache_bytes=16 << 20)
    rt.load(ModelSpec(light=str(root / "light"), heavy=str(root / "heavy")))
    return rt


@pytest.fixture(scope="module")
def plan_family(tmp_path_factory):
    return _family(tmp_path_factory.mktemp("plan-family"), "plan")


@pytest.fixture(scope="module")
def prompt_family(tmp_path_factory):
    return _family(tmp_path_factory.mktemp("prompt-family"), None)


def _request(**kw):
    return RenderRequest(prompt=PROMPT, steps=4, num_frames=5, width=32, height=32, seed=3, guidance_light=4.0,
                         guidance_heavy=4.0, **kw)


def _texts(rt, req, plan):
    cond = rt.conditioning(req, plan)
    n = rt._text(PROMPT).shape[1]
    return cond.light_cond[:, :n], cond.heavy_cond


def test_light_reads_the_plan_and_heavy_the_prompt(plan_family):
    rt = plan_family
    assert rt.models.understanding is not None
    light, heavy = _texts(rt, _request(plan=PLAN), PLAN)
    torch.testing.assert_close(light, rt._text(PLAN))
    torch.testing.assert_close(heavy, rt._text(PROMPT))
    assert not torch.allclose(rt._text(PLAN), rt._text(PROMPT))


def test_without_a_plan_the_light_reads_the_prompt(plan_family):
    rt = plan_family
    light, _ = _texts(rt, _request(plan=PLAN, use_plan=False), PLAN)
    torch.testing.assert_close(light, rt._text(PROMPT))
    light, _ = _texts(rt, _request(plan=""), "")
    torch.testing.assert_close(light, rt._text(PROMPT))


def test_families_without_the_setting_keep_the_papers_prompt_tokens(prompt_family):
    rt = prompt_family
    light, _ = _texts(rt, _request(plan=PLAN), PLAN)
    torch.testing.assert_close(light, rt._text(PROMPT))


def test_the_setting_changes_light_renders_only(plan_family, prompt_family):
    # same weights, same request: the light draft differs because it read the plan, the heavy render does not
    for mode, differs in (("light", True), ("heavy", False)):
        a = plan_family.render(_request(plan=PLAN, mode=mode)).frames
        b = prompt_family.render(_request(plan=PLAN, mode=mode)).frames
        assert a.shape == b.shape and bool((a != b).any()) == differs, mode
