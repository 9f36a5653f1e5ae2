"""A prompt longer than the text encoder's window, on a family whose light generator reads the plan: the
understanding block reads it whole, the heavy generator reads its first window (recorded), nothing is refused."""

from __future__ import annotations

import pytest

LONG = ("please show me a small green triangle drifting slowly over towards the left hand side while a big blue "
        "square just rests quietly where it is on a sand coloured striped background and nothing else happens")


@pytest.fixture(scope="module")
def runtime():
    from engine.api import ModelSpec
    from engine.runtime import Runtime

    rt = Runtime(cache_bytes=0, preview=False)
    rt.load(ModelSpec(device="cpu"))
    return rt


def _request(**kw):
    from engine.api import RenderRequest

    base = dict(prompt=LONG, steps=4, num_frames=5, width=64, height=64, seed=1, mode="light")
    return RenderRequest(**{**base, **kw})


def test_a_long_plain_prompt_is_understood_not_refused(runtime):
    tokens = len(runtime.models.tokenizer(LONG).input_ids)
    assert tokens > runtime.models.max_sequence_length  # the case: past the heavy generator's window
    take = runtime.render(_request())
    assert take.metadata["heavy_text_cut"] == {"tokens": tokens, "window": runtime.models.max_sequence_length}
    plan = take.metadata["plan"]  # written from the whole prompt: both named shapes are in it
    assert "green" in plan and "triangle" in plan and "blue" in plan and "square" in plan


def test_without_a_plan_the_long_prompt_is_still_refused_with_the_reason(runtime):
    from engine.api import RequestError

    with pytest.raises(RequestError, match="tokens long"):
        runtime.render(_request(use_plan=False))


def test_a_short_prompt_records_no_cut(runtime):
    take = runtime.render(_request(prompt="a small green triangle moves left"))
    assert "heavy_text_cut" not in take.metadata
