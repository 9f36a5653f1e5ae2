"""Decoded step previews (engine/decoded_preview.py): the budget's arithmetic on a fake clock, and on the embedded
family that a refine's previews become pixel-resolution frames once a decode's cost is known, without changing the
take."""

import numpy as np
import pytest

from engine import decoded_preview
from engine.decoded_preview import DecodeBudget, DecodePolicy


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(decoded_preview.time, "perf_counter", c)
    return c


def test_decodes_only_within_the_share_of_step_time(clock):
    budget = DecodeBudget(cost=1.0, fraction=0.5, steps=20)
    clock.now = 1.0
    budget.step_done()
    assert not budget.allows(0)            # 1 s of steps: a 1 s decode would be 100 %
    clock.now = 2.0
    budget.step_done()
    assert budget.allows(1)                # 2 s of steps: 50 %
    clock.now = 3.0                        # the decode itself took 1 s: not step time
    budget.decoded(1.0)
    clock.now = 4.0
    budget.step_done()
    assert budget.step_seconds == pytest.approx(3.0) and not budget.allows(2)
    clock.now = 5.0
    budget.step_done()
    assert budget.allows(3) and not budget.allows(19)  # never after the last step: the take's decode follows


def test_unknown_cost_or_zero_share_never_decodes(clock):
    policy = DecodePolicy(0.5)
    b = policy.budget((17, 64, 64), 20)
    clock.now = 100.0
    b.step_done()
    assert not b.allows(0)  # no decode of this size measured yet
    policy.learn((17, 64, 64), 0.2)
    policy.learn((17, 64, 64), 0.4)
    assert policy.cost[(17, 64, 64)] == pytest.approx(0.3)
    assert policy.budget((17, 64, 64), 20).cost == pytest.approx(0.3)
    assert policy.budget((17, 32, 32), 20).cost is None  # another size: not known
    assert DecodePolicy(0.0).budget((17, 64, 64), 20).cost is None


@pytest.fixture(scope="module")
def family():
    from engine.api import embedded_family_available

    if not embedded_family_available():
        pytest.skip("no embedded family")
    return None


def _runtime(share):
    from engine.runtime import Runtime

    rt = Runtime(cache_bytes=16 << 20, preview_decode=share)
    rt.load(None)
    return rt


def _request(rt, seed=3):
    from engine.api import RenderRequest

    d = rt.models.defaults
    return RenderRequest(prompt="a big red striped circle at the left moves right. gray checked background.",
                         mode="upfb", handoff=0.5, steps=8, num_frames=d["num_frames"], width=d["width"],
                         height=d["height"], seed=seed, guidance_light=d["guidance_light"],
                         guidance_heavy=d["guidance_heavy"])


def test_a_large_vae_learns_its_cost_from_the_first_take(family, monkeypatch):
    monkeypatch.setattr(decoded_preview, "SMALL_VAE_PARAMETERS", 0)  # as if the VAE were Wan's
    rt = _runtime(1e6)
    assert rt.decode_policy.cost == {}
    first, second = [], []
    rt.render(_request(rt), emit=first.append)
    side = 64 // int(rt.models.vae.config.scale_factor_spatial)
    assert all(e.preview.shape[1:3] == (side, side) for e in first)  # cost unknown: projected at latent resolution
    rt.render(_request(rt, seed=4), emit=second.append)
    assert second[0].preview.shape[1:3] == (64, 64)


def test_refine_previews_are_decoded_and_the_take_is_unchanged(family):
    generous, never = _runtime(1e6), _runtime(0.0)
    assert list(generous.decode_policy.cost) == [(17, 64, 64)]  # the small VAE was timed at load
    first, second, plain = [], [], []
    req = _request(generous)
    generous.render(req, emit=first.append)
    assert first[0].preview.shape[1:3] == (64, 64)  # decoded from the first draft on
    again = _request(generous, seed=4)  # another seed: not the takes cache
    take = generous.render(again, emit=second.append)
    decoded = [e.preview for e in second[:-1]]
    assert all(p is not None and p.shape == take.frames.shape for p in decoded)  # pixel resolution, whole clip
    assert second[-1].preview is None  # the last step: the take's own decode follows, the player keeps the last
    # the step's decoded x0 estimate sharpens towards the take: the second-to-last is closer than the first
    err = [np.abs(p.astype(float) - take.frames.astype(float)).mean() for p in decoded]
    assert err[-1] < err[0]
    calls = []
    decode = generous.decode
    generous.decode = lambda latents: calls.append(1) or decode(latents)
    generous.render(_request(generous, seed=5))  # nobody listening: no preview is decoded, only the take
    assert len(calls) == 1
    never.render(_request(never), emit=plain.append)
    reference = never.render(_request(never, seed=4), emit=plain.append)
    side = 64 // int(never.models.vae.config.scale_factor_spatial)
    assert all(e.preview.shape[1:3] == (side, side) for e in plain)  # share 0: always projected
    assert np.array_equal(reference.frames, take.frames)  # previews never change what is rendered


def test_after_a_decoded_preview_the_player_keeps_it(family):
    """A tight share: a decoded step is followed by steps without a preview (None), never by a projected one."""
    rt = _runtime(1e6)
    events = []
    original = rt.decode_policy.budget

    def one_decode(size, steps):  # as if a decode cost more than the rest of the render allows
        b = original(size, steps)
        allows = b.allows
        b.allows = lambda i: allows(i) and not b.decoded_any
        return b

    rt.decode_policy.budget = one_decode
    rt.render(_request(rt, seed=9), emit=events.append)
    kinds = ["decoded" if e.preview is not None and e.preview.shape[1] > 8 else
             "none" if e.preview is None else "projected" for e in events]
    assert kinds[0] == "decoded" and set(kinds[1:]) == {"none"}, kinds
