"""A batch of requests renders each clip exactly as its single render would (noise, CFG, UPFB rebalance)."""

import numpy as np
import pytest


@pytest.mark.parametrize("mode", ["light", "upfb", "switch"])
def test_batch_equals_single_renders(runtime, small_request, mode):
    base = small_request.replace(mode=mode, handoff=0.6, switch_step=3)
    reqs = [base.replace(prompt="a big blue square moves up", seed=1), base,
            base.replace(prompt="the larger shape moves toward the smaller one", seed=11)]
    runtime.takes_cache.clear()
    runtime.draft_cache.clear()
    single = [runtime.render(r).frames for r in reqs]
    batch = runtime.render_batch(reqs)
    for one, take in zip(single, batch):
        assert take.frames.shape == one.shape
        assert np.abs(take.frames.astype(int) - one.astype(int)).max() <= 1
    # different prompts and seeds really gave different clips
    assert np.abs(batch[0].frames.astype(int) - batch[2].frames.astype(int)).mean() > 0.5
    assert batch[1].metadata["request"]["prompt"] == base.prompt


def test_batch_refuses_requests_that_differ_in_more_than_prompt_and_seed(runtime, small_request):
    from engine.errors import LumosError

    with pytest.raises(LumosError, match="only differ"):
        runtime.render_batch([small_request, small_request.replace(steps=4)])


def test_rms_rebalance_is_per_sample():
    """Batching must not let one clip's velocity energy rescale another's (the published rebalance is per clip)."""
    import torch

    from engine.upfb import fuse_velocities

    g = torch.Generator().manual_seed(0)
    vl, vh = torch.randn(2, 2, 4, 3, 8, 8, generator=g)
    vl[1] *= 10.0
    both = fuse_velocities(vl, vh, 0.5)
    for i in range(2):
        alone = fuse_velocities(vl[i: i + 1], vh[i: i + 1], 0.5)
        assert torch.allclose(both[i: i + 1], alone, atol=1e-5)
