import pytest


@pytest.fixture(scope="module")
def runtime(tiny_spec):
    from engine.runtime import Runtime

    rt = Runtime(cache_bytes=64 << 20)
    rt.load(tiny_spec)
    return rt


@pytest.fixture
def small_request():
    from engine.api import RenderRequest

    return RenderRequest(prompt="a small red striped circle moves to the left", negative_prompt="blurry",
                         steps=6, num_frames=5, width=32, height=32, seed=7, guidance_light=5.0,
                         guidance_heavy=4.0)
